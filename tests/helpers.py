"""Settings the tests share: a few quick training steps on the toy model."""

from dialogsum_lab.config import TrainConfig

LEARNING_RATES = {"full": 3e-3, "lora": 1e-2, "prompt_tuning": 0.3, "prefix_tuning": 3e-2, "ia3": 3e-2}


def quick(method: str, **overrides) -> TrainConfig:
    """A few steps on a fixed batch of 8 sample dialogues: enough to see the loss fall."""
    values = {"method": method, "limit_train": 8, "limit_eval": 4, "batch_size": 8, "max_steps": 8,
              "logging_steps": 1, "learning_rate": LEARNING_RATES[method], "eval_strategy": "no",
              "save_strategy": "no", "device": "cpu", "seed": 0}
    return TrainConfig(**(values | overrides))
