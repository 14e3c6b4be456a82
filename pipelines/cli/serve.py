"""`creditrisk serve`: the scoring service and the web page for credit staff (FastAPI + uvicorn)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.render import console, spinner
from pipelines.errors import BadInput
from pipelines.settings import get_settings

SERVE_HELP = """Serve the scoring API (/v1, documented at /docs) and the web page (/) until stopped.

Loads the champion from the MLflow registry (or, when MLflow does not answer, the local copy of the
last one loaded), follows the alias (a check every --check-seconds, and POST /v1/admin/reload),
and reads the book for the context features need. Every /v1 call needs an API key
(`creditrisk keys create NAME --role ROLE`) and writes an audit row. Listens on 127.0.0.1 unless
--host says otherwise.
"""


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    book: Annotated[
        Path | None,
        typer.Option(help="The book the features read (default: CREDITRISK_HOME/book)."),
    ] = None,
    check_seconds: Annotated[
        float, typer.Option(min=1, help="How often to ask the registry for a new champion.")
    ] = 60.0,
    max_batch: Annotated[
        int, typer.Option(min=1, max=10_000, help="Most customers in one POST /v1/score/batch.")
    ] = 100,
    max_body_bytes: Annotated[
        int, typer.Option(min=1_000, help="Largest request body accepted (larger: 413).")
    ] = 5_000_000,
    insecure_cookie: Annotated[
        bool,
        typer.Option(help="Session cookie without the Secure flag (plain HTTP not on localhost)."),
    ] = False,
) -> None:
    import uvicorn

    from serve.app import ServeConfig, create_app
    from serve.build import build_service

    settings = get_settings()
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]listening on {host}[/yellow]: reachable from other machines")
    config = ServeConfig(
        results_url=settings.results_url,
        tracking_uri=settings.tracking_uri,
        model_name=settings.model_name,
        cache_dir=settings.home / "serve",
        max_batch=max_batch,
        max_body_bytes=max_body_bytes,
        check_seconds=check_seconds,
        cookie_secure=not insecure_cookie,
    )
    book_dir = book or settings.book_dir
    with spinner(f"reading the book in {book_dir} and loading the champion"):
        service = build_service(
            config, book_dir, settings.rejects_dir / "serve.csv", settings.horizon_months
        )
    app = create_app(config, service)
    console.print(
        f"creditrisk service on http://{host}:{port}  (page /, API /v1, docs /docs); Ctrl-C stops"
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("creditrisk.serve").setLevel(logging.INFO)  # ids, routes, statuses only
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    except OSError as exc:
        raise BadInput(str(exc), field="--port", hint="choose another --port") from exc


def register(app: typer.Typer) -> None:
    """Add serve to the creditrisk CLI."""
    app.command("serve", help=SERVE_HELP)(serve)
