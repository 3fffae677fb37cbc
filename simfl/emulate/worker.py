"""The torch side of an emulated party, driven over a pipe by its Flower process (which has no torch).

    python -m simfl.emulate.worker client SPEC.json INDEX   # real LoRA steps on the client's data shard
    python -m simfl.emulate.worker server SPEC.json         # the scenario's server optimizer

Each message is a JSON header line followed by `nbytes` raw bytes: the trainable parameters as one float32
vector (flower_apps.send_msg / recv_msg). A client trains exactly as `simfl calibrate` measured the profile:
the calibration kernel's model and sequence lengths, torch on one thread, pinned to the core the server gave
it for the round. Its batches are the generated dialogue task's (simfl/lm/data.py), padded to the same
lengths, so a step costs what the profile measured. It stops between two blocks of a step once the round
has closed (the server creates the round's marker file), as simfl stops a client that is cut off.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time

import numpy as np
import torch

from simfl.emulate.flower_apps import recv_msg, send_msg


class RoundClosed(Exception):
    """The server closed the round while this client was still computing."""


def _flat(model) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters() if p.requires_grad]).numpy()


def _load(model, flat: np.ndarray) -> None:
    vec = torch.from_numpy(flat)
    with torch.no_grad():
        i = 0
        for p in (p for p in model.parameters() if p.requires_grad):
            p.copy_(vec[i:i + p.numel()].view_as(p))
            i += p.numel()
    assert i == vec.numel(), f"{vec.numel()} parameters received, the adapter has {i}"


class Client:
    def __init__(self, spec: dict, index: int):
        from simfl.catalog import get_architecture
        from simfl.lm import data
        from simfl.lm.model import KernelSpec, build_model

        torch.set_num_threads(1)  # as the emulation profile was calibrated (--threads 1, one core)
        self.spec = spec
        kspec = KernelSpec(lora_r=spec["lora_r"], lora_targets=tuple(spec["lora_targets"]), seq_len=spec["seq_len"],
                           target_len=spec["target_len"], seed=spec["seed"])
        self.model = build_model(get_architecture(spec["arch"]), kspec)
        rows = data.generate(spec["examples"], spec["seed"])
        tok = data.build_tokenizer([r["dialogue"] + " " + r["summary"] for r in rows])
        shard = rows[index::spec["clients"]] or rows[:1]
        self.x, self.y = data.encode(shard, tok, spec["seq_len"], spec["target_len"])
        self.examples = len(shard)
        self.next = 0
        self.marker: str | None = None
        blocks = [m for n, m in self.model.named_modules() if re.search(r"\.block\.\d+$", n)]
        for m in blocks:  # a cut lands within one block's forward or backward, not a whole step later
            m.register_forward_pre_hook(self._check)
            m.register_full_backward_pre_hook(self._check)
        self.opt = torch.optim.SGD([p for p in self.model.parameters() if p.requires_grad], lr=spec["lr"])

    def _check(self, *_):
        if self.marker and os.path.exists(self.marker):
            raise RoundClosed

    def fit(self, head: dict, flat: np.ndarray) -> tuple[dict, np.ndarray]:
        from simfl.lm.loss import seq2seq_loss

        os.sched_setaffinity(0, {head["core"]})
        self.marker = head.get("marker")
        if head.get("warmup"):  # unmeasured steps, as calibration's: the first steps of a process are slow
            start = _flat(self.model)
            self.fit({"steps": head["warmup"], "core": head["core"]}, start)
            _load(self.model, start)
            return {"status": "completed", "steps": 0, "examples": self.examples}, start
        _load(self.model, flat)
        self.model.train()
        b, losses, done = self.spec["batch_size"], [], 0
        try:
            for _ in range(head["steps"]):
                idx = [(self.next + j) % len(self.x) for j in range(b)]
                self.next = (self.next + b) % len(self.x)
                loss = seq2seq_loss(self.model, self.x[idx], self.y[idx])
                loss.backward()
                self.opt.step()
                self.opt.zero_grad(set_to_none=True)
                losses.append(loss.item())
                done += 1
        except RoundClosed:
            self.opt.zero_grad(set_to_none=True)
            return {"status": "cut", "steps": done}, np.zeros(0, dtype=np.float32)
        return {"status": "completed", "steps": done, "loss": float(np.mean(losses)) if losses else None,
                "examples": self.examples}, _flat(self.model)


class Server:
    def __init__(self, spec: dict):
        from simfl.config.server_optimizers import server_optimizer
        from simfl.fl.strategies import strategy

        self.strategy = strategy(server_optimizer(spec["optimizer"], spec.get("hyper")))

    def step(self, head: dict, flat: np.ndarray) -> tuple[dict, np.ndarray]:
        n = len(head["weights"])
        parts = np.split(flat, n + 1)  # x_t, then each client's model
        x_t = {"x": torch.from_numpy(parts[0])}
        models = [{"x": torch.from_numpy(p)} for p in parts[1:]]
        t0 = time.perf_counter()
        out = self.strategy.step(x_t, models, head["weights"])["x"].numpy().astype(np.float32)
        return {"step_s": time.perf_counter() - t0}, out


def main() -> None:
    role, spec = sys.argv[1], json.loads(open(sys.argv[2]).read())
    party = Client(spec, int(sys.argv[3])) if role == "client" else Server(spec)
    rd, wr = sys.stdin.buffer, sys.stdout.buffer
    send_msg(wr, {"ready": True, "params": int(_flat(party.model).size) if role == "client" else None})
    while True:
        got = recv_msg(rd)
        if got is None:
            return
        head, flat = got
        reply, out = party.fit(head, flat) if role == "client" else party.step(head, flat)
        send_msg(wr, reply, out)


if __name__ == "__main__":
    main()
