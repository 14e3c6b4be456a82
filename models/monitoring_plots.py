"""Monitoring figures as PNG bytes (matplotlib, Agg): the score distribution against the training
reference, and observed against predicted default rate per grade. Each takes a report table, so
a stored report draws its figures again."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from models.report import LIGHT_COLOURS, figure_png

RATE_FLOOR = 1e-4  # a zero rate drawn at this height on the log scale


def score_distribution_png(bins: pd.DataFrame, title: str = "score distribution") -> bytes:
    """Share of customers per score bin: the reference (training, out-of-time rows) beside the
    run; ``bins`` is a `psi_table` (bin, expected_share, actual_share, psi)."""
    x = np.arange(len(bins))
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(x - 0.2, bins["expected_share"], width=0.4, label="reference", color="#90a4ae")
    ax.bar(x + 0.2, bins["actual_share"], width=0.4, label="this run", color="#1565c0")
    ax.set_xticks(x, [str(b) for b in bins["bin"]], rotation=45, ha="right", fontsize=7)
    total = float(pd.to_numeric(bins["psi"]).sum())
    ax.set(xlabel="score bin", ylabel="share of customers", title=f"{title} (PSI {total:.3f})")
    ax.legend()
    fig.tight_layout()
    return figure_png(fig)


def calibration_by_grade_png(
    calibration: pd.DataFrame, title: str = "calibration by grade"
) -> bytes:
    """Observed default rate (points coloured by the Jeffreys light) against the mean PD per grade,
    with the rate at approval where known; ``calibration`` has grade, pd_mean, default_rate,
    light and optionally approval_default_rate."""
    grades = calibration["grade"].astype(str).tolist()
    x = np.arange(len(grades))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(x, calibration["pd_mean"].astype(float), "s--", color="#1565c0", label="mean PD")
    observed = calibration["default_rate"].astype(float).clip(lower=RATE_FLOOR)
    ax.plot(x, observed, "-", color="#616161", alpha=0.5)
    colours = [LIGHT_COLOURS.get(str(light), "#616161") for light in calibration["light"]]
    ax.scatter(x, observed, c=colours, s=50, zorder=3, label="observed default rate")
    for at in x[calibration["default_rate"].astype(float).to_numpy() == 0]:
        ax.annotate("no default", (at, RATE_FLOOR), textcoords="offset points", xytext=(0, 8),
                    ha="center", fontsize=7)  # fmt: skip
    if "approval_default_rate" in calibration:
        approval = calibration["approval_default_rate"].astype(float).clip(lower=RATE_FLOOR)
        ax.plot(x, approval, "^:", color="#8e24aa", label="observed at approval")
    ax.set_xticks(x, grades)
    ax.set(yscale="log", xlabel="grade", ylabel="rate (log scale)", title=title)
    ax.legend()
    fig.tight_layout()
    return figure_png(fig)
