"""Ratings benchmark: the grades of the synthetic book against the true PDs the generator knows.

    .venv/bin/python benchmarks/ratings.py [--customers 20000] [--months 48] [--seed 42]

Generates the book with its true PDs (`features.synthetic.generate_book_with_truth`), builds the
main job's training and scoring snapshots, trains as `creditrisk train` does
(`models.training.train_from_snapshots`) and prints side by side, on the out-of-time test rows:
the AUC of the champion, of the scorecard and of the true PD (the ceiling: observation noise
keeps every model below it), the ECE, the largest share of rows holding one identical PD, and
per grade: rows, defaults, default rate, mean model PD, mean true PD, the Jeffreys interval of
the mean true PD, whether the mean model PD lies in it, and the Jeffreys light of the model PD
against the observed defaults. The same per grade, without outcomes, for the latest scoring date.

The Jeffreys interval of a grade's mean true PD p over its n rows is the 95 % equal-tailed
interval of Beta(n p + 1/2, n (1 - p) + 1/2): the spread a default rate of that grade would show
from sampling alone if its PDs were the true ones. The expected count n p stands in for the
observed one, so the check compares the model with the truth, not with one draw of outcomes;
the light (observed defaults, as the validation report) is printed beside it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.settings import quiet_environment

quiet_environment()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from features.labels import observed_until  # noqa: E402
from features.schemas import validate_tables  # noqa: E402
from features.snapshots import build_snapshots  # noqa: E402
from features.synthetic import generate_book, generate_book_with_truth  # noqa: E402
from models import validation as v  # noqa: E402
from models.master_scale import MasterScale  # noqa: E402
from models.training import train_from_snapshots  # noqa: E402
from pipelines.usecases.snapshots import SnapshotPlan  # noqa: E402

KEYS = ["customer_id", "as_of"]


def largest_block(pd_: np.ndarray) -> tuple[float, float]:
    """Share of rows holding the most frequent identical PD, and that PD."""
    values, counts = np.unique(pd_, return_counts=True)
    return counts.max() / pd_.size, float(values[counts.argmax()])


def grade_rows(scale: MasterScale, pd_: np.ndarray, true_pd: np.ndarray, y=None) -> pd.DataFrame:
    """Per grade: rows, (defaults, rate, light), mean model PD, mean true PD, its interval."""
    grades = scale.grade_of(pd_)
    rows = []
    for grade in scale.performing_grades:
        at = grades == grade
        n = int(at.sum())
        row = {"grade": grade, "rows": n, "share": n / grades.size}
        if n:
            mean_pd, mean_true = float(pd_[at].mean()), float(true_pd[at].mean())
            lo, hi = v.jeffreys_interval(n * mean_true, n)
            row.update(model_pd=mean_pd, true_pd=mean_true, lo=lo, hi=hi)
            row["inside"] = "yes" if lo <= mean_pd <= hi else "NO"
            if y is not None:
                d = int(y[at].sum())
                row.update(defaults=d, rate=d / n, light=v.jeffreys_test(d, n, mean_pd).light)
        rows.append(row)
    return pd.DataFrame(rows)


def print_grades(title: str, table: pd.DataFrame) -> None:
    print(f"\n{title}")
    observed = "defaults" in table
    head = f"{'grade':<6}{'rows':>8}{'share':>7}"
    head += f"{'defaults':>9}{'rate':>8}" if observed else ""
    head += f"{'model PD':>10}{'true PD':>9}{'Jeffreys interval of true PD':>30}{'inside':>7}"
    print(head + (f"{'light':>8}" if observed else ""))
    for r in table.to_dict("records"):
        line = f"{r['grade']:<6}{r['rows']:>8,}{r['share']:>7.1%}"
        if not r["rows"]:
            print(line)
            continue
        if observed:
            line += f"{r['defaults']:>9,}{r['rate']:>8.2%}"
        line += f"{r['model_pd']:>10.3%}{r['true_pd']:>9.3%}"
        interval = f"[{r['lo']:.3%}, {r['hi']:.3%}]"
        line += f"{interval:>30}{r['inside']:>7}"
        print(line + (f"{r['light']:>8}" if observed else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=48)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--start", default="2021-01-01")
    args = parser.parse_args()

    t0 = time.perf_counter()
    generate_book(args.customers, args.months, args.start, args.seed)
    book_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    book = generate_book_with_truth(args.customers, args.months, args.start, args.seed)
    truth_s = time.perf_counter() - t0
    print(
        f"book {args.customers:,} customers x {args.months} months, seed {args.seed}: generated "
        f"in {book_s:.1f} s, with its true PDs in {truth_s:.1f} s ({len(book.true_pd):,} rows)"
    )
    tables = validate_tables(book.tables).accepted
    plan = SnapshotPlan.for_book(observed_until(tables), pd.Timestamp(args.start), 12)
    training = build_snapshots(tables, plan.training, 12)
    scoring = build_snapshots(tables, plan.scoring[-1:], 12)
    t0 = time.perf_counter()
    result = train_from_snapshots(training)
    print(
        f"trained in {time.perf_counter() - t0:.0f} s; calibration {result.params['calibration']}"
    )

    test = result.test_frame[KEYS].merge(book.true_pd, on=KEYS, how="left")
    true_test = test["pd_12m"].to_numpy()
    y = result.y_test
    champion, scorecard = result.champion, result.challenger
    print(
        f"\nout-of-time test: {len(y):,} rows, {int(y.sum()):,} defaults ({y.mean():.2%}), "
        f"mean true PD {true_test.mean():.2%}"
    )
    print(f"{'':<28}{champion.name:>12}{scorecard.name:>12}{'true PD':>12}")
    aucs = [champion.metrics["auc"], scorecard.metrics["auc"], v.auc(y, true_test)]
    print(f"{'AUC':<28}" + "".join(f"{a:>12.4f}" for a in aucs))
    eces = [champion.metrics["ece"], scorecard.metrics["ece"]]
    eces.append(v.expected_calibration_error(y, true_test))
    print(f"{'ECE':<28}" + "".join(f"{e:>12.4f}" for e in eces))
    blocks = [largest_block(champion.pd)[0], largest_block(scorecard.pd)[0]]
    print(f"{'largest identical-PD block':<28}" + "".join(f"{b:>12.1%}" for b in blocks))
    reds = [int(e.metrics["jeffreys_red"]) for e in (champion, scorecard)]
    print(f"{'Jeffreys red grades':<28}" + "".join(f"{r:>12}" for r in reds))
    scale = MasterScale.load()
    print_grades(
        f"{champion.name} per grade, out-of-time test",
        grade_rows(scale, champion.pd, true_test, y),
    )

    as_of = plan.scoring[-1]
    scored = result.scorer.score_frame(scoring, reasons=False)
    truth = scoring[KEYS].merge(book.true_pd, on=KEYS, how="left")["pd_12m"].to_numpy()
    share, value = largest_block(scored["pd"].to_numpy())
    print(
        f"\nscored {as_of:%Y-%m-%d}: {len(scored):,} customers, outcomes not yet observed; "
        f"largest identical-PD block {share:.1%} (PD {value:.4%})"
    )
    print_grades(
        f"{champion.name} per grade, scoring date {as_of:%Y-%m-%d}",
        grade_rows(scale, scored["pd"].to_numpy(), truth),
    )


if __name__ == "__main__":
    main()
