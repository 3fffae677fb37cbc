"""Measure the activations autograd saves for a training step, and fit the hardware model's bytes per element.

    python scripts/measure_activations.py measure   # builds each catalog model (random weights), counts
                                                    # saved tensors with hooks; appends to the CSV (slow)
    python scripts/measure_activations.py fit       # fits simfl/hardware/activations.yaml from the CSV

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
    OUT.write_text("# Generated by scripts/measure_activations.py fit; edit the script, not this file.\n"
                   + yaml.safe_dump(out, sort_keys=False, width=110))
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["measure"]:
        measure(sys.argv[2:] or CONFIGS)
    elif sys.argv[1:2] == ["fit"]:
        print(yaml.safe_dump(fit(), sort_keys=False))
    else:
        sys.exit(__doc__)
