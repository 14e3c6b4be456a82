"""Synthetic customer book: the embedded default data for creditrisk.

Corporate, SME and retail customers whose statements, repayments, events and defaults all follow
one latent credit quality per customer and month: a persistent factor, a slowly drifting
component, an industry factor and a macro cycle with a shock. Observables reveal that quality
noisily, so a good point-in-time model separates defaulters well but not perfectly.
Vectorised over customers (loops run over months only) and reproducible from a seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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

CORPORATE, SME, RETAIL = 0, 1, 2
BURN_IN_MONTHS = 6
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
    """Tunable knobs of the generator; defaults give a few % annual default and AUC near 0.8."""

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
    miss_intercept: tuple[float, float, float] = (-6.1, -5.3, -4.85)
    miss_slope: float = 1.1
    cure_intercept: tuple[float, float] = (0.4, -0.6)
    cure_slope: float = 0.7
    roll_intercept: tuple[float, float] = (-0.9, 0.0)
    roll_slope: float = 0.6
    bankruptcy_intercept: tuple[float, float] = (-10.0, -9.4)
    bankruptcy_slope: float = 1.2
    late_intercept: float = -3.2
    late_slope: float = 0.8
    utilisation_slope: float = 0.45
    utilisation_noise: float = 0.45
    payment_slope: float = 0.45
    ratio_slope: float = 0.8
    event_slope: float = 0.8


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
    _check_size(n_customers=n_customers, months=months, seed=seed)
    p = params or BookParams()
    if p.pre_months < p.statement_lookback_months + 9:
        raise ValueError("pre_months must exceed statement_lookback_months by 9 (TTM history)")
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)]
    cal = _calendar(start, months, p.pre_months)
    cust = _draw_customers(rngs[0], n_customers, cal, p)
    drivers = _draw_drivers(rngs[1], cal, p)
    sim = _simulate(rngs[2], cust, drivers, cal, p, on_month)
    statements = _statements(rngs[3], cust, sim, cal, p)
    events = _events_frame(rngs[4], cust, sim, cal)
    return {
        "customers": _customers_frame(cust),
        "financial_statements": statements,
        "repayments": _repayments_frame(cust, sim, cal),
        "events": events,
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
    return (1.0 / (1.0 + np.exp(-v))).astype(_F32, copy=False)


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
    }


def _customer_ids(n: int) -> np.ndarray:
    width = max(7, len(str(n)))
    return np.strings.add("C", np.strings.zfill(np.arange(1, n + 1).astype(str), width))


def _draw_drivers(rng: np.random.Generator, cal: _Calendar, p: BookParams) -> dict:
    """Macro cycle with one shock, and per-industry and per-region static levels."""
    total = cal.pre + cal.months
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


def _simulate(
    rng: np.random.Generator,
    cust: dict,
    drivers: dict,
    cal: _Calendar,
    p: BookParams,
    on_month: Callable[[int, int], None] | None,
) -> dict:
    """Month by month: latent quality, delinquency states, balances, payments and events."""
    n, months, total = cust["n"], cal.months, cal.pre + cal.months
    seg, company, first = cust["segment"], cust["company"], cust["first"]
    industry = cust["industry"]
    comp_idx = np.flatnonzero(company)
    base = (
        cust["persistent"]
        + drivers["industry_level"][industry]
        + drivers["region_level"][cust["region"]]
    )
    innov = _F32(p.drift_sd * np.sqrt(1 - p.drift_rho**2))
    drift = rng.normal(0, p.drift_sd, size=n).astype(_F32)
    ind_rho = 0.95
    ind_factor = rng.normal(0, p.industry_factor_sd, size=len(INDUSTRIES)).astype(_F32)
    ind_innov = p.industry_factor_sd * np.sqrt(1 - ind_rho**2)

    miss_int = np.asarray(p.miss_intercept, dtype=_F32)[seg]
    bk_int = np.asarray((*p.bankruptcy_intercept, -np.inf), dtype=_F32)[seg]
    state = np.zeros(n, dtype=np.int8)
    episode_days = np.zeros(n, dtype=np.int16)
    dpd_prev = np.zeros(n, dtype=np.int16)
    arrears = np.zeros(n, dtype=_F32)
    balance_prev = np.zeros(n, dtype=_F32)
    limit = cust["limit0"].copy()
    util_noise = rng.normal(0, p.utilisation_noise, size=n).astype(_F32)
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
    quarter_x, quarter_t, events = [], [], []
    cal_month = (cal.month_starts.astype("datetime64[M]").astype(int) % 12) + 1

    for t in range(total):
        drift = p.drift_rho * drift + innov * rng.standard_normal(n, dtype=_F32)
        ind_factor = ind_rho * ind_factor + ind_innov * rng.standard_normal(len(INDUSTRIES))
        shared = (drivers["industry_beta"] * drivers["macro"][t] + ind_factor).astype(_F32)
        x = base + drift + shared[industry]
        if cal_month[t] % 3 == 0:
            quarter_x.append(x[comp_idx])
            quarter_t.append(t - cal.pre)
        if t < cal.pre - BURN_IN_MONTHS:
            if on_month:
                on_month(t + 1, total)
            continue
        tw = t - cal.pre
        active = (first <= tw) & (tw < end)
        new_cust = first == tw
        perf = active & (state < 3)
        if tw < 0:
            burn_in = first <= 0
            active, new_cust, perf = burn_in, np.zeros(n, bool), burn_in
        u = rng.random((6, n), dtype=_F32)

        new_state, bankrupt = _next_states(u, state, perf, x, miss_int, bk_int, p)
        entering = perf & (state == 0) & (new_state >= 1)
        episode_days[entering] = (u[4][entering] * 30).astype(np.int16)
        if tw < 0:  # burn-in: delinquency settles; would-be defaulters start afresh
            new_state[new_state == 3] = 0
        defaulted_now = perf & (new_state == 3)
        default_t[defaulted_now] = tw
        default_reason[bankrupt & defaulted_now] = 1
        end[defaulted_now] = np.minimum(
            tw + rng.integers(3, 13, size=int(defaulted_now.sum())), months
        )
        late = (new_state == 0) & (u[4] < _sigmoid(p.late_intercept + p.late_slope * x))
        dpd = np.where(new_state >= 1, 30 * new_state.astype(np.int16) + episode_days, 0)
        dpd = np.where(late, 1 + (u[5] * 29).astype(np.int16), dpd)
        dpd = np.where(active & (state == 3), dpd_prev + 30, dpd).astype(np.int16)

        months_on_book = tw - first
        review = perf & (months_on_book > 0) & (months_on_book % 12 == 0)
        factor = np.exp(0.03 - 0.06 * x + 0.05 * rng.standard_normal(n, dtype=_F32))
        factor = np.where(new_state >= 1, 0.8, factor)
        limit = np.where(review, np.maximum(np.round(limit * factor, -2), 500), limit).astype(_F32)

        util_noise = 0.8 * util_noise + 0.6 * p.utilisation_noise * rng.standard_normal(
            n, dtype=_F32
        )
        util = _sigmoid(cust["utilisation0"] + p.utilisation_slope * x + util_noise)
        balance = util * limit
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

    return {
        **out,
        "end": end,
        "default_t": default_t,
        "default_reason": default_reason,
        "comp_idx": comp_idx,
        "quarter_x": np.stack(quarter_x, axis=1) if quarter_x else np.zeros((len(comp_idx), 0)),
        "quarter_t": np.asarray(quarter_t, dtype=np.int32),
        "events": events,
    }


def _next_states(u, state, perf, x, miss_int, bk_int, p: BookParams):
    """Delinquency buckets (0 current, 1 = 30+, 2 = 60+, 3 = 90+ default) after one month.

    Performing customers miss a payment, cure, stay or roll one bucket further with odds that
    worsen with latent risk ``x``; companies may also go bankrupt straight from any bucket.
    """
    new_state = state.copy()
    p_miss = _sigmoid(miss_int + p.miss_slope * x)
    new_state[perf & (state == 0) & (u[0] < p_miss)] = 1
    for s in (1, 2):
        here = perf & (state == s)
        p_cure = _sigmoid(p.cure_intercept[s - 1] - p.cure_slope * x)
        p_roll = _sigmoid(p.roll_intercept[s - 1] + p.roll_slope * x)
        cure = here & (u[0] < p_cure)
        roll = here & ~cure & (u[1] < p_roll)
        new_state[cure] = 0
        new_state[roll] = s + 1
        if s == 2:
            new_state[here & ~cure & ~roll & (u[2] < 0.3)] = 1
    bankrupt = perf & (new_state < 3) & (u[3] < _sigmoid(bk_int + p.bankruptcy_slope * x))
    new_state[bankrupt] = 3
    return new_state, bankrupt


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
    """Quarterly TTM statements for companies, published 45-120 days after period end."""
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
    leverage = _sigmoid(0.2 + noise(0.7, False) + 0.35 * k * xq + noise(0.08))
    total_liabilities = total_assets * leverage
    rate = 0.035 + 0.02 * _sigmoid(xq) + np.abs(noise(0.005))
    debt_share = 0.4 + 0.4 * _sigmoid(noise(1.0, False))
    interest = total_liabilities * debt_share * rate
    pretax = ebit - interest - np.abs(noise(0.01)) * revenue
    net_income = np.where(pretax > 0, pretax * 0.78, pretax)
    current_assets = total_assets * (0.25 + 0.4 * _sigmoid(noise(1.0, False)))
    current_ratio = np.exp(0.3 + noise(0.35, False) - 0.15 * k * xq + noise(0.06))
    current_liabilities = np.minimum(current_assets / current_ratio, 0.95 * total_liabilities)
    cash = current_assets * 0.6 * _sigmoid(-0.8 + noise(0.7, False) - 0.35 * k * xq + noise(0.2))
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
