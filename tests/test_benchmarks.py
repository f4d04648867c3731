"""The benchmarks still run (tiny sizes); their numbers are checked by people, never by thresholds here."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("script", ["bench_generate.py", "bench_train.py", "bench_memory.py", "bench_demo.py",
                                    "bench_course.py", "bench_cpu_eval.py", "bench_gpu_paths.py",
                                    "bench_miniature.py"])
def test_benchmark_smoke_run(script, tmp_path):
    out = tmp_path / "result.json"
    subprocess.run([sys.executable, script, "--smoke", "--out", str(out)], cwd=BENCH, check=True,
                   capture_output=True, text=True, timeout=600)
    result = json.loads(out.read_text())
    assert result["machine"]["torch"]
    if script == "bench_generate.py":
        assert result["identical_summaries"] == result["dialogues"] and result["speedup"] > 0
    if script == "bench_train.py":
        assert result["ours"]["tokens_processed"] < result["lab"]["tokens_processed"]
    if script == "bench_cpu_eval.py":
        assert result["variants"]["padded_encoder"]["identical_to_now"] == result["dialogues"]
        assert result["variants"]["sdpa_attention"]["identical_to_now"] == result["dialogues"]
        assert result["variants"]["compiled"]["identical_to_now"] == result["dialogues"]
    if script == "bench_course.py":
        assert set(result["notebook_heavy_stages_seconds"]) == {"01", "02", "03", "04"}
    if script == "bench_memory.py":
        assert result["methods"]["lora"]["trainable"] < result["methods"]["full"]["trainable"]
        assert result["methods"]["lora+gc"]["losses"] == pytest.approx(result["methods"]["lora"]["losses"], rel=1e-5)
    if script == "bench_miniature.py":
        assert [r["system"] for r in result["methods"]] == ["zero-shot", "full", "lead-3", "longest-3", "retrieval"]
        assert "Against the best baseline" in result["against_best_baseline"]
        assert [v["variant"] for v in result["precision_variants"]][1:] == ["bf16 weights",
                                                                             "int8 dynamic (linear layers)"]
    if script == "bench_gpu_paths.py":
        assert [r["steps"] for r in result["training"]] == [3, 3, 3, 3]
        assert all(r["mean_padded_source"] > 0 and r["achieved_tflops"] > 0 for r in result["training"])
        assert [e["dialogues"] for e in result["evaluation"]] == [4, 4, 4]
        assert result["evaluation"][-1]["identical_to_uncompiled"] == 4
