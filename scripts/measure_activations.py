"""Measure the activations autograd saves for a training step, and fit the hardware model's bytes per element.

    python scripts/measure_activations.py measure   # builds each catalog model (random weights), counts
                                                    # saved tensors with hooks; appends to the CSV (slow)
    python scripts/measure_activations.py fit       # fits simfl/hardware/activations.yaml from the CSV
    python scripts/measure_activations.py half      # each HALF_CONFIGS point's bytes per sample in fp32 and bf16
                                                    # (breakdown's totals), appended to HALF_CSV (slow)
    python scripts/measure_activations.py breakdown MODEL FINETUNING SEQ TARGET [fp32|bf16]
        # what one sample saves, by kind: batch 2 minus batch 1 (so the step's own tensors, such as autocast's
        # copies of the weights, cancel), attention probabilities and dropout masks apart (docs/hardware-model.md,
        # "Memory of a GPU step")

Saved bytes: every tensor autograd keeps for backward during one forward pass and loss of one sample
(dropout on, FP32), counted once per storage, parameters excluded. The model's estimate is
sum_k c_k x term_k over the architecture's activation_terms; c is fitted per family on LoRA points by
non-negative least squares of the relative error, and full fine-tuning is LoRA's estimate x one factor.
"""

from __future__ import annotations

import csv
import itertools
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "docs" / "data" / "saved-activations.csv"
OUT = ROOT / "simfl" / "hardware" / "activations.yaml"
# Bytes saved per sample in fp32 and under bf16 (as simfl calibrate trains it: autocast, a LoRA base in bf16)
HALF_CSV = ROOT / "docs" / "data" / "saved-activations-bf16.csv"
HALF_CONFIGS = ["flan-t5-small:lora:512:95", "flan-t5-base:full:512:95"]  # a decoder (qwen2.5-0.5b:lora:512:95) not yet
CONFIGS = [f"{m}:{ft}:{s}:95" for m in ("flan-t5-small", "flan-t5-base", "flan-t5-large") for ft in ("lora", "full")
           for s in (128, 512)] + ["flan-t5-small:lora:256:32"] + [
    f"{m}:{ft}:{s}:95" for m in ("gemma-3-270m", "qwen2.5-0.5b", "llama-3.2-1b") for ft, s in
    (("lora", 128), ("lora", 512), ("full", 128))] + [
    f"{m}:{ft}:64:16" for m in ("t5-tiny", "decoder-tiny") for ft in ("lora", "full")]


def saved_bytes(name: str, finetuning: str, seq_len: int, target_len: int) -> int:
    import torch

    from simfl.lm.data import random_batch
    from simfl.lm.loss import seq2seq_loss
    from simfl.lm.model import KernelSpec, build_model
    from simfl.catalog import CATALOG

    arch = CATALOG[name]
    spec = KernelSpec(finetuning=finetuning, seq_len=seq_len, target_len=target_len)
    model = build_model(arch, spec)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        seen[st.data_ptr()] = max(seen.get(st.data_ptr(), 0), st.nbytes())
        return t

    x, y = random_batch(1, spec, arch.vocab_size, torch.Generator().manual_seed(0))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        seq2seq_loss(model, x, y)
    return sum(v for k, v in seen.items() if k not in params)


def breakdown(name: str, finetuning: str, seq_len: int, target_len: int, precision: str = "fp32") -> dict:
    """Bytes one sample saves for backward, by kind: dropout masks (tensors a bernoulli draw wrote), attention
    probabilities (heads x queries x keys), and the rest, each by dtype; per sample = batch 2 - batch 1. Under
    bf16, the step runs in CPU autocast. Dropout runs as this CPU runs it (a float mask); a GPU's fused dropout
    keeps a 1-byte mask."""
    import contextlib
    from collections import Counter

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from simfl.catalog import CATALOG
    from simfl.lm.data import random_batch
    from simfl.lm.loss import seq2seq_loss
    from simfl.lm.model import KernelSpec, build_model

    arch = CATALOG[name]
    # as simfl calibrate trains: under bf16 a LoRA base is held in bf16, full fine-tuning keeps fp32 weights
    spec = KernelSpec(finetuning=finetuning, seq_len=seq_len, target_len=target_len, precision=precision)
    model = build_model(arch, spec)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    lengths = {seq_len, target_len, seq_len + target_len}

    def one(batch: int) -> Counter:
        masks, seen = set(), {}

        class Tag(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                if func.overloadpacket in (torch.ops.aten.bernoulli_, torch.ops.aten.bernoulli):
                    masks.add(out.untyped_storage().data_ptr())
                return out

        def pack(t):
            st = t.untyped_storage()
            seen[st.data_ptr()] = (max(seen.get(st.data_ptr(), (0,))[0], st.nbytes()), t.dtype, tuple(t.shape))
            return t

        x, y = random_batch(batch, spec, arch.vocab_size, torch.Generator().manual_seed(0))
        cast = torch.autocast("cpu", dtype=spec.autocast_dtype) if spec.autocast_dtype else contextlib.nullcontext()
        with cast, Tag(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            seq2seq_loss(model, x, y)
        out = Counter()
        for ptr, (n, dtype, shape) in seen.items():
            if ptr in params:
                continue
            lead = 1
            for n_ in shape[:-2]:
                lead *= n_
            # heads x queries x keys (batch and heads flattened or not)
            probs = len(shape) >= 3 and shape[-1] in lengths and shape[-2] in lengths and lead % arch.num_heads == 0
            kind = ("dropout mask" if ptr in masks else "") + (" of " if ptr in masks and probs else "") + \
                ("attention probabilities" if probs else "" if ptr in masks else "other")
            out[f"{kind}, {str(dtype).removeprefix('torch.')}"] += n
        return out

    b1, b2 = one(1), one(2)
    return {k: b2[k] - b1[k] for k in sorted(set(b1) | set(b2))}


def measure_half(configs: list[str]) -> None:
    """Append each configuration's bytes per sample in fp32 and bf16 to HALF_CSV."""
    new = not HALF_CSV.exists()
    with HALF_CSV.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["model", "finetuning", "seq_len", "target_len", "fp32_bytes", "bf16_bytes"])
        for c in configs:
            m, ft, s, t = c.split(":")
            totals = [sum(breakdown(m, ft, int(s), int(t), p).values()) for p in ("fp32", "bf16")]
            w.writerow([m, ft, s, t, *totals])
            f.flush()


def measure(configs: list[str]) -> None:
    """Each configuration in a fresh process would be cleaner; one at a time here, appended as it ends."""
    CSV.parent.mkdir(parents=True, exist_ok=True)
    new = not CSV.exists()
    with CSV.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["model", "finetuning", "seq_len", "target_len", "saved_bytes"])
        for c in configs:
            m, ft, s, t = c.split(":")
            w.writerow([m, ft, s, t, saved_bytes(m, ft, int(s), int(t))])
            f.flush()


def nnls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Non-negative least squares by trying every support (five unknowns: 31 small solves)."""
    best, n = None, a.shape[1]
    for k in range(1, n + 1):
        for cols in itertools.combinations(range(n), k):
            x, *_ = np.linalg.lstsq(a[:, cols], b, rcond=None)
            if (x < 0).any():
                continue
            cost = float(np.sum((a[:, cols] @ x - b) ** 2))
            if best is None or cost < best[0]:
                full = np.zeros(n)
                full[list(cols)] = x
                best = (cost, full)
    return best[1]


def fit() -> dict:
    from simfl.catalog import CATALOG
    from simfl.hardware.work import family

    rows = list(csv.DictReader(CSV.open()))
    keys = ("hidden", "projections", "feed_forward", "scores", "logits")
    out = {"source": f"fitted by scripts/measure_activations.py to {CSV.relative_to(ROOT)} (bytes of tensors "
                     "autograd saved, counted with saved-tensor hooks, FP32, dropout on; transformers and peft of "
                     "the calibrate extra)", "families": {}}
    for fam in ("t5", "decoder"):
        mine = [r for r in rows if family(r["model"]) == fam]
        terms = lambda r: CATALOG[r["model"]].activation_terms(int(r["seq_len"]), int(r["target_len"]))  # noqa: E731
        lora = [r for r in mine if r["finetuning"] == "lora"]
        a = np.array([[terms(r)[k] for k in keys] for r in lora])
        b = np.array([float(r["saved_bytes"]) for r in lora])
        coef = nnls(a / b[:, None], np.ones_like(b))  # relative error
        predict = lambda r: sum(c * terms(r)[k] for c, k in zip(coef, keys))  # noqa: E731
        full = [r for r in mine if r["finetuning"] == "full"]
        ratios = [float(r["saved_bytes"]) / predict(r) for r in full]
        factor = float(np.exp(np.mean(np.log(ratios)))) if ratios else 1.0
        errs = [predict(r) * (factor if r["finetuning"] == "full" else 1.0) / float(r["saved_bytes"]) - 1
                for r in mine]
        out["families"][fam] = {"bytes_per_element": {k: round(float(c), 4) for k, c in zip(keys, coef)},
                                "full_factor": round(factor, 4), "points": len(mine),
                                "max_abs_error": round(float(max(abs(e) for e in errs)), 4)}
        half = [r for r in (csv.DictReader(HALF_CSV.open()) if HALF_CSV.exists() else []) if family(r["model"]) == fam]
        if half:
            # under autocast the probabilities and logits keep their fp32 bytes (work.KEPT_FP32); what share of
            # its fp32 bytes the rest keeps, from each point's measured bf16 bytes over the fitted fp32 terms
            def parts(r):
                f = factor if r["finetuning"] == "full" else 1.0
                t = terms(r)
                kept = f * sum(c * t[k] for c, k in zip(coef, keys) if k in ("scores", "logits"))
                return kept, f * predict(r) - kept

            ratios = [(float(r["bf16_bytes"]) - parts(r)[0]) / parts(r)[1] for r in half]
            rest = float(np.exp(np.mean(np.log(ratios))))
            errs = [(parts(r)[0] + rest * parts(r)[1]) / float(r["bf16_bytes"]) - 1 for r in half]
            out["families"][fam]["half_precision"] = {
                "rest_factor": round(rest, 4), "points": len(half),
                "max_abs_error": round(float(max(abs(e) for e in errs)), 4),
                "source": f"{HALF_CSV.relative_to(ROOT)}: bytes saved per sample under bf16 autocast (a LoRA base "
                          "in bf16), as simfl calibrate trains, over the fitted fp32 terms"}
    OUT.write_text("# Generated by scripts/measure_activations.py fit; edit the script, not this file.\n"
                   + yaml.safe_dump(out, sort_keys=False, width=110))
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["measure"]:
        measure(sys.argv[2:] or CONFIGS)
    elif sys.argv[1:2] == ["half"]:
        measure_half(sys.argv[2:] or HALF_CONFIGS)
    elif sys.argv[1:2] == ["breakdown"] and len(sys.argv) in (6, 7):
        m, ft, s, t = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        parts = breakdown(m, ft, s, t, *sys.argv[6:])
        total = sum(parts.values())
        print(f"{m} {ft} seq {s} target {t} {(sys.argv[6:] or ['fp32'])[0]}: {total} bytes saved per sample")
        for k, v in parts.items():
            print(f"  {k:36s} {v:14d}  {v / total:6.1%}")
    elif sys.argv[1:2] == ["fit"]:
        print(yaml.safe_dump(fit(), sort_keys=False))
    else:
        sys.exit(__doc__)
