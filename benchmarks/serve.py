"""The scoring service against `mlflow models serve` on the same registered champion.

    .venv/bin/python benchmarks/serve.py [--home DIR] [--sustain-seconds 300] [--rate 200] [--quick]

Starts `creditrisk serve` (one uvicorn worker) and `mlflow models serve -m
models:/creditrisk-pd@champion --env-manager local --workers 1`, both on 127.0.0.1 and on the
home's registry (CREDITRISK_HOME=--home; `creditrisk run --customers 3000 --months 48` builds it
when it holds no champion; a scorer key is created for the run and revoked at the end). The
request bodies come from the book, one pool of `--pool` customers cycled at the latest scored
as-of date:

- (a) `POST /v1/score`: the customer's raw rows (`serve.payloads.customer_payload`): features by
  the batch code, PD, score, grade, reasons, policy and warning, key check and audit row;
- (b) `POST /v1/score/features`: the same customer's feature row, built here as the service
  builds it (`OnlineScorer.snapshot`), the model's input columns only (NaN as null);
- (c) MLflow's `/invocations` with that row as `dataframe_split`: the pyfunc's `predict`
  (`CreditScorer.score_frame`: PD, score, grade and the reasons JSON; no policy, no warning, no
  key, no audit).

Beside them, the floor: a bare FastAPI app on uvicorn (`benchmarks/floor_app.py`) answering a
constant to the same (a) bodies, sequentially: what one HTTP round trip costs here before any work.

Measured in one run: sequential (one keep-alive client) and `--clients` concurrent clients (one
keep-alive asyncio connection each; both lean HTTP/1.1 clients, the same for every path, so
client-side costs stay small): p50, p99 and requests/s, with the server's CPU per request; then an
open-loop load on (a) at `--rate` requests/s for `--sustain-seconds`, at most `--max-inflight`
requests outstanding (a request due beyond that is not sent and counts as an error), each
answered within `--timeout` s; latency counted from the time the request was due (queueing
included); the service's RSS sampled every second. The load generator runs on the same machine:
its CPU is taken from the services' cores. The load average is printed beside each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.settings import QUIET_ENVIRONMENT, Settings, quiet_environment  # noqa: E402

quiet_environment()  # before MLflow is imported

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402  (a dependency of dask.distributed)

DEFAULT_HOME = ROOT / "benchmarks" / ".data" / "serve-home"
BIN = Path(sys.executable).parent
MODEL = "creditrisk-pd"
START_SECONDS = 600.0
KEEP_ALIVE_SECONDS = 4.0  # reuse an idle connection younger than this (uvicorn closes at 5 s)
PATHS = ("a", "b", "c")
LABELS = {
    "a": "(a) ours, POST /v1/score from raw data",
    "b": "(b) ours, POST /v1/score/features",
    "c": "(c) mlflow models serve /invocations",
}
GOAL_P50_MS, GOAL_P99_MS = 3.0, 10.0


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f} (5 min {five:.1f})"


# --- the world: a home with a champion, a key ---------------------------------------------------


def environment(home: Path) -> dict[str, str]:
    """The environment both services and the CLI run with: the home, its registry, quiet."""
    env = {**os.environ, **QUIET_ENVIRONMENT}
    env["CREDITRISK_HOME"] = str(home)
    env["MLFLOW_TRACKING_URI"] = Settings(home=home).tracking_uri
    env["PREFECT_HOME"] = str(home / "prefect")
    env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"  # mlflow starts `uvicorn`
    return env


def champion_version(home: Path) -> str | None:
    """The version the home's registry calls champion (None: no registry or no alias)."""
    if not (home / "mlflow.db").exists():
        return None
    from models.registry import CHAMPION, alias_version
    from models.tracking import connect

    return alias_version(connect(Settings(home=home).tracking_uri), MODEL, CHAMPION)


def cli(args: list[str], env: dict[str, str], log: Path | None = None) -> str:
    """Run `creditrisk ARGS`; stdout out (or into ``log``); a failure shows its last lines."""
    command = [str(BIN / "creditrisk"), *args]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    if log is not None:
        log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise SystemExit(f"`creditrisk {' '.join(args)}` failed ({done.returncode}):\n{tail}")
    return done.stdout


def ensure_world(home: Path, env: dict[str, str], customers: int, months: int) -> str:
    """The champion's version, after `creditrisk run` on a small book when there is none."""
    version = champion_version(home)
    if version is None:
        home.mkdir(parents=True, exist_ok=True)
        print(f"no champion in {home}: creditrisk run --customers {customers} --months {months}")
        started = time.perf_counter()
        run = ["run", "--customers", str(customers), "--months", str(months)]
        cli([*run, "--allow-red-jeffreys"], env, home / "run.log")
        print(f"  built in {time.perf_counter() - started:.0f} s ({load()})")
        version = champion_version(home)
        if version is None:
            raise SystemExit(f"creditrisk run left no champion in {home}; see {home / 'run.log'}")
    return version


# --- the services -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    base: str
    log: Path

    def processes(self) -> list[Any]:
        """The server's processes (the leader and its children) as psutil processes."""
        try:
            leader = psutil.Process(self.process.pid)
            return [leader, *leader.children(recursive=True)]
        except psutil.Error:
            return []

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the server's processes so far."""
        total = 0.0
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def rss(self) -> int:
        """Resident bytes of the server's processes."""
        total = 0
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total


def start(name: str, command: list[str], env: dict[str, str], log: Path, port: int) -> Server:
    """Start a server in its own process group, output to ``log``."""
    handle = log.open("w")
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    handle.close()
    return Server(name, process, f"http://127.0.0.1:{port}", log)


def wait_until_up(server: Server, path: str, ok) -> float:
    """Seconds until ``path`` answers as ``ok`` says; the log's tail if the server dies first."""
    started = time.perf_counter()
    with httpx.Client(timeout=5) as client:
        while time.perf_counter() - started < START_SECONDS:
            if server.process.poll() is not None:
                tail = "\n".join(server.log.read_text().splitlines()[-20:])
                raise SystemExit(f"{server.name} exited ({server.process.returncode}):\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if ok(client.get(server.base + path)):
                    return time.perf_counter() - started
            time.sleep(0.5)
    raise SystemExit(f"{server.name} did not answer {path} within {START_SECONDS:.0f} s")


def stop(server: Server) -> None:
    """Terminate the server's process group; kill it if it lingers."""
    if server.process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(15)


# --- request bodies -----------------------------------------------------------------------------


def json_value(value: Any) -> Any:
    """A feature value as JSON takes it: null for missing, Python numbers, text as text."""
    if value is None or (isinstance(value, float | np.floating) and not math.isfinite(value)):
        return None
    if isinstance(value, str):
        return value
    if pd.isna(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


@dataclass
class Bodies:
    as_of: pd.Timestamp
    customers: list[str]
    columns: list[str]
    raw: list[bytes] = field(default_factory=list)
    features: list[bytes] = field(default_factory=list)
    mlflow: list[bytes] = field(default_factory=list)


def bodies(home: Path, version: str, size: int, seed: int, as_of: str | None) -> Bodies:
    """Bodies of (a), (b) and (c) for ``size`` customers of the book at the latest scored as-of
    date, drawn from those not in default then (whom the model scores); the feature rows built
    by `OnlineScorer.snapshot` on the champion."""
    from features.io import read_book
    from features.snapshots import DEFAULTED_ON
    from models.registry import load_scorer
    from models.tracking import connect
    from pipelines.store.db import open_store
    from pipelines.store.queries import list_runs
    from pipelines.usecases.online import OnlineScorer
    from pipelines.usecases.scoring import DecisionConfig
    from serve.build import book_reference
    from serve.payloads import customer_payload

    settings = Settings(home=home)
    if as_of is None:
        runs = list_runs(open_store(settings.results_url, create=False), MODEL)
        as_of = str(pd.Timestamp(runs["as_of"].iloc[0]).date())
    when = pd.Timestamp(as_of)
    book = read_book(settings.book_dir)
    customers = book["customers"]
    eligible = customers.loc[customers["onboarded_on"] < when, "customer_id"].astype(str)

    with tempfile.TemporaryDirectory(dir=home) as scratch:
        scorer = load_scorer(connect(settings.tracking_uri), MODEL, version, scratch)
    reference = book_reference(settings.book_dir, settings.rejects_dir / "bench-serve.csv")
    online = OnlineScorer(scorer, DecisionConfig.load(), reference, MODEL, version)
    candidates = set(eligible)
    raw = {
        name: frame[frame["customer_id"].astype(str).isin(candidates)]
        for name, frame in book.items()
        if frame is not None
    }
    snapshot = online.snapshot(online.tables(raw), when).set_index("customer_id")
    performing = snapshot.index[snapshot[DEFAULTED_ON].isna()].to_numpy()  # the model decides
    rng = np.random.default_rng(seed)
    ids = sorted(rng.choice(performing, size=min(size, len(performing)), replace=False))
    columns = scorer.input_columns
    out = Bodies(when, ids, columns)
    for cid in ids:
        row = {c: json_value(snapshot.at[cid, c]) for c in columns}
        out.raw.append(json.dumps(customer_payload(book, cid, when)).encode())
        feature_body = {"as_of": as_of, "customer_id": cid, "features": row}
        out.features.append(json.dumps(feature_body).encode())
        split = {"columns": ["customer_id", *columns], "data": [[cid, *row.values()]]}
        out.mlflow.append(json.dumps({"dataframe_split": split}).encode())
    return out


def cycle(items: list[bytes]) -> Iterator[tuple[int, bytes]]:
    i = 0
    while True:
        yield i % len(items), items[i % len(items)]
        i += 1


# --- a lean HTTP/1.1 client (the same for every path) ----------------------------------------
# httpx costs a few hundred microseconds per request on the client side; these keep-alive clients
# cost tens, so the figures are the servers'. A connection that breaks raises OSError.


def _request_bytes(host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _split(url: str) -> tuple[str, int, str]:
    parsed = httpx.URL(url)
    return parsed.host, parsed.port or 80, parsed.raw_path.decode()


class LeanClient:
    """One keep-alive connection (http.client): ``post(body) -> (status, body bytes)``."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float = 60):
        import http.client

        self.host, self.port, self.path = _split(url)
        self.headers = headers
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def post(self, body: bytes) -> tuple[int, bytes]:
        self.conn.request("POST", self.path, body=body, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.conn.close()


class AsyncLeanConnection:
    """One keep-alive asyncio connection; ``await post(body) -> (status, body bytes)``."""

    def __init__(self, url: str, headers: dict[str, str]):
        self.host, self.port, self.path = _split(url)
        self.headers = headers
        self.reader = self.writer = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            self.writer.write(_request_bytes(self.host, self.path, self.headers, body))
            status = int((await self.reader.readline()).split(b" ", 2)[1])
            length, chunked = 0, False
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if not chunked:
                return status, await self.reader.readexactly(length)
            parts = []
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                parts.append(await self.reader.readexactly(size + 2))
            await self.reader.readline()
            return status, b"".join(p[:-2] for p in parts)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            self.close()
            raise OSError("connection broken") from None

    @property
    def closed_by_peer(self) -> bool:
        """Whether the server has closed the connection (its end of stream arrived)."""
        return self.reader is not None and self.reader.at_eof()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Figures:
    """Latencies (ms) of the 2xx answers, the errors, wall seconds and server CPU seconds."""

    latencies: list[float]
    errors: dict[str, int]
    wall: float
    cpu: float
    load: str

    @property
    def done(self) -> int:
        return len(self.latencies)

    def p(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else math.nan

    @property
    def rate(self) -> float:
        return self.done / self.wall if self.wall else math.nan

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.done if self.done else math.nan


def _count(errors: dict[str, int], what: str) -> None:
    errors[what] = errors.get(what, 0) + 1


def sequential(server: Server, url: str, items: list[bytes], headers: dict, n: int, warm: int):
    """One keep-alive client, one request at a time: ``warm`` unmeasured (their answers kept
    for the checks), then ``n`` measured with the lean client."""
    latencies, errors, answers = [], {}, {}
    with httpx.Client(timeout=60, headers=headers) as client:
        requests = cycle(items)
        for _ in range(warm):
            i, body = next(requests)
            answers[i] = client.post(url, content=body)
    lean = LeanClient(url, headers)
    cpu, started = server.cpu_seconds(), time.perf_counter()
    for _ in range(n):
        _, body = next(requests)
        t = time.perf_counter()
        try:
            status, _ = lean.post(body)
        except OSError as exc:
            _count(errors, type(exc).__name__)
            lean.close()
            lean = LeanClient(url, headers)
            continue
        if 200 <= status < 300:
            latencies.append(1000 * (time.perf_counter() - t))
        else:
            _count(errors, f"HTTP {status}")
    wall = time.perf_counter() - started
    lean.close()
    return Figures(latencies, errors, wall, server.cpu_seconds() - cpu, load()), answers


async def _concurrent(url: str, items: list[bytes], headers: dict, clients: int, n: int):
    latencies, errors = [], {}
    requests = cycle(items)
    left = [n]

    async def worker() -> None:
        connection = AsyncLeanConnection(url, headers)
        while left[0] > 0:
            left[0] -= 1
            _, body = next(requests)
            t = time.perf_counter()
            try:
                status, _ = await asyncio.wait_for(connection.post(body), 120)
            except (OSError, TimeoutError) as exc:
                _count(errors, type(exc).__name__)
                connection.close()
                continue
            if 200 <= status < 300:
                latencies.append(1000 * (time.perf_counter() - t))
            else:
                _count(errors, f"HTTP {status}")
        connection.close()

    await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, errors


def concurrent(server: Server, url: str, items: list[bytes], headers: dict, clients: int, n: int):
    """``clients`` clients each sending its next request when its last is answered."""
    cpu, started = server.cpu_seconds(), time.perf_counter()
    latencies, errors = asyncio.run(_concurrent(url, items, headers, clients, n))
    wall = time.perf_counter() - started
    return Figures(latencies, errors, wall, server.cpu_seconds() - cpu, load())


class RssSampler(threading.Thread):
    """The server's RSS every ``every`` seconds until stopped."""

    def __init__(self, server: Server, every: float = 1.0):
        super().__init__(daemon=True)
        self.server, self.every = server, every
        self.samples: list[tuple[float, int]] = []
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            with contextlib.suppress(Exception):
                self.samples.append((time.perf_counter(), self.server.rss()))
            self._done.wait(self.every)

    def stop(self) -> None:
        self._done.set()
        self.join()


@dataclass
class Sustained:
    scheduled: int
    sent: int
    statuses: dict[str, int]
    latencies: list[float]  # ms from the time the request was due, 2xx only
    finished: list[float]  # seconds after the start, 2xx only
    max_inflight: int
    seconds: float
    wall: float
    loads: list[str]
    windows: list[str]
    rss: list[int]  # the service's resident bytes, one sample a second

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        return self.scheduled - self.ok


async def _sustain(url, items, headers, rate, seconds, max_inflight, timeout, drain):
    loop = asyncio.get_running_loop()
    scheduled = int(rate * seconds)
    statuses: dict[str, int] = {}
    latencies, finished, tasks = [], [], set()
    requests = cycle(items)
    peak = [0]
    idle: list[tuple[AsyncLeanConnection, float]] = []  # keep-alive, not in use: since when
    t0 = loop.time() + 0.2

    def reusable() -> AsyncLeanConnection | None:
        """The newest idle connection the server has not closed (uvicorn closes a keep-alive
        connection after 5 s idle: a client checks before it sends, as HTTP clients do)."""
        while idle:
            connection, since = idle.pop()
            if loop.time() - since < KEEP_ALIVE_SECONDS and not connection.closed_by_peer:
                return connection
            connection.close()
        return None

    async def one(body: bytes, due: float) -> None:
        connection = reusable() or AsyncLeanConnection(url, headers)
        try:
            status, _ = await asyncio.wait_for(connection.post(body), timeout)
        except (OSError, TimeoutError) as exc:
            _count(statuses, type(exc).__name__)
            connection.close()
            return
        idle.append((connection, loop.time()))
        if 200 <= status < 300:
            now = loop.time()
            latencies.append(1000 * (now - due))
            finished.append(now - t0)
        else:
            _count(statuses, f"HTTP {status}")

    sent = 0
    for i in range(scheduled):
        due = t0 + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(tasks) >= max_inflight:
            _count(statuses, "not sent: in-flight cap")
            continue
        task = asyncio.create_task(one(next(requests)[1], due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
        peak[0] = max(peak[0], len(tasks))
    if tasks:
        _, pending = await asyncio.wait(set(tasks), timeout=drain)
        for task in pending:
            task.cancel()
        statuses["unanswered at the end"] = len(pending)
        await asyncio.gather(*pending, return_exceptions=True)
    for connection, _ in idle:
        connection.close()
    wall = loop.time() - t0
    return scheduled, sent, statuses, latencies, finished, peak[0], wall


def sustain(server: Server, url, items, headers, rate, seconds, max_inflight, timeout) -> Sustained:
    """Open loop at ``rate``/s for ``seconds`` on ``url``; the service's RSS sampled meanwhile."""
    sampler = RssSampler(server)
    sampler.start()
    loads = [load()]
    ticker = threading.Event()
    windows: list[str] = []
    started = time.perf_counter()

    def tick() -> None:  # the load average and RSS every fifth of the run, and the drain
        step = max(seconds / 5, 1)
        while not ticker.wait(step):
            rss = sampler.samples[-1][1] if sampler.samples else 0
            at = time.perf_counter() - started
            windows.append(f"{at:5.0f} s: {load()}, RSS {rss / 2**20:.0f} MB")

    ticking = threading.Thread(target=tick, daemon=True)
    ticking.start()
    try:
        result = asyncio.run(
            _sustain(url, items, headers, rate, seconds, max_inflight, timeout, drain=timeout)
        )
    finally:
        ticker.set()
        ticking.join()
        sampler.stop()
    loads.append(load())
    scheduled, sent, statuses, latencies, finished, peak, wall = result
    rss = [found for _, found in sampler.samples]
    return Sustained(
        scheduled, sent, statuses, latencies, finished, peak, seconds, wall, loads, windows, rss
    )


# --- printing -----------------------------------------------------------------------------------


def ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def errors_text(errors: dict[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(errors.items()) if v) or "none"


def table(seq: dict[str, Figures], conc: dict[str, Figures], clients: int) -> str:
    head = (
        f"| path | seq p50 ms | seq p99 ms | seq req/s | {clients} clients p50 ms | p99 ms | "
        "req/s | server CPU ms/req (seq) | p50 / (c) seq | req/s / (c) at "
        f"{clients} |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    lines = [head]
    for path in PATHS:
        s, c = seq[path], conc[path]
        ratio_p50 = s.p(50) / seq["c"].p(50)
        ratio_rate = c.rate / conc["c"].rate
        lines.append(
            f"| {LABELS[path]} | {ms(s.p(50))} | {ms(s.p(99))} | {s.rate:.0f} | {ms(c.p(50))} | "
            f"{ms(c.p(99))} | {c.rate:.0f} | {ms(s.cpu_ms)} | {ratio_p50:.2f} | {ratio_rate:.2f} |"
        )
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def check_answers(answers: dict[str, dict[int, httpx.Response]], ids: list[str]) -> list[str]:
    """The PDs the three paths gave for the warm-up customers, compared; what (c) returns."""
    lines = []
    pds: dict[str, dict[int, float]] = {}
    for path, found in answers.items():
        bad = {i: r.status_code for i, r in found.items() if not r.is_success}
        if bad:
            i, status = next(iter(bad.items()))
            lines.append(
                f"{path}: {len(bad)} warm-up answers not 2xx, first {status}: {found[i].text[:300]}"
            )
            continue
        if path == "c":
            pds[path] = {i: r.json()["predictions"][0]["pd"] for i, r in found.items()}
        else:
            pds[path] = {i: r.json()["pd"] for i, r in found.items()}
    if set(pds) == set(PATHS):
        common = sorted(set(pds["a"]) & set(pds["b"]) & set(pds["c"]))
        ab = max(abs(pds["a"][i] - pds["b"][i]) for i in common)
        ac = max(abs(pds["a"][i] - pds["c"][i]) for i in common)
        lines.append(
            f"PDs on {len(common)} warm-up customers: |(a)-(b)| <= {ab:.1e}, |(a)-(c)| <= {ac:.1e}"
        )
    if answers.get("c"):
        first = next(iter(answers["c"].values()))
        if first.is_success:
            keys = sorted(first.json()["predictions"][0])
            lines.append(f"(c) returns {{'predictions': [{{{', '.join(keys)}}}]}} per row")
    return lines


def sustained_lines(s: Sustained, rate: float, rss0: int) -> list[str]:
    mb = 2**20
    rss = s.rss or [0]
    span = max(s.finished) if s.finished else math.nan
    in_window = sum(1 for t in s.finished if t <= s.seconds)
    achieved = in_window / s.seconds
    p50 = float(np.percentile(s.latencies, 50)) if s.latencies else math.nan
    p99 = float(np.percentile(s.latencies, 99)) if s.latencies else math.nan
    sustained = s.errors == 0 and achieved >= 0.98 * rate
    lines = [
        f"sustained (a): {s.scheduled} requests due at {rate:.0f}/s over {s.seconds:.0f} s, "
        f"{s.sent} sent, {s.ok} answered 2xx; achieved {achieved:.1f}/s within the "
        f"{s.seconds:.0f} s ({s.ok / span:.1f}/s to the last answer at {span:.0f} s); "
        f"errors {s.errors} ({errors_text(s.statuses)}); latency from the due time "
        f"p50 {ms(p50)} ms, p99 {ms(p99)} ms; at most {s.max_inflight} in flight",
        f"  service RSS: {rss0 / mb:.0f} MB after start-up, {rss[0] / mb:.0f} MB at the start of "
        f"the load, {rss[-1] / mb:.0f} MB at the end, max {max(rss) / mb:.0f} MB "
        f"({(rss[-1] - rss[0]) / mb:+.0f} MB); {s.loads[0]} at the start, {s.loads[-1]} at the end",
        *(f"  {w}" for w in s.windows),
        f"goal: {rate:.0f}/s for {s.seconds:.0f} s with no errors: {verdict(sustained)}",
    ]
    if not sustained:
        lines.append(
            f"  the service does not sustain {rate:.0f}/s here: it answered {achieved:.1f}/s, "
            f"the rest queued (latency from the due time p50 {ms(p50)} ms) or was not sent"
        )
    return lines


# --- the run ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME)
    parser.add_argument("--customers", type=int, default=3000, help="book size if one is built")
    parser.add_argument("--months", type=int, default=48)
    parser.add_argument("--as-of", default=None, help="default: the latest scored as-of date")
    parser.add_argument("--pool", type=int, default=200, help="customers the requests cycle")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sequential", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--concurrent", type=int, default=1000)
    parser.add_argument("--sustain-seconds", type=float, default=300)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--max-inflight", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    if args.quick:
        args.sequential, args.warmup, args.concurrent = 40, 10, 100
        args.sustain_seconds, args.pool = min(args.sustain_seconds, 10), min(args.pool, 40)

    sys.stdout.reconfigure(line_buffering=True)  # progress shows when written to a file
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the finally below stops the servers
    home = args.home.resolve()
    env = environment(home)
    print(f"creditrisk serve vs mlflow models serve, home {home}; {load()}, {os.cpu_count()} cores")
    version = ensure_world(home, env, args.customers, args.months)
    key_name = f"bench-{os.getpid()}-{int(time.time())}"
    token = cli(["keys", "create", key_name, "--role", "scorer"], env).strip().splitlines()[-1]
    headers = {"X-API-Key": token, "Content-Type": "application/json"}
    mlflow_headers = {"Content-Type": "application/json"}
    servers: list[Server] = []
    try:
        ours_port, mlflow_port = free_port(), free_port()
        logs = home / "logs"
        logs.mkdir(exist_ok=True)
        ours = start(
            "creditrisk serve",
            [str(BIN / "creditrisk"), "serve", "--host", "127.0.0.1", "--port", str(ours_port)],
            env,
            logs / "serve.log",
            ours_port,
        )
        servers.append(ours)
        theirs = start(
            "mlflow models serve",
            [
                str(BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                f"models:/{MODEL}@champion",
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                str(mlflow_port),
                "--workers",
                "1",
            ],
            env,
            logs / "mlflow-serve.log",
            mlflow_port,
        )
        servers.append(theirs)
        floor_port = free_port()
        floor = start(
            "bare FastAPI",
            [str(BIN / "python"), "-m", "uvicorn", "--app-dir", str(ROOT / "benchmarks"),
             "floor_app:app", "--host", "127.0.0.1", "--port", str(floor_port),
             "--log-level", "warning", "--no-access-log"],
            env,
            logs / "floor.log",
            floor_port,
        )  # fmt: skip
        servers.append(floor)
        print(f"champion version {version}; building {args.pool} request bodies meanwhile")
        started = time.perf_counter()
        pool = bodies(home, version, args.pool, args.seed, args.as_of)
        print(
            f"  {len(pool.customers)} customers at {pool.as_of.date()}, {len(pool.columns)} "
            f"model inputs, in {time.perf_counter() - started:.0f} s"
        )
        up_ours = wait_until_up(ours, "/ready", lambda r: r.json().get("status") == "ready")
        up_theirs = wait_until_up(theirs, "/ping", lambda r: r.status_code == 200)
        print(
            f"  up: creditrisk serve {up_ours:.0f} s, mlflow models serve {up_theirs:.0f} s "
            f"after start ({load()})"
        )
        rss0 = ours.rss()
        targets = {
            "a": (ours, f"{ours.base}/v1/score", pool.raw, headers),
            "b": (ours, f"{ours.base}/v1/score/features", pool.features, headers),
            "c": (theirs, f"{theirs.base}/invocations", pool.mlflow, mlflow_headers),
        }
        seq, conc, answers = {}, {}, {}
        for path, (server, url, items, hdrs) in targets.items():
            seq[path], answers[path] = sequential(
                server, url, items, hdrs, args.sequential, args.warmup
            )
            print(
                f"  sequential {path}: {seq[path].done} ok, errors "
                f"{errors_text(seq[path].errors)}, {seq[path].load}"
            )
        wait_until_up(floor, "/docs", lambda r: r.status_code == 200)
        bare, _ = sequential(
            floor, f"{floor.base}/echo", pool.raw, headers, args.sequential, args.warmup
        )
        for line in check_answers(answers, pool.customers):
            print("  " + line)
        for path, (server, url, items, hdrs) in targets.items():
            conc[path] = concurrent(server, url, items, hdrs, args.clients, args.concurrent)
            print(
                f"  {args.clients} clients {path}: {conc[path].done} ok, errors "
                f"{errors_text(conc[path].errors)}, {conc[path].load}"
            )
        print()
        print(
            f"{args.sequential} sequential requests after {args.warmup} warm-up, "
            f"{args.concurrent} at {args.clients} clients; pool of {len(pool.customers)} "
            f"customers at {pool.as_of.date()}"
        )
        print(table(seq, conc, args.clients))
        a, c = seq["a"], seq["c"]
        print(
            f"goal (a) sequential p50 <= {GOAL_P50_MS:g} ms: {verdict(a.p(50) <= GOAL_P50_MS)} "
            f"({ms(a.p(50))} ms); p99 <= {GOAL_P99_MS:g} ms: "
            f"{verdict(a.p(99) <= GOAL_P99_MS)} ({ms(a.p(99))} ms)"
        )
        print(
            f"floor: a bare FastAPI endpoint answering the (a) bodies, sequentially: p50 "
            f"{ms(bare.p(50))} ms, p99 {ms(bare.p(99))} ms, server CPU {bare.cpu_ms:.2f} ms/req; "
            f"(a) above it: p50 +{ms(a.p(50) - bare.p(50))} ms"
        )
        print(
            f"goal (a) faster than (c): sequential p50 {verdict(a.p(50) < c.p(50))} "
            f"({ms(a.p(50))} vs {ms(c.p(50))} ms); {args.clients} clients req/s "
            f"{verdict(conc['a'].rate > conc['c'].rate)} "
            f"({conc['a'].rate:.0f} vs {conc['c'].rate:.0f})"
        )
        print()
        print(f"sustained load on (a): {args.rate:g}/s for {args.sustain_seconds:g} s ({load()})")
        result = sustain(
            ours,
            targets["a"][1],
            pool.raw,
            headers,
            args.rate,
            args.sustain_seconds,
            args.max_inflight,
            args.timeout,
        )
        for line in sustained_lines(result, args.rate, rss0):
            print(line)
    finally:
        for server in servers:
            stop(server)
        with contextlib.suppress(SystemExit):
            cli(["keys", "revoke", key_name], env)


if __name__ == "__main__":
    main()
