"""The `dialogsum-lab` command: the notebooks' steps, headless.

Options are built from the typed configs (`TrainConfig`, `EvalConfig`) and
written in kebab-case (`--max-steps`); the snake_case spelling is accepted
too. Only `config` is imported to build them: each command imports what it
needs when it runs, so `--help` answers without loading PyTorch.
"""

import argparse
import dataclasses
import errno
import logging
import os
import signal
import sys
from typing import Literal, get_args, get_origin

from dialogsum_lab import commands
from dialogsum_lab.config import (
    BASELINE_KINDS,
    BASELINE_TURNS,
    BOOLEANS,
    BOOTSTRAP_SAMPLES,
    DEFAULT_MODEL,
    DEFAULT_PRESET,
    DEMO_METHODS,
    METHODS,
    MINIATURE_MODEL,
    PRESETS,
    REVIEW_DB,
    REVIEW_DIALOGUES,
    TINY_MODEL,
    VIEWS,
    EvalConfig,
    TrainConfig,
)
from dialogsum_lab.errors import Interrupted, Terminated, UserError

log = logging.getLogger("dialogsum_lab")

# EvalConfig settings that scoring ready-made predictions uses (no model, no generation).
SCORE_SETTINGS = ("data", "split", "limit", "task", "skip_invalid", "rouge_tokenizer", "bootstrap_samples",
                  "bootstrap_seed")
# EvalConfig settings that summarising uses (generation, no scoring).
SUMMARIZE_SETTINGS = ("data", "split", "limit", "task", "skip_invalid", "batch_size", "max_new_tokens",
                      "max_source_length", "compile", "prompt_template", "device", "dtype")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dialogsum-lab", description="Fine-tune FLAN-T5 on DialogSum (full, LoRA, "
                                     "soft prompts) and judge it with ROUGE: the notebooks' steps, headless.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show library logs and full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_zero_shot_parser, _baseline_parser, _score_parser, _summarize_parser, _train_parser,
                _evaluate_parser, _merge_parser, _compare_parser, _demo_parser, _review_parsers, _push_parser,
                _sagemaker_parser, _forgetting_parser):
        add(sub)
    return parser


def _preset_option(p: argparse.ArgumentParser, default: str | None, what: str) -> None:
    p.add_argument("--config", default=default, help=f"preset ({', '.join(PRESETS)}) or a .yaml file: {what}")


def _zero_shot_parser(sub) -> None:
    p = sub.add_parser("zero-shot", help="summarise a split with an untrained model and score it")
    p.add_argument("--model", default=None, help=f"Hub id (e.g. {DEFAULT_MODEL}), a local model folder, "
                                                 f"{MINIATURE_MODEL} or {TINY_MODEL} (default: the preset's)")
    _preset_option(p, DEFAULT_PRESET, "its model, data and evaluate block set defaults")
    _out_args(p, "zero-shot")
    _eval_options(p)
    p.set_defaults(func=commands.cmd_zero_shot)


def _baseline_parser(sub) -> None:
    p = sub.add_parser("baseline", help="score a system nobody trained (the first or longest turns, or the summary "
                                        "of the most similar training dialogue) like any run")
    p.add_argument("--kind", required=True, choices=BASELINE_KINDS, help="lead (first turns), longest (longest turns, "
                                                                "DialogSum's Longest-3) or retrieval (TF-IDF)")
    p.add_argument("--turns", type=int, default=BASELINE_TURNS, help="turns lead and longest keep")
    p.add_argument("--train-data", default=None, help="where retrieval looks summaries up (default: --data)")
    p.add_argument("--train-split", default="train", help="the split retrieval looks up (never the scored one)")
    _preset_option(p, DEFAULT_PRESET, "its data and evaluate block set defaults")
    _out_args(p, "baseline-<kind>")
    _eval_options(p, SCORE_SETTINGS)
    p.set_defaults(func=commands.cmd_baseline)


def _score_parser(sub) -> None:
    p = sub.add_parser("score", help="score summaries made elsewhere against a split's references")
    p.add_argument("--predictions", required=True, help=".jsonl with id and prediction, or .txt, one a line")
    _out_args(p, "score")
    _eval_options(p, SCORE_SETTINGS)
    p.set_defaults(func=commands.cmd_score)


def _summarize_parser(sub) -> None:
    p = sub.add_parser("summarize", help="summarise dialogues (with or without human summaries); nothing is scored")
    p.add_argument("--model", default=None, help=f"a model folder, adapter folder or Hub id (e.g. {DEFAULT_MODEL})")
    p.add_argument("--run", default=None, help="a training run folder: its model, prompt and source length")
    _adapter_options(p, "--model")
    _preset_option(p, None, "its evaluate block sets defaults")
    _out_args(p, "summarize")
    _eval_options(p, SUMMARIZE_SETTINGS)
    p.set_defaults(func=commands.cmd_summarize)


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help=f"fine-tune with one method ({', '.join(METHODS)})")
    _preset_option(p, DEFAULT_PRESET, "its train and methods blocks set the defaults")
    p.add_argument("--out", default=None, help="run folder (default: runs/train-<method>-<timestamp>)")
    p.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    _config_options(p)
    p.set_defaults(func=commands.cmd_train)


def _evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="generate and score with a training run, an adapter or a model")
    p.add_argument("path", help="training run folder, adapter folder, model folder or Hub id")
    _adapter_options(p, "PATH")
    _preset_option(p, None, "its evaluate block sets defaults")
    _out_args(p, "evaluate")
    _eval_options(p)
    p.set_defaults(func=commands.cmd_evaluate)


def _adapter_options(p: argparse.ArgumentParser, onto: str) -> None:
    p.add_argument("--adapter", default=None, help=f"PEFT adapter folder to put on the model in {onto}")
    p.add_argument("--base", default=None, help="base model for an adapter (default: the one it was trained on)")


def _merge_parser(sub) -> None:
    p = sub.add_parser("merge", help="merge a LoRA adapter into a standalone model and check they agree")
    p.add_argument("path", help="training run folder or adapter folder")
    p.add_argument("--base", default=None, help="base model (default: the one the adapter was trained on)")
    p.add_argument("--out", default=None, help="where to save the merged model (default: PATH/merged)")
    p.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1, ...")
    p.set_defaults(func=commands.cmd_merge)


def _compare_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare evaluated runs: table, chart, significance, side-by-side")
    p.add_argument("runs", nargs="+", help="evaluation or training run folders; the first is the baseline")
    p.add_argument("--view", default="mean_over_references", choices=VIEWS,
                   help="first_reference, mean_over_references (shown by default), best_reference, or course_lab "
                        "(the course's published view)")
    p.add_argument("--example", type=int, default=0, help="which example to show side by side")
    p.add_argument("--bootstrap-samples", type=int, default=BOOTSTRAP_SAMPLES, help="resamples for the paired tests")
    p.add_argument("--baselines", action="store_true", help="score lead-3, longest-3 and retrieval on the same "
                                                            "dialogues and show them beside the runs")
    _out_args(p, "compare")
    p.set_defaults(func=commands.cmd_compare)


def _demo_parser(sub) -> None:
    p = sub.add_parser("demo", help="the whole lab: zero-shot, three fine-tuning methods, comparison")
    p.add_argument("--config", default=DEFAULT_PRESET,
                   help="miniature (a small model on a synthetic world, offline, minutes), smoke (random toy model, "
                        "plumbing only), course (flan-t5-base on a CPU) or lab (flan-t5-base on a GPU)")
    p.add_argument("--model", default=None, help="base model instead of the preset's (e.g. a local flan-t5-base)")
    p.add_argument("--data", default=None, help="data source instead of the preset's (a local folder or file)")
    p.add_argument("--methods", nargs="+", default=list(DEMO_METHODS), choices=METHODS, help="methods to train")
    _out_args(p, "demo")
    p.set_defaults(func=commands.cmd_demo)


def _review_parsers(sub) -> None:
    p = sub.add_parser("review", help="human evaluation: a web app to try runs, rate them blind in pairs, and see "
                                      "the results (judgments in SQLite)")
    p.add_argument("runs", nargs="+", help="evaluated runs (training runs or evaluation folders), scored alike")
    p.add_argument("--db", default=REVIEW_DB, help="the judgments' database (created if missing; refused if made for "
                                                  "other runs)")
    p.add_argument("--dialogues", type=int, default=REVIEW_DIALOGUES, help="rate the first N dialogues the runs "
                                                                           "were scored on")
    p.add_argument("--no-reference", action="store_true", help="leave the human reference out of the pairs")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on; another than 127.0.0.1 (a classroom: "
                                                      "0.0.0.0) serves the Rate tab only, behind a token")
    p.add_argument("--port", type=int, default=7860, help="port to listen on")
    p.add_argument("--token", default=None, help="the shared access token (default: none on 127.0.0.1, a random "
                                                 "one on any other address)")
    p.add_argument("--root-path", default=None, help="the path a proxy serves the app under (SageMaker Studio: "
                                                     "/jupyter/default/proxy/7860)")
    p.set_defaults(func=commands.cmd_review)
    report = sub.add_parser("review-report", help="what a review's judgments say, headless (and --csv to export)")
    report.add_argument("--db", default=REVIEW_DB, help="the judgments' database")
    report.add_argument("--csv", default=None, help="also write every judgment to this CSV file")
    report.set_defaults(func=commands.cmd_review_report)


def _push_parser(sub) -> None:
    p = sub.add_parser("push", help="publish an evaluated run on the Hugging Face Hub, with its model card")
    p.add_argument("run", help="a finished, evaluated training run folder")
    p.add_argument("--repo-id", required=True, help="NAME/REPO on the Hub (created if missing)")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--merged", action="store_true", help="a LoRA or IA3 adapter merged into its base (a standalone "
                                                         "model), checked against the adapter first")
    p.add_argument("--dry-run", action="store_true", help="list what would go up, and upload nothing")
    p.set_defaults(func=commands.cmd_push)


def _sagemaker_parser(sub) -> None:
    p = sub.add_parser("sagemaker", help="SageMaker: training jobs (launch, status, logs, download) and real-time "
                                         "endpoints (deploy, invoke, undeploy); an optional extra")
    jobs = p.add_subparsers(dest="action", required=True)
    launch = jobs.add_parser("launch", help="ship the project and start `train` as a training job")
    _preset_option(launch, "lab", "the job's settings")
    launch.add_argument("--instance-type", default="ml.g5.xlarge", help="e.g. ml.g5.xlarge (1 GPU), ml.g5.12xlarge (4)")
    launch.add_argument("--instance-count", type=int, default=1, help="instances (several: torchrun across them)")
    launch.add_argument("--spot", action="store_true", help="managed spot training (checkpoints kept in S3)")
    launch.add_argument("--max-run", type=int, default=24 * 3600, help="seconds the job may train")
    launch.add_argument("--max-wait", type=int, default=None, help="seconds a spot job may wait and train (2x max-run)")
    launch.add_argument("--image-uri", default=None, help="training image (default: SageMaker's PyTorch image)")
    launch.add_argument("--no-wait", action="store_true", help="return once the job is created")
    launch.add_argument("--prefix", default="dialogsum-lab", help="S3 prefix for checkpoints, TensorBoard, output")
    launch.add_argument("--role", default=None, help="execution role ARN (default: SAGEMAKER_ROLE, Studio's)")
    launch.add_argument("--bucket", default=None, help="S3 bucket (default: the session's default bucket)")
    _config_options(launch)
    watching = [jobs.add_parser("status", help="a job's state"), jobs.add_parser("logs", help="a job's container log"),
                jobs.add_parser("download", help="a finished job's model and metrics as a run folder")]
    for action in watching:
        action.add_argument("job", help="training job name")
    for action in (launch, *watching):
        action.add_argument("--region", default=None, help="AWS region (default: AWS_DEFAULT_REGION, Studio's)")
    watching[2].add_argument("--out", default=None, help="run folder (default: runs/<job>)")
    watching[2].add_argument("--overwrite", action="store_true", help="replace results already in --out")
    _endpoint_parsers(jobs)
    p.set_defaults(func=commands.cmd_sagemaker)


def _endpoint_parsers(jobs) -> None:
    """`sagemaker deploy | invoke | undeploy`: a real-time endpoint for a run, called, and removed."""
    deploy = jobs.add_parser("deploy", help="serve a run (or a finished job) on a real-time endpoint (bills hourly)")
    deploy.add_argument("source", help="a training run folder, or a finished training job's name")
    deploy.add_argument("--instance-type", default="ml.m5.xlarge", help="ml.m5.xlarge (CPU) or e.g. ml.g5.xlarge (GPU)")
    deploy.add_argument("--instance-count", type=int, default=1, help="instances behind the endpoint")
    deploy.add_argument("--name", default=None, help="endpoint name (default: dialogsum-<method>-<timestamp>)")
    deploy.add_argument("--image-uri", default=None, help="inference image (default: SageMaker's PyTorch image)")
    deploy.add_argument("--no-wait", action="store_true", help="return once the endpoint is created")
    deploy.add_argument("--prefix", default="dialogsum-lab", help="S3 prefix for the model archive")
    deploy.add_argument("--role", default=None, help="execution role ARN (default: SAGEMAKER_ROLE, Studio's)")
    deploy.add_argument("--bucket", default=None, help="S3 bucket (default: the session's default bucket)")
    invoke = jobs.add_parser("invoke", help="summarise dialogues with a deployed endpoint")
    invoke.add_argument("endpoint", help="endpoint name")
    given = invoke.add_mutually_exclusive_group(required=True)
    given.add_argument("--dialogue", help="one dialogue's text (\\n between turns)")
    given.add_argument("--data", help="a data file or folder; its --split is summarised")
    invoke.add_argument("--split", default="test", help="split of --data (default: test)")
    invoke.add_argument("--limit", type=int, default=None, help="only the first N dialogues of --data")
    undeploy = jobs.add_parser("undeploy", help="delete an endpoint, its configuration and its model")
    undeploy.add_argument("endpoint", help="endpoint name")
    for action in (deploy, invoke, undeploy):
        action.add_argument("--region", default=None, help="AWS region (default: AWS_DEFAULT_REGION, Studio's)")


def _forgetting_parser(sub) -> None:
    p = sub.add_parser("forgetting", help="catastrophic forgetting: single- vs multi-task fine-tuning")
    _preset_option(p, DEFAULT_PRESET, "the fine-tuning and scoring settings")
    p.add_argument("--method", default="full", choices=METHODS, help="fine-tuning method to test")
    _out_args(p, "forgetting")
    p.set_defaults(func=commands.cmd_forgetting)


def _terminate(signum: int, frame) -> None:
    """SIGTERM (docker stop, a spot reclaim) outside training: unwind like Ctrl-C, so run folders are cleaned."""
    raise Terminated


# A file system that refuses a write: one line, not a traceback (the unfinished results are removed on the way out).
FILE_SYSTEM_ERRORS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
                      errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
                      errno.EPERM: "permission denied"}


KEPT = ("Nothing unfinished was kept (a training run keeps its complete checkpoints for --resume); results that "
        "were already there are as they were.")


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
        say(f"dialogsum-lab: interrupted. {KEPT}", file=sys.stderr)
        return 130
    except Terminated:
        say(f"dialogsum-lab: stopped by SIGTERM. {KEPT}", file=sys.stderr)
        return 128 + signal.SIGTERM
    except OSError as err:
        if err.errno not in FILE_SYSTEM_ERRORS or args.verbose:
            raise
        say(f"dialogsum-lab: error: could not write {err.filename or 'a file'}: {FILE_SYSTEM_ERRORS[err.errno]}. "
            f"{KEPT} Free space or choose a writable --out (or DIALOGSUM_LAB_CACHE), then run again.", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
