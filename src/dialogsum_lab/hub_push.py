"""Publishing a finished run on the Hugging Face Hub: `dialogsum-lab push RUN --repo-id NAME/REPO`.

What goes up is decided before any call and listed by `--dry-run` (`upload_plan`): the adapter or model with
its tokenizer at the repository's top, where `from_pretrained(repo_id)` looks; the card, rendered with the
repository's name; `training_set.json` beside the model, so that `evaluate` on a downloaded copy still refuses
dialogues it trained on; in `run/`, the run's settings and records and each evaluation's scores and settings
(kept apart, so a downloaded copy is a model folder, not an unfinished run). Never checkpoints,
locks, staging folders, predictions, or pickles (`training_args.bin`: `config.yaml` holds the settings). One
commit (`HfApi.create_commit`) into a repository created if missing. The token is `HF_TOKEN` or the one
`hf auth login` stored, handed to `huggingface_hub` and never printed or written.
"""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dialogsum_lab.config import EVAL_CONFIG
from dialogsum_lab.errors import UserError
from dialogsum_lab.files import own_file, read_json
from dialogsum_lab.model_card import render_card
from dialogsum_lab.reporting import stale_weights
from dialogsum_lab.runs import RunLayout

RECORDS = "run"  # the repository's folder for the run's own files
RUN_FILES = (RunLayout.CONFIG, RunLayout.TRAIN_METRICS, RunLayout.TRAINER_STATE, RunLayout.HISTORY,
             RunLayout.LOSS_CURVE)
EVALUATION_FILES = (RunLayout.METRICS, EVAL_CONFIG)
# In a model folder: peft's template card (the run's card replaces it) and the Trainer's pickled arguments.
MODEL_FILES_LEFT_OUT = {"README.md", "training_args.bin"}


@dataclass(frozen=True)
class Upload:
    """One commit: the card's text and every other file, by its path in the repository."""

    card: str
    files: dict[str, Path]

    def listing(self) -> list[str]:
        sizes = {RunLayout.CARD: len(self.card.encode())} | {k: v.stat().st_size for k, v in self.files.items()}
        return [f"{path}  ({size:,} bytes)" for path, size in sorted(sizes.items())]


def check_publishable(run: Path) -> None:
    """One line when a run is not fit to publish: unfinished, never evaluated, scored on weights it no longer
    holds, or scored on dialogues it trained on."""
    layout = RunLayout.of(run)
    if not (layout.file(RunLayout.CONFIG).is_file() and layout.finished() and layout.model.is_dir()):
        raise UserError(f"{run} is not a finished training run (no train_metrics.json or model/). Finish it "
                        f"(dialogsum-lab train --resume --out {run}) before pushing it.")
    evaluations = layout.evaluations()
    if not evaluations:
        raise UserError(f"{run} has not been evaluated, so its card would have no results. Evaluate it first: "
                        f"dialogsum-lab evaluate {run}")
    for folder in evaluations:
        metrics = read_json(folder / RunLayout.METRICS)
        if stale_weights(metrics, folder):
            raise UserError(f"{folder} scored weights that {run} no longer holds (trained further since). Evaluate "
                            f"again (dialogsum-lab evaluate {run} --overwrite), then push.")
        overlap = metrics.get("training_overlap", {})
        if not overlap.get("checked") or overlap.get("trained_on", 0) > overlap.get("excluded", 0):
            why = (f"{overlap['trained_on'] - overlap.get('excluded', 0)} of its dialogues are ones the run trained on"
                   if overlap.get("checked") else f"it was not checked against the training data "
                   f"({overlap.get('reason', 'evaluated before the check existed')})")
            raise UserError(f"{folder} cannot go on a card: {why}. Evaluate on unseen dialogues (dialogsum-lab "
                            f"evaluate {run} --overwrite, with --unseen-only if needed), then push.")


def upload_plan(run: Path, repo_id: str, model: Path | None = None, merge_check: dict | None = None) -> Upload:
    """What `push` would upload: the run's own model folder, or `model` (a merged one) instead."""
    layout = RunLayout.of(run)
    folder = model or layout.model
    files = {f.name: f for f in sorted(folder.iterdir()) if f.name not in MODEL_FILES_LEFT_OUT
             and not f.name.startswith(".") and (f.is_file() or f.is_symlink())}
    files |= {RunLayout.TRAINING_SET: layout.file(RunLayout.TRAINING_SET)}  # checked present by check_publishable
    files |= {f"{RECORDS}/{name}": layout.file(name) for name in RUN_FILES if layout.file(name).is_file()}
    for evaluation in layout.evaluations():
        files |= {f"{RECORDS}/{evaluation.name}/{name}": evaluation / name for name in EVALUATION_FILES
                  if (evaluation / name).is_file() or (evaluation / name).is_symlink()}
    for path in files.values():  # every file from inside the run (or the merged model's folder), no link out of it
        own_file(path, model if model is not None and path.parent == model else run)
    return Upload(render_card(layout, repo_id, merge_check=merge_check), files)


def push(run: str | Path, repo_id: str, *, private: bool = False, merged: bool = False, dry_run: bool = False,
         endpoint: str | None = None) -> list[str] | str:
    """Check the run, then list (`dry_run`: the files and their sizes) or upload it as one commit (returns the
    commit's URL)."""
    run = Path(run)
    _check_repo_id(repo_id)
    check_publishable(run)
    with _model_to_publish(run, merged) as (model, check):
        plan = upload_plan(run, repo_id, model, check)
        if dry_run:
            return plan.listing()
        return _upload(plan, repo_id, private, endpoint)


@contextmanager
def _model_to_publish(run: Path, merged: bool) -> Iterator[tuple[Path | None, dict | None]]:
    """The run's own model folder, or (`merged`) its LoRA/IA3 adapter merged into the base in a temporary
    folder, refused when the merged model's summaries differ from the adapter's."""
    if not merged:
        yield None, None
        return
    from dialogsum_lab.merging import merge_adapter

    with tempfile.TemporaryDirectory(prefix="dialogsum-merged-") as folder:
        check = merge_adapter(str(run), folder, device="cpu")
        if not check["summaries_identical"]:
            raise UserError(f"the merged model's summaries differ from the adapter's on {check['summaries_differing']} "
                            f"of {check['dialogues_checked']} dialogues, so the card's scores would not be its own. "
                            "Push the adapter (without --merged).")
        yield Path(folder), check


def _check_repo_id(repo_id: str) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise UserError(f"--repo-id {repo_id!r} is not a Hub repository name ({err}). Use NAME/REPO, e.g. "
                        "your-name/flan-t5-base-dialogsum-lora.") from err
    if repo_id.count("/") != 1:
        raise UserError(f"--repo-id {repo_id!r} needs its owner: NAME/REPO (your user or organisation name).")


def _token() -> str:
    from huggingface_hub import get_token

    token = os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise UserError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with write access), "
                        "then push again.")
    return token


def _upload(plan: Upload, repo_id: str, private: bool, endpoint: str | None) -> str:
    import httpx
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.constants import is_offline_mode
    from huggingface_hub.errors import HfHubHTTPError

    if is_offline_mode():
        raise UserError("HF_HUB_OFFLINE is set, so nothing may reach the Hub: unset it to push (or list the upload "
                        "with --dry-run).")
    api = HfApi(endpoint=endpoint, token=_token())
    operations = [CommitOperationAdd(RunLayout.CARD, plan.card.encode())] + [
        CommitOperationAdd(path, str(local)) for path, local in sorted(plan.files.items())]
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.create_commit(repo_id, operations, commit_message="Upload a dialogsum-lab run (model, card, "
                                                                       "settings, metrics)")
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        hint = {401: "the token was refused: log in again (hf auth login) or set a valid HF_TOKEN",
                403: f"the token may not write to {repo_id}: use a write token, or a NAME you own"}.get(
                    status, "check the name, your connection and the Hub's status")
        raise UserError(f"the Hub refused the upload to {repo_id} (HTTP {status}): {hint}.") from err
    except RuntimeError as err:  # a file's LFS upload failed (huggingface_hub wraps the HTTP error)
        raise UserError(f"the upload to {repo_id} failed ({' '.join(str(err).split())} "
                        f"{' '.join(str(err.__cause__).split())[:200]}). Push again.") from err
    except ValueError as err:  # the Hub checked the card's metadata and refused it
        raise UserError(f"the Hub refused the card of {repo_id}: {' '.join(str(err).split())}.") from err
    except (OSError, httpx.HTTPError) as err:
        raise UserError(f"could not reach the Hub ({type(err).__name__}): check your connection, then push "
                        "again.") from err
    return commit.commit_url
