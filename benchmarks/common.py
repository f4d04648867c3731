"""What every benchmark shares: data, model choice, repeats, and the results file.

Each benchmark runs its baseline (the lab's recipe) and ours in the same process
on the same model and data, and reports ratios, never absolute thresholds.
"""

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from dialogsum_lab.modeling import TINY_MODEL, load_model_and_tokenizer, load_tokenizer
from dialogsum_lab.random_models import random_flan_t5
from dialogsum_lab.runs import write_json

SHARED_DEV = Path(__file__).resolve().parents[2] / "shared" / "dialogsum" / "dialogsum.dev.jsonl"
RESULTS = Path(__file__).resolve().parent / "results"
# A CPU-sized FLAN-T5 (gated-GELU, untied head), random weights; the tiny model's tokenizer.
CPU_SHAPE = {"d_model": 256, "d_kv": 64, "d_ff": 1024, "num_layers": 4, "num_heads": 4}


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", default=os.environ.get("DIALOGSUM_DEV", str(SHARED_DEV)),
                   help="DialogSum file (default: the shared validation file; the sample data if absent)")
    p.add_argument("--model", default="cpu-random",
                   help="cpu-random (d_model 256, random), flan-t5-base-random (its shape, random), or a checkpoint")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats; the median is reported")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: proves the script runs (CI)")
    p.add_argument("--out", default=None, help="results JSON (default: benchmarks/results/<name>.json)")
    return p


def dialogues(source: str, n: int) -> tuple[str, list[dict]]:
    """The first `n` dialogues of the shared file (or the sample data when it is missing)."""
    from dialogsum_lab.data import head, load_dialogsum, select_split  # the GPU check runs without `datasets`

    path = Path(source)
    data = select_split(load_dialogsum(str(path)), "validation") if path.exists() else None
    if data is None:
        sample = load_dialogsum("sample")
        from datasets import concatenate_datasets

        data, source = concatenate_datasets([sample[s] for s in ("train", "validation", "test")]), "sample"
    return source, head(data, n).to_list()


def model_and_tokenizer(name: str, device: str):
    device = "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    if name in ("cpu-random", "flan-t5-base-random"):
        tokenizer = load_tokenizer(TINY_MODEL)
        torch.manual_seed(0)
        shape = CPU_SHAPE if name == "cpu-random" else {}
        vocab = len(tokenizer) if name == "cpu-random" else 32128
        model = random_flan_t5(device, vocab_size=vocab, **shape).eval()
        return model, tokenizer
    return load_model_and_tokenizer(name, dtype="float32", device=device)


def saved_model(name: str, folder: Path) -> str:
    """The benchmark model `name` saved like a real checkpoint, so the package loads it as it would flan-t5-base."""
    model, tokenizer = model_and_tokenizer(name, "cpu")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def generation_setup(description: str, n: int, new_tokens: int, batch_size: int, smoke_n: int,
                     device: str | None = None):
    """What the generation benchmarks share: their options, the dialogues, the model and a forced-length greedy
    config. Returns (args, data source, dialogue texts, model, tokenizer, generation config)."""
    from dialogsum_lab.generation import generation_config

    p = parser(description)
    p.add_argument("--n", type=int, default=n, help="dialogues")
    p.add_argument("--new-tokens", type=int, default=new_tokens, help="forced summary length in tokens")
    p.add_argument("--batch-size", type=int, default=batch_size)
    args = p.parse_args()
    if args.smoke:
        args.n, args.new_tokens, args.repeats = smoke_n, 4, 1
    source, rows = dialogues(args.data, args.n)
    model, tokenizer = model_and_tokenizer(args.model, device or args.device)
    config = generation_config(model, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)
    return args, source, [r["dialogue"] for r in rows], model, tokenizer, config


def median_time(fn, repeats: int) -> tuple[float, object]:
    """Median wall time of `fn()` over `repeats` runs (CUDA synchronised), and its last result."""
    times, result = [], None
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def machine() -> dict:
    import peft
    import transformers

    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
            "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def save(name: str, result: dict, out: str | None) -> Path:
    path = Path(out) if out else RESULTS / f"{name}.json"
    write_json(path, {"benchmark": name, "machine": machine(), **result})
    print(f"wrote {path}")
    return path


def print_table(rows: list[tuple]) -> None:
    width = max(len(str(r[0])) for r in rows)
    for row in rows:
        print(f"{str(row[0]):<{width}}  " + "  ".join(str(c) for c in row[1:]))
