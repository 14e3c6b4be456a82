"""A book generated in customer chunks and written part by part on disk: a valid book, and its
partitioned build (each part read alone, the whole book's context) equals the whole build."""

from __future__ import annotations

import pandas as pd
import pytest

from features.build import book_context, build_features
from features.io import (
    BookReadError,
    book_parts,
    read_book,
    read_context_tables,
    read_parts_table,
    write_book_part,
    write_partitioned_book,
)
from features.labels import observed_until
from features.partition import build_partitioned, chunk_ranges, partition_of
from features.schemas import validate_tables
from features.snapshots import ID, build_snapshot
from features.synthetic import generate_book_chunk

CUSTOMERS, CHUNK, MONTHS, SEED = 500, 180, 36, 11
AS_OF = pd.Timestamp("2023-01-01")


@pytest.fixture(scope="module")
def chunked(tmp_path_factory) -> tuple[object, dict[str, pd.DataFrame]]:
    """The chunked book on disk and the same book stacked in memory (the whole build's input)."""
    folder = tmp_path_factory.mktemp("chunked")
    chunks = []
    for i, (first, n) in enumerate(chunk_ranges(CUSTOMERS, CHUNK)):
        tables = generate_book_chunk(first, n, CUSTOMERS, months=MONTHS, seed=SEED)
        write_book_part(tables, folder, i)
        chunks.append(tables)
    whole = {name: pd.concat([c[name] for c in chunks], ignore_index=True) for name in chunks[0]}
    return folder, whole


def by_customer(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(ID).reset_index(drop=True)


def test_chunk_ranges_cover_the_book_once():
    assert chunk_ranges(500, 180) == [(0, 180), (180, 180), (360, 140)]
    assert chunk_ranges(3, 10) == [(0, 3)]
    with pytest.raises(ValueError):
        chunk_ranges(10, 0)


def test_chunks_stack_into_a_valid_book(chunked):
    folder, whole = chunked
    ids = whole["customers"][ID]
    assert ids.is_unique and len(ids) == CUSTOMERS
    assert ids.iloc[0] == "C0000001" and ids.iloc[-1] == f"C{CUSTOMERS:07d}"
    result = validate_tables(whole)
    assert result.rejects.empty, result.rejects.head()
    assert len(book_parts(folder)) == 3
    # chunks share the economy but not their customers' draws
    a = generate_book_chunk(0, 50, 100, months=12, seed=SEED)["repayments"]
    b = generate_book_chunk(50, 50, 100, months=12, seed=SEED)["repayments"]
    assert not a["days_past_due"].reset_index(drop=True).equals(b["days_past_due"])


def test_context_tables_read_from_the_parts_give_the_whole_context(chunked):
    folder, whole = chunked
    ours = book_context(read_context_tables(folder), AS_OF)
    want = book_context(whole, AS_OF)
    pd.testing.assert_frame_equal(ours.industry_default_rates, want.industry_default_rates)
    assert ours.category_levels == want.category_levels


@pytest.mark.parametrize("snapshot", [False, True])
def test_partitioned_build_from_disk_equals_the_whole_build(chunked, snapshot):
    folder, whole = chunked
    context = book_context(read_context_tables(folder), AS_OF)
    parts = (read_book(part) for part in book_parts(folder))
    if snapshot:
        until = pd.Timestamp(read_parts_table(folder, "repayments", ["month"])["month"].max())
        until += pd.DateOffset(months=1)
        assert until == observed_until(whole)
        built = list(build_partitioned(parts, context, observed=until))
        want = build_snapshot(whole, AS_OF)
        assert want["default_flag"].notna().all() and want["default_flag"].sum() > 0
    else:
        built = list(build_partitioned(parts, context))
        want = build_features(whole, AS_OF)
    assert len(built) == 3
    pd.testing.assert_frame_equal(by_customer(pd.concat(built)), by_customer(want))


def test_hash_partitioned_book_on_disk_equals_the_whole_build(chunked, tmp_path):
    _, whole = chunked
    written = write_partitioned_book(whole, tmp_path, 4)
    assert [p.name for p in written] == [f"part-0000{i}" for i in range(4)]
    ids = [read_book(p)["customers"][ID] for p in written]
    assert all((partition_of(part, 4) == i).all() for i, part in enumerate(ids))
    assert sum(map(len, ids)) == CUSTOMERS
    context = book_context(read_context_tables(tmp_path), AS_OF)
    built = build_partitioned((read_book(p) for p in written), context)
    want = build_features(whole, AS_OF)
    pd.testing.assert_frame_equal(by_customer(pd.concat(built)), by_customer(want))


def test_a_part_missing_a_table_others_have_is_refused(chunked, tmp_path):
    _, whole = chunked
    write_partitioned_book(whole, tmp_path, 2)
    (tmp_path / "part-00001" / "defaults.parquet").unlink()
    with pytest.raises(BookReadError, match="no defaults table in this part"):
        read_context_tables(tmp_path)
    with pytest.raises(FileNotFoundError, match="no partitioned book"):
        book_parts(tmp_path / "nowhere")


def test_without_defaults_tables_the_context_comes_from_days_past_due(chunked, tmp_path):
    _, whole = chunked
    whole = {name: frame for name, frame in whole.items() if name != "defaults"}
    write_partitioned_book(whole, tmp_path, 3)
    tables = read_context_tables(tmp_path)
    assert "defaults" not in tables and list(tables["repayments"].columns) == [
        "customer_id",
        "month",
        "days_past_due",
    ]
    ours = book_context(tables, AS_OF)
    pd.testing.assert_frame_equal(
        ours.industry_default_rates, book_context(whole, AS_OF).industry_default_rates
    )
    assert ours.industry_default_rates["defaults"].sum() > 0
