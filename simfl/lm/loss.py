"""The training loss of either architecture: token cross-entropy of the labels given the inputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100  # label positions that are padding: no loss


def model_inputs(model, inputs: torch.Tensor, labels: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """(keyword inputs of the forward pass, the targets its logits are scored against).

    Encoder-decoder (T5): the encoder reads the prompt, the decoder the labels shifted right (padding -100
    becomes the pad id 0, as T5 does); every decoder position is scored. Decoder-only: prompt and labels
    are one sequence; position i predicts token i + 1, and only the label tokens are scored (the prompt's
    targets are -100), the usual supervised fine-tuning loss.
    """
    if getattr(getattr(model, "config", None), "is_encoder_decoder", True):  # a bare callable: T5 (simfl train)
        decoder_inputs = torch.cat([torch.zeros_like(labels[:, :1]), labels[:, :-1]], dim=1).clamp(min=0)
        return {"input_ids": inputs, "decoder_input_ids": decoder_inputs}, labels
    ids = torch.cat([inputs, labels.clamp(min=0)], dim=1)
    targets = torch.cat([torch.full_like(inputs, IGNORE_INDEX), labels], dim=1)[:, 1:]
    targets = torch.cat([targets, torch.full_like(targets[:, :1], IGNORE_INDEX)], dim=1)  # the last predicts nothing
    return {"input_ids": ids}, targets


def token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX)


def seq2seq_loss(model, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Token cross-entropy of the labels given the inputs, padding (-100) ignored (either architecture)."""
    kwargs, targets = model_inputs(model, inputs, labels)
    return token_loss(model(**kwargs).logits, targets)
