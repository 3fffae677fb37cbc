"""Client trainers: backprop (SGD) and forward-gradient (FwdLLM: perturbed inferences, no backward pass)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from simfl.lm.forward_gradient import Batch, ForwardGradient, Params
from simfl.lm.loss import seq2seq_loss


def trainable_state(model: torch.nn.Module) -> Params:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def load_state(model: torch.nn.Module, state: Params) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for n, v in state.items():
            params[n].copy_(v)


@dataclass
class ClientUpdate:
    params: Params
    loss: float  # mean training loss over the local steps
    steps: int


def backprop_train(model, x_t: Params, batches: Sequence[Batch], lr: float) -> ClientUpdate:
    """Local SGD (no momentum; lr 1.0 in the seed paper) from the global adapter x_t."""
    load_state(model, x_t)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.0)
    losses = []
    for inputs, labels in batches:
        loss = seq2seq_loss(model, inputs, labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return ClientUpdate(trainable_state(model), sum(losses) / max(len(losses), 1), len(batches))


def forward_gradient_train(fg: ForwardGradient, x_t: Params, batches: Sequence[Batch], lr: float) -> ClientUpdate:
    """Local SGD steps from x_t with the forward-gradient estimate in place of the backprop gradient."""
    fg.model.eval()
    theta = {k: v.clone() for k, v in x_t.items()}
    losses = []
    with torch.no_grad() if fg.chosen == "fd" else contextlib.nullcontext():
        for batch in batches:
            g, loss = fg.estimate(theta, batch)
            theta = {k: t - lr * g[k] for k, t in theta.items()}
            losses.append(loss)
    return ClientUpdate(theta, sum(losses) / max(len(losses), 1), len(batches))
