"""Where a run computes and in what precision, decided once, where its settings are made.

`TrainConfig` and `EvalConfig` turn `auto` into a concrete device (`cpu`, `cuda`) and precision (`bf16` / `fp32`,
`bfloat16` / `float32`) when they are built, so every later step reads the decision instead of making it
again, and the saved settings say what was used. torch is imported only when a decision is asked for, so
building the command line (and answering --help) stays light.
"""

from dialogsum_lab.errors import UserError

T5_FAMILY = ("t5", "mt5", "umt5")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _bf16() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def concrete_device(device: str) -> str:
    """`auto` -> `cuda` where PyTorch sees a GPU, else `cpu`; anything else as given."""
    return ("cuda" if _cuda() else "cpu") if device == "auto" else device


def concrete_precision(precision: str, device: str) -> str:
    """Training precision: `auto` -> bf16 autocast on CUDA GPUs that support it, else fp32 (never fp16: T5
    overflows it)."""
    if precision != "auto":
        return precision
    return "bf16" if device.startswith("cuda") and _bf16() else "fp32"


def concrete_dtype(dtype: str, device: str) -> str:
    """Weights for scoring: `auto` -> bfloat16 on CUDA GPUs that support it, else float32."""
    if dtype != "auto":
        return dtype
    return "bfloat16" if device.startswith("cuda") and _bf16() else "float32"


def hardware(device: str) -> str:
    """What a device is, in words, for the records a run keeps (its model card says where it trained)."""
    import os
    import platform

    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(torch.device(device))}"
    return f"CPU ({os.cpu_count()} cores, {platform.machine()})"


def torch_device(device: str):
    """A torch.device for a concrete device name, with one line when a GPU is asked for and there is none."""
    import torch

    if device == "auto":
        device = concrete_device(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device '{device}' asked for, but PyTorch sees no CUDA GPU. Use --device cpu or auto.")
    return torch.device(device)


def torch_dtype(dtype: str, device: str, model_type: str = "t5"):
    """A torch dtype for a dtype name; float16 is refused for T5, whose activations overflow it."""
    import torch

    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    dtype = concrete_dtype(dtype, device)
    if dtype not in dtypes:
        raise UserError(f"unknown dtype '{dtype}'. Choose auto, {', '.join(dtypes)}.")
    if dtype == "float16" and model_type in T5_FAMILY:
        raise UserError("float16 is not safe for T5: its feed-forward activations exceed fp16's range (65504) and "
                        "turn into inf/NaN. Use bfloat16 (Ampere or newer GPUs) or float32.")
    return dtypes[dtype]
