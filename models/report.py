"""Validation figures and the self-contained HTML validation report (inline PNGs, no Python needed).

Every function takes plain arrays and frames and returns a matplotlib Figure, PNG bytes or an HTML
string; writing them to MLflow is `models.tracking`'s job. `python -m models.report INPUT FOLDER`
renders the figures of a pickled `FigureInputs` into FOLDER, so that tracking can draw them in a
second process while it logs the model (drawing is single-threaded Python; the machine has a core
free then). The module imports neither sklearn nor shap, to start quickly there.
"""

from __future__ import annotations

import base64
import html
import io
import pickle
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

LIGHT_COLOURS = {"green": "#2e7d32", "yellow": "#f9a825", "red": "#c62828"}
BEESWARM_ROWS = 20
FIGURES = ("roc", "ks", "calibration", "grades", "importance", "shap_summary")


def roc_points(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) at every distinct PD, highest first, from (0, 0)
    to (1, 1); the trapezoid area under them is the AUC with ties counted one half."""
    y = np.asarray(y, dtype=float)
    _, group = np.unique(-np.asarray(p, dtype=float), return_inverse=True)
    tp = np.concatenate([[0.0], np.cumsum(np.bincount(group, y))])
    fp = np.concatenate([[0.0], np.cumsum(np.bincount(group, 1.0 - y))])
    return fp / max(fp[-1], 1.0), tp / max(tp[-1], 1.0)


def roc_figure(y: np.ndarray, pd_by_model: Mapping[str, np.ndarray]) -> Figure:
    """ROC curves of several models on the same test set, AUC in the legend."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in pd_by_model.items():
        fpr, tpr = roc_points(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {np.trapezoid(tpr, fpr):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, test set")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def ks_figure(y: np.ndarray, pd_: np.ndarray) -> Figure:
    """Cumulative PD distributions of defaulters and non-defaulters; KS is the widest gap."""
    y = np.asarray(y, dtype=float)
    grid = np.unique(np.quantile(pd_, np.linspace(0, 1, 201)))
    bad = np.searchsorted(np.sort(pd_[y == 1]), grid, side="right") / max((y == 1).sum(), 1)
    good = np.searchsorted(np.sort(pd_[y == 0]), grid, side="right") / max((y == 0).sum(), 1)
    i = int(np.argmax(np.abs(good - bad)))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(grid, good, label="non-defaulters")
    ax.plot(grid, bad, label="defaulters")
    ax.vlines(grid[i], bad[i], good[i], color="black", linestyle="--")
    ax.set(xscale="log", xlabel="PD", ylabel="cumulative share", title=f"KS {good[i] - bad[i]:.3f}")
    ax.legend()
    fig.tight_layout()
    return fig


def calibration_bins(y: np.ndarray, pd_: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted PD and observed default rate per PD decile (for the curve): rows ordered by
    PD (ties in their order) and cut into ``bins`` groups of equal size."""
    pd_ = np.asarray(pd_, dtype=float)
    rank = np.empty(pd_.size, dtype=np.int64)
    rank[np.argsort(pd_, kind="stable")] = np.arange(pd_.size)
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "pd": pd_})
    frame["bin"] = rank * min(bins, pd_.size) // max(pd_.size, 1)
    return frame.groupby("bin").agg(
        mean_pd=("pd", "mean"), default_rate=("y", "mean"), count=("y", "size")
    )


def calibration_figure(y: np.ndarray, pd_by_model: Mapping[str, np.ndarray]) -> Figure:
    """Observed default rate against mean predicted PD per decile, on log axes."""
    fig, ax = plt.subplots(figsize=(5, 5))
    lo = 1.0
    for name, p in pd_by_model.items():
        table = calibration_bins(y, p)
        ax.plot(table["mean_pd"], table["default_rate"].clip(lower=1e-4), "o-", label=name)
        lo = min(lo, float(table["mean_pd"].min()))
    lo = max(lo / 2, 1e-4)
    ax.plot([lo, 1], [lo, 1], color="grey", linestyle=":")
    ax.set(xscale="log", yscale="log", xlabel="mean predicted PD", ylabel="observed default rate")
    ax.set_title("calibration, test set (deciles)")
    ax.legend()
    fig.tight_layout()
    return fig


def grade_figure(grade_table: pd.DataFrame) -> Figure:
    """Share of customers per grade (bars) with observed default rate and mean PD (lines)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(grade_table["grade"], grade_table["share"], color="#90a4ae")
    ax.set(xlabel="grade", ylabel="share of test customers", title="grade distribution")
    right = ax.twinx()
    rates = grade_table["default_rate"].astype(float).clip(lower=1e-4)
    right.plot(grade_table["grade"], rates, "o-", color="#c62828", label="default rate")
    right.plot(grade_table["grade"], grade_table["mean_pd"], "s--", color="#1565c0", label="PD")
    right.set(yscale="log", ylabel="rate (log scale)")
    right.legend(loc="upper left")
    fig.tight_layout()
    return fig


def importance_figure(importance: pd.Series, top: int = 25) -> Figure:
    """Horizontal bars of feature importance (total gain), largest on top."""
    data = importance.sort_values(ascending=False).head(top)[::-1]
    fig, ax = plt.subplots(figsize=(7, max(3, 0.28 * len(data) + 1)))
    ax.barh([_label(c) for c in data.index], data.to_numpy(), color="#5c6bc0")
    ax.set(xlabel="total gain", title="feature importance")
    fig.tight_layout()
    return fig


def shap_summary_figure(contributions: np.ndarray, features: pd.DataFrame) -> Figure:
    """SHAP beeswarm summary from LightGBM ``pred_contrib`` values (bias column dropped): the
    features with the largest mean |contribution| top down, one dot per customer at its
    contribution, coloured by the customer's value (percentile within the feature; categories by
    code, missing values grey), dots piled up where they crowd, as `shap.summary_plot` draws."""
    if features.shape[1] == 0:
        raise ValueError("no features to summarise: the SHAP summary needs at least one column")
    values = np.asarray(contributions, dtype=float)[:, : features.shape[1]]
    order = np.argsort(-np.abs(values).mean(axis=0), kind="stable")[:BEESWARM_ROWS]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(order) + 1.5))
    for row, j in enumerate(order[::-1]):
        column = features.iloc[:, j]
        raw = (
            column.cat.codes.where(column.notna()).to_numpy(dtype=float)
            if isinstance(column.dtype, pd.CategoricalDtype)
            else pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        )
        colour = pd.Series(raw).rank(pct=True).to_numpy()
        x = values[:, j]
        y = row + _pile_offsets(x)
        known = ~np.isnan(colour)
        ax.scatter(x[~known], y[~known], s=6, color="#999999", linewidths=0)
        dots = ax.scatter(
            x[known], y[known], s=6, c=colour[known], cmap="coolwarm", vmin=0, vmax=1,
            linewidths=0,
        )  # fmt: skip
    ax.axvline(0, color="#999999", linewidth=0.8)
    ax.set_yticks(range(len(order)), [_label(features.columns[j]) for j in order[::-1]])
    ax.set(xlabel="contribution to the log-odds of default (SHAP value)", title="SHAP summary")
    bar = fig.colorbar(dots, ax=ax, ticks=[0, 1], aspect=40, pad=0.01)
    bar.ax.set_yticklabels(["low", "high"])
    bar.set_label("feature value")
    fig.tight_layout()
    return fig


def _label(name) -> str:
    """A column name drawn as written: a ``$`` would start matplotlib's mathtext."""
    return str(name).replace("$", r"\$")


def _pile_offsets(x: np.ndarray, bins: int = 100, height: float = 0.4) -> np.ndarray:
    """Vertical offsets that pile dots with close x values alternately above and below the row."""
    span = np.ptp(x) if x.size else 0.0
    cell = np.floor((x - x.min()) / span * (bins - 1)).astype(np.int64) if span > 0 else 0 * x
    order = np.lexsort((np.arange(x.size), cell))
    sorted_cells = np.asarray(cell)[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_cells)) + 1]
    rank = np.arange(x.size) - np.repeat(starts, np.diff(np.r_[starts, x.size]))
    crowd = max(int(rank.max()) + 1, 1) if x.size else 1
    offsets = np.empty(x.size)
    offsets[order] = np.ceil(rank / 2) * np.where(rank % 2, 1.0, -1.0) / crowd * height
    return offsets


def figure_png(fig: Figure) -> bytes:
    """PNG bytes of a figure (then closes it)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


@dataclass
class FigureInputs:
    """What the validation figures are drawn from (plain arrays and frames, picklable)."""

    y: np.ndarray
    champion_pd: np.ndarray
    challenger_pd: np.ndarray
    grade_table: pd.DataFrame
    importance: pd.Series
    shap_contrib: np.ndarray
    shap_features: pd.DataFrame
    names: tuple[str, str] = ("lightgbm", "scorecard")  # of the champion and the challenger


def render_figures(inputs: FigureInputs) -> dict[str, bytes]:
    """PNG bytes of every validation figure, by artifact name."""
    both = dict(zip(inputs.names, (inputs.champion_pd, inputs.challenger_pd), strict=True))
    figures = {
        "roc": lambda: roc_figure(inputs.y, both),
        "ks": lambda: ks_figure(inputs.y, inputs.champion_pd),
        "calibration": lambda: calibration_figure(inputs.y, both),
        "grades": lambda: grade_figure(inputs.grade_table),
        "importance": lambda: importance_figure(inputs.importance),
        "shap_summary": lambda: shap_summary_figure(inputs.shap_contrib, inputs.shap_features),
    }
    return {name: figure_png(draw()) for name, draw in figures.items()}


def main(argv: list[str]) -> None:
    """``python -m models.report INPUT FOLDER``: render a pickled `FigureInputs` into FOLDER."""
    source, folder = Path(argv[0]), Path(argv[1])
    with source.open("rb") as handle:
        inputs = pickle.load(handle)
    for name, png in render_figures(inputs).items():
        (folder / f"{name}.png").write_bytes(png)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"/>'


def _table(frame: pd.DataFrame, light_column: str | None = None) -> str:
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
    if light_column and light_column in shown:
        shown[light_column] = shown[light_column].map(
            lambda v: (
                f'<span class="light" style="background:{LIGHT_COLOURS.get(v, "#999")}">'
                f"{html.escape(str(v))}</span>"
            )
        )
        return shown.to_html(index=False, escape=False, border=0)
    return shown.to_html(index=False, border=0)


STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-top:.5em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right} th{background:#f3f3f3}
.light{color:#fff;padding:1px 8px;border-radius:8px}
.kpi{display:inline-block;margin:0 1.2em .8em 0} .kpi b{display:block;font-size:1.3em}
img{max-width:100%;margin:.3em}
"""


def validation_report_html(
    *,
    title: str,
    headline: Mapping[str, float | str],
    comparison: pd.DataFrame,
    calibration_table: pd.DataFrame,
    grade_table: pd.DataFrame,
    psi: float,
    psi_verdict: str,
    tests: pd.DataFrame,
    scorecard_table: pd.DataFrame | None,
    data_summary: pd.DataFrame,
    figures: Mapping[str, bytes],
) -> str:
    """One self-contained HTML page a reviewer reads in a browser: metrics, tables and figures."""
    kpis = "".join(
        f'<span class="kpi">{html.escape(k)}<b>{v if isinstance(v, str) else f"{v:.4f}"}</b></span>'
        for k, v in headline.items()
    )
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
        f"<p>Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. All statistics on the held-out "
        "test set (out-of-time when the data has a time column).</p>",
        f"<h2>Headline metrics (champion candidate)</h2>{kpis}",
        f"<h2>Champion candidates: the choice and the test figures</h2>{_table(comparison)}",
        "<h2>Discrimination</h2>",
        "".join(_img(figures[k], k) for k in ("roc", "ks") if k in figures),
        "<h2>Calibration</h2>",
        "".join(_img(figures[k], k) for k in ("calibration",) if k in figures),
        _table(calibration_table),
        f"<h3>Statistical tests</h3>{_table(tests)}",
        "<h2>Grades: distribution and Jeffreys test per grade</h2>",
        "<p>Traffic lights: green p &ge; 5 %, yellow p &ge; 0.1 %, red below "
        "(one-sided test that the grade's PD is not too low).</p>",
        _table(grade_table, light_column="light"),
        "".join(_img(figures[k], k) for k in ("grades",) if k in figures),
        f"<h2>Stability</h2><p>Score PSI train vs test: <b>{psi:.4f}</b> "
        f"&rarr; <b>{html.escape(psi_verdict)}</b> (below 0.10 stable, below 0.25 investigate, "
        "else shift).</p>",
        "<h2>Drivers</h2>",
        "".join(_img(figures[k], k) for k in ("importance", "shap_summary") if k in figures),
    ]
    if scorecard_table is not None and len(scorecard_table):
        parts.append(f"<h2>Scorecard challenger table</h2>{_table(scorecard_table)}")
    parts.append(f"<h2>Data summary</h2>{_table(data_summary)}</body></html>")
    return "\n".join(parts)


if __name__ == "__main__":
    main(sys.argv[1:])
