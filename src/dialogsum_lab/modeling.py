"""Loading FLAN-T5 (or the offline tiny stand-in) with the right dtype and device.

`tiny-random-t5` is a randomly initialised model with FLAN-T5's architecture
(gated-GELU feed-forward, untied input/output embeddings, a SentencePiece-style
Unigram tokenizer with T5's special tokens) at toy size. It is built from the
shipped sample data and saved with `save_pretrained`, so it goes through the
very same `from_pretrained(path)` code as `google/flan-t5-base`. Its scores
mean nothing: it exists to run every step offline in seconds.
"""

import json
import logging
import os
import pickle
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
import yaml
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from dialogsum_lab.config import DEFAULT_MODEL, SAMPLE_DIR, TINY_MODEL
from dialogsum_lab.errors import UserError
from dialogsum_lab.generation import generation_config, summarize
from dialogsum_lab.prompts import PROMPT_TEMPLATE, TOPIC_TEMPLATE
from dialogsum_lab.runs import write_json

TINY_MODEL_NOTE = ("tiny-random-t5 is a randomly initialised toy model: its summaries are gibberish and its "
                   "ROUGE scores are meaningless. It only proves the pipeline runs; use google/flan-t5-base "
                   "for real numbers.")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Written beside a trained adapter: what its base looked like, checked whenever the adapter is loaded again.
BASE_MODEL_FILE = "base_model.json"
BASE_MODEL_KEYS = ("model_type", "d_model", "vocab_size", "num_layers", "num_decoder_layers", "num_heads")
T5_FAMILY = ("t5", "mt5", "umt5")
# A dialogue to check a merged model against its adapter on, wherever the data lives.
PROBE_DIALOGUE = ("#Person1#: Could you water my plants while I'm away?\n#Person2#: Of course. How often?\n"
                  "#Person1#: Every two days. The key is under the mat.")


class _UntiedHeadNotice(logging.Filter):
    """transformers 5 forces `T5Config.tie_word_embeddings=True`, then warns on every FLAN-T5 load that the
    checkpoint's own lm_head stays untied. Untied is right for FLAN-T5; the warning only confuses learners."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "tie_word_embeddings=False" not in record.getMessage()


logging.getLogger("transformers.modeling_utils").addFilter(_UntiedHeadNotice())
# peft 0.21 asks every model it wraps or loads for `is_gradient_checkpointing`, an alias that transformers 5.24
# deprecated and warns about on each call; the answer is still right. Drop this once peft asks for
# `is_activation_checkpointing`.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


def cache_dir() -> Path:
    """Where built artefacts (the tiny model) live: $DIALOGSUM_LAB_CACHE or ~/.cache/dialogsum-lab."""
    return Path(os.environ.get("DIALOGSUM_LAB_CACHE", Path.home() / ".cache" / "dialogsum-lab"))


def resolve_model_path(name_or_path: str) -> str:
    """Map `tiny-random-t5` to its folder, building it on first use; pass anything else through."""
    if name_or_path != TINY_MODEL:
        return name_or_path
    path = cache_dir() / TINY_MODEL
    if not (path / "config.json").exists():
        build_tiny_t5(path)
    return str(path)


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device '{device}' asked for, but PyTorch sees no CUDA GPU. Use --device cpu or auto.")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device, model_type: str = "t5") -> torch.dtype:
    """bf16 on CUDA GPUs that support it, fp32 elsewhere; fp16 is refused for T5."""
    if dtype == "auto":
        bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if bf16 else torch.float32
    if dtype not in DTYPES:
        raise UserError(f"unknown dtype '{dtype}'. Choose auto, {', '.join(DTYPES)}.")
    if dtype == "float16" and model_type in T5_FAMILY:
        raise UserError("float16 is not safe for T5: its feed-forward activations exceed fp16's range (65504) and "
                        "turn into inf/NaN. Use bfloat16 (Ampere or newer GPUs) or float32.")
    return DTYPES[dtype]


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    path = resolve_model_path(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise _load_error(name_or_path, err) from err


def load_model_and_tokenizer(name_or_path: str = DEFAULT_MODEL, dtype: str = "auto",
                             device: str = "auto") -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A fresh copy of the model in eval mode on `device`, and its tokenizer.

    Always a fresh load: callers that wrap it with PEFT never touch a model
    someone else still uses as the "original".
    """
    path = resolve_model_path(name_or_path)
    target = resolve_device(device)
    pickle_ok = _pickle_allowed(path)
    try:
        from transformers import AutoConfig

        model_type = AutoConfig.from_pretrained(path).model_type
        model = AutoModelForSeq2SeqLM.from_pretrained(path, dtype=resolve_dtype(dtype, target, model_type),
                                                      use_safetensors=None if pickle_ok else True)
    except (OSError, ValueError, pickle.UnpicklingError) as err:
        raise _load_error(name_or_path, err) from err
    # T5's forward ignores num_items_in_batch; without this the Trainer mis-scales the loss
    # under gradient accumulation and DDP.
    model.accepts_loss_kwargs = False
    return _untied_in_config(model).to(target).eval(), load_tokenizer(name_or_path)


def _untied_in_config(model: PreTrainedModel) -> PreTrainedModel:
    """Make the config say what the weights are: transformers 5's T5Config always claims tied embeddings,
    even for FLAN-T5 / T5 v1.1 whose output matrix is its own (peft's merge then warns that they "are no
    longer tied"). Generation is unaffected: T5 reads `scale_decoder_outputs` for that."""
    head, embeddings = model.get_output_embeddings(), model.get_input_embeddings()
    if head is not None and head.weight.data_ptr() != embeddings.weight.data_ptr():
        model.config.tie_word_embeddings = False
    return model


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
    if isinstance(err, pickle.UnpicklingError):
        reason = " ".join(str(err).split())[:200]
        return UserError(f"{name}: torch's safe loader refuses its pickled weights ({reason}). Use safetensors.")
    reason = " ".join(str(err).split())[:300]
    return UserError(f"could not load model '{name}' ({type(err).__name__}: {reason}). Pass a Hub id (needs "
                     f"network), a folder saved with save_pretrained, or '{TINY_MODEL}' to work offline.")


def count_parameters(model: torch.nn.Module) -> dict:
    """Trainable and total parameters, as peft reports them for PEFT models."""
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
    else:
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "total": total, "percent": 100 * trainable / total if total else 0.0}


def describe_parameters(model: torch.nn.Module) -> str:
    """The lab's three-line parameter report."""
    c = count_parameters(model)
    return (f"trainable model parameters: {c['trainable']:,}\nall model parameters: {c['total']:,}\n"
            f"percentage of trainable model parameters: {c['percent']:.2f}%")


# google/flan-t5-base's architecture, for counting and benchmarking without a download.
FLAN_T5_BASE_SHAPE = {"vocab_size": 32128, "d_model": 768, "d_kv": 64, "d_ff": 2048, "num_layers": 12,
                      "num_heads": 12}


def random_flan_t5(device: str | torch.device = "cpu", **shape):
    """A randomly initialised T5 v1.1 / FLAN-T5 (gated-GELU, untied output matrix) of the given shape.

    `device="meta"` builds it without memory, enough to count parameters.
    """
    from transformers import T5Config, T5ForConditionalGeneration

    shape = FLAN_T5_BASE_SHAPE | shape
    config = T5Config(**shape, num_decoder_layers=shape["num_layers"], feed_forward_proj="gated-gelu",
                      tie_word_embeddings=False, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    with torch.device(device):
        model = T5ForConditionalGeneration(config)
        # transformers 5 ties lm_head to the input embedding at construction; FLAN-T5 keeps its own output
        # matrix (same init as T5's), saved separately and left untied on load, as for the real checkpoint.
        model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.lm_head.weight))
    model.accepts_loss_kwargs = False
    return _untied_in_config(model)


def build_tiny_t5(out_dir: str | Path, d_model: int = 64, num_layers: int = 2, num_heads: int = 4,
                  vocab_size: int = 1000, seed: int = 0) -> Path:
    """Build, save and return the offline stand-in for FLAN-T5 (deterministic for a given seed).

    Written to a temporary folder first and moved into place, so an interrupted
    build never leaves a half-saved model behind, and processes building it at
    the same time all end up with one complete copy.
    """
    out_dir = Path(out_dir)
    tokenizer = _train_tiny_tokenizer(vocab_size)
    # Its own random stream: a run seeds, then loads its model, and must draw the same numbers afterwards
    # (LoRA's initial weights, dropout) whether or not this first use had to build it.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = random_flan_t5(vocab_size=len(tokenizer), d_model=d_model, d_kv=d_model // num_heads,
                               d_ff=2 * d_model, num_layers=num_layers, num_heads=num_heads,
                               relative_attention_num_buckets=32)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    staging.chmod(0o755)
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    (staging / "README.md").write_text(f"# {TINY_MODEL}\n\n{TINY_MODEL_NOTE}\n")
    if out_dir.exists() and not (out_dir / "config.json").exists():
        shutil.rmtree(out_dir)  # a broken earlier build
    try:
        staging.rename(out_dir)
    except OSError:  # another process (say, another torchrun rank) finished the same build first: keep it
        shutil.rmtree(staging)
    return out_dir


def _train_tiny_tokenizer(vocab_size: int) -> PreTrainedTokenizerBase:
    """A Unigram (SentencePiece-style) tokenizer trained on the sample data, with T5's special ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import T5Tokenizer

    texts = [PROMPT_TEMPLATE, TOPIC_TEMPLATE]
    for file in sorted(SAMPLE_DIR.glob("*.jsonl")):
        for line in file.read_text().splitlines():
            texts += [str(v) for v in json.loads(line).values()]
    sp = Tokenizer(models.Unigram())
    sp.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "</s>", "<unk>"],
                                      unk_token="<unk>", shrinking_factor=0.75)
    sp.train_from_iterator(texts, trainer=trainer)
    # The trainer is not reproducible to the last bit (parallel sums, and the rare characters it must keep
    # come in hash order with made-up scores), so round, give those characters one score, and sort; the
    # three special tokens stay first, at the ids T5 fixes (0, 1, 2).
    vocab = [(piece, round(score, 6)) for piece, score in json.loads(sp.to_str())["model"]["vocab"]]
    floor = min(score for piece, score in vocab[3:] if len(piece) > 1)
    pieces = [(piece, score if score >= floor else floor - 1.0) for piece, score in vocab[3:]]
    vocab = vocab[:3] + sorted(pieces, key=lambda item: (-item[1], item[0]))
    return T5Tokenizer(vocab=vocab, extra_ids=100, model_max_length=512)


def load_trained(path: str, adapter: str | None = None, base: str | None = None, dtype: str = "auto",
                 device: str = "auto") -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict]:
    """A model to evaluate: a training run folder, an adapter folder, or a model (plus optional adapter).

    Everything is loaded fresh and adapters with `is_trainable=False`, so
    evaluating never changes a model someone else holds. Returns the model,
    its tokenizer, and where each part came from.
    """
    run = Path(path)
    if (run / "config.yaml").is_file():  # a dialogsum-lab training run
        if not (run / "model").is_dir():
            raise _unfinished(run)
        base = base or yaml.safe_load((run / "config.yaml").read_text())["model"]
        run = run / "model"
        path = str(run)
    if (run / "adapter_config.json").is_file():
        adapter = str(run)
        path = base or json.loads((run / "adapter_config.json").read_text())["base_model_name_or_path"]
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
    trained_on = json.loads((Path(adapter) / "adapter_config.json").read_text()).get("base_model_name_or_path")
    recorded = Path(adapter) / BASE_MODEL_FILE
    if recorded.is_file():  # widths can match while the vocabulary differs: peft would load it without a word
        expected, found = json.loads(recorded.read_text()), base_fingerprint(model)
        differs = [f"{k} {expected.get(k)} vs {found[k]}" for k in BASE_MODEL_KEYS if expected.get(k) != found[k]]
        if differs:
            raise UserError(f"adapter {adapter} was trained on a different base ({trained_on}) than {base}: "
                            f"{', '.join(differs)} (trained vs given). Pass the base it was trained on with --base.")
    try:
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
    config = getattr(model, "active_peft_config", None)
    if config is None or str(config.peft_type.value) != "PREFIX_TUNING":
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


def merge_adapter(path: str, out: str | Path, base: str | None = None, check_texts: list[str] | None = None,
                  device: str = "auto") -> dict:
    """Fold a LoRA (or IA3) adapter into the base weights, save a standalone model, check outputs agree.

    The check compares logits and greedy summaries of the adapter model and the
    merged model on a few dialogues; it is saved as `merge_check.json`.
    """
    model, tokenizer, info = load_trained(path, base=base, dtype="float32", device=device)
    if not info["adapter"]:
        raise UserError(f"{path} holds no adapter: a fully fine-tuned model is already standalone.")
    peft_type = str(model.peft_config["default"].peft_type.value)
    if peft_type not in ("LORA", "IA3"):
        raise UserError(f"{peft_type} adapters add virtual tokens instead of changing weights, so they cannot be "
                        "merged. Evaluate them with the base model and --adapter instead.")
    texts = check_texts or [PROBE_DIALOGUE]
    inputs = tokenizer([PROMPT_TEMPLATE.format(dialogue=t) for t in texts],
                       return_tensors="pt", padding=True).to(model.device)
    decoder = torch.full((len(texts), 8), model.config.decoder_start_token_id, device=model.device)
    config = generation_config(model, max_new_tokens=32)
    with torch.inference_mode():
        before_logits = model(**inputs, decoder_input_ids=decoder).logits
    before = summarize(model, tokenizer, texts, config, progress=False)
    merged = model.merge_and_unload()
    with torch.inference_mode():
        after_logits = merged(**inputs, decoder_input_ids=decoder).logits
    after = summarize(merged, tokenizer, texts, config, progress=False)
    out = Path(out)
    merged.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    check = {"adapter": info["adapter"], "base_model": info["model"], "peft_type": peft_type,
             "max_abs_logit_difference": float((before_logits - after_logits).abs().max()),
             "summaries_identical": before == after, "dialogues_checked": len(texts)}
    write_json(out / "merge_check.json", check)
    return check
