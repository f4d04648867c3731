"""The `dialogsum-lab` command: the notebooks' steps, headless."""

import argparse
import logging
import sys
from pathlib import Path

from dialogsum_lab.data import DEFAULT_SOURCE, SAMPLE_SOURCE, TASKS, load_dialogsum, select_split
from dialogsum_lab.errors import UserError
from dialogsum_lab.evaluation import evaluate_model, read_predictions, write_results
from dialogsum_lab.generation import DEFAULT_MAX_NEW_TOKENS
from dialogsum_lab.modeling import DEFAULT_MODEL, TINY_MODEL, TINY_MODEL_NOTE, load_model_and_tokenizer
from dialogsum_lab.reporting import rouge_table
from dialogsum_lab.runs import prepare_run_dir

log = logging.getLogger("dialogsum_lab")


def _data_args(p: argparse.ArgumentParser, split: str = "test") -> None:
    p.add_argument("--data", default=SAMPLE_SOURCE,
                   help=f"'{SAMPLE_SOURCE}' (shipped), a Hub id such as {DEFAULT_SOURCE}, or a local folder or "
                        ".jsonl/.json/.csv file (a single file is the split its name says, or any split if none)")
    p.add_argument("--split", default=split, help="train, validation or test")
    p.add_argument("--limit", type=int, default=None, help="use only the first N dialogues (quick runs)")
    p.add_argument("--skip-invalid", action="store_true",
                   help="drop rows with an empty dialogue or summary (and report how many) instead of failing")
    p.add_argument("--task", default="summary", choices=list(TASKS), help="summarise, or name the topic")


def _out_args(p: argparse.ArgumentParser, prefix: str) -> None:
    p.add_argument("--out", default=None, help=f"run folder (default: runs/{prefix}-<timestamp>)")
    p.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    p.add_argument("--bootstrap-samples", type=int, default=1000, help="resamples for the confidence intervals")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")


def _generation_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=int, default=16, help="dialogues per generate() call")
    p.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS, help="summary length cap")
    p.add_argument("--max-source-length", type=int, default=512, help="prompt tokens kept (longer are truncated)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1, ...")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on capable CUDA GPUs, else fp32), float32, bfloat16")


def load_split(args: argparse.Namespace):
    data = select_split(load_dialogsum(args.data, skip_invalid=args.skip_invalid), args.split)
    if args.limit is not None:
        if args.limit < 1:
            raise UserError(f"--limit must be at least 1 (got {args.limit}).")
        data = data.select(range(min(args.limit, len(data))))
    if len(data) == 0:
        raise UserError(f"the {args.split} split of {args.data} is empty. Pick another --split or --data.")
    return data


def cmd_zero_shot(args: argparse.Namespace) -> None:
    """Score the model as it is, with the lab's instruction prompt and no training."""
    data = load_split(args)
    out = prepare_run_dir(args.out, "zero-shot", args.overwrite)
    if args.model == TINY_MODEL:
        log.warning(TINY_MODEL_NOTE)
    model, tokenizer = load_model_and_tokenizer(args.model, args.dtype, args.device)
    metrics = evaluate_model(model, tokenizer, data, out, task=args.task, batch_size=args.batch_size,
                             max_new_tokens=args.max_new_tokens, max_source_length=args.max_source_length,
                             bootstrap_samples=args.bootstrap_samples, seed=args.seed,
                             metadata={"system": "zero-shot", "model": args.model, "data": args.data,
                                       "split": args.split, "device": str(model.device),
                                       "dtype": str(model.dtype).removeprefix("torch.")})
    _report(metrics, out, f"{args.model} zero-shot on {args.data}[{args.split}], task {args.task}: ")


def cmd_score(args: argparse.Namespace) -> None:
    """Score summaries made elsewhere against the split's references."""
    data = load_split(args)
    predictions = read_predictions(args.predictions, data)
    out = prepare_run_dir(args.out, "score", args.overwrite)
    metrics = write_results(out, data, predictions, args.task, args.bootstrap_samples, args.seed,
                            {"system": Path(args.predictions).stem, "predictions_file": str(args.predictions),
                             "data": args.data, "split": args.split, "task": args.task})
    _report(metrics, out, f"{args.predictions} on {args.data}[{args.split}]: ")


def _report(metrics: dict, out: Path, title: str) -> None:
    print(rouge_table(metrics, title))
    print(f"\nWrote {out / 'predictions.jsonl'} and {out / 'metrics.json'}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dialogsum-lab", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="show library logs and full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("zero-shot", help="summarise a split with an untrained model and score it")
    p.add_argument("--model", default=TINY_MODEL,
                   help=f"Hub id (e.g. {DEFAULT_MODEL}), a local model folder, or {TINY_MODEL} (offline toy)")
    _data_args(p)
    _generation_args(p)
    _out_args(p, "zero-shot")
    p.set_defaults(func=cmd_zero_shot)

    p = sub.add_parser("score", help="score summaries made elsewhere against a split's references")
    p.add_argument("--predictions", required=True, help=".jsonl with id and prediction, or .txt, one a line")
    _data_args(p)
    _out_args(p, "score")
    p.set_defaults(func=cmd_score)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    log.setLevel(logging.INFO)
    if not args.verbose:
        import transformers

        transformers.logging.set_verbosity_error()
    try:
        args.func(args)
    except UserError as err:
        if args.verbose:
            raise
        print(f"dialogsum-lab: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
