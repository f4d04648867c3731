"""Typed, validated, serialisable settings for training and evaluation, and the defaults the package shares.

`TrainConfig` is saved as `config.yaml` beside every run, `EvalConfig` as `eval_config.yaml` beside every
`metrics.json`; both decide `auto` (device, precision, learning rate) when they are built, so a saved config
says what was used and loads back equal. The YAML presets that fill them are `preset.py`.
"""

import dataclasses
import re
import types
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Literal, Union, get_args, get_origin

from dialogsum_lab.devices import concrete_device, concrete_dtype, concrete_precision
from dialogsum_lab.errors import UserError
from dialogsum_lab.files import read_yaml
from dialogsum_lab.prompts import PROMPT_TEMPLATE, TASK_PROMPTS

# Defaults the whole package shares, in one place. This module imports nothing heavy, so the command line
# builds its options (and answers --help) without loading PyTorch.
DEFAULT_MODEL = "google/flan-t5-base"
DEFAULT_SOURCE = "knkarthick/dialogsum"
# The built-in default, offline: a small FLAN-T5 trained for this project on a synthetic dialogue world (never on
# summaries), shipped in data/miniature/ (miniature.py), and that world's dialogues, generated (world.py).
MINIATURE_MODEL = "miniature-t5"
MINIATURE_SOURCE = "miniature"
DEFAULT_PRESET = "miniature"  # what `demo`, `train`, `zero-shot` and the notebooks use unless told otherwise
TINY_MODEL = "tiny-random-t5"  # a random toy model for tests that need no learning, built on first use
SAMPLE_SOURCE = "sample"  # the shipped sample data: 64 hand-written dialogues
CHANNELS_SOURCE = "sagemaker-channels"  # a SageMaker job's data channels (job_env.py)
DEFAULT_MAX_NEW_TOKENS = 200  # greedy with room for a full summary, as in the lab; never transformers' silent 20
DEFAULT_MAX_SOURCE_LENGTH = 512  # FLAN-T5's training length; longer prompts are cut (and counted)
BOOTSTRAP_SAMPLES = 1000  # resamples for every confidence interval and paired test
REVIEW_DIALOGUES = 50  # dialogues a human review rates unless told otherwise (x the pairs of systems: its tasks)
REVIEW_DB = "review.sqlite"  # where `review` keeps its judgments unless told otherwise
MAX_DIALOGUE_CHARACTERS = 20_000  # a dialogue sent to an endpoint or the review app: ten times a 512-token prompt
RougeTokenizer = Literal["default", "unicode"]
ROUGE_TOKENIZERS: tuple[str, ...] = get_args(RougeTokenizer)
# The multi-reference ROUGE views (metrics.py); course_lab is the one the course published its numbers in.
VIEWS = ("first_reference", "mean_over_references", "best_reference", "course_lab")
# Systems nobody trained, scored like runs (baselines.py): the first or the longest turns (DialogSum's Longest-3),
# or the summary of the most similar training dialogue.
BASELINE_KINDS = ("lead", "longest", "retrieval")
BASELINE_TURNS = 3
DEMO_METHODS = ("full", "lora", "prompt_tuning")
DEFAULT_METHOD = "lora"  # what `train` and a SageMaker job fine-tune unless told otherwise


def _shipped(package: str, folder: str) -> Path:
    """Files that ship inside the package (pyproject.toml maps configs/ and data/sample/ into it), or the
    repository's own folder when the source runs uninstalled (PYTHONPATH=src)."""
    try:
        return Path(str(files(f"dialogsum_lab.{package}")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / folder


CONFIG_DIR = _shipped("presets", "configs")
SAMPLE_DIR = _shipped("sample_data", "data/sample")
MINIATURE_DIR = _shipped("miniature_data", "data/miniature")  # its card, and the model in model/
PRESETS = tuple(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))  # the shipped presets
Method = Literal["full", "lora", "prompt_tuning", "prefix_tuning", "ia3"]
# transformers' schedules that need no extra arguments
Scheduler = Literal["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                    "inverse_sqrt"]
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
METHODS: tuple[str, ...] = get_args(Method)
# Learning rates that move each method within one epoch; the first two are the lab's.
DEFAULT_LEARNING_RATES = {
    "full": 1e-5,          # lab: full fine-tuning of flan-t5-base
    "lora": 1e-3,          # lab: LoRA r=32
    "prompt_tuning": 0.3,  # peft's seq2seq prompt-tuning example: soft prompts need large steps
    "prefix_tuning": 1e-2,  # peft's prefix-tuning examples
    "ia3": 3e-3,           # peft's IA3 examples
}
TRAIN_CONFIG = "config.yaml"
EVAL_CONFIG = "eval_config.yaml"


def _f(default, help: str, **kw):
    """A dataclass field with its help text (shown by `dialogsum-lab train --help`)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


class _Config:
    """What both configs share: building from a dict (types converted and checked), saving, loading."""

    def _check(self, checks: list[tuple[bool, str]]) -> None:
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise UserError(f"invalid {type(self).__name__}: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, where: str = "config"):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise UserError(f"{where}: unknown setting(s) {', '.join(unknown)}. Known: {', '.join(sorted(fields))}.")
        return cls(**{k: _coerce(fields[k], v, where) for k, v in values.items()})

    @classmethod
    def load(cls, path: str | Path):
        """Settings a run saved: an empty or damaged file is an error, never the defaults."""
        return cls.from_dict(read_yaml(Path(path), required=True), str(path))


@dataclass
class TrainConfig(_Config):
    method: Method = _f(DEFAULT_METHOD, f"fine-tuning method: {', '.join(METHODS)}")
    model: str = _f(TINY_MODEL, "base model: Hub id, local folder, or tiny-random-t5")
    data: str = _f(SAMPLE_SOURCE, "data source: sample, a Hub id, a folder or a file (inside a SageMaker job: "
                                  "its channels, when not given)")
    train_split: str = _f("train", "split to train on")
    eval_split: str = _f("validation", "split for the evaluation loss during training")
    eval_holdout: int = _f(0, "hold out the last N training dialogues as the eval set (for single-file data)")
    limit_train: int | None = _f(None, "train on the first N dialogues only")
    limit_eval: int | None = _f(None, "compute the eval loss on the first N dialogues only")
    multitask: bool = _f(False, "also train on naming each dialogue's topic (multi-task instruction tuning)")
    prompt_template: str = _f(PROMPT_TEMPLATE, "instruction prompt with a {dialogue} placeholder")
    max_source_length: int = _f(DEFAULT_MAX_SOURCE_LENGTH, "prompt tokens kept")
    max_target_length: int = _f(128, "summary tokens kept")
    epochs: float = _f(1.0, "passes over the training data")
    max_steps: int = _f(-1, "stop after this many optimiser steps (overrides epochs when > 0)")
    learning_rate: float | None = _f(None, "peak learning rate (default: the method's, DEFAULT_LEARNING_RATES)")
    batch_size: int = _f(8, "training examples per device per step")
    eval_batch_size: int = _f(16, "examples per device for the eval loss")
    gradient_accumulation_steps: int = _f(1, "steps whose gradients are summed before an update")
    weight_decay: float = _f(0.01, "AdamW weight decay")
    warmup_ratio: float = _f(0.0, "share of steps spent warming the learning rate up")
    lr_scheduler: Scheduler = _f("linear", "learning-rate schedule")
    max_grad_norm: float = _f(1.0, "gradient clipping norm")
    seed: int = _f(42, "seed for initialisation, shuffling and dropout")
    precision: Literal["auto", "bf16", "fp32"] = _f("auto", "auto: bf16 autocast on capable CUDA GPUs, else fp32 "
                                                           "(never fp16: fp16 overflows in T5)")
    gradient_checkpointing: bool = _f(False, "recompute activations in backward to save memory")
    fsdp: bool = _f(False, "shard weights, gradients and optimiser state over the processes (FSDP2, one T5 block a "
                           "unit) for models that do not fit one GPU; launch with torchrun")
    torch_compile: bool = _f(False, "compile the model: faster GPU steps after minutes of compiling (figures: "
                                    "benchmarks/README.md)")
    logging_steps: int = _f(5, "log the training loss every N steps")
    eval_strategy: Literal["no", "steps", "epoch"] = _f("epoch", "when to compute the eval loss")
    save_strategy: Literal["no", "steps", "epoch"] = _f("epoch", "when to write a resumable checkpoint")
    save_steps: int = _f(500, "checkpoint every N steps when save_strategy is steps (eval too, if steps)")
    save_total_limit: int = _f(2, "checkpoints kept")
    device: str = _f("auto", "auto, cpu or cuda (the Trainer uses the first visible GPU: pick one with "
                             "CUDA_VISIBLE_DEVICES)")
    lora_r: int = _f(32, "LoRA rank (lab: 32)")
    lora_alpha: int = _f(32, "LoRA scaling alpha (lab: 32)")
    lora_dropout: float = _f(0.05, "LoRA dropout (lab: 0.05)")
    lora_target_modules: list[str] = _f(["q", "v"], "modules that get LoRA (lab: q and v attention projections)")
    num_virtual_tokens: int = _f(20, "soft-prompt / prefix length in virtual tokens")
    prompt_init_text: str = _f("Summarize the following conversation.",
                               "text whose embeddings initialise the soft prompt")

    def __post_init__(self) -> None:
        checks = [
            (self.method in METHODS, f"method '{self.method}' is unknown; choose one of {', '.join(METHODS)}"),
            (self.precision in ("auto", "bf16", "fp32"),
             f"precision '{self.precision}' is not allowed; use auto, bf16 or fp32 (fp16 overflows in T5)"),
            ("{dialogue}" in self.prompt_template, "prompt_template needs a {dialogue} placeholder"),
            (self.epochs > 0 or self.max_steps > 0, "set epochs > 0 or max_steps > 0"),
            (self.learning_rate is None or self.learning_rate > 0, "learning_rate must be positive"),
            (min(self.batch_size, self.eval_batch_size, self.gradient_accumulation_steps) >= 1,
             "batch sizes and gradient_accumulation_steps must be at least 1"),
            (min(self.max_source_length, self.max_target_length) >= 8, "max lengths must be at least 8 tokens"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.lora_r >= 1 and self.lora_alpha >= 1 and 0 <= self.lora_dropout < 1,
             "lora_r and lora_alpha must be >= 1 and lora_dropout in [0, 1)"),
            (bool(self.lora_target_modules), "lora_target_modules must name at least one module"),
            (self.num_virtual_tokens >= 1, "num_virtual_tokens must be at least 1"),
            (self.eval_holdout >= 0, "eval_holdout must be >= 0"),
            (self.eval_strategy == "no" or self.eval_strategy == self.save_strategy or self.save_strategy == "no",
             "eval_strategy and save_strategy must match (or one be 'no')"),
            (bool(DEVICE.fullmatch(self.device)), f"device '{self.device}' is unknown; use auto, cpu or cuda"),
            (not DEVICE.fullmatch(self.device) or self.device in ("auto", "cpu", "cuda", "cuda:0"),
             f"device '{self.device}': the Trainer always trains on the first visible GPU, so choose auto, cpu or "
             "cuda and pick the GPU with CUDA_VISIBLE_DEVICES (e.g. CUDA_VISIBLE_DEVICES=1 dialogsum-lab train ...)"),
            (not (self.method == "prefix_tuning" and self.gradient_checkpointing),
             "prefix_tuning cannot use gradient_checkpointing (the recomputed attention no longer matches the "
             "prefix's shape); set gradient_checkpointing false"),
        ]
        self._check(checks)
        # Decided once, here, and saved: the method's learning rate, the device and the precision.
        if self.learning_rate is None:
            self.learning_rate = DEFAULT_LEARNING_RATES[self.method]
        self.device = concrete_device(self.device)
        self.precision = concrete_precision(self.precision, self.device)


@dataclass
class EvalConfig(_Config):
    """How a model is scored: which dialogues, how summaries are generated, how ROUGE is computed."""

    data: str = _f(SAMPLE_SOURCE, "data source: sample, a Hub id, a folder or a file")
    split: str = _f("test", "split to summarise and score")
    limit: int | None = _f(None, "use only the first N dialogues (quick runs)")
    task: Literal["summary", "topic", "next_turn"] = _f("summary", "summarise, name the topic, or say the next turn")
    unseen_only: bool = _f(False, "score only the dialogues a training run did not train on (else overlap is refused)")
    skip_invalid: bool = _f(False, "drop rows with an empty dialogue or summary (and report how many)")
    batch_size: int = _f(16, "dialogues per generate() call")
    max_new_tokens: int = _f(DEFAULT_MAX_NEW_TOKENS, "summary length cap in tokens")
    max_source_length: int = _f(DEFAULT_MAX_SOURCE_LENGTH, "prompt tokens kept (longer prompts are cut and counted)")
    compile: bool = _f(False, "decode with a static cache and a compiled decoder step, same summaries: for long GPU "
                              "evaluations (a CPU needs g++; figures: benchmarks/README.md)")
    prompt_template: str | None = _f(None, "prompt with a {dialogue} placeholder (default: the one the run was "
                                           "trained with, else the task's)")
    rouge_tokenizer: RougeTokenizer = _f("default", "default: rouge_score's (ASCII words, as published figures); "
                                                    "unicode: words in any script, CJK characters and emoji")
    bootstrap_samples: int = _f(BOOTSTRAP_SAMPLES, "resamples for the confidence intervals")
    bootstrap_seed: int = _f(0, "seed of the bootstrap resampling")
    device: str = _f("auto", "auto (CUDA if present), cpu, cuda, cuda:1, ...")
    dtype: Literal["auto", "float32", "bfloat16"] = _f("auto", "auto: bf16 on capable CUDA GPUs, else float32")

    def __post_init__(self) -> None:
        self._check([
            (self.limit is None or self.limit >= 1, f"limit must be at least 1 (got {self.limit})"),
            (self.batch_size >= 1 and self.max_new_tokens >= 1, "batch_size and max_new_tokens must be at least 1"),
            (self.max_source_length >= 8, "max_source_length must be at least 8 tokens"),
            (self.prompt_template is None or "{dialogue}" in self.prompt_template,
             "prompt_template needs a {dialogue} placeholder"),
            (self.bootstrap_samples >= 1, "bootstrap_samples must be at least 1"),
            (bool(DEVICE.fullmatch(self.device)), f"device '{self.device}' is unknown; use auto, cpu, cuda or cuda:N"),
        ])
        self.device = concrete_device(self.device)  # decided once, here, and saved beside the scores
        self.dtype = concrete_dtype(self.dtype, self.device)

    @property
    def template(self) -> str:
        """The prompt actually used: the one given, or the task's own."""
        return self.prompt_template or TASK_PROMPTS[self.task]


def _coerce(f: dataclasses.Field, value, where: str):
    """`value` as the field's type, or one error naming the field, the value and what it accepts.

    Strings are converted where the meaning is plain: YAML reads `1e-5` as a
    string (YAML 1.1 wants `1.0e-5`), and SageMaker and environment variables
    pass every value as a string ("8", "true", "null").
    """
    kinds = get_args(f.type) if get_origin(f.type) in (Union, types.UnionType) else (f.type,)
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
        if type(None) in kinds:
            return None
        raise UserError(f"{where}: {f.name} needs a value.")
    kind = next(k for k in kinds if k is not type(None))
    if get_origin(kind) is Literal:
        if value not in get_args(kind):
            raise UserError(f"{where}: {f.name} is {value!r}; choose one of {', '.join(map(str, get_args(kind)))} "
                            f"({f.metadata['help']}).")
        return value
    if kind is bool:
        text = str(value).lower()
        if isinstance(value, bool) or text in BOOLEANS:
            return value if isinstance(value, bool) else BOOLEANS[text]
        raise UserError(f"{where}: {f.name} is {value!r}; write true or false.")
    if kind in (int, float):
        try:
            number = kind(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or (kind is int and isinstance(value, float) and value != number):
            raise UserError(f"{where}: {f.name} is {value!r}; it must be {'a whole' if kind is int else 'a'} number.")
        return number
    if get_origin(kind) is list:  # ["q", "v"], "q,v" (how launchers pass lists) or ["q,v"]
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise UserError(f"{where}: {f.name} is {value!r}; give a list of names.")
        return [part.strip() for item in items for part in item.split(",") if part.strip()]
    if not isinstance(value, str):
        raise UserError(f"{where}: {f.name} is {value!r}; it must be text.")
    return value


BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
