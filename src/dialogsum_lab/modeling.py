"""Loading a model to train or score: FLAN-T5, a local copy, the offline ones, a run or an adapter, fresh each
time, on the right device and in the right dtype, refusing incomplete or mismatched parts in one line.

The offline models load through the very same `from_pretrained(path)` code as `google/flan-t5-base`:
`miniature-t5` from the package (`miniature.py`), `tiny-random-t5` from the cache (`random_models.py`).
"""

import json
import logging
import os
import pickle
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from dialogsum_lab.config import (
    DEFAULT_MODEL,
    MINIATURE_DIR,
    MINIATURE_MODEL,
    TINY_MODEL,
    TRAIN_CONFIG,
    TrainConfig,
)
from dialogsum_lab.devices import torch_device, torch_dtype
from dialogsum_lab.errors import UserError
from dialogsum_lab.files import check_adapter_folder, check_model_folder, read_json
from dialogsum_lab.miniature import MINIATURE_NOTE
from dialogsum_lab.random_models import untied_in_config
from dialogsum_lab.runs import RunLayout, check_writable

# Written beside a trained adapter: what its base looked like, checked whenever the adapter is loaded again.
BASE_MODEL_FILE = "base_model.json"
BASE_MODEL_KEYS = ("model_type", "d_model", "vocab_size", "num_layers", "num_decoder_layers", "num_heads")
class _UntiedHeadNotice(logging.Filter):
    """transformers 5 forces `T5Config.tie_word_embeddings=True`, then warns on every FLAN-T5 load that the
    checkpoint's own lm_head stays untied. Untied is right for FLAN-T5; the warning only confuses learners."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "tie_word_embeddings=False" not in record.getMessage()


CHECKPOINTING_NOTICE = "`is_gradient_checkpointing` is deprecated"  # peft 0.21 on transformers 5.24


@contextmanager
def quiet_library_notices() -> Iterator[None]:
    """While open, two known-harmless library notices stay silent (scoped, never process-wide): the untied-head
    warning above, and peft 0.21 asking for `is_gradient_checkpointing`, which transformers 5.24 deprecated and
    warns about on each call although the answer is still right (drop this once peft asks for
    `is_activation_checkpointing`)."""
    notice, logger = _UntiedHeadNotice(), logging.getLogger("transformers.modeling_utils")
    logger.addFilter(notice)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=CHECKPOINTING_NOTICE, category=FutureWarning)
            yield
    finally:
        logger.removeFilter(notice)


def cache_dir() -> Path:
    """Where built artefacts (the offline models, the miniature world) live: $DIALOGSUM_LAB_CACHE (set and not
    empty) or ~/.cache/dialogsum-lab."""
    return Path(os.environ.get("DIALOGSUM_LAB_CACHE") or Path.home() / ".cache" / "dialogsum-lab")


def model_note(name: str) -> str | None:
    """What an offline model can and cannot show, said wherever it is used."""
    from dialogsum_lab.random_models import TINY_MODEL_NOTE

    return {TINY_MODEL: TINY_MODEL_NOTE, MINIATURE_MODEL: MINIATURE_NOTE}.get(name)


def resolve_model_path(name_or_path: str) -> str:
    """Map `miniature-t5` to its shipped folder and `tiny-random-t5` to its cache folder (built on first use);
    pass anything else through."""
    if name_or_path == MINIATURE_MODEL:
        path = MINIATURE_DIR / "model"
        if not (path / "config.json").is_file():
            raise UserError(f"the shipped {MINIATURE_MODEL} is missing from {path}. Rebuild it: python "
                            "scripts/build_miniature.py (about an hour on two CPU cores), or reinstall the package.")
        return str(path)
    if name_or_path != TINY_MODEL:
        return name_or_path
    from dialogsum_lab.random_models import build_tiny_t5

    path = cache_dir() / TINY_MODEL
    if not (path / "config.json").exists():
        check_writable(path.parent)
        build_tiny_t5(path)
    return str(path)


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    path = resolve_model_path(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, TypeError, json.JSONDecodeError) as err:
        raise _load_error(name_or_path, err) from err


def load_model_and_tokenizer(name_or_path: str = DEFAULT_MODEL, dtype: str = "auto",
                             device: str = "auto") -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A fresh copy of the model in eval mode on `device`, and its tokenizer.

    Always a fresh load: callers that wrap it with PEFT never touch a model
    someone else still uses as the "original".
    """
    path = resolve_model_path(name_or_path)
    target = torch_device(device)
    if Path(path).is_dir():
        check_model_folder(Path(path))  # a partial copy would load with random weights and score 0 in silence
    pickle_ok = _pickle_allowed(path)
    try:
        from transformers import AutoConfig

        model_type = AutoConfig.from_pretrained(path).model_type
        with quiet_library_notices():
            model, info = AutoModelForSeq2SeqLM.from_pretrained(
                path, dtype=torch_dtype(dtype, str(target), model_type), use_safetensors=None if pickle_ok else True,
                output_loading_info=True)
    except (OSError, ValueError, pickle.UnpicklingError, SafetensorError) as err:
        raise _load_error(name_or_path, err) from err
    if info["missing_keys"] or info["mismatched_keys"]:
        lacking = sorted(info["missing_keys"]) + sorted(str(k) for k in info["mismatched_keys"])
        raise UserError(f"model {name_or_path} lacks {len(lacking)} of its weights (e.g. {lacking[0]}): they would "
                        "start random. Its weight files are incomplete; copy or save the model again.")
    # T5's forward ignores num_items_in_batch; without this the Trainer mis-scales the loss
    # under gradient accumulation and DDP.
    model.accepts_loss_kwargs = False
    return untied_in_config(model).to(target).eval(), load_tokenizer(name_or_path)


def _pickle_allowed(path: str) -> bool:
    """Weights load from safetensors only, unless DIALOGSUM_LAB_ALLOW_PICKLE=1: a pickled checkpoint
    (pytorch_model.bin) can run any code while it loads. A local folder holding only pickles is refused here."""
    if os.environ.get("DIALOGSUM_LAB_ALLOW_PICKLE") == "1":
        return True
    folder = Path(path)
    if folder.is_dir() and not any(folder.glob("*.safetensors")) and any(folder.glob("*.bin")):
        raise UserError(f"{path} holds only pickled weights ({', '.join(p.name for p in folder.glob('*.bin'))}), "
                        "which can run arbitrary code when loaded. Convert them to safetensors (save_pretrained with "
                        "safe_serialization=True), or, if you trust the file, set DIALOGSUM_LAB_ALLOW_PICKLE=1.")
    return False


def _load_error(name: str, err: Exception) -> UserError:
    path = Path(name).expanduser()
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1 or (name.count("/") == 1
                                                                               and path.parent.is_dir())
    if looks_local and not path.exists():  # not a Hub id: say so, rather than blame the network
        return UserError(f"model folder {name} does not exist. Check the path, or pass a Hub id such as "
                         f"{DEFAULT_MODEL}, or '{TINY_MODEL}' to work offline.")
    if isinstance(err, SafetensorError):
        return UserError(f"model {name}: a weights file is damaged ({' '.join(str(err).split())[:200]}). Copy or "
                         "save the model again.")
    if isinstance(err, pickle.UnpicklingError):
        reason = " ".join(str(err).split())[:200]
        return UserError(f"{name}: torch's safe loader refuses its pickled weights ({reason}). Use safetensors.")
    reason = " ".join(str(err).split())[:300]
    return UserError(f"could not load model '{name}' ({type(err).__name__}: {reason}). Pass a Hub id (needs "
                     f"network), a folder saved with save_pretrained, or '{TINY_MODEL}' to work offline.")


def count_parameters(model: torch.nn.Module) -> dict:
    """Trainable and total parameters, as peft reports them for PEFT models, and `used`: the trainable ones that
    reach the model's output. They differ for prompt tuning on a seq2seq model, where peft allocates one soft
    prompt for the encoder and one for the decoder but feeds only the encoder's."""
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
    else:
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
    used = _prompt_parameters_in_use(model) if _peft_type(model) == "PROMPT_TUNING" else trainable
    return {"trainable": trainable, "total": total, "percent": 100 * trainable / total if total else 0.0,
            "used": used, "used_percent": 100 * used / total if total else 0.0}


def _peft_type(model) -> str | None:
    config = getattr(model, "active_peft_config", None)
    return None if config is None else str(config.peft_type.value)


def _prompt_parameters_in_use(model) -> int:
    """The soft-prompt entries that get a gradient from a one-token probe: counted from the model, not a formula."""
    weight = model.prompt_encoder[model.active_adapter].embedding.weight
    needed, weight.grad = weight.requires_grad, None
    weight.requires_grad_(True)
    probe = torch.ones((1, 1), dtype=torch.long, device=weight.device)
    try:
        with torch.enable_grad():
            model(input_ids=probe, attention_mask=probe, decoder_input_ids=probe * 0).logits.float().sum().backward()
        return int(weight.grad.abs().sum(1).gt(0).sum()) * weight.shape[1]
    finally:
        weight.grad = None
        weight.requires_grad_(needed)
        model.zero_grad(set_to_none=True)


def describe_parameters(model: torch.nn.Module) -> str:
    """The lab's three-line parameter report."""
    c = count_parameters(model)
    report = (f"trainable model parameters: {c['trainable']:,}\nall model parameters: {c['total']:,}\n"
              f"percentage of trainable model parameters: {c['percent']:.2f}%")
    if c["used"] != c["trainable"]:
        report += (f"\nof which reach the model (the encoder's soft prompt; peft also allocates an unused decoder "
                   f"one): {c['used']:,} ({c['used_percent']:.2f}%)")
    return report


def load_trained(path: str, adapter: str | None = None, base: str | None = None, dtype: str = "auto",
                 device: str = "auto") -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict]:
    """A model to evaluate: a training run folder, an adapter folder, or a model (plus optional adapter).

    Everything is loaded fresh and adapters with `is_trainable=False`, so
    evaluating never changes a model someone else holds. Returns the model,
    its tokenizer, and where each part came from.
    """
    run = Path(path)
    if (run / TRAIN_CONFIG).is_file():  # a dialogsum-lab training run
        if not RunLayout.of(run).model.is_dir():
            raise _unfinished(run)
        base = base or TrainConfig.load(run / TRAIN_CONFIG).model
        run = RunLayout.of(run).model
        path = str(run)
    if (run / "adapter_config.json").is_file():
        adapter = str(run)
        path = base or check_adapter_folder(run).get("base_model_name_or_path")
        if not path:
            raise UserError(f"adapter {run} does not say which base model it was trained on. Pass it with --base.")
    model, tokenizer = load_model_and_tokenizer(path, dtype, device)
    if adapter:
        model = _attach_adapter(model, adapter, path)
    return model, tokenizer, {"model": path, "adapter": adapter}


def base_fingerprint(model: PreTrainedModel) -> dict:
    """The base model's shape, saved beside an adapter (`BASE_MODEL_FILE`) so a wrong base is caught on load."""
    return {"name_or_path": model.config.name_or_path} | {k: getattr(model.config, k, None) for k in BASE_MODEL_KEYS}


def _unfinished(run: Path) -> UserError:
    """The error for a training run that has not saved its model yet."""
    checkpoints = sorted(run.glob("checkpoints/checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    if checkpoints:
        return UserError(f"{run} is an unfinished training run (last checkpoint: {checkpoints[-1].name}). Finish it "
                         f"with `dialogsum-lab train --resume --out {run}`, then evaluate it.")
    return UserError(f"{run} is a training run that stopped before saving anything. Train it again with "
                     f"`dialogsum-lab train ... --out {run} --overwrite`.")


def _attach_adapter(model: PreTrainedModel, adapter: str, base: str) -> PreTrainedModel:
    from peft import PeftModel

    if not (Path(adapter) / "adapter_config.json").is_file():
        raise UserError(f"{adapter} has no adapter_config.json: it is not a PEFT adapter folder.")
    trained_on = check_adapter_folder(Path(adapter)).get("base_model_name_or_path")
    recorded = Path(adapter) / BASE_MODEL_FILE
    if recorded.is_file():  # widths can match while the vocabulary differs: peft would load it without a word
        expected, found = read_json(recorded), base_fingerprint(model)
        differs = [f"{k} {expected.get(k)} vs {found[k]}" for k in BASE_MODEL_KEYS if expected.get(k) != found[k]]
        if differs:
            raise UserError(f"adapter {adapter} was trained on a different base ({trained_on}) than {base}: "
                            f"{', '.join(differs)} (trained vs given). Pass the base it was trained on with --base.")
    try:
        with quiet_library_notices():
            model = PeftModel.from_pretrained(model, adapter, is_trainable=False).eval()
    except (RuntimeError, ValueError, KeyError) as err:
        raise UserError(f"adapter {adapter} does not fit base model {base}: it was trained on {trained_on} "
                        f"({type(err).__name__}: {' '.join(str(err).split())[:240]}). Pass the base it was "
                        "trained on with --base.") from err
    return fix_prefix_generation(model)


def fix_prefix_generation(model):
    """Make a prefix-tuning model's prefix reach `generate()` (peft 0.21 with transformers 5).

    peft hands the prefix to the model as `past_key_values`, which T5 now calls
    `cache`; `generate()` passes its own, empty `cache` too, and T5 keeps that
    one, so without this the prefix is silently dropped and the summaries are
    the base model's. Other models are returned unchanged.
    """
    if _peft_type(model) != "PREFIX_TUNING":
        return model
    prepare = model.prepare_inputs_for_generation

    def prepare_with_prefix(*args, **kwargs):
        inputs = prepare(*args, **kwargs)
        # peft offers a fresh prefix at every step (it looks for the cache under its old name); only the first
        # step, whose cache is still empty, takes it: later steps go on from the cache that already holds it.
        prefix, cache = inputs.pop("past_key_values", None), inputs.get("cache")
        if prefix is not None and (cache is None or cache.get_seq_length() == 0):
            inputs["cache"] = prefix
        return inputs

    model.prepare_inputs_for_generation = prepare_with_prefix
    return model


