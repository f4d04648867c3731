"""The fine-tuning methods: full fine-tuning, LoRA, prompt tuning, prefix tuning and IA3, each a way to wrap a
freshly loaded base model. A registry maps a method to its peft config; nothing here imports the Trainer or
the data, so a benchmark can ask for the lab's adapter settings without them.
"""

from collections.abc import Callable

import torch
from peft import (
    IA3Config,
    LoraConfig,
    PeftConfig,
    PrefixTuningConfig,
    PromptTuningConfig,
    PromptTuningInit,
    TaskType,
    get_peft_model,
)
from transformers import set_seed

from dialogsum_lab.config import TrainConfig
from dialogsum_lab.errors import UserError
from dialogsum_lab.modeling import (
    fix_prefix_generation,
    load_model_and_tokenizer,
    quiet_library_notices,
    resolve_model_path,
)

SEQ2SEQ = TaskType.SEQ_2_SEQ_LM

# method -> builder of its peft config (full fine-tuning has none)
PEFT_CONFIGS: dict[str, Callable[[TrainConfig, str], PeftConfig]] = {
    "lora": lambda c, path: LoraConfig(task_type=SEQ2SEQ, r=c.lora_r, lora_alpha=c.lora_alpha, bias="none",
                                       target_modules=list(c.lora_target_modules), lora_dropout=c.lora_dropout),
    "prompt_tuning": lambda c, path: PromptTuningConfig(
        task_type=SEQ2SEQ, num_virtual_tokens=c.num_virtual_tokens, prompt_tuning_init=PromptTuningInit.TEXT,
        prompt_tuning_init_text=c.prompt_init_text, tokenizer_name_or_path=path),
    "prefix_tuning": lambda c, path: PrefixTuningConfig(task_type=SEQ2SEQ, num_virtual_tokens=c.num_virtual_tokens),
    "ia3": lambda c, path: IA3Config(task_type=SEQ2SEQ),
}
# method -> the TrainConfig fields its peft config reads (what a model card lists for it)
METHOD_SETTINGS = {"full": (), "lora": ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules"),
                   "prompt_tuning": ("num_virtual_tokens", "prompt_init_text"),
                   "prefix_tuning": ("num_virtual_tokens",), "ia3": ()}


def peft_config(config: TrainConfig) -> PeftConfig | None:
    """The method's peft configuration, built from the run's settings (None for full fine-tuning)."""
    if config.method not in PEFT_CONFIGS:
        return None
    return PEFT_CONFIGS[config.method](config, resolve_model_path(config.model))


def load_base(config: TrainConfig):
    """The base model, loaded fresh in fp32 onto the run's device, and its tokenizer (after seeding every
    random generator with the run's seed, so what is built from here on is reproducible)."""
    set_seed(config.seed)
    model, tokenizer = load_model_and_tokenizer(config.model, dtype="float32", device=config.device)
    if config.method == "lora":
        _check_target_modules(model, config.lora_target_modules)
    return model, tokenizer


def wrap(model, config: TrainConfig):
    """`model` made ready to train with the method: wrapped by `get_peft_model` unless it is full fine-tuning."""
    adapter = peft_config(config)
    if adapter is not None:
        with quiet_library_notices():
            model = fix_prefix_generation(get_peft_model(model, adapter))
    if config.gradient_checkpointing:
        model.config.use_cache = False
        if adapter is not None:
            model.enable_input_require_grads()  # frozen embeddings would otherwise cut the graph
    return model.train()


def build_model(config: TrainConfig):
    """A fresh base model, wrapped for the method; returns (model, tokenizer)."""
    model, tokenizer = load_base(config)
    return wrap(model, config), tokenizer


def _check_target_modules(model, targets: list[str]) -> None:
    """Every LoRA target must name a layer of the model (peft matches a name's last parts)."""
    names = [name for name, _ in model.named_modules()]
    missing = [t for t in targets if not any(n == t or n.endswith(f".{t}") for n in names)]
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise UserError(f"lora_target_modules {', '.join(missing)} name no layer of {model.config.name_or_path}. "
                        f"Its linear layers are: {', '.join(linear)} (the lab uses q and v).")
