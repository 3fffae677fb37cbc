"""Timed training steps: one backprop or forward-gradient step, phase by phase, synchronised with the device."""

from __future__ import annotations

import time

import torch

from simfl.lm.loss import model_inputs, token_loss

PHASES = ("batch_load", "forward", "loss", "backward", "optimizer_step")
FG_PHASES = ("batch_load", "perturb_and_forward", "optimizer_step")


def sync_device(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # a CPU-GPU sync point: phases only add up with it


class PhaseTimer:
    """mark(phase) ends a phase: sync the device, record the time since the last mark."""

    def __init__(self, device: torch.device):
        self.device = device
        self.times: dict[str, float] = {}
        self.t = time.perf_counter()

    def mark(self, phase: str) -> None:
        sync_device(self.device)
        now = time.perf_counter()
        self.times[phase] = now - self.t
        self.t = now

    def result(self, phases: tuple[str, ...]) -> dict[str, float]:
        return {**self.times, "step": sum(self.times[p] for p in phases)}


def timed_step(model, optimizer, batch, device: torch.device, autocast_dtype=None) -> dict[str, float]:
    """One training step, timed per phase; the phases add up to the step (sync at every boundary). With an
    autocast dtype (bf16, fp16) the forward pass and the loss run under autocast, as mixed precision trains."""
    timer = PhaseTimer(device)
    mark = timer.mark

    inputs, labels = batch
    inputs, labels = inputs.to(device, non_blocking=True), labels.to(device, non_blocking=True)
    kwargs, targets = model_inputs(model, inputs, labels)
    mark("batch_load")
    with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        logits = model(**kwargs).logits
        mark("forward")
        loss = token_loss(logits.float(), targets)
    mark("loss")
    loss.backward()
    mark("backward")
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    mark("optimizer_step")
    return timer.result(PHASES)


def timed_fg_step(fg, batch, device: torch.device, lr: float) -> dict[str, float]:
    """One forward-gradient step (FwdLLM): P perturbed forward passes, no backward, then the update."""
    timer = PhaseTimer(device)
    mark = timer.mark

    inputs, labels = (b.to(device, non_blocking=True) for b in batch)
    mark("batch_load")
    theta = {n: p.detach() for n, p in fg.model.named_parameters() if p.requires_grad}
    g, _ = fg.estimate(theta, (inputs, labels))
    mark("perturb_and_forward")
    with torch.no_grad():
        params = dict(fg.model.named_parameters())
        for n, gn in g.items():
            params[n].sub_(lr * gn)
    mark("optimizer_step")
    return timer.result(FG_PHASES)


def is_oom(e: BaseException) -> bool:
    """torch's out-of-memory error on CUDA, or an allocator failure on the CPU."""
    if isinstance(e, torch.OutOfMemoryError):
        return True
    msg = str(e).lower()
    return isinstance(e, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg)
