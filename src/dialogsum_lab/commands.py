"""What each `dialogsum-lab` command does, given its parsed options (`cli.py` builds the options and runs
these). Each imports what it needs when it runs, so building the parser stays light."""

import argparse
import dataclasses
import logging
import tempfile
from pathlib import Path

from dialogsum_lab.config import TRAIN_CONFIG, EvalConfig, TrainConfig
from dialogsum_lab.errors import UserError
from dialogsum_lab.preset import Preset
from dialogsum_lab.runs import RunLayout, check_run_dir, run_folder, run_path

log = logging.getLogger("dialogsum_lab")


def _evaluation_config(args: argparse.Namespace, run: str | Path | None = None) -> EvalConfig:
    """Defaults, then the preset's evaluate block (--config), then the training run's settings, then options."""
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(EvalConfig) if hasattr(args, f.name)}
    return Preset.load(getattr(args, "config", None)).eval_config(run, overrides)


def cmd_zero_shot(args: argparse.Namespace) -> None:
    """Score the model as it is, with the lab's instruction prompt and no training."""
    from dialogsum_lab.modeling import model_note

    model = args.model or Preset.load(args.config).model
    if model_note(model):
        log.warning(model_note(model))
    _evaluate(args, model, "zero-shot", args.out, "zero-shot", _evaluation_config(args))


def cmd_baseline(args: argparse.Namespace) -> None:
    """Score a baseline that nobody trained, as an evaluation folder like any run's."""
    from dialogsum_lab.baselines import Baseline, run_baseline

    baseline = Baseline(args.kind, args.turns, args.train_data, args.train_split)
    config = _evaluation_config(args)
    out, metrics = run_baseline(baseline, config, args.out, args.overwrite)
    _report(metrics, out, f"{baseline.name} on {config.data}[{config.split}]: ")


def cmd_score(args: argparse.Namespace) -> None:
    """Score summaries made elsewhere against the split's references."""
    from dialogsum_lab.evaluation import load_eval_split, read_predictions, write_results

    config = _evaluation_config(args)
    out = run_path(args.out, "score")
    check_run_dir(out, args.overwrite)
    data = load_eval_split(config)[0]
    predictions = read_predictions(args.predictions, data)
    with run_folder(out, args.overwrite) as folder:
        metrics = write_results(folder, data, predictions, config, {"system": Path(args.predictions).stem,
                                                                    "predictions_file": str(args.predictions)})
    _report(metrics, out, f"{args.predictions} on {config.data}[{config.split}]: ")


def cmd_summarize(args: argparse.Namespace) -> None:
    """Summaries for dialogues with or without human ones: predictions.jsonl, nothing scored."""
    from dialogsum_lab.evaluation import run_summaries

    if bool(args.model) == bool(args.run):
        raise UserError("summarize needs one of --model M (a model, an adapter folder or a Hub id) or --run RUN "
                        "(a training run, with its own prompt and lengths).")
    path = args.run or args.model
    config = _evaluation_config(args, run=args.run)
    out, rows = run_summaries(path, config, args.out, overwrite=args.overwrite, adapter=args.adapter, base=args.base)
    for row in rows[:3]:
        print(f"{row['id']}: {row['summary']}")
    cut = sum(not r["finished"] for r in rows)
    print(f"\nWrote {len(rows)} summaries to {out / 'predictions.jsonl'}" + (
        f" ({cut} stopped at --max-new-tokens {config.max_new_tokens})" if cut else ""))


def cmd_train(args: argparse.Namespace) -> None:
    """Fine-tune one method from a preset, with command-line overrides."""
    from dialogsum_lab.job_env import with_job_data
    from dialogsum_lab.resuming import resume
    from dialogsum_lab.training import train

    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    if args.resume:
        if not args.out:
            raise UserError("--resume needs --out RUN_DIR: the run folder to continue.")
        resume(args.out, overrides)
        return
    method = overrides.pop("method", TrainConfig.method)
    overrides = with_job_data(overrides)  # inside a SageMaker job without --data: its channels
    train(Preset.load(args.config).train_config(method, overrides), args.out, args.overwrite)


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Evaluate a training run, an adapter, or any model, loaded fresh."""
    path = Path(args.path)
    config = _evaluation_config(args, run=path)
    default_out = RunLayout.of(path).evaluation(config.split) if (path / TRAIN_CONFIG).is_file() else None
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
    from dialogsum_lab.merging import merge_adapter

    out = Path(args.out or Path(args.path) / "merged")
    with run_folder(out, args.overwrite) as folder:
        check = merge_adapter(args.path, folder, args.base, device=args.device)
    agree = "identical" if check["summaries_identical"] else "DIFFERENT"
    print(f"Merged model saved to {out}. Summaries {agree}; max |logit difference| "
          f"{check['max_abs_logit_difference']:.2e} (details in merge_check.json).")


def cmd_compare(args: argparse.Namespace) -> None:
    """One table, chart, significance test and side-by-side view across runs."""
    from dialogsum_lab.baselines import with_baselines
    from dialogsum_lab.reporting import compare_runs

    out = run_path(args.out, "compare")
    with run_folder(out, args.overwrite) as folder:
        runs = with_baselines(args.runs, folder / "baselines") if args.baselines else args.runs
        report = compare_runs(runs, folder, args.example, args.view, args.bootstrap_samples)
    print(report)
    print(f"Wrote comparison.md, comparison.csv, significance.csv, rouge_bars.png, side_by_side.md to {out}")


def cmd_demo(args: argparse.Namespace) -> None:
    from dialogsum_lab.experiments import run_demo

    run_demo(Preset.load(args.config, model=args.model, data=args.data), args.out, args.methods, args.overwrite)


def cmd_review(args: argparse.Namespace) -> None:
    """Serve the human-evaluation app until interrupted."""
    from dialogsum_lab.review import load_review
    from dialogsum_lab.review_app import serve

    try:
        import gradio  # noqa: F401  (the review extra)
    except ImportError as err:
        raise UserError("the review app needs Gradio: pip install -e '.[review]' (make setup installs it).") from err
    review = load_review(args.runs, args.dialogues, reference=not args.no_reference)
    serve(review, args.db, host=args.host, port=args.port, token=args.token, root_path=args.root_path)


def cmd_review_report(args: argparse.Namespace) -> None:
    """Print what a review's judgments say; with --csv, write them all."""
    from dialogsum_lab.review import judgments_csv, report, report_text
    from dialogsum_lab.review_store import ReviewStore

    if args.csv and Path(args.csv).is_dir():
        raise UserError(f"--csv {args.csv} is a folder: name a file, e.g. --csv {Path(args.csv) / 'judgments.csv'}")
    store = ReviewStore.existing(args.db)
    print(report_text(report(store)))
    if args.csv:
        from dialogsum_lab.runs import write_text

        try:
            write_text(args.csv, judgments_csv(store))
        except OSError as err:
            raise UserError(f"cannot write --csv {args.csv} ({err.strerror}): name a file in a folder you can "
                            "write to.") from err
        print(f"Wrote every judgment to {args.csv}")


def cmd_push(args: argparse.Namespace) -> None:
    """Publish a run on the Hub: the model or adapter, its card, settings and metrics, in one commit."""
    from dialogsum_lab.hub_push import push

    done = push(args.run, args.repo_id, private=args.private, merged=args.merged, dry_run=args.dry_run)
    if args.dry_run:
        print(f"Would upload to {args.repo_id} ({'private' if args.private else 'public'}), one commit:")
        print("\n".join(f"  {line}" for line in done))
    else:
        print(f"Pushed {args.run} to {args.repo_id}: {done}")


def cmd_forgetting(args: argparse.Namespace) -> None:
    from dialogsum_lab.experiments import FORGETTING_TASKS, run_forgetting
    from dialogsum_lab.reporting import markdown_table

    table = run_forgetting(args.config, args.out, args.method, args.overwrite)
    which = "; ".join(f"{task}: {role}" for task, role in FORGETTING_TASKS.items())
    print(f"\nROUGE-L on each task before and after {args.method} fine-tuning, equal optimiser steps ({which}):\n"
          f"{markdown_table(table)}\nTests, prompts and answers: forgetting.md in the run folder.")


def cmd_sagemaker(args: argparse.Namespace) -> None:
    """Launch `dialogsum-lab train` as a SageMaker training job, watch it, fetch its results."""
    try:
        import boto3
        import sagemaker  # noqa: F401  (the optional extra)
    except ImportError as err:
        from dialogsum_lab.sagemaker_launch import SDK_MISSING

        raise UserError(f"{SDK_MISSING} ({err.name} is missing).") from err
    from dialogsum_lab import sagemaker_launch as jobs

    if args.action == "launch":
        _launch(args, jobs)
        return
    if args.action in ("deploy", "invoke", "undeploy"):
        _endpoint(args)
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
    config = Preset.load(args.config).train_config(overrides.pop("method", TrainConfig.method), overrides)
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


def _endpoint(args: argparse.Namespace) -> None:
    """`sagemaker deploy | invoke | undeploy`."""
    import boto3

    from dialogsum_lab import sagemaker_serve as serving

    client = boto3.client("sagemaker", region_name=args.region)
    if args.action == "undeploy":
        print("Deleted " + ", ".join(serving.undeploy(args.endpoint, client)) + ". Nothing of it bills any more.")
        return
    if args.action == "invoke":
        dialogues = [args.dialogue.replace("\\n", "\n")] if args.dialogue else _dialogues(args)
        summaries = serving.invoke(args.endpoint, dialogues, boto3.client("sagemaker-runtime", region_name=args.region))
        for number, summary in enumerate(summaries):
            print(f"{number}: {summary}")
        return
    _deploy(args, serving, client, boto3.client("s3", region_name=args.region))


def _dialogues(args: argparse.Namespace) -> list[str]:
    from dialogsum_lab.evaluation import split_to_use

    return list(split_to_use(EvalConfig(data=args.data, split=args.split, limit=args.limit))[0]["dialogue"])


def _deploy(args: argparse.Namespace, serving, client, s3) -> None:
    from dialogsum_lab.sagemaker_launch import session_defaults

    session, role, bucket = session_defaults(args.region, args.role, args.bucket)
    with tempfile.TemporaryDirectory(prefix="dialogsum-endpoint-") as work:
        run = serving.run_of(args.source, Path(work), client, s3)
        method = TrainConfig.load(RunLayout.of(run).file(RunLayout.CONFIG)).method
        spec = serving.endpoint_spec(method, instance_type=args.instance_type, instance_count=args.instance_count,
                                     role=role, bucket=bucket, region=session.boto_region_name, prefix=args.prefix,
                                     image_uri=args.image_uri, name=args.name)
        print(f"Deploying {args.source} as endpoint {spec.name}: {spec.instance_count} x {spec.instance_type}, "
              f"billed per instance-hour until `dialogsum-lab sagemaker undeploy {spec.name}`.")
        serving.deploy(spec, serving.serving_archive(run, Path(work)), client, s3, wait=not args.no_wait)
    print(f"Endpoint {spec.name} {'created' if args.no_wait else 'in service'}. Call it: dialogsum-lab sagemaker "
          f"invoke {spec.name} --dialogue TEXT; remove it: dialogsum-lab sagemaker undeploy {spec.name}")


def _report(metrics: dict, out: Path, title: str) -> None:
    from dialogsum_lab.reporting import details_line, rouge_table

    print(rouge_table(metrics, title))
    if "details" in metrics:
        print(details_line(metrics))
    print(f"\nWrote {out / 'predictions.jsonl'} and {out / 'metrics.json'}")
