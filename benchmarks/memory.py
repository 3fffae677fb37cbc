"""Peak memory of one training step: backprop against forward-gradient (FwdLLM), same model and batch.

    python benchmarks/memory.py [--model flan-t5-small] [--batch 4] [--perturbations 16]

Each case runs in a fresh process: build the model, run one warm-up step, then
one measured step. It prints the peak resident set (ru_maxrss) and its growth
over the resident set right after the model was built. That growth is what the
step itself needs: activations kept for the backward pass, or the perturbed
forward passes. Forward-gradient runs with all P directions batched through
vmap (chunk P, the fast way) and one direction at a time (chunk 1, the lean way).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import torch
torch.set_num_threads(2)
from simfl.catalog import get_architecture
from simfl.calibrate.kernel import timed_fg_step, timed_step
from simfl.lm.data import random_batch
from simfl.lm.forward_gradient import ForwardGradient
from simfl.lm.model import KernelSpec, build_model, make_optimizer
model_name, batch, method, p, chunk = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
fg_mode = method == "forward_gradient"
spec = KernelSpec(eager_attention=fg_mode, lora_dropout=0.0 if fg_mode else 0.05)
arch = get_architecture(model_name)
model = build_model(arch, spec)
data = random_batch(batch, spec, arch.vocab_size, torch.Generator().manual_seed(0))
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
def current_rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
built = current_rss()
if fg_mode:
    fg = ForwardGradient(model.eval(), p, mode="jvp", chunk=chunk)
    step = lambda: timed_fg_step(fg, data, torch.device("cpu"), 0.01)
else:
    opt = make_optimizer(model, spec)
    step = lambda: timed_step(model, opt, data, torch.device("cpu"))
step()
t = step()["step"]
print(json.dumps({"after_build_bytes": built, "peak_bytes": rss(), "step_s": t}))
"""


def measure(model: str, batch: int, method: str, p: int, chunk: int) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, model, str(batch), method, str(p), str(chunk)],
                       capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="flan-t5-small")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--perturbations", type=int, default=16)
    args = ap.parse_args()
    p = args.perturbations
    cases = [("backprop", "backprop", 0, 0), (f"forward-gradient P={p}, vmap chunk {p}", "forward_gradient", p, p),
             (f"forward-gradient P={p}, chunk 1", "forward_gradient", p, 1)]
    print(f"{args.model} LoRA, batch {args.batch}, seq 512 / 95, CPU, 2 threads")
    print(f"{'case':38s} {'peak RSS GB':>12s} {'step needs GB':>14s} {'step s':>8s}")
    for label, method, pp, chunk in cases:
        m = measure(args.model, args.batch, method, pp, chunk)
        grow = (m["peak_bytes"] - m["after_build_bytes"]) / 1e9
        print(f"{label:38s} {m['peak_bytes'] / 1e9:12.2f} {grow:14.2f} {m['step_s']:8.2f}")


if __name__ == "__main__":
    main()
