"""The forward-gradient estimate (FwdLLM): a gradient from perturbed forward passes, no backward pass."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import functional_call, jvp, vmap

from simfl.lm.loss import seq2seq_loss

Params = dict[str, torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor]


class ForwardGradient:
    """Gradient estimate from P random directions: g = mean_p (dL/dtheta . v_p) v_p, v_p ~ N(0, I).

    The directional derivative comes from forward-mode AD (torch.func.jvp: one
    pass carrying primal and tangent) where the model supports it, otherwise
    from central differences (L(theta + eps v) - L(theta - eps v)) / (2 eps).
    `mode` is "auto" (try jvp, fall back), "jvp" or "fd"; `.chosen` says which ran.
    No backward pass runs and no activations are kept for one: the memory saving
    FwdLLM builds on. Dropout is off (eval mode) so perturbed passes compare.

    discriminative > 1 draws that many times P candidates and keeps the P most
    aligned (|cosine|) with the previous global update, FwdLLM's discriminative
    perturbation sampling.
    """

    def __init__(self, model, perturbations: int, mode: str = "auto", fd_eps: float = 1e-3,
                 discriminative: int = 1, seed: int = 0, chunk: int = 16):
        if perturbations < 1:
            raise ValueError("need at least one perturbation")
        self.model = model
        self.p = perturbations
        self.mode = mode
        self.fd_eps = fd_eps
        self.discriminative = discriminative
        self.chunk = chunk
        self.gen = torch.Generator().manual_seed(seed)
        self.chosen: str | None = None if mode == "auto" else mode
        self.prev_update: Params | None = None

    def _loss_fn(self, inputs, labels) -> Callable[[Params], torch.Tensor]:
        return lambda theta: seq2seq_loss(
            lambda **kw: functional_call(self.model, theta, args=(), kwargs=kw, strict=False), inputs, labels)

    def _directions(self, theta: Params) -> list[Params]:
        n = self.p * max(1, self.discriminative)
        cands = [{k: torch.randn(t.shape, generator=self.gen, dtype=t.dtype) for k, t in theta.items()}
                 for _ in range(n)]
        if n == self.p or self.prev_update is None:
            return cands[: self.p]
        ref = torch.cat([u.flatten() for u in self.prev_update.values()])
        score = [abs(torch.nn.functional.cosine_similarity(torch.cat([v[k].flatten() for k in theta]), ref, dim=0))
                 for v in cands]
        keep = sorted(range(n), key=lambda i: -float(score[i]))[: self.p]
        return [cands[i] for i in keep]

    def derivatives(self, loss_fn, theta: Params, dirs: Params) -> tuple[float, torch.Tensor]:
        """(loss at theta, directional derivatives along each stacked direction).

        All P directions go through one vmap'd call (chunked to bound memory): with
        forward-mode AD each is a jvp; with finite differences each is two forward passes.
        """
        if self.chosen in (None, "jvp"):
            try:
                losses, d = vmap(lambda v: jvp(loss_fn, (theta,), (v,)), chunk_size=self.chunk)(dirs)
                self.chosen = "jvp"
                return float(losses[0]), d
            except (NotImplementedError, RuntimeError):
                if self.chosen == "jvp":
                    raise
                self.chosen = "fd"
        e = self.fd_eps

        def central(v: Params) -> tuple[torch.Tensor, torch.Tensor]:
            up = loss_fn({k: t + e * v[k] for k, t in theta.items()})
            down = loss_fn({k: t - e * v[k] for k, t in theta.items()})
            return (up + down) / 2, (up - down) / (2 * e)

        with torch.no_grad():
            losses, d = vmap(central, chunk_size=self.chunk)(dirs)
        return float(losses.mean()), d

    def estimate(self, theta: Params, batch: Batch) -> tuple[Params, float]:
        """(gradient estimate, loss) at theta on one batch: mean_p d_p v_p."""
        dirs = self._directions(theta)
        stacked = {k: torch.stack([v[k] for v in dirs]) for k in theta}
        loss, d = self.derivatives(self._loss_fn(*batch), theta, stacked)
        d = d.detach()
        return {k: torch.tensordot(d, stacked[k], dims=1) / len(dirs) for k in theta}, loss
