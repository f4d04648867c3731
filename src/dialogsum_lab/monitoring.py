"""What a training run watches while it trains: stop signals (checkpoint, then stop), its peak memory, and whether
data-parallel processes still hold the same weights."""

import signal
import sys
import threading
from contextlib import contextmanager

import psutil
import torch
from transformers import TrainerCallback


class StopOnSignal(TrainerCallback):
    """Ctrl-C or SIGTERM (docker stop, a spot reclaim) while training: checkpoint at the end of this step, stop."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def on_step_end(self, args, state, control, **kwargs):
        if self.signum is not None:
            control.should_save = control.should_training_stop = True
        return control

    @contextmanager
    def listening(self):
        """Catch SIGINT and SIGTERM while the block runs (main thread only); a second signal stops at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handle(signum: int, frame) -> None:
            if self.signum is not None:
                raise KeyboardInterrupt
            self.signum = signum
            print("\nStopping after this step and saving a checkpoint (signal again to stop at once).", file=sys.stderr)

        previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


@contextmanager
def peak_memory(device: torch.device, interval: float = 0.005):
    """Peak memory while the block runs: CUDA's allocator peak, or the process RSS sampled every 5 ms.

    (The RSS high-water mark of the whole process would carry over from earlier work in the same
    process, e.g. the demo's previous method.)
    """
    result = {"bytes": 0, "kind": "cuda_max_allocated" if device.type == "cuda" else "process_rss_sampled_peak"}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        yield result
        result["bytes"] = torch.cuda.max_memory_allocated(device)
        return
    process, done = psutil.Process(), threading.Event()

    def sample() -> None:
        while not done.is_set():
            result["bytes"] = max(result["bytes"], process.memory_info().rss)
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield result
    finally:
        done.set()
        sampler.join()



def weights_in_sync(model) -> bool:
    """Every process holds the same trained weights (data parallelism must keep them bit-identical)."""
    from accelerate.utils import gather_object

    checksum = float(sum(p.detach().double().sum() for p in model.parameters() if p.requires_grad))
    return len(set(gather_object([checksum]))) == 1
