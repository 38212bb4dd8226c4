"""The dataset card: counts, histogram and distributions computed from known tables, rendered for people."""

from __future__ import annotations

import pyarrow as pa
import pytest

from toothmcl_data.store.card import build_card, render_markdown


def _tables() -> dict[str, pa.Table]:
    return {
        "cases": pa.table(
            {
                "pseudonym": ["A", "B", "C"],
                "spacing_i_mm": [0.3, 0.4, 0.5],
                "size_i": [10, 20, 30],
                "size_j": [10, 10, 10],
                "size_k": [1, 1, 2],
            }
        ),
        "scans": pa.table({"modality": ["cbct", "ios", "ios", "cbct"], "n_vertices": [0, 1000, 3000, 0]}),
        "teeth": pa.table({"fdi": [11, 11, 21, 36]}),
        "pairs": pa.table({"fdi": [11, 21]}),
        "registrations": pa.table({"verdict": ["pass", "pass", "review"], "rms_mm": [0.1, 0.2, 0.3]}),
        "quarantine": pa.table({"reason": ["truncated", "truncated", "localizer"]}),
        "inventory": pa.table({"sha256": ["x"] * 9}),
        "splits": pa.table({"split": ["train", "train", "test"]}),
    }


def test_card_counts_and_distributions_of_known_tables() -> None:
    card = build_card(_tables(), content_hash="h" * 64, provenance={"licence": "CC0-1.0"}, splits={"key": "k"})
    assert card["counts"] == {
        "patients": 3,
        "scans": 4,
        "cbct": 2,
        "ios": 2,
        "teeth": 4,
        "pairs": 2,
        "quarantined": 3,
        "quarantined_cases": 0,
        "quarantined_files": 3,
        "inventory_files": 9,
    }
    assert card["fdi_histogram"] == {"11": 2, "21": 1, "36": 1}  # from the teeth table when it has rows
    assert card["spacing_mm"] == {"i": {"min": 0.3, "median": 0.4, "p95": pytest.approx(0.49), "max": 0.5, "n": 3}}
    assert card["cbct_voxels"]["median"] == 200.0
    assert card["cbct_voxels"]["max"] == 600.0
    assert card["ios_vertices"]["median"] == 2000.0  # CBCT rows left out
    assert card["registration"]["verdicts"] == {"pass": 2, "review": 1}
    assert card["registration"]["p95_mm"] is None
    assert card["quarantine"]["by_reason"] == {"localizer": 1, "truncated": 2}
    assert card["splits"] == {"config": {"key": "k"}, "counts": {"test": 1, "train": 2}}


def test_markdown_shows_the_counts_and_the_histogram() -> None:
    card = build_card(_tables(), content_hash="abc", provenance={"source": "synthetic"}, splits={})
    text = render_markdown(card)
    assert "Content hash: `abc`" in text
    assert "| 3 | 4 | 2 | 2 | 4 | 2 | 3 | 0 | 3 | 9 |" in text
    assert "11: 2 21: 1 36: 1" in text
    assert "| spacing i (mm) | 0.3 | 0.4 | 0.49 | 0.5 | 3 |" in text
    assert "- source: synthetic" in text
