"""The index of one collection: exact while small, a graph past FLAT_MAX_VALUES that
takes its vectors in the background while they stay searchable."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hookline.index import hnsw
from hookline.index.flat import INITIAL_ROWS
from hookline.index.hnsw import EMPTY, Hnsw
from hookline.vectorrecords import by_dimension, decode, encode


def unit(rows: int, dim: int, seed: int) -> np.ndarray:
    data = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def exact_top(data: np.ndarray, keys: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    return keys[np.argsort(-(data @ query), kind="stable")[:k]].astype(np.int64).tolist()


def test_a_small_index_answers_exactly_and_upserts_and_removes_by_key() -> None:
    index = Hnsw(16, "cosine")
    data, keys = unit(300, 16, 1), np.arange(1000, 1300, dtype=np.uint64)
    index.upsert(keys, data)
    assert index.exact and len(index) == 300
    query = unit(1, 16, 2)
    assert index.search(query, 10)[0].tolist() == exact_top(data, keys, query[0], 10)
    # The same key again replaces its vector: the query itself now comes first
    index.upsert(keys[5:6], query)
    assert len(index) == 300 and index.search(query, 1)[0, 0] == 1005
    # A removed key is never returned again, and the rest close up
    assert index.remove(np.array([1005, 99], dtype=np.uint64)) == 1
    found = index.search(query, 300)[0]
    assert 1005 not in found.tolist() and (found[:299] != EMPTY).all() and found[299] == EMPTY


def test_one_batch_with_a_key_twice_keeps_its_last_vector_and_grows_past_its_rows() -> None:
    index = Hnsw(8, "cosine")
    rows = INITIAL_ROWS + 5
    data, keys = unit(rows, 8, 3), np.arange(7, 7 + rows, dtype=np.uint64)
    # Key 7 comes first and again last, with the second vector: the last wins.
    index.upsert(np.append(keys, keys[:1]), np.vstack([data, data[1:2]]))
    assert len(index) == rows
    assert set(index.search(data[1:2], 2)[0].tolist()) == {7, 8}
    assert index.search(data[0:1], 1)[0, 0] != 7
    # Every other key answers for its own vector
    for row in (2, INITIAL_ROWS, rows - 1):
        assert index.search(data[row:row + 1], 1)[0, 0] == 7 + row


def test_records_of_several_dimensions_decode_together_by_dimension() -> None:
    raws = (encode("t1", None, unit(3, 4, 5), "i8") + encode("t2", ["a", "b"], unit(2, 6, 6), "i8")
            + encode("t3", None, unit(1, 4, 7), "i8", first_row=9))
    groups = by_dimension(raws, "i8")
    assert sorted(groups) == [4, 6]
    assert groups[4][0].tolist() == [0, 1, 2, 5] and groups[6][0].tolist() == [3, 4]
    for positions, vectors in groups.values():
        for at, vector in zip(positions.tolist(), vectors):
            assert np.array_equal(vector, decode(raws[at], "i8").vector)


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_the_exact_scan_ranks_by_the_collection_metric(metric: str) -> None:
    rng = np.random.default_rng(3)
    data = rng.standard_normal((200, 8)).astype(np.float32) * rng.uniform(0.1, 3, (200, 1))
    keys = np.arange(200, dtype=np.uint64)
    index = Hnsw(8, metric)
    index.upsert(keys, data.astype(np.float32))
    query = rng.standard_normal(8).astype(np.float32)
    score = data @ query if metric == "ip" else -((data - query) ** 2).sum(axis=1)
    expected = np.argsort(-score, kind="stable")[:5].tolist()
    assert index.search(query[None, :], 5)[0].tolist() == expected


def test_past_the_limit_a_graph_takes_the_vectors_and_every_one_stays_searchable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hnsw, "FLAT_MAX_VALUES", 2000 * 32)
    index = Hnsw(32, "cosine")
    data = unit(3000, 32, 4)
    keys = np.arange(3000, dtype=np.uint64)
    index.upsert(keys[:1500], data[:1500])
    assert index.exact
    index.upsert(keys[1500:2500], data[1500:2500])
    assert not index.exact
    # Vectors that come while the graph takes the others are found at once
    index.upsert(keys[2500:], data[2500:])
    assert 2999 in index.search(data[2999:3000], 5)[0].tolist()
    index.remove(keys[:10])
    index.upsert(keys[10:11], data[10:11] * -1)
    index.settle()
    assert len(index.pending) == 0 and len(index) == 2990
    # Every vector is found by itself as its own nearest (the graph's copy is i8)
    for row in (1499, 1500, 2999):
        assert row in index.search(data[row:row + 1], 5)[0].tolist()
    # A removed one nowhere, and one replaced meanwhile under its new vector
    assert 0 not in index.search(data[0:1], 20)[0].tolist()
    assert index.search(-data[10:11], 5)[0].tolist().count(10) == 1
    assert 10 in index.search(-data[10:11], 5)[0].tolist()
    # Sent again, a vector in the graph moves back to pending, never in both
    index.upsert(keys[20:21], -data[20:21])
    assert len(index) == 2990 and index.search(-data[20:21], 5)[0, 0] == 20
    index.close()


def test_a_graph_saved_with_vectors_still_pending_loads_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hnsw, "FLAT_MAX_VALUES", 500 * 16)
    index = Hnsw(16, "cosine")
    data = unit(2000, 16, 7)
    index.upsert(np.arange(1000, dtype=np.uint64), data[:1000])
    index.settle()
    # No drainer from here on: what comes next stays pending
    index.close()
    index.upsert(np.arange(1000, 2000, dtype=np.uint64), data[1000:])
    assert len(index.pending) == 1000
    index.save(tmp_path / "one.usearch")
    loaded = Hnsw.load(tmp_path / "one.usearch", 16, "cosine")
    assert len(loaded) == 2000
    loaded.settle()
    assert len(loaded.pending) == 0 and len(loaded) == 2000
    for row in (0, 1999):
        assert row in loaded.search(data[row:row + 1], 5)[0].tolist()
    loaded.close()


@pytest.mark.parametrize("rows", [50, 3000])
def test_an_index_saved_and_loaded_answers_the_same(tmp_path: Path, rows: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hnsw, "FLAT_MAX_VALUES", 2000 * 32)
    index = Hnsw(32, "cosine")
    index.upsert(np.arange(rows, dtype=np.uint64), unit(rows, 32, 5))
    index.settle()
    index.save(tmp_path / "one.usearch")
    loaded = Hnsw.load(tmp_path / "one.usearch", 32, "cosine")
    assert loaded.exact == index.exact and len(loaded) == rows
    queries = unit(5, 32, 6)
    assert loaded.search(queries, 10).tolist() == index.search(queries, 10).tolist()
    with pytest.raises(ValueError):
        Hnsw.load(tmp_path / "one.usearch", 16, "cosine")


def test_pending_vectors_give_their_memory_back_once_in_the_graph(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hnsw, "FLAT_MAX_VALUES", 4000 * 16)
    index = Hnsw(16, "cosine")
    index.upsert(np.arange(6000, dtype=np.uint64), unit(6000, 16, 8))
    assert len(index.pending.keys) >= 6000
    index.settle()
    assert len(index) == 6000 and len(index.pending.keys) == INITIAL_ROWS
    index.close()
