"""The YAML presets in `configs/` (miniature, smoke, course, lab), read and checked once, handing out fully
resolved settings.

A preset has three blocks: `train` (settings shared by every method), `methods` (per-method overrides:
`full`, `lora`, `prompt_tuning`, ...) and `evaluate` (an `EvalConfig`: split, limit, generation and scoring
settings used after training). `Preset.train_config(method)` and `Preset.eval_config(run)` give the typed
settings, with their device and precision decided, that everything downstream reads.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from dialogsum_lab.config import (
    CHANNELS_SOURCE,
    CONFIG_DIR,
    DEFAULT_PRESET,
    METHODS,
    TRAIN_CONFIG,
    EvalConfig,
    TrainConfig,
)
from dialogsum_lab.errors import UserError
from dialogsum_lab.files import read_yaml

# Preset `train` settings that evaluation shares, and what a training run fixes about how it is evaluated
# (not its device: a run trained on a GPU box is often scored elsewhere).
PRESET_EVAL_SETTINGS = ("data", "max_source_length", "device")
RUN_EVAL_SETTINGS = ("data", "max_source_length")
BLOCKS = ("train", "methods", "evaluate")


@dataclass(frozen=True)
class Preset:
    """A preset's blocks, checked when it is made: unknown blocks, methods or settings are one error, and every
    method's settings and the evaluation's are built once, so a bad value fails here rather than mid-run."""

    name: str = "settings"
    train: dict = field(default_factory=dict)
    methods: dict = field(default_factory=dict)
    evaluate: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = sorted(set(self.methods) - set(METHODS)) + sorted(set(self.evaluate) - _EVAL_KEYS)
        if bad:
            raise UserError(f"{self.name}: unknown method or evaluate setting(s): {', '.join(bad)}.")
        for method in METHODS:
            self.train_config(method)
        self.eval_config()

    @classmethod
    def load(cls, preset: "str | Path | dict | Preset | None" = DEFAULT_PRESET, model: str | None = None,
             data: str | None = None) -> "Preset":
        """A preset by name (`configs/NAME.yaml`), a .yaml file, a dict of blocks (a preset edited in a
        notebook) or a Preset; `model` and `data`, when given, replace its own (local copies, say)."""
        if preset is None:
            loaded = cls()
        elif isinstance(preset, Preset):
            loaded = preset
        elif isinstance(preset, dict):
            loaded = cls.from_blocks(preset, "settings")
        else:
            path = preset_path(str(preset))
            loaded = cls.from_blocks(read_yaml(path), str(path))
        given = {k: v for k, v in (("model", model), ("data", data)) if v}
        return dataclasses.replace(loaded, train=loaded.train | given) if given else loaded

    @classmethod
    def from_blocks(cls, blocks: dict, name: str) -> "Preset":
        unknown = sorted(set(blocks) - set(BLOCKS))
        if unknown:
            raise UserError(f"{name}: unknown block(s) {', '.join(unknown)}; a preset has train, methods, evaluate.")
        return cls(name, *(dict(blocks.get(block) or {}) for block in BLOCKS))

    @property
    def stem(self) -> str:
        """The preset's short name (`miniature` for configs/miniature.yaml)."""
        return Path(self.name).stem

    @property
    def model(self) -> str:
        return self.train.get("model", TrainConfig.model)

    @property
    def data(self) -> str:
        return self.train.get("data", TrainConfig.data)

    def with_evaluate(self, **settings) -> "Preset":
        """The same preset with some evaluate settings changed (a notebook's `limit`, say), checked again."""
        return dataclasses.replace(self, evaluate=self.evaluate | settings)

    def train_config(self, method: str, overrides: dict | None = None) -> TrainConfig:
        """Shared settings, then the method's, then explicit overrides (command-line options win)."""
        values = self.train | (self.methods.get(method) or {}) | {"method": method} | (overrides or {})
        return TrainConfig.from_dict(values, self.name)

    def eval_config(self, run: str | Path | None = None, overrides: dict | None = None) -> EvalConfig:
        """Defaults, then this preset (its shared data/device/length and its `evaluate` block), then a training
        run's own settings (its data, prompt and source length), then explicit `overrides` (options win)."""
        values = {k: self.train[k] for k in PRESET_EVAL_SETTINGS if k in self.train} | self.evaluate
        if run is not None and (Path(run) / TRAIN_CONFIG).is_file():
            trained = TrainConfig.load(Path(run) / TRAIN_CONFIG)
            values |= {k: getattr(trained, k) for k in RUN_EVAL_SETTINGS
                       if not (k == "data" and trained.data == CHANNELS_SOURCE)}  # a job's channels are gone
            if (overrides or {}).get("task", values.get("task", "summary")) == "summary":
                values["prompt_template"] = trained.prompt_template
        return EvalConfig.from_dict(values | (overrides or {}), self.name)


_EVAL_KEYS = {f.name for f in dataclasses.fields(EvalConfig)}


def preset_path(name_or_path: str) -> Path:
    """`smoke` -> configs/smoke.yaml; a path is used as it is."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise UserError(f"config file {path} does not exist.")
        return path
    path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
        raise UserError(f"no preset '{name_or_path}'. Choose one of {names}, or pass a .yaml file.")
    return path
