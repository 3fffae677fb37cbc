"""simfl calibrate end to end on a tiny T5, OOM handling, and the profile driving simfl run."""

import math
import subprocess
import sys

import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from simfl.calibrate.kernel import is_oom  # noqa: E402
from simfl.lm.model import KernelSpec, build_model  # noqa: E402
from simfl.calibrate.power import NoPower, PowerMonitor  # noqa: E402
from simfl.calibrate.runner import build_profile, calibrate, interpolation_check  # noqa: E402
from simfl.catalog import CATALOG  # noqa: E402
from simfl.config.load import REPO_ROOT  # noqa: E402
from simfl.config.profiles import HardwareProfile  # noqa: E402

TINY = KernelSpec(seq_len=32, target_len=8)


def test_random_weight_models_match_catalog_counts():
    m = build_model(CATALOG["flan-t5-small"], KernelSpec(finetuning="full"))
    assert sum(p.numel() for p in m.parameters()) == 76_961_152
    lora = build_model(CATALOG["t5-tiny"], TINY)
    assert sum(p.numel() for p in lora.parameters() if p.requires_grad) == CATALOG["t5-tiny"].lora_params(16, ["q", "v"])


def test_oom_marks_batch_and_larger_and_goes_on_with_next_model():
    def hook(model, batch):
        if model == "t5-tiny" and batch >= 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    mon = PowerMonitor(NoPower(), thread=False)
    points, idle = calibrate(["t5-tiny"], [1, 2, 4, 8], TINY, warmup=0, steps=2, device=torch.device("cpu"),
                             monitor=mon, step_hook=hook)
    assert [(p.batch_size, p.oom) for p in points] == [(1, False), (2, False), (4, True), (8, True)]
    profile = build_profile("x", points, idle, TINY, device=torch.device("cpu"), facts={"memory_bytes": 1e9},
                            peak_flops=1e11, peak_source="test", backend="none", rate_hz=10, warmup=0, steps=2)
    entries = {e["batch_size"]: e for e in profile["training"]}
    assert entries[4] == {"model": "t5-tiny", "finetuning": "lora", "method": "backprop", "seq_len": 32,
                          "target_len": 8, "lora_r": 16, "lora_targets": ["q", "v"], "batch_size": 4, "oom": True}
    assert "power_w" not in entries[1] and profile["idle_power_w"] is None  # never invented
    HardwareProfile.model_validate(profile)


def test_other_errors_are_not_swallowed():
    def hook(model, batch):
        raise ValueError("a real bug")

    with pytest.raises(ValueError, match="a real bug"):
        calibrate(["t5-tiny"], [1], TINY, warmup=0, steps=1, device=torch.device("cpu"),
                  monitor=PowerMonitor(NoPower(), thread=False), step_hook=hook)


def test_is_oom():
    assert is_oom(torch.OutOfMemoryError("x"))
    assert is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes"))
    assert not is_oom(RuntimeError("shape mismatch"))


def test_interpolation_check_leaves_one_out():
    from simfl.calibrate.runner import PointResult

    pts = [PointResult("m", b, False, (t,)) for b, t in ((1, 1.0), (2, 1.5), (4, 3.0), (8, 5.0))]
    checks = {c["batch_size"]: c for c in interpolation_check(pts)}
    assert checks[4]["from"] == [1, 2, 8]
    assert checks[4]["predicted_s"] == pytest.approx(1.5 + 3.5 * 2 / 6)
    assert checks[4]["error_pct"] == pytest.approx(100 * ((1.5 + 3.5 / 3) - 3.0) / 3.0)


def test_calibrate_command_end_to_end_and_profile_drives_run(tmp_path):
    prof = tmp_path / "tiny-cpu.yaml"
    cmd = [sys.executable, "-m", "simfl", "calibrate", "--name", "tiny-cpu", "--models", "t5-tiny",
           "--batch-sizes", "1,2,4", "--seq-len", "32", "--target-len", "8", "--warmup", "1", "--steps", "3",
           "--power", "none", "--out", str(prof)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
    assert r.returncode == 0, r.stderr
    assert "power backend: none" in r.stderr and "interpolation check: t5-tiny batch 2" in r.stdout
    data = yaml.safe_load(prof.read_text())
    assert data["estimated"] is False and data["provenance"]["measured_steps"] == 3
    assert {"torch", "transformers", "peft", "date", "command", "power_backend"} <= set(data["provenance"])
    points = data["training"]
    assert [p["batch_size"] for p in points] == [1, 2, 4]
    for p in points:
        assert p["step_time_s"] > 0 and p["tokens_per_s"] == pytest.approx(p["batch_size"] * 32 / p["step_time_s"],
                                                                           rel=1e-3)
        # Each step's time is the sum of its phases, so every phase is at most its step, step by step,
        # and (the median being monotone) each phase median is at most the step median. The sum of the
        # phase medians has no such bound: under load it drifts either way (the old 5 % test was flaky).
        assert set(p["phases_s"]) == {"batch_load", "forward", "loss", "backward", "optimizer_step"}
        assert all(0 <= v <= p["step_time_s"] for v in p["phases_s"].values())
    scenario = {
        "name": "tiny", "seed": 1,
        "model": {"name": "t5-tiny"}, "training": {"batch_size": 2, "local_steps": 3, "seq_len": 32, "target_len": 8},
        "federation": {"clients_per_round": 2, "rounds": 3},
        "fleet": [{"count": 4, "device": str(prof), "network": "ethernet-1gbit"}],
        "server": {"device": "a100-80gb", "network": "ethernet-10gbit"},
    }
    sc = tmp_path / "tiny.yaml"
    sc.write_text(yaml.safe_dump(scenario))
    run = subprocess.run([sys.executable, "-m", "simfl", "run", str(sc), "--out", str(tmp_path / "out"),
                          "--no-plots"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr
    assert "tiny-cpu has no training power or idle power measurement" in run.stderr
    import pandas as pd

    rounds = pd.read_csv(tmp_path / "out" / "rounds.csv")
    assert rounds["t_comp_s"].iloc[0] == pytest.approx(3 * points[1]["step_time_s"])


@pytest.mark.parametrize("args,expected", [
    (["--models", "flan-t5-huge"], "error: --models: unknown model 'flan-t5-huge'"),
    (["--batch-sizes", "1,x"], "error: --batch-sizes: expected a comma-separated list of integers, got '1,x'"),
    (["--power", "magic"], "error: --power: expected one of auto, nvml, rapl, jetson, none, got 'magic'"),
])
def test_calibrate_bad_options(args, expected):
    r = subprocess.run([sys.executable, "-m", "simfl", "calibrate", "--name", "x", *args], capture_output=True,
                       text=True, cwd=REPO_ROOT)
    assert r.returncode == 2 and r.stderr.startswith(expected), r.stderr


def test_calibrate_on_real_text_with_a_local_tokenizer(tmp_path):
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = "hi how are you fine thanks see you tomorrow at the office bring coffee ok".split()
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(tmp_path / "tok")
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps({"dialogue": f"hi how are you {w}", "summary": f"see you {w}"})
                              for w in words) + "\n")
    prof = tmp_path / "p.yaml"
    r = subprocess.run([sys.executable, "-m", "simfl", "calibrate", "--name", "t", "--models", "t5-tiny",
                        "--batch-sizes", "2", "--seq-len", "16", "--target-len", "6", "--warmup", "0", "--steps",
                        "2", "--power", "none", "--data", str(data), "--tokenizer", str(tmp_path / "tok"),
                        "--out", str(prof)], capture_output=True, text=True, cwd=REPO_ROOT)
    assert r.returncode == 0, r.stderr
    assert str(data) in yaml.safe_load(prof.read_text())["provenance"]["data"]
    bad = subprocess.run([sys.executable, "-m", "simfl", "calibrate", "--name", "t", "--data", str(data)],
                         capture_output=True, text=True, cwd=REPO_ROOT)
    assert (bad.returncode, bad.stderr) == (2, "error: --data: --data needs --tokenizer NAME_OR_PATH\n")


def test_step_spread_is_the_pooled_log_sd_around_each_median():
    from simfl.calibrate.runner import PointResult, step_spread

    e = math.e
    # point 1: median 1 s, steps 1/e, 1, e -> log deviations -1, 0, 1; point 2: median 2 s, 2/e, 2, 2e -> -1, 0, 1
    a = PointResult("t5-tiny", 1, False, (1 / e, 1.0, e) * 4)
    b = PointResult("t5-tiny", 2, False, (2 / e, 2.0, 2 * e) * 4)
    s = step_spread([a, b, PointResult("t5-tiny", 4, True)])
    # 24 deviations, 16 of them +-1: sqrt(16 / 23)
    assert s["sigma"] == pytest.approx(math.sqrt(16 / 23), abs=1e-6) and s["per"] == "round"
    assert "24 measured steps" in s["source"] and "2 point(s)" in s["source"]
    assert step_spread([PointResult("t5-tiny", 1, False, (1.0, 1.0))]) is None  # too few steps


def test_profile_spread_is_the_default_speed(tmp_path):
    import yaml

    from simfl import load_scenario
    from simfl.build import build
    from simfl.config.load import REPO_ROOT

    prof = yaml.safe_load((REPO_ROOT / "hardware_profiles" / "jetson-agx-orin-64gb.yaml").read_text())
    prof["speed"] = {"sigma": 0.2, "per": "round", "source": "test"}
    (tmp_path / "orin.yaml").write_text(yaml.safe_dump(prof))
    sc = yaml.safe_load((REPO_ROOT / "scenarios" / "quickstart.yaml").read_text())
    sc["fleet"][0]["device"] = "./orin.yaml"
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sc))
    (g,) = build(load_scenario(tmp_path / "s.yaml")).inputs.groups
    assert g.speed_round is not None and g.speed_round.sigma == 0.2
    sc["fleet"][0]["speed"] = {"distribution": "fixed"}  # a group that says fixed is fixed
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sc))
    (g,) = build(load_scenario(tmp_path / "s.yaml")).inputs.groups
    assert g.speed_round is None


def test_decoder_scores_only_the_label_tokens():
    from simfl.lm.loss import model_inputs
    from simfl.lm.model import build_model
    from simfl.catalog import CATALOG

    model = build_model(CATALOG["decoder-tiny"], TINY)
    kwargs, targets = model_inputs(model, torch.tensor([[5, 6]]), torch.tensor([[7, 8]]))
    # one sequence 5 6 7 8; position i predicts token i + 1: 6 is prompt (ignored), then 7, 8, then nothing
    assert kwargs["input_ids"].tolist() == [[5, 6, 7, 8]]
    assert targets.tolist() == [[-100, 7, 8, -100]]


def test_calibrate_a_decoder_end_to_end():
    mon = PowerMonitor(NoPower(), thread=False)
    points, idle = calibrate(["decoder-tiny"], [1, 2], TINY, warmup=0, steps=2, device=torch.device("cpu"), monitor=mon)
    assert [(p.batch_size, p.oom) for p in points] == [(1, False), (2, False)]
    profile = build_profile("d", points, idle, TINY, device=torch.device("cpu"), facts={"memory_bytes": 1e9},
                            peak_flops=1e11, peak_source="test", backend="none", rate_hz=10, warmup=0, steps=2)
    assert all(e["model"] == "decoder-tiny" and e["step_time_s"] > 0 for e in profile["training"])
    HardwareProfile.model_validate(profile)
