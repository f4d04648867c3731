"""Reading what a run, a user or a library wrote, through one checked path each.

JSON, JSON Lines, YAML settings, safetensors weights, torch state files, and model, tokenizer, adapter and
checkpoint folders. A missing, truncated or damaged file ends in one line naming the file and the fix
(a `UserError`), never a library's traceback, and nothing else is touched.
"""

import functools
import hashlib
import json
import os
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import yaml

from dialogsum_lab.errors import UserError

# What a model folder saved with `save_pretrained` needs, and what a PEFT adapter folder needs.
TOKENIZER_FILES = ("tokenizer.json", "spiece.model", "tokenizer_config.json")
WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "*.bin", "*.bin.index.json")


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # a byte-order mark, as Windows tools write, is no error
    except FileNotFoundError as err:
        raise UserError(f"{path} does not exist. Is this a folder written by dialogsum-lab?") from err
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path} cannot be read ({err}). Check its permissions, or make it again.") from err


def read_json(path: str | Path, kind: type = dict):
    """A JSON document of the expected kind (an object by default)."""
    path = Path(path)
    try:
        value = json.loads(_text(path))
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is damaged: not valid JSON ({err}). Make it again (or restore it).") from err
    if not isinstance(value, kind):
        raise UserError(f"{path} is damaged: expected a JSON {kind.__name__}, found a {type(value).__name__}. "
                        "Make it again (or restore it).")
    return value


def read_jsonl(path: str | Path) -> list[dict]:
    """JSON Lines, one object a line; blank lines skipped."""
    path = Path(path)
    rows = []
    for number, line in enumerate(_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}, line {number}: malformed JSON ({err.msg}). Fix or delete that line.") from err
        if not isinstance(row, dict):
            raise UserError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}.")
        rows.append(row)
    return rows


def read_yaml(path: str | Path, required: bool = False) -> dict:
    """A YAML mapping of settings. `required`: an empty file is damage (a run's own settings), not defaults."""
    path = Path(path)
    try:
        values = yaml.safe_load(_text(path))
    except yaml.YAMLError as err:
        raise UserError(f"cannot read config {path}: {' '.join(str(err).split())}") from err
    if values is None and not required:
        return {}
    if not isinstance(values, dict) or (required and not values):
        found = "nothing" if not values else f"a {type(values).__name__}"
        raise UserError(f"{path} is damaged or empty: expected a mapping of settings, found {found}. "
                        "Restore it, or make the run again.")
    return values


def check_safetensors(path: Path) -> None:
    """A safetensors file whose header is whole and whose tensors all lie inside the file."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            length = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(length)) if 0 < length <= size - 8 else None
    except (OSError, struct.error, ValueError) as err:
        raise _damaged(path, err) from err
    if not isinstance(header, dict):
        raise _damaged(path, "its header is cut off or not JSON")
    ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
    if 8 + length + max(ends, default=0) > size:
        raise _damaged(path, f"it is {size} bytes, shorter than its tensors need (truncated)")


def check_torch_state(path: Path) -> None:
    """A torch state file (optimizer.pt, scheduler.pt, rng_state.pth) that is a whole torch archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile) as err:
        raise _damaged(path, f"not a whole torch file ({err})") from err
    if bad is not None:
        raise _damaged(path, f"its part {bad} is corrupt")


class DamagedFile(UserError):
    """A file that is there but cut off or corrupt; `file` and `why` say which and how."""

    def __init__(self, file: Path, why) -> None:
        super().__init__(f"{file} is damaged ({why}). Restore it or make it again; if it is in a checkpoint, remove "
                         "that checkpoint folder to resume from the one before.")
        self.file, self.why = file, str(why)


def _damaged(path: Path, why) -> DamagedFile:
    return DamagedFile(path, why)


def check_model_folder(path: Path) -> None:
    """A local folder saved with `save_pretrained` (model and tokenizer), with whole weights; names what lacks."""
    missing = [] if (path / "config.json").is_file() else ["config.json"]
    weights = [f for pattern in WEIGHT_PATTERNS for f in path.glob(pattern)]
    if not weights:
        missing.append("weights (model.safetensors)")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        missing.append("a tokenizer (tokenizer.json or spiece.model)")
    if missing:
        raise UserError(f"model folder {path} lacks {', '.join(missing)}: it is incomplete. Copy it again, or save "
                        "it whole with save_pretrained (model and tokenizer).")
    for file in weights:
        if file.suffix == ".safetensors":
            check_safetensors(file)


def check_adapter_folder(path: Path) -> dict:
    """A PEFT adapter folder: its config (returned) and whole weights."""
    config = read_json(path / "adapter_config.json")
    weights = path / "adapter_model.safetensors"
    if not weights.is_file():
        raise UserError(f"adapter folder {path} lacks adapter_model.safetensors: it is incomplete. Copy it again.")
    check_safetensors(weights)
    return config


def check_checkpoint(folder: Path) -> None:
    """Every file a Trainer checkpoint resumes from, whole: its state, weights, optimizer, scheduler, random state.
    The Trainer writes trainer_state.json last, so without it the checkpoint is unfinished."""
    if not (folder / "trainer_state.json").is_file():
        raise DamagedFile(folder / "trainer_state.json", "missing: the checkpoint was never finished")
    try:
        read_json(folder / "trainer_state.json")
    except UserError as err:
        raise DamagedFile(folder / "trainer_state.json", "not valid JSON") from err
    for file in sorted(folder.iterdir()):
        if file.suffix == ".safetensors":
            check_safetensors(file)
        elif file.suffix in (".pt", ".pth"):
            check_torch_state(file)


def is_pickle_refusal(err: Exception) -> bool:
    """torch's safe loader refusing pickled code (as opposed to a damaged file)."""
    return isinstance(err, pickle.UnpicklingError) and "Weights only load failed" in str(err)


def own_file(path: Path, folder: Path) -> Path:
    """`path`, when it is a regular file inside `folder` once every link is followed; else one line naming it.
    What a command publishes from a run must be the run's own: a link to a key or a credentials file, under a
    run file's name, would otherwise go up in its place."""
    real, home = path.resolve(), folder.resolve()
    if not real.is_relative_to(home):
        raise UserError(f"{path} is a link that leads out of {folder} (to {real}). Nothing was published: replace "
                        "the link with the file itself, or remove it.")
    if not real.is_file():
        raise UserError(f"{path} is not a regular file. Nothing was published: remove it from {folder}.")
    return path


def weights_fingerprint(folder: str | Path) -> str | None:
    """A hash of the weights and configs saved in a model or adapter folder (None when it is no local folder):
    what an evaluation scored, so that one made before further training is known to be stale. Asked several
    times of one folder (evaluate, its card, compare, push), the files are read once while none has changed."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    names = ("*.safetensors", "*.bin", "config.json", "adapter_config.json")
    files = sorted(found for pattern in names for found in folder.glob(pattern))
    return _digest(tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))


@functools.lru_cache(maxsize=64)
def _digest(files: tuple[tuple[str, int, int], ...]) -> str:
    """The hash of these files (path, size, modification time: a rewritten file is a new key)."""
    digest = hashlib.sha256()
    for path, _, _ in files:
        digest.update(Path(path).name.encode())
        with open(path, "rb") as stream:
            while block := stream.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()[:16]


def unpack_archive(archive: tarfile.TarFile, folder: Path, name: str) -> list[Path]:
    """Unpack a tar archive into `folder`, allowing regular files and folders only, each inside `folder`.

    Every member is checked before anything is written: a link (symbolic or hard), a device, an absolute path or
    one that climbs out with `..` refuses the whole archive in one line. Files are written by this function, not
    by `tarfile`'s extraction, so no Python release's extraction filter (CVE-2025-4517) is relied on; the
    archives this project makes hold only files and folders.
    """
    members = archive.getmembers()
    for member in members:
        path = PurePosixPath(member.name)
        why = ("a link" if member.issym() or member.islnk() else "not a regular file or folder"
               if not (member.isfile() or member.isdir()) else "an absolute path" if path.is_absolute()
               else "a path that climbs out of the folder" if ".." in path.parts else None)
        if why:
            raise UserError(f"{name} holds {member.name!r}, {why}: refused, nothing unpacked. Archives made by "
                            "dialogsum-lab hold only files and folders; check where this one came from.")
    root = folder.resolve()
    written = []
    for member in members:
        target = (root / member.name).resolve()
        if target != root and root not in target.parents:
            raise UserError(f"{name}: {member.name!r} would land outside {folder}: refused.")
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.extractfile(member) as source, open(target, "wb") as sink:
            while block := source.read(1 << 20):
                sink.write(block)
        written.append(target)
    return written
