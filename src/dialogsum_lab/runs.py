"""Run folders and atomic writes: a crash or a mistake never leaves half a file or eats a result."""

import json
import os
import tempfile
import time
from pathlib import Path

import yaml

from dialogsum_lab.errors import UserError


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def prepare_run_dir(out: str | Path | None, prefix: str, overwrite: bool = False) -> Path:
    """`out`, or `runs/<prefix>-<timestamp>`; an existing non-empty folder needs `overwrite`."""
    path = Path(out) if out else Path("runs") / f"{prefix}-{timestamp()}"
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is a file, not a run folder. Choose another --out.")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise UserError(f"{path} already holds results. Choose another --out, or pass --overwrite to replace them.")
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write through a temporary file in the same folder and rename it into place (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
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
