"""The `dialogsum-lab` command: the notebooks' steps, headless.

Options are built from the typed configs (`TrainConfig`, `EvalConfig`) and
written in kebab-case (`--max-steps`); the snake_case spelling is accepted
too. Only `config` is imported to build them: each command imports what it
needs when it runs, so `--help` answers without loading PyTorch.
"""

import argparse
import dataclasses
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Literal, get_args, get_origin

from dialogsum_lab.config import (
    BOOLEANS,
    BOOTSTRAP_SAMPLES,
    CHANNELS_SOURCE,
    DEFAULT_MODEL,
    DEMO_METHODS,
    METHODS,
    TINY_MODEL,
    TRAIN_CONFIG,
    VIEWS,
    EvalConfig,
    TrainConfig,
    eval_config,
    load_preset,
    train_config,
)
from dialogsum_lab.errors import Interrupted, UserError
from dialogsum_lab.runs import check_run_dir, run_folder, run_path

log = logging.getLogger("dialogsum_lab")

# EvalConfig settings that scoring ready-made predictions uses (no model, no generation).
SCORE_SETTINGS = ("data", "split", "limit", "task", "skip_invalid", "rouge_tokenizer", "bootstrap_samples",
                  "bootstrap_seed")
# Earlier names of options, still accepted (hidden from --help).
ALIASES = {"bootstrap_seed": ["--seed"]}


def _out_args(p: argparse.ArgumentParser, prefix: str) -> None:
    p.add_argument("--out", default=None, help=f"run folder (default: runs/{prefix}-<timestamp>)")
    p.add_argument("--overwrite", action="store_true", help="replace results already in --out (once the new ones "
                                                             "are complete)")


def _eval_options(p: argparse.ArgumentParser, names: tuple[str, ...] | None = None) -> None:
    """One --option per EvalConfig field (all, or `names`); only options given on the command line override."""
    group = p.add_argument_group("evaluation settings (override the preset and the training run's own)")
    for f in dataclasses.fields(EvalConfig):
        if names is None or f.name in names:
            _add_option(group, f, switch=True)


def _evaluation_config(args: argparse.Namespace, run: str | Path | None = None) -> EvalConfig:
    """Defaults, then the preset's evaluate block (--config), then the training run's settings, then options."""
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(EvalConfig) if hasattr(args, f.name)}
    preset = load_preset(args.config) if getattr(args, "config", None) else None
    return eval_config(preset, run, overrides)


def cmd_zero_shot(args: argparse.Namespace) -> None:
    """Score the model as it is, with the lab's instruction prompt and no training."""
    from dialogsum_lab.modeling import TINY_MODEL_NOTE

    if args.model == TINY_MODEL:
        log.warning(TINY_MODEL_NOTE)
    _evaluate(args, args.model, "zero-shot", args.out, "zero-shot", _evaluation_config(args))


def cmd_score(args: argparse.Namespace) -> None:
    """Score summaries made elsewhere against the split's references."""
    from dialogsum_lab.evaluation import load_eval_split, read_predictions, write_results

    config = _evaluation_config(args)
    out = run_path(args.out, "score")
    check_run_dir(out, args.overwrite)
    data = load_eval_split(config)
    predictions = read_predictions(args.predictions, data)
    with run_folder(out, args.overwrite) as folder:
        metrics = write_results(folder, data, predictions, config, {"system": Path(args.predictions).stem,
                                                                    "predictions_file": str(args.predictions)})
    _report(metrics, out, f"{args.predictions} on {config.data}[{config.split}]: ")


def cmd_train(args: argparse.Namespace) -> None:
    """Fine-tune one method from a preset, with command-line overrides."""
    from dialogsum_lab.sagemaker_jobs import channel_folders
    from dialogsum_lab.training import resume, train

    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    if args.resume:
        if not args.out:
            raise UserError("--resume needs --out RUN_DIR: the run folder to continue.")
        resume(args.out, overrides)
        return
    method = overrides.pop("method", "lora")
    if "data" not in overrides and channel_folders():  # inside a SageMaker job: its channels
        overrides["data"] = CHANNELS_SOURCE
    train(train_config(load_preset(args.config), method, overrides), args.out, args.overwrite)


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Evaluate a training run, an adapter, or any model, loaded fresh."""
    path = Path(args.path)
    config = _evaluation_config(args, run=path)
    default_out = path / f"eval-{config.split}" if (path / TRAIN_CONFIG).is_file() else None
    _evaluate(args, args.path, path.name, args.out or default_out, "evaluate", config, args.adapter, args.base)


def _evaluate(args: argparse.Namespace, path: str, system: str, out: str | Path | None, prefix: str,
              config: EvalConfig, adapter: str | None = None, base: str | None = None) -> None:
    """Load fresh, generate for the split, score, write the run folder and print the table."""
    from dialogsum_lab.evaluation import run_evaluation

    out, metrics = run_evaluation(path, config, out, prefix=prefix, overwrite=args.overwrite, adapter=adapter,
                                  base=base, system=system)
    _report(metrics, out, f"{path} ({system}) on {config.data}[{config.split}], task {config.task}: ")


def cmd_merge(args: argparse.Namespace) -> None:
    """Merge a LoRA adapter into its base and check the merged model agrees with the adapter."""
    from dialogsum_lab.modeling import merge_adapter

    out = Path(args.out or Path(args.path) / "merged")
    with run_folder(out, args.overwrite) as folder:
        check = merge_adapter(args.path, folder, args.base, device=args.device)
    agree = "identical" if check["summaries_identical"] else "DIFFERENT"
    print(f"Merged model saved to {out}. Summaries {agree}; max |logit difference| "
          f"{check['max_abs_logit_difference']:.2e} (details in merge_check.json).")


def cmd_compare(args: argparse.Namespace) -> None:
    """One table, chart, significance test and side-by-side view across runs."""
    from dialogsum_lab.reporting import compare_runs

    out = run_path(args.out, "compare")
    with run_folder(out, args.overwrite) as folder:
        report = compare_runs(args.runs, folder, args.example, args.view, args.bootstrap_samples)
    print(report)
    print(f"Wrote comparison.md, comparison.csv, significance.csv, rouge_bars.png, side_by_side.md to {out}")


def cmd_demo(args: argparse.Namespace) -> None:
    from dialogsum_lab.config import load_preset
    from dialogsum_lab.experiments import run_demo

    run_demo(load_preset(args.config, model=args.model, data=args.data), args.out, args.methods, args.overwrite)


def cmd_forgetting(args: argparse.Namespace) -> None:
    from dialogsum_lab.experiments import run_forgetting
    from dialogsum_lab.reporting import markdown_table

    table = run_forgetting(args.config, args.out, args.method, args.overwrite)
    print(f"\nROUGE-L on each task before and after fine-tuning ({args.method}):\n{markdown_table(table)}")


def cmd_sagemaker(args: argparse.Namespace) -> None:
    """Launch `dialogsum-lab train` as a SageMaker training job, watch it, fetch its results."""
    try:
        import boto3
        import sagemaker  # noqa: F401  (the optional extra)
    except ImportError as err:
        from dialogsum_lab.sagemaker_jobs import SDK_MISSING

        raise UserError(f"{SDK_MISSING} ({err.name} is missing).") from err
    from dialogsum_lab import sagemaker_jobs as jobs

    if args.action == "launch":
        _launch(args, jobs)
        return
    client = boto3.client("sagemaker", region_name=args.region)
    if args.action == "status":
        for key, value in jobs.status(args.job, client).items():
            print(f"{key}: {value}")
    elif args.action == "logs":
        print("\n".join(jobs.logs(args.job, boto3.client("logs", region_name=args.region))))
    else:
        out = Path(args.out or Path("runs") / args.job)
        with run_folder(out, args.overwrite) as folder:
            jobs.download(args.job, folder, client, boto3.client("s3", region_name=args.region))
        print(f"Downloaded {args.job} into {out}: dialogsum-lab evaluate {out}")


def _launch(args: argparse.Namespace, jobs) -> None:
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    config = train_config(load_preset(args.config), overrides.pop("method", "lora"), overrides)  # checked here
    session, role, bucket = jobs.session_defaults(args.region, args.role, args.bucket)
    with tempfile.TemporaryDirectory(prefix="dialogsum-data-") as folder:
        channels, data = jobs.data_channels(config.data, Path(folder))
        settings = {"config": args.config, "method": config.method} | {
            k: ",".join(v) if isinstance(v, list) else str(v) for k, v in overrides.items() if k != "data"} | data
        spec = jobs.job_spec(settings, instance_type=args.instance_type, instance_count=args.instance_count,
                             spot=args.spot, max_run_s=args.max_run, max_wait_s=args.max_wait,
                             image_uri=args.image_uri, role=role, bucket=bucket, prefix=args.prefix,
                             region=session.boto_region_name, channels=channels)
        name = jobs.launch(spec, session, wait=not args.no_wait)
    print(f"Training job {name} ({spec.instance_count} x {spec.instance_type}{', spot' if spec.spot else ''}). "
          f"Watch it: dialogsum-lab sagemaker status {name}; fetch it: dialogsum-lab sagemaker download {name}")


def _parse_bool(text: str) -> bool:
    if text.lower() in BOOLEANS:
        return BOOLEANS[text.lower()]
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _config_options(p: argparse.ArgumentParser) -> None:
    """One --option per TrainConfig field; only options given on the command line override the preset."""
    group = p.add_argument_group("training settings (override the preset)")
    for f in dataclasses.fields(TrainConfig):
        _add_option(group, f)


def _add_option(group, f: dataclasses.Field, switch: bool = False) -> None:
    """`--kebab-name` for a config field, with its help and its choices or type; absent unless given, so it
    overrides only then. `--snake_name` and the field's ALIASES are accepted too, hidden from --help.

    A boolean is `--flag true|false` (what launchers such as SageMaker pass), or with `switch`, `--flag`/`--no-flag`.
    """
    kinds = get_args(f.type) or (f.type,)
    kwargs = {"default": argparse.SUPPRESS, "help": f.metadata["help"], "dest": f.name}
    if get_origin(f.type) is Literal:
        kwargs["choices"] = kinds
    elif f.type is bool and switch:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif f.type is bool:
        kwargs |= {"type": _parse_bool, "metavar": "{true,false}"}
    elif get_origin(f.type) is list:
        kwargs["nargs"] = "+"
    elif float in kinds or int in kinds:
        kwargs["type"] = float if float in kinds else int
    flag = f"--{f.name.replace('_', '-')}"
    group.add_argument(flag, **kwargs)
    hidden = [a for a in (f"--{f.name}", *ALIASES.get(f.name, [])) if a != flag]
    if hidden:
        group.add_argument(*hidden, **kwargs | {"help": argparse.SUPPRESS})


def _report(metrics: dict, out: Path, title: str) -> None:
    from dialogsum_lab.reporting import rouge_table

    print(rouge_table(metrics, title))
    print(f"\nWrote {out / 'predictions.jsonl'} and {out / 'metrics.json'}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dialogsum-lab", description="Fine-tune FLAN-T5 on DialogSum (full, LoRA, "
                                     "soft prompts) and judge it with ROUGE: the notebooks' steps, headless.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show library logs and full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("zero-shot", help="summarise a split with an untrained model and score it")
    p.add_argument("--model", default=TINY_MODEL,
                   help=f"Hub id (e.g. {DEFAULT_MODEL}), a local model folder, or {TINY_MODEL} (offline toy)")
    p.add_argument("--config", default=None,
                   help="preset (smoke, course, lab) or .yaml: its evaluate block sets defaults")
    _out_args(p, "zero-shot")
    _eval_options(p)
    p.set_defaults(func=cmd_zero_shot)

    p = sub.add_parser("score", help="score summaries made elsewhere against a split's references")
    p.add_argument("--predictions", required=True, help=".jsonl with id and prediction, or .txt, one a line")
    _out_args(p, "score")
    _eval_options(p, SCORE_SETTINGS)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("train", help="fine-tune with one method (full, lora, prompt_tuning, prefix_tuning, ia3)")
    p.add_argument("--config", default="smoke", help="preset name in configs/ (smoke, course, lab) or a .yaml file")
    p.add_argument("--out", default=None, help="run folder (default: runs/train-<method>-<timestamp>)")
    p.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    _config_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="generate and score with a training run, an adapter or a model")
    p.add_argument("path", help="training run folder, adapter folder, model folder or Hub id")
    p.add_argument("--adapter", default=None, help="PEFT adapter folder to put on the model in PATH")
    p.add_argument("--base", default=None, help="base model for an adapter (default: the one it was trained on)")
    p.add_argument("--config", default=None,
                   help="preset (smoke, course, lab) or .yaml: its evaluate block sets defaults")
    _out_args(p, "evaluate")
    _eval_options(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("merge", help="merge a LoRA adapter into a standalone model and check they agree")
    p.add_argument("path", help="training run folder or adapter folder")
    p.add_argument("--base", default=None, help="base model (default: the one the adapter was trained on)")
    p.add_argument("--out", default=None, help="where to save the merged model (default: PATH/merged)")
    p.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1, ...")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("compare", help="compare evaluated runs: table, chart, significance, side-by-side")
    p.add_argument("runs", nargs="+", help="evaluation or training run folders; the first is the baseline")
    p.add_argument("--view", default="mean_over_references", choices=VIEWS,
                   help="first_reference, mean_over_references (the course's) or best_reference")
    p.add_argument("--example", type=int, default=0, help="which example to show side by side")
    p.add_argument("--bootstrap-samples", type=int, default=BOOTSTRAP_SAMPLES, help="resamples for the paired tests")
    _out_args(p, "compare")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("demo", help="the whole lab: zero-shot, three fine-tuning methods, comparison")
    p.add_argument("--config", default="smoke",
                   help="smoke (toy model, ~1 min), course (flan-t5-base on a CPU) or lab (flan-t5-base on a GPU)")
    p.add_argument("--model", default=None, help="base model instead of the preset's (e.g. a local flan-t5-base)")
    p.add_argument("--data", default=None, help="data source instead of the preset's (a local folder or file)")
    p.add_argument("--methods", nargs="+", default=list(DEMO_METHODS), choices=METHODS, help="methods to train")
    p.add_argument("--out", default=None, help="run folder (default: runs/demo-<timestamp>)")
    p.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("sagemaker", help="train as a SageMaker job: launch, status, logs, download (optional extra)")
    jobs = p.add_subparsers(dest="action", required=True)
    launch = jobs.add_parser("launch", help="ship the project and start `train` as a training job")
    launch.add_argument("--config", default="lab", help="preset name in configs/ (smoke, course, lab) or a .yaml file")
    launch.add_argument("--instance-type", default="ml.g5.xlarge", help="e.g. ml.g5.xlarge (1 GPU), ml.g5.12xlarge (4)")
    launch.add_argument("--instance-count", type=int, default=1, help="instances (several: torchrun across them)")
    launch.add_argument("--spot", action="store_true", help="managed spot training (checkpoints kept in S3)")
    launch.add_argument("--max-run", type=int, default=24 * 3600, help="seconds the job may train")
    launch.add_argument("--max-wait", type=int, default=None, help="seconds a spot job may wait and train (2x max-run)")
    launch.add_argument("--image-uri", default=None, help="training image (default: SageMaker's PyTorch image)")
    launch.add_argument("--no-wait", action="store_true", help="return once the job is created")
    launch.add_argument("--prefix", default="dialogsum-lab", help="S3 prefix for checkpoints, TensorBoard, output")
    _config_options(launch)
    for action in (launch, jobs.add_parser("status", help="a job's state"),
                   jobs.add_parser("logs", help="a job's container log"),
                   jobs.add_parser("download", help="a finished job's model and metrics as a run folder")):
        if action is not launch:
            action.add_argument("job", help="training job name")
        action.add_argument("--region", default=None, help="AWS region (default: AWS_DEFAULT_REGION, Studio's)")
        if action is launch:
            action.add_argument("--role", default=None, help="execution role ARN (default: SAGEMAKER_ROLE, Studio's)")
            action.add_argument("--bucket", default=None, help="S3 bucket (default: the session's default bucket)")
    download = jobs.choices["download"]
    download.add_argument("--out", default=None, help="run folder (default: runs/<job>)")
    download.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    p.set_defaults(func=cmd_sagemaker)

    p = sub.add_parser("forgetting", help="catastrophic forgetting: single- vs multi-task fine-tuning")
    p.add_argument("--config", default="smoke", help="preset name or .yaml file")
    p.add_argument("--method", default="full", choices=METHODS, help="fine-tuning method to test")
    p.add_argument("--out", default=None, help="run folder (default: runs/forgetting-<timestamp>)")
    p.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    p.set_defaults(func=cmd_forgetting)
    return parser


def _terminate(signum: int, frame) -> None:
    """SIGTERM (docker stop, a spot reclaim) outside training: unwind like Ctrl-C, so run folders are cleaned."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    log.setLevel(logging.INFO)
    if not args.verbose:
        import datasets
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars on every model load
        datasets.disable_progress_bars()  # "Map" and "Tokenising" bars on every data preparation
    previous = signal.signal(signal.SIGTERM, _terminate)
    say = print if os.environ.get("RANK", "0") == "0" else lambda *a, **k: None  # one voice under torchrun
    try:
        args.func(args)
    except UserError as err:
        if args.verbose:
            raise
        say(f"dialogsum-lab: error: {err}", file=sys.stderr)
        return 2
    except Interrupted as stop:
        say(f"dialogsum-lab: {stop}", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:
        say("dialogsum-lab: interrupted.", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
