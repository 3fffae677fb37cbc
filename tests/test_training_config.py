"""The training configuration's one home (simfl/training.py): its check, its defaults everywhere, and the
options of simfl calibrate and simfl estimate validated by the same rule."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from simfl.catalog import BUILTIN_MODELS, CATALOG, T5Architecture
from simfl.config.profiles import TrainingPoint
from simfl.config.scenario import ModelSpec, TrainingSpec
from simfl.errors import ScenarioError
from simfl.training import (ATTENTION_LORA_TARGETS, DEFAULT_LORA_ALPHA, DEFAULT_LORA_R, DEFAULT_LORA_TARGETS,
                            DEFAULT_METHOD, DEFAULT_SEQ_LEN, DEFAULT_TARGET_LEN, LORA_TARGETS, TrainingConfig,
                            lora_targets_of)

ROOT = Path(__file__).resolve().parents[1]


def simfl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simfl", *args], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize("config, field, message", [
    (TrainingConfig("flan-t5-small", lora_targets=("q", "gate")), "lora_targets",
     "flan-t5-small is an encoder-decoder model: its LoRA targets are q, k, v, o, not gate"),
    (TrainingConfig("flan-t5-base", lora_targets=("gate", "up", "v")), "lora_targets",
     "flan-t5-base is an encoder-decoder model: its LoRA targets are q, k, v, o, not gate, up"),
    (TrainingConfig("qwen2.5-0.5b", lora_targets=("q", "z")), "lora_targets",
     "unknown LoRA target z; known: q, k, v, o, gate, up, down"),
    (TrainingConfig("qwen2.5-0.5b", lora_targets=()), "lora_targets",
     "give at least one LoRA target of q, k, v, o, gate, up, down"),
    (TrainingConfig("gpt-5"), "model", "unknown model 'gpt-5'; known: " + ", ".join(BUILTIN_MODELS)),
    (TrainingConfig("t5-tiny", "half"), "finetuning", "expected lora or full, got 'half'"),
    (TrainingConfig("t5-tiny", method="magic"), "method", "expected backprop or forward_gradient, got 'magic'"),
    (TrainingConfig("t5-tiny", optimizer="lion"), "optimizer", "expected sgd, adamw or adamw-8bit, got 'lion'"),
    (TrainingConfig("t5-tiny", seq_len=0), "seq_len", "must be a positive integer, got 0"),
    (TrainingConfig("t5-tiny", lora_alpha=-1.0), "lora_alpha", "must be a positive number, got -1"),
    (TrainingConfig("t5-tiny", method="forward_gradient"), "perturbations",
     "method forward_gradient needs at least one perturbation, got None"),
])
def test_check_says_the_field_and_one_sentence(config, field, message):
    with pytest.raises(ValueError) as e:
        config.check()
    assert isinstance(e.value, ScenarioError) and (e.value.field, e.value.message) == (field, message)


def test_decoders_take_the_feed_forward_targets_and_t5_does_not():
    assert TrainingConfig("qwen2.5-0.5b", lora_targets=("gate", "up", "down")).check().lora_targets == (
        "gate", "up", "down")
    for name, arch in CATALOG.items():
        targets = lora_targets_of(name)
        assert targets == (ATTENTION_LORA_TARGETS if isinstance(arch, T5Architecture) else LORA_TARGETS)
        arch.lora_params(1, targets)  # the catalog counts every target the rule allows


def test_every_schema_defaults_to_the_one_home():
    spec = ModelSpec(name="flan-t5-small")
    assert (spec.lora_r, spec.lora_alpha, tuple(spec.lora_targets)) == (DEFAULT_LORA_R, DEFAULT_LORA_ALPHA,
                                                                        DEFAULT_LORA_TARGETS)
    tr = TrainingSpec(batch_size=1, local_steps=1)
    assert (tr.seq_len, tr.target_len, tr.method) == (DEFAULT_SEQ_LEN, DEFAULT_TARGET_LEN, DEFAULT_METHOD)
    point = TrainingPoint(model="flan-t5-small", finetuning="lora", seq_len=512, batch_size=4, step_time_s=1.0)
    assert point.training_config == TrainingConfig("flan-t5-small", batch_size=4)


def test_a_scenario_gives_each_group_its_configuration():
    from simfl import load_scenario

    sc = load_scenario(ROOT / "scenarios/quickstart.yaml")
    c = sc.training_config(0)
    assert c == TrainingConfig(sc.model.name, sc.model.finetuning, sc.training.method, sc.training.seq_len,
                               sc.training.target_len, sc.fleet[0].batch_size or sc.training.batch_size,
                               sc.model.lora_r, tuple(sc.model.lora_targets), sc.training.perturbations,
                               lora_alpha=sc.model.lora_alpha)
    assert c.check() is c


def test_importing_the_training_configuration_loads_nothing_heavy():
    code = ("import sys, simfl.training; print(' '.join(m for m in ('pandas', 'pydantic', 'yaml', 'numpy', 'torch') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


# -- the command lines: one rule, one line naming the option and the value, exit code 2 -----------------------

@pytest.mark.parametrize("args, expected", [
    (["calibrate", "--name", "x", "--lora-targets", "gate"],
     "error: --lora-targets: flan-t5-small is an encoder-decoder model: its LoRA targets are q, k, v, o, not gate"),
    (["calibrate", "--name", "x", "--models", "qwen2.5-0.5b,t5-tiny", "--lora-targets", "q,up"],
     "error: --lora-targets: t5-tiny is an encoder-decoder model: its LoRA targets are q, k, v, o, not up"),
    (["calibrate", "--name", "x", "--optimizer", "lion"], "error: --optimizer: expected sgd, adamw or adamw-8bit, got 'lion'"),
    (["calibrate", "--name", "x", "--finetuning", "half"], "error: --finetuning: expected lora or full, got 'half'"),
    (["calibrate", "--name", "x", "--lora-alpha", "0"], "error: --lora-alpha: must be a positive number, got 0"),
    (["calibrate", "--name", "x", "--lora-targets", " , "], "error: --lora-targets: give at least one projection, "
                                                            "got ' , '"),
    (["estimate", "a100-80gb", "flan-t5-small", "--lora-targets", "v,down"],
     "error: --lora-targets: flan-t5-small is an encoder-decoder model: its LoRA targets are q, k, v, o, not down"),
    (["estimate", "a100-80gb", "qwen2.5-0.5b", "--lora-targets", "q,z"],
     "error: --lora-targets: unknown LoRA target z; known: q, k, v, o, gate, up, down"),
    (["estimate", "a100-80gb", "flan-t5-small", "--finetuning", "half"],
     "error: --finetuning: expected lora or full, got 'half'"),
])
def test_bad_training_options_are_one_line_exit_2(args, expected):
    r = simfl(*args)
    assert r.returncode == 2 and r.stdout == "", r.stderr
    assert r.stderr == expected + "\n"


def test_calibrate_takes_the_feed_forward_targets_of_a_decoder():
    # the training options pass; the run then stops at the (bad) device, before anything is measured
    r = simfl("calibrate", "--name", "x", "--models", "qwen2.5-0.5b", "--lora-targets", "gate,up", "--device", "tpu:0")
    assert r.returncode == 2 and r.stderr == "error: --device: expected auto, cpu, cuda or cuda:N, got 'tpu:0'\n"


def test_estimate_takes_the_feed_forward_targets_of_a_decoder():
    r = simfl("estimate", "a100-80gb", "qwen2.5-0.5b", "--lora-targets", "gate,up", "--batch-sizes", "1", "--json")
    assert r.returncode == 0, r.stderr
    assert '"batch_size": 1' in r.stdout and "step_time_s" in r.stdout


def test_the_command_line_defaults_are_the_one_home():
    from simfl.cli.calibrate import calibrate
    from simfl.cli.estimate import estimate
    from simfl.training import DEFAULT_OPTIMIZER, DEFAULT_PERTURBATIONS

    for command in (calibrate, estimate):
        defaults = {k: p.default for k, p in inspect.signature(command).parameters.items()}
        assert (defaults["seq_len"], defaults["target_len"], defaults["lora_r"], defaults["perturbations"]) == (
            DEFAULT_SEQ_LEN, DEFAULT_TARGET_LEN, DEFAULT_LORA_R, DEFAULT_PERTURBATIONS)
        assert defaults["lora_targets"] == ",".join(DEFAULT_LORA_TARGETS)
    assert inspect.signature(calibrate).parameters["optimizer"].default == DEFAULT_OPTIMIZER
    assert inspect.signature(calibrate).parameters["lora_alpha"].default == DEFAULT_LORA_ALPHA


# -- no default twice: a literal training default outside simfl/training.py fails ------------------------------

_DEFAULTS = {"target_len": r"95", "lora_r": r"16", "lora_alpha": r"32(?:\.0)?", "seq_len": r"512",
             "perturbations": r"16", "optimizer": r'"sgd"', "finetuning": r'"lora"', "method": r'"backprop"',
             "lora_targets": r'(?:\("q", "v"\)|\["q", "v"\]|"q,v")'}
_LITERALS = ([re.compile(rf'\b{f}\b[^\n]*?(?<![!=<>])=(?!=)\s*(?:Field\(\s*)?{v}(?![\w.])') for f, v in _DEFAULTS.items()]
             + [re.compile(rf'["\']{f}["\'],\s*{v}(?![\w.])') for f, v in _DEFAULTS.items()]
             + [re.compile(r'\(\s*["\']q["\'],\s*["\']v["\']\s*\)|\[\s*["\']q["\'],\s*["\']v["\']\s*\]'
                           r'|["\']q,\s*v["\']')])


def _python_files():
    return [p for p in sorted((ROOT / "simfl").rglob("*.py")) if p != ROOT / "simfl/training.py"]


def test_no_training_default_is_written_twice():
    """`target_len: int = 95`, `Field(16, ...)` for lora_r, `p.get("lora_r", 16)`, `("q", "v")`, `"q,v"`: each default
    is a name of simfl/training.py everywhere else (a literal 95 anywhere, even a bare one, is the target length)."""
    found = []
    for path in _python_files():
        rel = path.relative_to(ROOT)
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if any(p.search(line) for p in _LITERALS):
                found.append(f"{rel}:{i}: {line.strip()}")
        with open(path, "rb") as f:
            found += [f"{rel}:{t.start[0]}: {t.line.strip()}" for t in tokenize.tokenize(f.readline)
                      if t.type == tokenize.NUMBER and t.string in ("95", "95.0")]
    assert not found, "training defaults written outside simfl/training.py:\n" + "\n".join(found)


def test_the_literal_check_would_catch_the_old_copies():
    old = ['    target_len: int = 95', '    lora_r: Int64 = Field(16, gt=0, description="LoRA rank.")',
           '    lora_targets: Annotated[str, typer.Option(help="LoRA target projections.")] = "q,v",',
           '                     p.get("perturbations"), p.get("target_len", 95), p.get("lora_r", 16),',
           '    lora_alpha: float = 32.0', '    optimizer: str = "sgd"', '        default_factory=lambda: ["q", "v"],']
    assert all(any(p.search(line) for p in _LITERALS) for line in old)
    fine = ['        if self.finetuning != "lora":', '    target_len: Int64 = Field(16, gt=0)', '    seq_len=32,',
            '    lora_r: Int64 | None = Field(None, gt=0)']
    assert not any(p.search(line) for p in _LITERALS for line in fine)
