"""A bounded load test on loopback: 20 raters at once submit 50 judgments each through the app's JSON interface.
Every judgment submitted is stored, once; the latency is reported, never asserted (benchmark 11 records it)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_review import load, start_server, synthetic_review  # noqa: E402

pytestmark = pytest.mark.slow


def test_twenty_raters_at_once_lose_and_duplicate_nothing(tmp_path, record_property):
    review = synthetic_review()
    url, stop = start_server(review, tmp_path / "load.sqlite")
    try:
        result = load(url, raters=20, judgments=50)
    finally:
        stop()
    rows = review.store(tmp_path / "load.sqlite").judgments()
    assert result["errors"] == [] and result["submitted"] == result["stored_on_submit"] == len(rows) == 1000
    assert len({r["assignment_id"] for r in rows}) == 1000
    assert sorted({r["rater"] for r in rows}) == sorted(f"load rater {i}" for i in range(20))
    record_property("review_load", {k: result[k] for k in ("judgments_per_second", "latency_ms")})
    print(f"review app under load: {result['judgments_per_second']} judgments/s, latency {result['latency_ms']}")
