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

from dialogsum_lab.errors import UserError


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


@dataclass(frozen=True)
class RunLayout:
    """Where a training run's parts go: its folder (settings, metrics, plots) and, inside it, `model/` and
    `checkpoints/`, unless a SageMaker job places them elsewhere (`sagemaker_jobs.job_layout`)."""

    root: Path
    model: Path
    checkpoints: Path

    @classmethod
    def of(cls, root: Path) -> "RunLayout":
        return cls(root, root / "model", root / "checkpoints")


def run_path(out: str | Path | None, prefix: str) -> Path:
    """`out`, or `runs/<prefix>-<timestamp>`."""
    return Path(out) if out else Path("runs") / f"{prefix}-{timestamp()}"


def check_run_dir(path: Path, overwrite: bool = False) -> None:
    """Refuse a file, or a folder holding results, unless `overwrite` (before any work starts)."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is a file, not a run folder. Choose another --out.")
    if _holds_files(path) and not overwrite:
        resume = (f" It holds an unfinished training run: continue it with `dialogsum-lab train --resume --out "
                  f"{path}`, or" if (path / "checkpoints").is_dir() and not (path / "train_metrics.json").exists()
                  else " Choose another --out, or")
        raise UserError(f"{path} already holds results.{resume} pass --overwrite to replace them.")


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
    never blocks the next one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.parent / f".{path.name}.lock"
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise UserError(f"another dialogsum-lab process is writing {path}. Wait for it to finish, or choose "
                            "another --out.") from err
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)


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


def read_json(path: str | Path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise UserError(f"{path} does not exist. Is this a run folder written by dialogsum-lab?") from err
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON ({err}).") from err


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise UserError(f"{path}, line {number}: malformed JSON ({err.msg}). Fix or delete that line.") from err
    return rows
