"""Run folders and atomic writes: a crash or a mistake never leaves half a file or eats a result."""

import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from dialogsum_lab.config import TRAIN_CONFIG
from dialogsum_lab.errors import UserError
from dialogsum_lab.files import DamagedFile, check_checkpoint


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


@dataclass(frozen=True)
class RunLayout:
    """The one owner of a run folder's names: its settings, metrics, plots and records at the top, the model
    or adapter in `model/`, checkpoints in `checkpoints/`, each evaluation in `eval-<split>/` (a SageMaker job
    places the model and checkpoints elsewhere: `job_env.job_layout`). Every module, benchmark and notebook asks
    it for a path instead of spelling one."""

    root: Path
    model: Path
    checkpoints: Path

    CONFIG = TRAIN_CONFIG  # the run's TrainConfig
    TRAIN_METRICS = "train_metrics.json"
    TRAINER_STATE = "trainer_state.json"
    LOSS_CURVE = "loss_curve.png"
    TRAINING_SET = "training_set.json"  # what it trained on (training_data.py)
    HISTORY = "history.json"  # what each resume changed (resuming.py)
    CARD = "README.md"  # the model card, in the Hub's format (model_card.py)
    METRICS = "metrics.json"  # in an evaluation folder: the scores (evaluation.py)
    PREDICTIONS = "predictions.jsonl"  # and what was scored, a row per dialogue

    @classmethod
    def of(cls, root: str | Path) -> "RunLayout":
        root = Path(root)
        return cls(root, root / "model", root / "checkpoints")

    def file(self, name: str) -> Path:
        return self.root / name

    def evaluation(self, split: str) -> Path:
        """Where `evaluate RUN --split SPLIT` writes."""
        return self.root / f"eval-{split}"

    def evaluations(self) -> list[Path]:
        """Every evaluation folder the run holds, test first."""
        found = sorted(p.parent for p in self.root.glob("eval-*/metrics.json"))
        return sorted(found, key=lambda p: p.name != "eval-test")

    def finished(self) -> bool:
        return self.file(self.TRAIN_METRICS).is_file()


def checkpoints_newest_first(folder: Path) -> list[Path]:
    """A run's `checkpoint-N` folders, by step, newest first."""
    found = [p for p in folder.glob("checkpoint-*") if p.name.rsplit("-", 1)[1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.rsplit("-", 1)[1]), reverse=True)


def last_complete_checkpoint(folder: Path, say: Callable[[str], None] = print) -> str | None:
    """The newest checkpoint whose every file is whole. A process killed while saving leaves a partial newest
    checkpoint, and a disk can damage one: each skipped checkpoint is said, with the one used instead."""
    skipped = []
    for checkpoint in checkpoints_newest_first(folder):
        try:
            check_checkpoint(checkpoint)
        except DamagedFile as err:
            skipped.append(f"{checkpoint.name} ({err.file.name}: {err.why})")
            continue
        if skipped:
            say(f"Skipping the damaged or unfinished {', '.join(skipped)}; resuming from {checkpoint.name}.")
        return str(checkpoint)
    return None


def run_path(out: str | Path | None, prefix: str) -> Path:
    """`out`, or `runs/<prefix>-<timestamp>`."""
    return Path(out) if out else Path("runs") / f"{prefix}-{timestamp()}"


def check_run_dir(path: Path, overwrite: bool = False) -> None:
    """Refuse, before any work starts: a file or the folder you are in as a run folder, a place that cannot be
    written, or a folder holding results (unless `overwrite`)."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is a file, not a run folder. Choose another --out.")
    real = path.resolve()
    if real == Path.cwd().resolve() or real in Path.cwd().resolve().parents:
        raise UserError(f"--out {path} is the folder you are working in (or holds it), which a run can never replace. "
                        "Choose a new folder, e.g. --out runs/NAME.")
    check_writable(real.parent if not real.exists() else real)
    if _holds_files(path) and not overwrite:
        raise UserError(f"{path} already holds results.{_what_is_there(path)} pass --overwrite to replace them.")


def _what_is_there(path: Path) -> str:
    """What an unfinished training run in `path` can become; the same words `resume` uses."""
    if not (path / "config.yaml").is_file() or (path / "train_metrics.json").exists():
        return " Choose another --out, or"
    if last_complete_checkpoint(path / "checkpoints", say=lambda message: None):
        return (f" It holds an unfinished training run: continue it with `dialogsum-lab train --resume --out {path}`, "
                "or")
    return " It holds a training run that stopped before its first checkpoint, so there is nothing to resume:"


def check_writable(folder: Path) -> None:
    """One line now, rather than a traceback after the work, when `folder` (or the nearest folder above it that
    exists, where it would be made) cannot be written: read-only file system, no permission."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as err:
        raise UserError(f"cannot write in {existing} ({err.strerror}). Choose an --out on a writable disk (or, for the "
                        "model cache, set DIALOGSUM_LAB_CACHE to a writable folder).") from err


@contextmanager
def run_folder(path: Path, overwrite: bool = False,
               keep_on_failure: Callable[[Path], bool] = lambda folder: False) -> Iterator[Path]:
    """The folder to write a run into; when the block succeeds, its results are at `path`.

    A new or empty `path` is written in place. Results already there are
    replaced only with `overwrite`, and only once the new run has succeeded: it
    is built in a hidden sibling folder and swapped in, so a failed run never
    mixes with, or destroys, the old one. On failure, what the run wrote is
    removed (unless `keep_on_failure` says it is worth keeping, such as a
    checkpoint to resume from), so a retry is never blocked. While the block
    runs, `path` is claimed: a second run into it is refused.
    """
    if path.is_symlink():  # replace what the link points at, and keep the link
        path = path.resolve()
    with claim(path):
        check_run_dir(path, overwrite)
        if _holds_files(path):
            yield from _replace(path)
        else:
            yield from _fill(path, keep_on_failure)


@contextmanager
def claim(path: Path) -> Iterator[None]:
    """Hold `path` for this process alone while the block runs: a second run into the same folder is refused.

    An advisory lock on a hidden sibling file; the system drops it if the process dies, so a killed run
    never blocks the next one. The lock file is removed when the block ends, so a lock is held only when the
    locked file is still the one at its path: a process that opened the file before it was removed finds it
    gone once it holds its lock, and tries the new one, where it meets whoever holds that.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.parent / f".{path.name}.lock"
    while True:
        handle = open(lock, "a")  # noqa: SIM115 (held across the block)
        _before_lock(handle)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            handle.close()
            raise UserError(f"another dialogsum-lab process is writing {path}. Wait for it to finish, or choose "
                            "another --out.") from err
        if _same_file(handle, lock):
            break
        handle.close()  # removed by its last holder while we waited: lock the file that is there now
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)  # while still holding it, so nobody can hold a removed file as the lock
        handle.close()


def _before_lock(handle) -> None:
    """Between opening the lock file and locking it (tests interleave a second claimer here)."""


def _same_file(handle, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


def run_folder_target(path: Path) -> Path:
    """The folder `run_folder(path, ...)` will hand out: `path` itself, or the staging folder that replaces it."""
    return path.parent / f".{path.name}.staging" if _holds_files(path) else path


def _replace(path: Path) -> Iterator[Path]:
    """Build in a hidden sibling folder; swap it in for `path` only on success."""
    staging = run_folder_target(path)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replaced = path.parent / f".{path.name}.replaced"
    shutil.rmtree(replaced, ignore_errors=True)
    path.rename(replaced)
    staging.rename(path)
    shutil.rmtree(replaced)


def _fill(path: Path, keep_on_failure: Callable[[Path], bool]) -> Iterator[Path]:
    """Write in place; on failure remove what was written (the folder too, if this run made it)."""
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    except BaseException:
        if not keep_on_failure(path):
            shutil.rmtree(path)
            if not created:
                path.mkdir()  # the user's empty folder stays as it was
        raise


def _holds_files(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Files written through a temporary file get the permissions of any other new file (mkstemp makes them 0600).
FILE_MODE = 0o666 & ~_umask()


def share_files(folder: str | Path) -> None:
    """Give files that libraries wrote privately (safetensors' weights are 0600) the permissions of every other
    file here, so a run folder is readable as a whole (a shared machine, a container's other user)."""
    for file in Path(folder).rglob("*"):
        if file.is_file() and not file.is_symlink():
            file.chmod(FILE_MODE)


def write_text(path: str | Path, text: str) -> Path:
    """Write through a temporary file in the same folder and rename it into place (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.fchmod(fd, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_jsonl(path: str | Path, rows) -> Path:
    return write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def write_yaml(path: str | Path, obj) -> Path:
    return write_text(path, yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))


def save_figure(fig, path: str | Path) -> Path:
    """Save a matplotlib figure atomically (same temporary-file-and-rename as the text writers)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)  # saved, not shown: notebooks display only the figures they ask for
    return path
