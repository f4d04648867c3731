"""The miniature lab, measured: `dialogsum-lab demo` on the default preset end to end (wall time, stage by stage),
every method's ROUGE-1 with its interval and a paired test against zero-shot (prefix tuning and IA3 too), beside
the baselines nobody trained (lead-3, longest-3, retrieval) with every system's detail view (details.py), and
the CPU precision variants of the fully fine-tuned model (bf16 weights; int8 dynamic quantisation of its linear
layers) against fp32 on the same test dialogues: ROUGE, agreement and speed, in one run.
"""

import copy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import parser, print_table, save

from dialogsum_lab.baselines import with_baselines
from dialogsum_lab.config import DEFAULT_PRESET
from dialogsum_lab.details import DETAIL_COLUMNS
from dialogsum_lab.evaluation import evaluate_model, load_eval_split
from dialogsum_lab.experiments import ensure_run
from dialogsum_lab.files import read_json, read_jsonl
from dialogsum_lab.findings import details_frame
from dialogsum_lab.modeling import load_trained
from dialogsum_lab.preset import Preset
from dialogsum_lab.reporting import compare_runs, load_system, significance_frame

DEMO_METHODS = ("full", "lora", "prompt_tuning")
EXTRA_METHODS = ("prefix_tuning", "ia3")


def run_demo(scratch: Path, preset: str, methods: tuple[str, ...]) -> tuple[float, dict]:
    """The demo as a user runs it (a new process: imports and start-up included)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dialogsum_lab.cli", "demo", "--config", preset, "--methods", *methods,
                    "--out", str(scratch / "demo")], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start, read_json(scratch / "demo" / "timings.json")


def methods_table(root: Path, runs: list[Path]) -> tuple[list[dict], str]:
    """Every system's ROUGE-1 (interval, paired test against zero-shot) and detail view, baselines included, and the
    comparison's verdicts against the best baseline."""
    runs = [root / "zero-shot", *runs]
    runs = with_baselines(runs, root / "all-methods" / "baselines")
    compare_runs(runs, root / "all-methods")
    systems = [load_system(r) for r in runs]
    tests = significance_frame(systems)
    details = details_frame(systems).set_index("system")
    rows = []
    for s in systems:
        cell = s["metrics"]["rouge"]["mean_over_references"]["rouge1"]
        vs = tests[(tests["a"] == "zero-shot") & (tests["b"] == s["name"]) & (tests["rouge"] == "rouge1")]
        rows.append({"system": s["name"], "rouge1": round(cell["mean"], 4),
                     "ci": [round(cell["ci_low"], 4), round(cell["ci_high"], 4)],
                     "vs_zero_shot": None if vs.empty else {k: round(float(vs.iloc[0][k]), 4) for k in
                                                            ("difference", "ci_low", "ci_high", "p_value")},
                     "trainable_percent": round(s["train"].get("used_percent", 0.0), 3),
                     "train_seconds": s["train"].get("train_seconds"),
                     "details": {k: round(float(v), 4) for k, v in details.loc[s["name"]].items()}})
    return rows, (root / "all-methods" / "baselines.md").read_text()


def precision_variants(run: Path, scratch: Path, repeats: int, preset: str) -> list[dict]:
    """fp32, bf16 weights and int8 dynamic quantisation of the same fully fine-tuned model, scored alike."""
    config = Preset.load(preset).eval_config(run=run)
    data = load_eval_split(config)[0]
    fp32, tokenizer, _ = load_trained(str(run), dtype="float32", device="cpu")
    variants = {"fp32": fp32, "bf16 weights": copy.deepcopy(fp32).to(torch.bfloat16),
                "int8 dynamic (linear layers)": torch.ao.quantization.quantize_dynamic(
                    copy.deepcopy(fp32), {torch.nn.Linear}, dtype=torch.qint8)}
    rows, systems = [], []
    for name, model in variants.items():
        seconds = []
        for _ in range(repeats):
            out = scratch / name.split()[0]
            metrics = evaluate_model(model, tokenizer, data, out, config, {"system": name})
            seconds.append(metrics["generation"]["seconds"])
        systems.append(load_system(out) | {"name": name})
        rows.append({"variant": name, "rouge1": round(metrics["rouge"]["mean_over_references"]["rouge1"]["mean"], 4),
                     "seconds": round(sorted(seconds)[len(seconds) // 2], 2)})
    tests = significance_frame(systems)
    baseline = [r["prediction"] for r in read_jsonl(scratch / "fp32" / "predictions.jsonl")]
    for row in rows[1:]:
        test = tests[(tests["a"] == "fp32") & (tests["b"] == row["variant"]) & (tests["rouge"] == "rouge1")].iloc[0]
        same = [r["prediction"] for r in read_jsonl(scratch / row["variant"].split()[0] / "predictions.jsonl")]
        row |= {"vs_fp32": {k: round(float(test[k]), 4) for k in ("difference", "ci_low", "ci_high", "p_value")},
                "within_interval": bool(test["ci_low"] <= 0 <= test["ci_high"]),
                "identical_summaries": sum(a == b for a, b in zip(baseline, same, strict=True)),
                "speed_vs_fp32": round(rows[0]["seconds"] / row["seconds"], 2)}
    return rows


def main() -> None:
    p = parser(__doc__)
    args = p.parse_args()
    preset, methods = ("smoke", ("full",)) if args.smoke else (DEFAULT_PRESET, DEMO_METHODS)
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        wall, stages = run_demo(scratch, preset, methods)
        root = scratch / "demo"
        extra = [] if args.smoke else [ensure_run(preset, m, root / m) for m in EXTRA_METHODS]
        methods, verdicts = methods_table(root, [root / m for m in methods] + extra)
        precision = precision_variants(root / "full", scratch / "precision", 1 if args.smoke else args.repeats,
                                       preset)
        side = (root / "comparison" / "side_by_side.md").read_text()
    print(f"demo: {wall:.1f} s wall (start-up included)")
    print_table([("stage", "seconds"), *stages.items()])
    print_table([("system", "rouge1", "95% interval", "vs zero-shot", "trainable %", *DETAIL_COLUMNS.values()),
                 *[(r["system"], r["rouge1"], r["ci"], r["vs_zero_shot"], r["trainable_percent"],
                    *r["details"].values()) for r in methods]])
    print(verdicts)
    print_table([("variant", "rouge1", "seconds", "vs fp32", "identical"),
                 *[(r["variant"], r["rouge1"], r["seconds"], r.get("vs_fp32"), r.get("identical_summaries"))
                   for r in precision]])
    save("miniature" + ("-smoke" if args.smoke else ""), {"preset": preset, "demo_wall_seconds": round(wall, 1),
                                                          "demo_stages_seconds": stages, "methods": methods,
                                                          "against_best_baseline": verdicts,
                                                          "precision_variants": precision, "side_by_side": side},
         args.out)


if __name__ == "__main__":
    main()
