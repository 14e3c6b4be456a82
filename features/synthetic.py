"""Synthetic customer book: the embedded default data for creditrisk.

Corporate, SME and retail customers whose statements, repayments, events and defaults all follow
one latent credit quality per customer and month: a persistent factor, a slowly drifting
component, an industry factor and a macro cycle with a shock. Observables reveal that quality
noisily, so a good point-in-time model separates defaulters well but not perfectly.

Defaults do not follow that quality alone, as in real books: a company whose liquidity runs out
or whose leverage breaches its covenant jumps in risk; leverage weighs more in cyclical
industries and more again in an industry downturn; utilisation weighs more near the limit, most
for retail customers; each segment reacts to its quality with its own slope. These hidden
drivers show in the statements (current ratio, cash, leverage) and repayments (utilisation).

`generate_book_with_truth` also returns each performing customer's true probability of default
in the 12 months after each quarterly as-of date, from its latent state at that date (a table
beside the book, never a feature). It is a Monte Carlo average over `BookParams.truth_paths`
antithetic paths of the latent factors, each path exact over the delinquency chain (the
probability of reaching 90+ days or bankruptcy is propagated, not sampled). Vectorised over
customers (loops run over months only) and reproducible from a seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.schemas import EVENT_TYPES, SEGMENTS, STATEMENT_AMOUNTS

INDUSTRIES = (
    "agriculture",
    "manufacturing",
    "construction",
    "wholesale",
    "retail_trade",
    "transport",
    "hospitality",
    "information",
    "real_estate",
    "professional_services",
    "healthcare",
    "energy",
)
REGIONS = ("north", "south", "east", "west", "central", "coastal", "mountain", "capital")
DEFAULT_REASONS = ("90dpd", "bankruptcy")
TRUE_PD_COLUMNS = ("customer_id", "as_of", "pd_12m")

CORPORATE, SME, RETAIL = 0, 1, 2
BURN_IN_MONTHS = 6
HORIZON_MONTHS = 12  # of the true PD: defaults dated in (as_of, as_of + 12 months], as the labels
BACK_TO_30 = 0.3  # a 60+ customer that neither cures nor rolls falls back to 30+ this often
TRUTH_BANK = 1024  # latent paths drawn per as-of date; each customer takes its own few of them
TRUTH_CHUNK = 50_000  # customers per block of the truth's path arrays (memory)
_F32 = np.float32
# Per industry: employment weight, macro sensitivity, median EBIT margin, asset intensity,
# inventory share of non-cash current assets.
_INDUSTRY_PROFILE = np.array(
    [
        [0.05, 1.0, 0.07, 1.6, 0.45],
        [0.14, 1.2, 0.09, 1.1, 0.45],
        [0.09, 1.5, 0.06, 0.9, 0.30],
        [0.09, 1.0, 0.04, 0.6, 0.55],
        [0.12, 1.1, 0.05, 0.7, 0.60],
        [0.07, 1.2, 0.07, 1.3, 0.10],
        [0.07, 1.6, 0.08, 1.2, 0.10],
        [0.08, 0.8, 0.14, 0.9, 0.05],
        [0.06, 1.4, 0.20, 3.0, 0.05],
        [0.10, 0.7, 0.11, 0.6, 0.05],
        [0.08, 0.5, 0.10, 1.0, 0.15],
        [0.05, 1.1, 0.12, 2.2, 0.20],
    ],
    dtype=_F32,
)
_REGION_WEIGHTS = np.array([0.14, 0.13, 0.13, 0.12, 0.12, 0.12, 0.08, 0.16])


class BookSizeError(ValueError):
    """A size or seed the generator cannot use; ``argument`` names it, ``minimum`` is the least."""

    def __init__(self, argument: str, value: int, minimum: int):
        self.argument, self.value, self.minimum = argument, value, minimum
        super().__init__(f"{argument} must be at least {minimum}, got {value}")


# The least of each size: one customer and one month make a valid (if tiny) book.
MINIMUM_SIZES = {"n_customers": 1, "months": 1, "seed": 0}


def _check_size(**sizes: int) -> None:
    for argument, value in sizes.items():
        if value < MINIMUM_SIZES[argument]:
            raise BookSizeError(argument, value, MINIMUM_SIZES[argument])


@dataclass(frozen=True)
class BookParams:
    """Tunable knobs of the generator; defaults give a few % annual default and AUC near 0.8.

    Risk in the delinquency hazards is in units of the latent quality: the segment's slope times
    the quality, plus the jumps and the leverage term below (companies) and the near-limit jump.
    """

    segment_shares: tuple[float, float, float] = (0.10, 0.30, 0.60)
    onboarded_in_window: float = 0.25
    pre_months: int = 24
    statement_lookback_months: int = 15
    statement_missing: float = 0.04
    persistent_sd: float = 0.7
    drift_rho: float = 0.94
    drift_sd: float = 0.6
    macro_amplitude: float = 0.15
    macro_period_months: float = 60.0
    shock_size: float = 0.25
    shock_decay_months: float = 6.0
    industry_level_sd: float = 0.20
    industry_factor_sd: float = 0.20
    region_level_sd: float = 0.08
    miss_intercept: tuple[float, float, float] = (-7.3, -6.5, -5.0)
    miss_slope: float = 1.1
    cure_intercept: tuple[float, float] = (0.4, -0.6)
    cure_slope: float = 0.7
    roll_intercept: tuple[float, float] = (-0.9, 0.0)
    roll_slope: float = 0.6
    bankruptcy_intercept: tuple[float, float] = (-11.0, -10.4)
    bankruptcy_slope: float = 1.2
    late_intercept: float = -3.2
    late_slope: float = 0.8
    utilisation_slope: float = 0.35
    utilisation_noise: float = 0.45
    payment_slope: float = 0.45
    ratio_slope: float = 0.8
    event_slope: float = 0.8
    # segment-specific behaviour: each segment's risk per unit of latent quality
    segment_slope: tuple[float, float, float] = (1.25, 1.0, 0.8)
    # liquidity that runs out: log current ratio = level - slope x quality + AR(1) noise;
    # below the floor cash runs out and risk jumps
    liquidity_mean: float = 0.3
    liquidity_sd: float = 0.35
    liquidity_slope: float = 0.12
    liquidity_noise: float = 0.12
    liquidity_floor: float = -0.2
    liquidity_width: float = 0.05
    liquidity_jump: float = 1.0
    # leverage = sigmoid(level + slope x quality + AR(1) noise); above the covenant risk jumps;
    # it weighs in cyclical industries (macro sensitivity from cyclical_from, fully from
    # cyclical_full), more again in a downturn of the industry
    leverage_mean: float = 0.2
    leverage_sd: float = 0.7
    leverage_slope: float = 0.28
    leverage_noise: float = 0.15
    covenant_leverage: float = 0.8
    covenant_width: float = 0.02
    covenant_jump: float = 0.8
    leverage_risk: float = 3.5
    leverage_mid: float = 0.55
    cyclical_from: float = 0.8
    cyclical_full: float = 1.4
    downturn_scale: float = 0.25
    downturn_gain: float = 0.6
    # utilisation near the limit: a jump per segment (corporate, SME, retail), twice as large
    # for a customer who pays only what is due as for an average payer, none for one who clears
    near_limit: float = 0.75
    limit_width: float = 0.05
    limit_jump: tuple[float, float, float] = (0.3, 1.0, 1.6)
    # the true PD: latent paths per customer (antithetic pairs) and months between as-of dates
    truth_paths: int = 16
    truth_every_months: int = 3


@dataclass(frozen=True)
class SyntheticBook:
    """The canonical tables and, beside them, the generator's truth (never a feature).

    ``true_pd``: customer_id, as_of (the quarterly month starts after the book's start, to the
    month after its last), pd_12m (the probability of a default dated in the 12 months after
    as_of) for every customer onboarded before as_of and not in default at it.
    """

    tables: dict[str, pd.DataFrame]
    true_pd: pd.DataFrame


def generate_book(
    n_customers: int = 20_000,
    months: int = 48,
    start: str = "2021-01-01",
    seed: int = 42,
    *,
    params: BookParams | None = None,
    on_month: Callable[[int, int], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Generate the canonical tables: customers, financial_statements, repayments, events, defaults.

    The window holds `months` calendar months from `start`; `on_month(done, total)` is called after
    each simulated month (for progress bars). Same arguments give identical frames.
    """
    return _generate(n_customers, months, start, seed, params, on_month, truth=False).tables


def generate_book_with_truth(
    n_customers: int = 20_000,
    months: int = 48,
    start: str = "2021-01-01",
    seed: int = 42,
    *,
    params: BookParams | None = None,
    on_month: Callable[[int, int], None] | None = None,
) -> SyntheticBook:
    """`generate_book`'s tables (identical for the same arguments) and the true 12-month PDs."""
    return _generate(n_customers, months, start, seed, params, on_month, truth=True)


def _generate(n_customers, months, start, seed, params, on_month, truth: bool) -> SyntheticBook:
    _check_size(n_customers=n_customers, months=months, seed=seed)
    p = params or BookParams()
    if p.pre_months < p.statement_lookback_months + 9:
        raise ValueError("pre_months must exceed statement_lookback_months by 9 (TTM history)")
    if truth and (p.truth_paths < 2 or p.truth_paths % 2 or p.truth_every_months < 1):
        raise ValueError(
            "truth_paths must be even and at least 2, truth_every_months at least 1: "
            f"{p.truth_paths}, {p.truth_every_months}"
        )
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    cal = _calendar(start, months, p.pre_months)
    cust = _draw_customers(rngs[0], n_customers, cal, p)
    drivers = _draw_drivers(rngs[1], cal, p)
    sim = _simulate(rngs[2], cust, drivers, cal, p, on_month, rngs[5] if truth else None)
    statements = _statements(rngs[3], cust, sim, cal, p)
    events = _events_frame(rngs[4], cust, sim, cal)
    tables = {
        "customers": _customers_frame(cust),
        "financial_statements": statements,
        "repayments": _repayments_frame(cust, sim, cal),
        "events": events,
        "defaults": _defaults_frame(cust, sim, cal),
    }
    return SyntheticBook(tables, _true_pd_frame(cust, sim, cal))


def generate_book_chunk(
    first_customer: int,
    n_customers: int,
    total_customers: int,
    months: int = 48,
    start: str = "2021-01-01",
    seed: int = 42,
    *,
    params: BookParams | None = None,
    on_month: Callable[[int, int], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Customers ``first_customer + 1`` .. ``first_customer + n_customers`` of a book of
    ``total_customers``, generated alone so a large book is written chunk by chunk.

    Every chunk shares the book's economy (the macro cycle and industry factors drawn from
    ``seed``, as `generate_book` draws them); its customers come from a seed of their own
    (``seed`` and ``first_customer``). The ids are the whole book's (unique across chunks, as
    wide as ``total_customers`` needs). The stacked chunks are a valid book, not the rows of
    `generate_book(total_customers)`, whose customers share one random stream.
    """
    _check_size(n_customers=n_customers, months=months, seed=seed)
    if first_customer < 0 or first_customer + n_customers > total_customers:
        raise ValueError(
            f"customers {first_customer + 1}..{first_customer + n_customers} are not within "
            f"a book of {total_customers}"
        )
    p = params or BookParams()
    if p.pre_months < p.statement_lookback_months + 9:
        raise ValueError("pre_months must exceed statement_lookback_months by 9 (TTM history)")
    economy = np.random.default_rng(np.random.SeedSequence(seed).spawn(6)[1])
    own = np.random.SeedSequence([seed, first_customer]).spawn(4)
    draw, move, state, happen = (np.random.default_rng(s) for s in own)
    cal = _calendar(start, months, p.pre_months)
    cust = _draw_customers(draw, n_customers, cal, p)
    cust["ids"] = _customer_ids_from(first_customer, n_customers, total_customers)
    sim = _simulate(move, cust, _draw_drivers(economy, cal, p), cal, p, on_month, None)
    return {
        "customers": _customers_frame(cust),
        "financial_statements": _statements(state, cust, sim, cal, p),
        "repayments": _repayments_frame(cust, sim, cal),
        "events": _events_frame(happen, cust, sim, cal),
        "defaults": _defaults_frame(cust, sim, cal),
    }


def summarise_book(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Customers by segment, rows per table and the annualised default rate per segment.

    The default rate is defaults divided by performing customer-years (repayment months before
    default, over 12), so customers onboarded late or written off count only while exposed.
    """
    customers = tables["customers"]
    repayments = tables["repayments"]
    defaults = tables["defaults"]
    rows = pd.DataFrame({"table": list(tables), "rows": [len(frame) for frame in tables.values()]})
    first_default = defaults.groupby("customer_id", observed=True)["defaulted_on"].min()
    per_customer = repayments.groupby("customer_id", observed=True)["month"].count()
    # reindex, not map: mapping through an empty Series of dates fails (a book without defaults)
    in_default = pd.Series(
        first_default.reindex(repayments["customer_id"]).to_numpy(), index=repayments.index
    )
    after = (
        (repayments["month"] >= in_default - pd.DateOffset(months=1))
        .groupby(repayments["customer_id"], observed=True)
        .sum()
    )
    performing_months = (per_customer - after.reindex(per_customer.index, fill_value=0)).rename(
        "performing_months"
    )
    seg = customers.set_index("customer_id")["segment"].astype(str)
    frame = pd.DataFrame(
        {
            "segment": seg,
            "performing_months": performing_months.reindex(seg.index, fill_value=0),
            "defaulted": seg.index.isin(first_default.index),
        }
    )
    by_segment = frame.groupby("segment").agg(
        customers=("defaulted", "size"),
        defaults=("defaulted", "sum"),
        customer_years=("performing_months", lambda m: m.sum() / 12),
    )
    by_segment.loc["all"] = by_segment.sum()
    by_segment["annual_default_rate"] = by_segment["defaults"] / by_segment["customer_years"]
    return {"rows": rows, "segments": by_segment.reset_index()}


def _sigmoid(v: np.ndarray) -> np.ndarray:
    """The logistic function by tanh (fast in float32, no overflow)."""
    return (0.5 + 0.5 * np.tanh(0.5 * v)).astype(_F32, copy=False)


@dataclass
class _Calendar:
    start: np.datetime64  # first window month, datetime64[M]
    months: int
    pre: int
    month_starts: np.ndarray  # datetime64[D], pre + months entries

    @property
    def window_end(self) -> np.datetime64:
        return (self.start + self.months).astype("datetime64[D]")


def _calendar(start: str, months: int, pre: int) -> _Calendar:
    first = np.datetime64(pd.Timestamp(start).to_period("M").start_time.date(), "M")
    starts = (first + np.arange(-pre, months)).astype("datetime64[D]")
    return _Calendar(first, months, pre, starts)


def _draw_customers(rng: np.random.Generator, n: int, cal: _Calendar, p: BookParams) -> dict:
    """Static customer attributes plus hidden per-customer parameters of the observables."""
    segment = rng.choice(3, size=n, p=np.asarray(p.segment_shares)).astype(np.int8)
    weights = _INDUSTRY_PROFILE[:, 0] / _INDUSTRY_PROFILE[:, 0].sum()
    industry = rng.choice(len(INDUSTRIES), size=n, p=weights).astype(np.int8)
    region = rng.choice(len(REGIONS), size=n, p=_REGION_WEIGHTS).astype(np.int8)
    start_d = cal.start.astype("datetime64[D]")
    in_window = rng.random(n) < p.onboarded_in_window
    window_days = max(int((cal.window_end - start_d).astype(int)) - 90, 1)
    offset = np.where(
        in_window,
        rng.integers(0, window_days, size=n),
        -rng.integers(1, 12 * 365, size=n),
    )
    onboarded = start_d + offset
    onb_month = onboarded.astype("datetime64[M]")
    first_month = onb_month + (onboarded > onb_month.astype("datetime64[D]"))
    first = np.maximum((first_month - cal.start).astype(np.int32), 0)
    company = segment != RETAIL
    age_years = np.where(
        segment == CORPORATE,
        3 + 45 * rng.beta(1.5, 3.0, size=n),
        np.minimum(0.5 + rng.exponential(8.0, size=n), 50),
    )
    founded = onboarded - (age_years * 365.25).astype(np.int64)
    size_median = np.where(segment == CORPORATE, 250e6, np.where(segment == SME, 6e6, 0.0))
    revenue0 = size_median * np.exp(rng.normal(0, 0.8, size=n))
    limit = np.where(
        company,
        np.round(revenue0 * np.exp(rng.normal(np.log(0.08), 0.4, size=n)), -3),
        np.round(5_000 * np.exp(rng.normal(0, 0.6, size=n)), -2),
    )
    due_rate = np.where(segment == RETAIL, 0.05, np.where(segment == SME, 0.04, 0.03))
    return {
        "n": n,
        "segment": segment,
        "industry": industry,
        "region": region,
        "company": company,
        "onboarded": onboarded,
        "founded": np.where(company, founded, np.datetime64("NaT")).astype("datetime64[D]"),
        "first": first,
        "persistent": rng.normal(0, p.persistent_sd, size=n).astype(_F32),
        "revenue0": revenue0.astype(_F32),
        "limit0": np.maximum(limit, 500).astype(_F32),
        "due_rate": (due_rate * np.exp(rng.normal(0, 0.15, size=n))).astype(_F32),
        "utilisation0": rng.normal(-0.6, 1.0, size=n).astype(_F32),
        "payment0": rng.normal(-0.5, 1.2, size=n).astype(_F32),
        "ids": _customer_ids(n),
        "liquidity0": np.where(
            company, rng.normal(p.liquidity_mean, p.liquidity_sd, size=n), 0
        ).astype(_F32),
        "leverage0": np.where(
            company, rng.normal(p.leverage_mean, p.leverage_sd, size=n), 0
        ).astype(_F32),
    }


def _customer_ids(n: int) -> np.ndarray:
    width = max(7, len(str(n)))
    return np.strings.add("C", np.strings.zfill(np.arange(1, n + 1).astype(str), width))


def _customer_ids_from(first: int, n: int, total: int) -> np.ndarray:
    """Ids ``first + 1`` .. ``first + n`` of a book of ``total`` (as `_customer_ids(total)`)."""
    width = max(7, len(str(total)))
    numbers = np.arange(first + 1, first + n + 1).astype(str)
    return np.strings.add("C", np.strings.zfill(numbers, width))


def _draw_drivers(rng: np.random.Generator, cal: _Calendar, p: BookParams) -> dict:
    """Macro cycle with one shock (to the end of the true PD's horizon after the window), and
    per-industry and per-region static levels."""
    total = cal.pre + cal.months + HORIZON_MONTHS
    t = np.arange(total, dtype=float)
    phase = rng.uniform(0, 2 * np.pi)
    macro = p.macro_amplitude * np.sin(2 * np.pi * t / p.macro_period_months + phase)
    shock_at = cal.pre + int(rng.integers(cal.months // 5, max(cal.months * 7 // 10, 1) + 1))
    since = t - shock_at
    macro += np.where(
        since >= 0, p.shock_size * np.exp(-np.maximum(since, 0) / p.shock_decay_months), 0
    )
    k = len(INDUSTRIES)
    return {
        "macro": macro.astype(_F32),
        "industry_level": rng.normal(0, p.industry_level_sd, size=k).astype(_F32),
        "industry_beta": (_INDUSTRY_PROFILE[:, 1] * rng.uniform(0.8, 1.2, size=k)).astype(_F32),
        "region_level": rng.normal(0, p.region_level_sd, size=len(REGIONS)).astype(_F32),
    }


@dataclass
class _Static:
    """Per-customer constants of the risk model, for the book or for a subset of it."""

    base: np.ndarray
    util0: np.ndarray
    payment0: np.ndarray
    liquidity0: np.ndarray
    leverage0: np.ndarray
    company: np.ndarray
    industry: np.ndarray
    cyclical: np.ndarray
    segment_slope: np.ndarray
    limit_jump: np.ndarray
    miss_int: np.ndarray
    bk_int: np.ndarray

    @classmethod
    def of(cls, cust: dict, drivers: dict, p: BookParams) -> _Static:
        seg, industry = cust["segment"], cust["industry"]
        base = (
            cust["persistent"]
            + drivers["industry_level"][industry]
            + drivers["region_level"][cust["region"]]
        )
        return cls(
            base=base,
            util0=cust["utilisation0"],
            payment0=cust["payment0"],
            liquidity0=cust["liquidity0"],
            leverage0=cust["leverage0"],
            company=cust["company"].astype(_F32),
            industry=industry,
            cyclical=np.clip(
                (drivers["industry_beta"][industry] - p.cyclical_from)
                / (p.cyclical_full - p.cyclical_from),
                0,
                1,
            ).astype(_F32),
            segment_slope=np.asarray(p.segment_slope, dtype=_F32)[seg],
            limit_jump=np.asarray(p.limit_jump, dtype=_F32)[seg],
            miss_int=np.asarray(p.miss_intercept, dtype=_F32)[seg],
            bk_int=np.asarray((*p.bankruptcy_intercept, -np.inf), dtype=_F32)[seg],
        )

    def take(self, idx: np.ndarray) -> _Static:
        return _Static(*(getattr(self, f.name)[idx] for f in fields(self)))


# AR(1) persistence per month of the latent noises (the drift's is a parameter).
_RHO = {"util": 0.8, "liquidity": 0.9, "leverage": 0.95, "industry": 0.95}
_PER_CUSTOMER = ("drift", "util", "liquidity", "leverage")


@dataclass
class _Latent:
    """The hidden state carried from month to month: per customer (the drift of quality and the
    noises of utilisation, liquidity and leverage) and per industry (the industry factor)."""

    drift: np.ndarray
    util: np.ndarray
    liquidity: np.ndarray
    leverage: np.ndarray
    industry: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int, p: BookParams) -> _Latent:
        sds = _stationary_sds(p)
        per_customer = {k: rng.normal(0, sds[k], size=n).astype(_F32) for k in _PER_CUSTOMER}
        industry = rng.normal(0, sds["industry"], size=len(INDUSTRIES)).astype(_F32)
        return cls(**per_customer, industry=industry)

    def advance(self, rng: np.random.Generator, p: BookParams) -> _Latent:
        """One month on: each component's AR(1) step with fresh normal innovations."""
        rho, innov = _rhos(p), _innovation_sds(p)
        out = {}
        for name in (*_PER_CUSTOMER, "industry"):
            value = getattr(self, name)
            z = rng.standard_normal(value.shape, dtype=_F32)
            out[name] = (rho[name] * value + innov[name] * z).astype(_F32)
        return _Latent(**out)


def _stationary_sds(p: BookParams) -> dict[str, float]:
    return {
        "drift": p.drift_sd,
        "util": p.utilisation_noise,
        "liquidity": p.liquidity_noise,
        "leverage": p.leverage_noise,
        "industry": p.industry_factor_sd,
    }


def _rhos(p: BookParams) -> dict[str, float]:
    return {"drift": p.drift_rho, **_RHO}


def _innovation_sds(p: BookParams) -> dict[str, float]:
    rho = _rhos(p)
    return {k: float(sd * np.sqrt(1 - rho[k] ** 2)) for k, sd in _stationary_sds(p).items()}


class _Risk(NamedTuple):
    """One month's latent quality, the hidden drivers it moves, and the risk the hazards read."""

    x: np.ndarray
    utilisation: np.ndarray
    liquidity: np.ndarray
    leverage: np.ndarray
    hazard_x: np.ndarray


def _risk(s: _Static, lat: _Latent, shared: np.ndarray, p: BookParams) -> _Risk:
    """Quality x from its components (``shared``: the customer's industry and macro factor), the
    drivers it moves, and the risk: segment slope x quality, plus for companies the liquidity and
    covenant jumps and leverage weighted by cyclicality and downturn, plus the near-limit jump."""
    x = s.base + lat.drift + shared
    util = _sigmoid(s.util0 + p.utilisation_slope * x + lat.util)
    liquidity = s.liquidity0 - p.liquidity_slope * x + lat.liquidity
    leverage = _sigmoid(s.leverage0 + p.leverage_slope * x + lat.leverage)
    downturn = np.maximum(shared, 0) / p.downturn_scale
    company = (
        p.liquidity_jump * _sigmoid((p.liquidity_floor - liquidity) / p.liquidity_width)
        + p.covenant_jump * _sigmoid((leverage - p.covenant_leverage) / p.covenant_width)
        + p.leverage_risk
        * (leverage - p.leverage_mid)
        * s.cyclical
        * (1 + p.downturn_gain * downturn)
    )
    revolver = 2 * _sigmoid(p.payment_slope * x - s.payment0)
    near_limit = _sigmoid((util - p.near_limit) / p.limit_width) * revolver
    hazard_x = s.segment_slope * x + s.company * company + s.limit_jump * near_limit
    return _Risk(x, util, liquidity, leverage, hazard_x.astype(_F32))


class _Hazards(NamedTuple):
    """Monthly transition probabilities of the delinquency chain."""

    miss: np.ndarray
    cure1: np.ndarray
    roll1: np.ndarray
    cure2: np.ndarray
    roll2: np.ndarray
    bankrupt: np.ndarray


def _hazards(h: np.ndarray, s: _Static, p: BookParams) -> _Hazards:
    """Odds that worsen with the risk ``h``: missing a payment, failing to cure, rolling on, and
    (companies) going bankrupt from any bucket."""
    return _Hazards(
        _sigmoid(s.miss_int + p.miss_slope * h),
        _sigmoid(p.cure_intercept[0] - p.cure_slope * h),
        _sigmoid(p.roll_intercept[0] + p.roll_slope * h),
        _sigmoid(p.cure_intercept[1] - p.cure_slope * h),
        _sigmoid(p.roll_intercept[1] + p.roll_slope * h),
        _sigmoid(s.bk_int + p.bankruptcy_slope * h),
    )


def _simulate(
    rng: np.random.Generator,
    cust: dict,
    drivers: dict,
    cal: _Calendar,
    p: BookParams,
    on_month: Callable[[int, int], None] | None,
    truth_rng: np.random.Generator | None = None,
) -> dict:
    """Month by month: latent quality, delinquency states, balances, payments and events; with
    ``truth_rng``, the true 12-month PD at each quarterly as-of date (its own random stream, so
    the book is the same with or without it)."""
    n, months, total = cust["n"], cal.months, cal.pre + cal.months
    seg, company, first = cust["segment"], cust["company"], cust["first"]
    comp_idx = np.flatnonzero(company)
    static = _Static.of(cust, drivers, p)
    lat = _Latent.draw(rng, n, p)

    state = np.zeros(n, dtype=np.int8)
    episode_days = np.zeros(n, dtype=np.int16)
    dpd_prev = np.zeros(n, dtype=np.int16)
    arrears = np.zeros(n, dtype=_F32)
    balance_prev = np.zeros(n, dtype=_F32)
    limit = cust["limit0"].copy()
    default_t = np.full(n, -1, dtype=np.int32)
    default_reason = np.zeros(n, dtype=np.int8)
    end = np.full(n, months, dtype=np.int32)

    shape = (n, months)
    out = {
        "credit_limit": np.zeros(shape, _F32),
        "balance": np.zeros(shape, _F32),
        "amount_due": np.zeros(shape, _F32),
        "amount_paid": np.zeros(shape, _F32),
        "days_past_due": np.zeros(shape, np.int16),
    }
    quarters: dict[str, list] = {"x": [], "liquidity": [], "leverage": [], "t": []}
    events, truth = [], []
    truth_at = range(p.truth_every_months, months + 1, p.truth_every_months) if truth_rng else ()
    cal_month = (cal.month_starts.astype("datetime64[M]").astype(int) % 12) + 1

    def record_truth(tw: int) -> None:
        as_of = (cal.start + tw).astype("datetime64[D]")
        who = np.flatnonzero((cust["onboarded"] < as_of) & (state < 3))
        pd_12m = _true_pd(truth_rng, static, lat, state, who, drivers, cal.pre + tw, p)
        truth.append((tw, who, pd_12m))

    for t in range(total):
        tw = t - cal.pre
        if tw in truth_at:
            record_truth(tw)
        lat = lat.advance(rng, p)
        shared = (drivers["industry_beta"] * drivers["macro"][t] + lat.industry).astype(_F32)
        risk = _risk(static, lat, shared[static.industry], p)
        x = risk.x
        if cal_month[t] % 3 == 0:
            quarters["x"].append(x[comp_idx])
            quarters["liquidity"].append(risk.liquidity[comp_idx])
            quarters["leverage"].append(risk.leverage[comp_idx])
            quarters["t"].append(tw)
        if t < cal.pre - BURN_IN_MONTHS:
            if on_month:
                on_month(t + 1, total)
            continue
        active = (first <= tw) & (tw < end)
        new_cust = first == tw
        perf = active & (state < 3)
        if tw < 0:
            burn_in = first <= 0
            active, new_cust, perf = burn_in, np.zeros(n, bool), burn_in
        u = rng.random((6, n), dtype=_F32)

        new_state, bankrupt = _next_states(u, state, perf, _hazards(risk.hazard_x, static, p))
        entering = perf & (state == 0) & (new_state >= 1)
        episode_days[entering] = (u[4][entering] * 30).astype(np.int16)
        if tw < 0:  # burn-in: delinquency settles; would-be defaulters start afresh
            new_state[new_state == 3] = 0
        defaulted_now = perf & (new_state == 3)
        default_t[defaulted_now] = tw
        default_reason[bankrupt & defaulted_now] = 1
        write_off = rng.integers(3, 13, size=n, dtype=np.int32)  # drawn for all: same stream
        end[defaulted_now] = np.minimum(tw + write_off[defaulted_now], months)
        late = (new_state == 0) & (u[4] < _sigmoid(p.late_intercept + p.late_slope * x))
        dpd = np.where(new_state >= 1, 30 * new_state.astype(np.int16) + episode_days, 0)
        dpd = np.where(late, 1 + (u[5] * 29).astype(np.int16), dpd)
        dpd = np.where(active & (state == 3), dpd_prev + 30, dpd).astype(np.int16)

        months_on_book = tw - first
        review = perf & (months_on_book > 0) & (months_on_book % 12 == 0)
        factor = np.exp(0.03 - 0.06 * x + 0.05 * rng.standard_normal(n, dtype=_F32))
        factor = np.where(new_state >= 1, 0.8, factor)
        limit = np.where(review, np.maximum(np.round(limit * factor, -2), 500), limit).astype(_F32)

        balance = risk.utilisation * limit
        balance = np.where(
            new_cust,
            balance,
            np.where(new_state >= 1, np.maximum(balance, balance_prev * 1.01), balance),
        )
        balance = np.where(active & (state == 3), balance_prev * 1.015, balance).astype(_F32)
        regular = cust["due_rate"] * balance
        due = regular + arrears
        pay_ratio = 1 + 4 * _sigmoid(
            cust["payment0"] - p.payment_slope * x + 0.6 * rng.standard_normal(n, dtype=_F32)
        )
        paid = np.where(
            new_state == 0,
            np.minimum(due * pay_ratio, np.maximum(balance, due)),
            np.where(
                new_state > state,
                regular * u[2] * 0.5,
                np.where(new_state == state, regular, regular + 0.5 * arrears),
            ),
        )
        paid = np.where(new_state == 3, np.where(u[5] < 0.15, regular * u[2], 0), paid)
        arrears = np.where(new_state >= 1, due - paid, 0).astype(_F32)

        if tw >= 0:
            out["credit_limit"][:, tw] = limit
            out["balance"][:, tw] = np.round(balance, 0)
            out["amount_due"][:, tw] = np.round(due, 0)
            out["amount_paid"][:, tw] = np.round(paid, 0)
            out["days_past_due"][:, tw] = dpd
            events.append(_draw_events(rng, x, seg, active, new_state, tw, p))
        new_state[~active] = state[~active]
        state, dpd_prev, balance_prev = new_state, dpd, balance
        if on_month:
            on_month(t + 1, total)
    if months in truth_at:
        record_truth(months)

    def stacked(name: str) -> np.ndarray:
        rows = quarters[name]
        return np.stack(rows, axis=1) if rows else np.zeros((len(comp_idx), 0), dtype=_F32)

    return {
        **out,
        "end": end,
        "default_t": default_t,
        "default_reason": default_reason,
        "comp_idx": comp_idx,
        "quarter_x": stacked("x"),
        "quarter_liquidity": stacked("liquidity"),
        "quarter_leverage": stacked("leverage"),
        "quarter_t": np.asarray(quarters["t"], dtype=np.int32),
        "events": events,
        "truth": truth,
    }


def _next_states(u, state, perf, h: _Hazards):
    """Delinquency buckets (0 current, 1 = 30+, 2 = 60+, 3 = 90+ default) after one month.

    Performing customers miss a payment, cure, stay or roll one bucket further with the month's
    hazards; companies may also go bankrupt straight from any bucket.
    """
    new_state = state.copy()
    new_state[perf & (state == 0) & (u[0] < h.miss)] = 1
    for s, p_cure, p_roll in ((1, h.cure1, h.roll1), (2, h.cure2, h.roll2)):
        here = perf & (state == s)
        cure = here & (u[0] < p_cure)
        roll = here & ~cure & (u[1] < p_roll)
        new_state[cure] = 0
        new_state[roll] = s + 1
        if s == 2:
            new_state[here & ~cure & ~roll & (u[2] < BACK_TO_30)] = 1
    bankrupt = perf & (new_state < 3) & (u[3] < h.bankrupt)
    new_state[bankrupt] = 3
    return new_state, bankrupt


def _true_pd(
    rng: np.random.Generator,
    static: _Static,
    lat: _Latent,
    state: np.ndarray,
    who: np.ndarray,
    drivers: dict,
    t0: int,
    p: BookParams,
) -> np.ndarray:
    """Probability that each customer in ``who`` defaults in months t0 .. t0 + 11 given the
    latent state and delinquency bucket after month t0 - 1.

    Monte Carlo over the latent factors' future: each customer follows ``truth_paths`` paths
    (antithetic pairs of rows of a bank of innovation paths drawn for this date); along each
    path the delinquency chain is exact (bucket probabilities propagated month by month).
    """
    half = p.truth_paths // 2
    paths = _innovation_paths(rng, lat.industry, p)
    rows = (rng.integers(0, TRUTH_BANK, size=who.size)[None, :] + np.arange(half)[:, None]) % (
        TRUTH_BANK
    )
    out = np.empty(who.size, dtype=np.float64)
    for lo in range(0, who.size, TRUTH_CHUNK):
        part = slice(lo, lo + TRUTH_CHUNK)
        idx = who[part]
        out[part] = _default_probability(
            static.take(idx), lat, state[idx], idx, rows[:, part], paths, drivers, t0, p
        )
    return out


def _innovation_paths(rng: np.random.Generator, industry0: np.ndarray, p: BookParams) -> dict:
    """A bank of future paths, month by month (rows: months of the horizon): per customer
    component, the AR(1) sum of innovations from zero (add rho^k times the current value); per
    industry, the factor from its current value, flattened to path x industry. The antithetic
    paths negate the sums (``industry_anti`` for the industry factor)."""
    rho, innov = _rhos(p), _innovation_sds(p)
    shape = (HORIZON_MONTHS, TRUTH_BANK)
    banks = {}
    for name in _PER_CUSTOMER:
        z = rng.standard_normal(shape, dtype=_F32) * _F32(innov[name])
        banks[name] = _ar_sums(z, rho[name])
    z = rng.standard_normal((*shape, len(INDUSTRIES)), dtype=_F32) * _F32(innov["industry"])
    sums = _ar_sums(z, rho["industry"])
    decay = (rho["industry"] ** np.arange(1, HORIZON_MONTHS + 1, dtype=_F32))[:, None, None]
    banks["industry"] = (decay * industry0 + sums).reshape(HORIZON_MONTHS, -1)
    banks["industry_anti"] = (decay * industry0 - sums).reshape(HORIZON_MONTHS, -1)
    return banks


def _ar_sums(z: np.ndarray, rho: float) -> np.ndarray:
    """s_k = rho s_(k-1) + z_k along the first axis, from s_0 = z_0."""
    out = np.empty_like(z)
    out[0] = z[0]
    for k in range(1, z.shape[0]):
        out[k] = rho * out[k - 1] + z[k]
    return out


def _default_probability(
    s: _Static, lat: _Latent, state, idx, rows, paths: dict, drivers: dict, t0: int, p
) -> np.ndarray:
    """Mean over paths of the chance to reach default within the horizon (see `_true_pd`)."""
    rho = _rhos(p)
    start = {name: getattr(lat, name)[idx] for name in _PER_CUSTOMER}
    half, k = rows.shape[0], 2 * rows.shape[0]
    by_industry = rows * len(INDUSTRIES) + s.industry
    q = [np.broadcast_to((state == b).astype(_F32), (k, idx.size)) for b in range(3)]
    defaulted = np.zeros((k, idx.size), dtype=_F32)
    beta = drivers["industry_beta"][s.industry]
    for m in range(HORIZON_MONTHS):
        comps = {}
        for name in _PER_CUSTOMER:
            value = np.empty((k, idx.size), dtype=_F32)
            np.take(paths[name][m], rows, out=value[:half])
            np.negative(value[:half], out=value[half:])
            value += _F32(rho[name] ** (m + 1)) * start[name]
            comps[name] = value
        factor = np.empty((k, idx.size), dtype=_F32)
        np.take(paths["industry"][m], by_industry, out=factor[:half])
        np.take(paths["industry_anti"][m], by_industry, out=factor[half:])
        shared = beta * drivers["macro"][t0 + m] + factor
        h = _hazards(_risk(s, _Latent(**comps, industry=factor), shared, p).hazard_x, s, p)
        q, entered = _chain_step(q, h)
        defaulted += entered
    return defaulted.mean(axis=0, dtype=np.float64)


def _chain_step(q: list, h: _Hazards) -> tuple[list, np.ndarray]:
    """Bucket probabilities (current, 30+, 60+) after one month and the mass entering default,
    by the transitions `_next_states` samples."""
    q0, q1, q2 = q
    stay1 = (1 - h.cure1) * (1 - h.roll1)
    stay2 = (1 - h.cure2) * (1 - h.roll2)
    rolled = q2 * (1 - h.cure2) * h.roll2
    survive = 1 - h.bankrupt
    new = [
        (q0 * (1 - h.miss) + q1 * h.cure1 + q2 * h.cure2) * survive,
        (q0 * h.miss + q1 * stay1 + q2 * stay2 * BACK_TO_30) * survive,
        (q1 * (1 - h.cure1) * h.roll1 + q2 * stay2 * (1 - BACK_TO_30)) * survive,
    ]
    entered = rolled + (q0 + q1 + q2 - rolled) * h.bankrupt
    return new, entered


# Monthly base rates (per customer) for company and retail customers, by event type.
_EVENT_BASE = np.array(
    [
        [0.0030, 0.0004],  # lawsuit
        [0.0010, 0.0006],  # enforcement
        [0.0030, 0.0030],  # complaint
        [0.0040, 0.0000],  # negative_news
        [0.0006, 0.0000],  # restructuring
    ],
    dtype=_F32,
)


def _draw_events(rng, x, seg, active, state, tw, p: BookParams) -> tuple[np.ndarray, ...]:
    """This month's events: Poisson counts whose rates rise with latent risk and delinquency."""
    retail = (seg == RETAIL).astype(np.int8)
    risk = np.exp(p.event_slope * x - 0.5)
    distress = np.where(state >= 3, 6.0, np.where(state >= 2, 3.0, 1.0)).astype(_F32)
    idx, kinds = [], []
    for k in range(len(EVENT_TYPES)):
        lam = _EVENT_BASE[k][retail] * risk
        if EVENT_TYPES[k] in ("lawsuit", "enforcement"):
            lam = lam * distress
        if EVENT_TYPES[k] == "negative_news":
            lam = lam * np.where(seg == CORPORATE, 2.5, 1.0)
        counts = rng.poisson(np.where(active, lam, 0))
        hit = np.flatnonzero(counts)
        hit = np.repeat(hit, counts[hit])
        idx.append(hit.astype(np.int32))
        kinds.append(np.full(len(hit), k, dtype=np.int8))
    idx = np.concatenate(idx)
    return idx, np.concatenate(kinds), np.full(len(idx), tw, dtype=np.int32), x[idx]


def _statements(
    rng: np.random.Generator, cust: dict, sim: dict, cal: _Calendar, p: BookParams
) -> pd.DataFrame:
    """Quarterly TTM statements for companies, published 45-120 days after period end; the
    balance sheet shows the quarter-end liquidity and leverage the risk model reads."""
    comp = sim["comp_idx"]
    xq = sim["quarter_x"].astype(_F32)
    qt = sim["quarter_t"]
    nc, nq = xq.shape
    if nc == 0 or nq < 4:
        return _empty_statements()
    ind = cust["industry"][comp]
    prof = _INDUSTRY_PROFILE[ind]
    k = _F32(p.ratio_slope)

    def noise(sd: float, per_quarter: bool = True) -> np.ndarray:
        shape = (nc, nq) if per_quarter else (nc, 1)
        return (sd * rng.standard_normal(shape, dtype=_F32)).astype(_F32)

    qidx = np.arange(nq, dtype=_F32)
    quarterly_revenue = (cust["revenue0"][comp][:, None] / 4) * np.exp(
        0.008 * qidx - 0.08 * k * xq + noise(0.06)
    )
    margin = prof[:, 2][:, None] + noise(0.04, False) - 0.03 * k * xq + noise(0.015)
    revenue = _rolling4(quarterly_revenue)
    ebit = _rolling4(quarterly_revenue * margin)
    total_assets = revenue * (prof[:, 3][:, None] * np.exp(noise(0.35, False) + noise(0.03)))
    lq = sim["quarter_leverage"].astype(_F32)
    leverage = _sigmoid(np.log(lq / (1 - lq)) + noise(0.05))
    total_liabilities = total_assets * leverage
    rate = 0.035 + 0.02 * _sigmoid(xq) + np.abs(noise(0.005))
    debt_share = 0.4 + 0.4 * _sigmoid(noise(1.0, False))
    interest = total_liabilities * debt_share * rate
    pretax = ebit - interest - np.abs(noise(0.01)) * revenue
    net_income = np.where(pretax > 0, pretax * 0.78, pretax)
    current_assets = total_assets * (0.25 + 0.4 * _sigmoid(noise(1.0, False)))
    liquidity = sim["quarter_liquidity"].astype(_F32)
    current_ratio = np.exp(liquidity + noise(0.05))
    current_liabilities = np.minimum(current_assets / current_ratio, 0.95 * total_liabilities)
    cash_level = -0.8 + noise(0.7, False) + 1.5 * (liquidity - p.liquidity_mean) + noise(0.2)
    cash = current_assets * 0.6 * _sigmoid(cash_level)
    inventory = (current_assets - cash) * prof[:, 4][:, None] * np.exp(noise(0.2))

    period_end = (cal.start + qt + 1).astype("datetime64[D]") - np.timedelta64(
        1, "D"
    )  # last day of the quarter's final month
    u = rng.random((3, nc, nq), dtype=_F32)
    lag = 45 + np.floor(75 * (0.8 * u[0] + 0.2 * _sigmoid(xq - 1.0))).astype(np.int64)
    onboarded = cust["onboarded"][comp][:, None]
    published = np.maximum(period_end[None, :] + lag.astype("timedelta64[D]"), onboarded)
    history_from = (
        np.maximum(onboarded.astype("datetime64[M]"), cal.start) - p.statement_lookback_months
    ).astype("datetime64[D]")
    default_t = sim["default_t"][comp][:, None]
    missing = p.statement_missing + 0.10 * _sigmoid(2 * (xq - 1.5))
    keep = (
        (np.arange(nq) >= 3)[None, :]
        & (period_end[None, :] >= history_from)
        & (period_end[None, :] >= cust["founded"][comp][:, None] + np.timedelta64(365, "D"))
        & ((default_t < 0) | (qt[None, :] <= default_t))
        & (published < cal.window_end)
        & (u[1] >= missing)
    )
    ci, qi = np.nonzero(keep)
    frame = {
        "customer_id": _ids_series(cust["ids"], comp[ci]),
        "period_end": pd.Series(period_end[qi].astype("datetime64[ns]")),
        "published_on": pd.Series(published[ci, qi].astype("datetime64[ns]")),
    }
    values = {
        "revenue": revenue,
        "ebit": ebit,
        "interest_expense": interest,
        "net_income": net_income,
        "total_assets": total_assets,
        "total_liabilities": total_liabilities,
        "current_assets": current_assets,
        "current_liabilities": current_liabilities,
        "cash": cash,
        "equity": total_assets - total_liabilities,
        "inventory": inventory,
    }
    for name, matrix in values.items():
        frame[name] = pd.Series(np.round(matrix[ci, qi], -3).astype(_F32))
    return pd.DataFrame(frame)


def _rolling4(quarterly: np.ndarray) -> np.ndarray:
    """Trailing-twelve-month sums of quarterly flows (first three quarters are partial)."""
    cum = np.cumsum(quarterly, axis=1, dtype=np.float64)
    out = cum.copy()
    out[:, 4:] -= cum[:, :-4]
    return out.astype(_F32)


def _empty_statements() -> pd.DataFrame:
    cols = {
        "customer_id": pd.Series([], dtype="str"),
        "period_end": pd.Series([], dtype="datetime64[ns]"),
        "published_on": pd.Series([], dtype="datetime64[ns]"),
    }
    for name in STATEMENT_AMOUNTS:
        cols[name] = pd.Series([], dtype=_F32)
    return pd.DataFrame(cols)


def _ids_series(ids: np.ndarray, index: np.ndarray) -> pd.Series:
    """Customer ids for the given customer positions as a pandas ``str`` column (Arrow-backed)."""
    return pd.Series(pc.take(pa.array(ids), pa.array(index)), dtype="str")


def _customers_frame(cust: dict) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": _ids_series(cust["ids"], np.arange(cust["n"])),
            "segment": pd.Categorical.from_codes(cust["segment"], SEGMENTS),
            "industry": pd.Categorical.from_codes(cust["industry"], INDUSTRIES),
            "region": pd.Categorical.from_codes(cust["region"], REGIONS),
            "onboarded_on": cust["onboarded"].astype("datetime64[ns]"),
            "founded_on": cust["founded"].astype("datetime64[ns]"),
        }
    )


def _repayments_frame(cust: dict, sim: dict, cal: _Calendar) -> pd.DataFrame:
    t = np.arange(cal.months, dtype=np.int32)
    mask = (t[None, :] >= cust["first"][:, None]) & (t[None, :] < sim["end"][:, None])
    ci, ti = np.nonzero(mask)
    month_starts = cal.month_starts[cal.pre :].astype("datetime64[ns]")
    frame = {
        "customer_id": _ids_series(cust["ids"], ci),
        "month": pd.Series(month_starts[ti]),
    }
    for name in ("credit_limit", "balance", "amount_due", "amount_paid", "days_past_due"):
        frame[name] = pd.Series(sim[name][mask])
    return pd.DataFrame(frame)


def _events_frame(rng: np.random.Generator, cust: dict, sim: dict, cal: _Calendar) -> pd.DataFrame:
    idx, kind, tw, x = (np.concatenate(part) for part in zip(*sim["events"], strict=True))
    order = np.lexsort((tw, idx))
    idx, kind, tw, x = idx[order], kind[order], tw[order], x[order]
    month_starts = cal.month_starts[cal.pre :]
    days_in_month = (
        (month_starts.astype("datetime64[M]") + 1).astype("datetime64[D]") - month_starts
    ).astype(int)
    day = (rng.random(len(idx)) * days_in_month[tw]).astype(np.int64)
    occurred = month_starts[tw] + day.astype("timedelta64[D]")
    severity = 1 + rng.binomial(2, _sigmoid(-1.0 + 0.7 * x).astype(float))
    return pd.DataFrame(
        {
            "customer_id": _ids_series(cust["ids"], idx),
            "occurred_on": occurred.astype("datetime64[ns]"),
            "type": pd.Categorical.from_codes(kind, EVENT_TYPES),
            "severity": severity.astype(np.int8),
        }
    )


def _defaults_frame(cust: dict, sim: dict, cal: _Calendar) -> pd.DataFrame:
    """90dpd defaults are dated at the close of the first 90+ month; bankruptcies mid-month."""
    who = np.flatnonzero(sim["default_t"] >= 0)
    t = sim["default_t"][who]
    reason = sim["default_reason"][who]
    month_start = cal.month_starts[cal.pre :][t]
    month_close = (cal.start + t + 1).astype("datetime64[D]")
    mid = month_start + np.timedelta64(14, "D")
    defaulted = np.where(reason == 1, mid, month_close)
    return pd.DataFrame(
        {
            "customer_id": _ids_series(cust["ids"], who),
            "defaulted_on": defaulted.astype("datetime64[ns]"),
            "reason": pd.Categorical.from_codes(reason, DEFAULT_REASONS),
        }
    )


def _true_pd_frame(cust: dict, sim: dict, cal: _Calendar) -> pd.DataFrame:
    """customer_id, as_of, pd_12m of every as-of date the simulation recorded, by date."""
    truth = sim["truth"]
    who = np.concatenate([w for _, w, _ in truth]) if truth else np.zeros(0, np.int64)
    tw = np.concatenate([np.full(w.size, t) for t, w, _ in truth]) if truth else who
    pd_12m = np.concatenate([v for _, _, v in truth]) if truth else np.zeros(0)
    return pd.DataFrame(
        {
            "customer_id": _ids_series(cust["ids"], who),
            "as_of": (cal.start + tw).astype("datetime64[D]").astype("datetime64[ns]"),
            "pd_12m": pd_12m,
        }
    )
