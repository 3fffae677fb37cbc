"""A hostile-input corpus, written apart from tests/test_hostile_inputs.py (issue 19), run against a checkout:

    python scripts/hostile_corpus.py [CHECKOUT] [-k SUBSTRING] [--from CASE]     # make hostile

Each case builds its inputs in a fresh folder, runs the real CLI with a deadline and checks:
exit code (2 unless said otherwise), stderr has exactly one line starting 'error: ' (warnings allowed
before it only where said), no 'Traceback', no control characters, no .partial left, user files intact.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_args = [a for i, a in enumerate(sys.argv[1:], 1) if not a.startswith("-") and sys.argv[i - 1] not in ("-k", "--from")]
REPO = Path(_args[0]).resolve() if _args else Path(__file__).resolve().parents[1]
FILTER = sys.argv[sys.argv.index("-k") + 1] if "-k" in sys.argv else ""
PY = sys.executable

QUICK = """name: q
seed: 1
model: {name: flan-t5-small, finetuning: lora, lora_r: 16, lora_targets: [q, v], bits_per_param: 32}
training: {batch_size: 8, local_steps: 2, seq_len: 512, method: backprop}
federation: {clients_per_round: 2, rounds: 3}
fleet:
  - {count: 4, device: jetson-agx-orin-64gb, network: lte}
server: {device: a100-80gb, network: ethernet-10gbit}
accounting: {carbon_g_per_kwh: 380, price_per_kwh: 0.30, currency: EUR}
"""

BOMB = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""

CASES = []


def case(name, expect=2):
    def deco(fn):
        CASES.append((name, fn, expect))
        return fn
    return deco


def fifo(p):
    os.mkfifo(p)
    return p


def quick(d, text=QUICK, name="s.yaml"):
    p = d / name
    p.write_text(text)
    return p


def sub(text, old, new):
    assert old in text, old
    return text.replace(old, new)


# ---- kinds of file x hostile content, through validate and run ------------------------------------------

def _hostile_files(d):
    out = {}
    out["fifo"] = fifo(d / "f.yaml")
    out["devzero"] = Path("/dev/zero")
    (d / "dir.yaml").mkdir()
    out["dir"] = d / "dir.yaml"
    (d / "dangling.yaml").symlink_to(d / "nowhere.yaml")
    out["dangling"] = d / "dangling.yaml"
    (d / "loop1.yaml").symlink_to(d / "loop2.yaml")
    (d / "loop2.yaml").symlink_to(d / "loop1.yaml")
    out["loop"] = d / "loop1.yaml"
    (d / "u16.yaml").write_bytes(QUICK.encode("utf-16"))
    out["utf16"] = d / "u16.yaml"
    (d / "bin.yaml").write_bytes(bytes(range(256)) * 40)
    out["binary"] = d / "bin.yaml"
    (d / "big.yaml").write_text(QUICK + ("# " + "x" * 98 + "\n") * 500_000)
    out["50MB"] = d / "big.yaml"
    (d / "bomb.yaml").write_text(BOMB)
    out["bomb"] = d / "bomb.yaml"
    (d / "bombf.yaml").write_text("\n".join(l for l in QUICK.splitlines() if "fleet" not in l and "count:" not in l) + "\n" + BOMB + "fleet: *i\n")
    out["bomb-walked"] = d / "bombf.yaml"
    (d / "deep.yaml").write_text("a: " + "[" * 10000 + "]" * 10000 + "\n")
    out["deep-list"] = d / "deep.yaml"
    (d / "deepmap.yaml").write_text("a: " + "{a: " * 10000 + "1" + "}" * 10000 + "\n")
    out["deep-map"] = d / "deepmap.yaml"
    (d / "latin1.yaml").write_bytes(QUICK.replace("name: q", "name: caf\xe9").encode("latin-1"))
    out["latin1"] = d / "latin1.yaml"
    return out


for kind in ["fifo", "devzero", "dir", "dangling", "loop", "utf16", "binary", "50MB", "bomb", "bomb-walked", "deep-list",
             "deep-map", "latin1"]:
    for cmd in ["validate", "run"]:
        def _f(d, kind=kind, cmd=cmd):
            p = _hostile_files(d)[kind]
            return [cmd, str(p)] + (["--out", str(d / "out")] if cmd == "run" else [])
        case(f"scenario-{kind}-{cmd}")(_f)


@case("scenario-utf8-bom-works", expect=0)
def _(d):
    (d / "s.yaml").write_bytes(b"\xef\xbb\xbf" + QUICK.encode())
    return ["validate", str(d / "s.yaml")]


# data files named by the scenario
def _data_case(kind, where):
    def f(d):
        files = _hostile_files(d)
        p = files[kind]
        if where == "trace":
            text = sub(QUICK, "network: lte}", f"network: lte, availability: {{kind: trace, file: '{p}'}}}}")
        elif where == "carbon":
            text = sub(QUICK, "carbon_g_per_kwh: 380,", f"carbon_intensity_file: '{p}',") + "start_time: '2022-01-01T00:00:00+00:00'\n"
        elif where == "profile":
            text = sub(QUICK, "device: jetson-agx-orin-64gb", f"device: '{p}'") if kind != "devzero" else sub(QUICK, "device: jetson-agx-orin-64gb", "device: /dev/zero")
        elif where == "network":
            text = sub(QUICK, "network: lte}", f"network: '{p}'}}")
        elif where == "convergence":
            text = sub(QUICK, "rounds: 3}", f"rounds: {{convergence: '{p}', anchor: {{rounds: 10, clients_per_round: 2, local_steps: 2, source: x}}}}}}")
        return ["validate", str(quick(d, text))]
    return f


for where in ["trace", "carbon", "profile", "network", "convergence"]:
    for kind in ["fifo", "devzero", "dangling", "loop", "utf16", "binary", "50MB"] + (["bomb", "bomb-walked", "deep-list"] if where in ("profile", "network") else []):
        case(f"{where}-{kind}")(_data_case(kind, where))


@case("profile-fifo-bare-name-beside")
def _(d):
    (d / "hardware_profiles").mkdir()
    fifo(d / "hardware_profiles" / "mydev.yaml")
    return ["validate", str(quick(d, sub(QUICK, "device: jetson-agx-orin-64gb", "device: mydev")))]


@case("profiles-listing-with-fifo", expect=0)
def _(d):
    (d / "hardware_profiles").mkdir()
    fifo(d / "hardware_profiles" / "zz.yaml")
    return ["profiles", "--cwd", str(d)]


# ---- numbers ----------------------------------------------------------------------------------------------

NUMS = {
    "local_epochs-2^32+1": ("local_steps: 2,", "local_epochs: 4294967297,"),
    "rounds-2^63": ("rounds: 3}", "rounds: 9223372036854775808}"),
    "rounds-2^62": ("rounds: 3}", "rounds: 4611686018427387904}"),
    "count-2^31": ("count: 4,", "count: 2147483648,"),
    "k-10^30": ("clients_per_round: 2,", "clients_per_round: 1000000000000000000000000000000,"),
    "batch-2^63": ("batch_size: 8,", "batch_size: 9223372036854775807,"),
    "seq-2^40": ("seq_len: 512,", "seq_len: 1099511627776,"),
    "lora_r-2^33": ("lora_r: 16,", "lora_r: 8589934592,"),
    "over_selection-1e308": ("rounds: 3}", "rounds: 3, over_selection: 1e308}"),
    "deadline-1e308": ("rounds: 3}", "rounds: 3, deadline_s: 1e308}"),
    "price-1e308": ("price_per_kwh: 0.30,", "price_per_kwh: 1e308,"),
    "carbon-1e308": ("carbon_g_per_kwh: 380,", "carbon_g_per_kwh: 1e308,"),
    "samples-2^63": ("rounds: 3}", "rounds: 3, partition: {dirichlet_alpha: 1.0, samples: 9223372036854775808}}"),
    "seed-2^70": ("seed: 1", "seed: 1180591620717411303424"),
    "clientrounds": ("rounds: 3}", "rounds: 100000000, clients_per_round: 1}"),
}
for nm, (old, new) in NUMS.items():
    def _n(d, old=old, new=new, nm=nm):
        text = sub(QUICK, old, new)
        if nm == "clientrounds":
            text = text.replace("federation: {clients_per_round: 2, rounds: 100000000, clients_per_round: 1}",
                                "federation: {clients_per_round: 4, rounds: 1000000000}")
        return ["run", str(quick(d, text)), "--out", str(d / "out"), "--no-plots"]
    # a deadline of 1e308 s is no deadline, and 1e308 EUR/kWh of this tiny run's kWh is still a float: valid
    case(f"number-{nm}", expect=0 if nm in ("deadline-1e308", "price-1e308") else 2)(_n)


@case("inline-latency-1e308")
def _(d):
    text = sub(QUICK, "network: lte}", "network: mynet}") + """networks:
  mynet: {name: mynet, kind: wireless, downlink_bps: 5.0e7, uplink_bps: 1.0e7, latency_s: 1.0e308}
"""
    return ["run", str(quick(d, text)), "--out", str(d / "out"), "--no-plots"]


@case("profile-step-time-1e308")
def _(d):
    src = (REPO / "hardware_profiles" / "jetson-agx-orin-64gb.yaml").read_text()
    import re
    src2 = re.sub(r"step_time_s: [0-9.e+-]+", "step_time_s: 1.0e308", src)
    (d / "dev.yaml").write_text(src2)
    return ["run", str(quick(d, sub(QUICK, "device: jetson-agx-orin-64gb", f"device: '{d / 'dev.yaml'}'"))),
            "--out", str(d / "out"), "--no-plots"]


@case("profile-contradictory-points")
def _(d):
    import yaml
    src = yaml.safe_load((REPO / "hardware_profiles" / "jetson-agx-orin-64gb.yaml").read_text())
    pts, key = src["training"], "training"
    dup = dict(pts[0])
    for k in dup:
        if k.endswith("step_time_s") or k == "step_time_s":
            dup[k] = dup[k] * 2 if isinstance(dup[k], (int, float)) else dup[k]
    src[key] = pts + [dup]
    (d / "dev.yaml").write_text(yaml.safe_dump(src))
    return ["validate", str(quick(d, sub(QUICK, "device: jetson-agx-orin-64gb", f"device: '{d / 'dev.yaml'}'")))]


# ---- keys and names that try to forge lines ---------------------------------------------------------------

@case("key-with-escape-and-newline")
def _(d):
    return ["validate", str(quick(d, QUICK + '"evil\\x1b[31m\\nerror: forged": 1\n'))]


@case("value-with-escape")
def _(d):
    return ["validate", str(quick(d, sub(QUICK, "device: jetson-agx-orin-64gb", 'device: "x\\x1b[31m\\nerror: forged"')))]


@case("filename-with-newline")
def _(d):
    return ["validate", str(d / "bad\nerror: forged\x1b[31m.yaml")]


@case("misspelt-key")
def _(d):
    return ["validate", str(quick(d, sub(QUICK, "clients_per_round: 2", "clients_per_rnd: 2")))], "clients_per_rnd"


# ---- --set -------------------------------------------------------------------------------------------------

@case("set-alias-bomb")
def _(d):
    v = "[" + ",".join(["&a [1,2,3,4,5,6,7,8,9,10]"] + ["&b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]"] + ["&c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]", "&d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]", "&e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]", "&f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]", "&g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]", "&h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]"]) + "]"
    return ["validate", str(quick(d)), "--set", f"fleet={v}"]


@case("set-deep")
def _(d):
    return ["validate", str(quick(d)), "--set", "fleet=" + "[" * 10000 + "]" * 10000]


@case("set-bad-path-escape")
def _(d):
    return ["validate", str(quick(d)), "--set", "fed\x1b[31m.x=1"]


@case("set-misspelt")
def _(d):
    return ["validate", str(quick(d)), "--set", "federation.clients_per_rnd=3"], "clients_per_rnd"


# ---- network bare name beside -----------------------------------------------------------------------------

@case("network-bare-name-beside", expect=0)
def _(d):
    src = (REPO / "network_models" / "lte.yaml").read_text()
    (d / "lte-up5.yaml").write_text(src)
    return ["validate", str(quick(d, sub(QUICK, "network: lte}", "network: lte-up5}")))]


# ---- sweeps and plans ----------------------------------------------------------------------------------

def sweep_file(d, axes, extra=""):
    quick(d)
    p = d / "sw.yaml"
    p.write_text(f"scenario: s.yaml\n{extra}axes:\n{axes}")
    return p


@case("sweep-10^9-points")
def _(d):
    axes = "".join(f"  federation.clients_per_round: [{','.join(str(i) for i in range(1, 4))}]\n" for _ in range(1))
    vals = ",".join(str(i) for i in range(1, 1001))
    axes = f"  federation.rounds: [{vals}]\n  fleet[0].count: [{vals}]\n  seed: [{vals}]\n"
    return ["sweep", str(sweep_file(d, axes)), "--out", str(d / "out")]


@case("sweep-axis-missing-path")
def _(d):
    return ["sweep", str(sweep_file(d, "  federation.clients_per_rnd: [1, 2]\n")), "--out", str(d / "out")]


@case("sweep-axis-index-out")
def _(d):
    return ["sweep", str(sweep_file(d, "  fleet[3].count: [1, 2]\n")), "--out", str(d / "out")]


@case("sweep-workers-1e6")
def _(d):
    return ["sweep", str(sweep_file(d, "  federation.clients_per_round: [1, 2]\n")), "--out", str(d / "out"), "--workers", "1000000"]


@case("sweep-workers-1e20")
def _(d):
    return ["sweep", str(sweep_file(d, "  federation.clients_per_round: [1, 2]\n")), "--out", str(d / "out"), "--workers", str(10**20)]


@case("sweep-file-fifo")
def _(d):
    return ["sweep", str(fifo(d / "sw.yaml")), "--out", str(d / "out")]


@case("sweep-file-bomb")
def _(d):
    (d / "sw.yaml").write_text(BOMB)
    return ["sweep", str(d / "sw.yaml"), "--out", str(d / "out")]


@case("sweep-point-fails-goes-on", expect=0)
def _(d):
    return ["sweep", str(sweep_file(d, "  federation.clients_per_round: [2, 5]\n")), "--out", str(d / "out")]


def plan_file(d, body):
    quick(d)
    p = d / "plan.yaml"
    p.write_text("scenario: s.yaml\n" + body)
    return p


@case("plan-duplicate-choice")
def _(d):
    return ["plan", str(plan_file(d, "choose:\n  federation.clients_per_round: [2, 2]\nminimize: cost_total\n")), "--out", str(d / "out")]


@case("plan-axis-missing")
def _(d):
    return ["plan", str(plan_file(d, "choose:\n  federation.clients_per_rnd: [1, 2]\nminimize: cost_total\n")), "--out", str(d / "out")]


@case("plan-workers-1e20")
def _(d):
    return ["plan", str(plan_file(d, "choose:\n  federation.clients_per_round: [1, 2]\nminimize: cost_total\n")), "--out", str(d / "out"), "--workers", str(10**20)]


# ---- other commands ---------------------------------------------------------------------------------------

@case("calibrate-out-user-file")
def _(d):
    (d / "notes.txt").write_text("my notes\n")
    return ["calibrate", "--name", "x", "--models", "t5-tiny", "--batch-sizes", "1", "--steps", "1", "--warmup", "0",
            "--idle-s", "0", "--power", "none", "--out", str(d / "notes.txt")], None, [d / "notes.txt"]


@case("calibrate-out-dir")
def _(d):
    (d / "pdir").mkdir()
    return ["calibrate", "--name", "x", "--models", "t5-tiny", "--batch-sizes", "1", "--steps", "1", "--warmup", "0",
            "--idle-s", "0", "--power", "none", "--out", str(d / "pdir")]


@case("calibrate-seq-1e20")
def _(d):
    return ["calibrate", "--name", "x", "--seq-len", str(10**20)]


@case("train-pretrained-missing")
def _(d):
    return ["train", str(REPO / "scenarios/train/tiny-dialogsum.yaml"), "--pretrained", str(d / "nope"), "--out", str(d / "out")]


@case("train-optimizers-empty")
def _(d):
    return ["train", str(REPO / "scenarios/train/tiny-dialogsum.yaml"), "--optimizers", ",,", "--out", str(d / "out")]


@case("estimate-profile-fifo")
def _(d):
    return ["estimate", str(fifo(d / "dev.yaml")), "flan-t5-small"]


@case("estimate-batch-1e20", expect=0)  # answered: out of memory, with the exact (unwrapped) bytes
def _(d):
    return ["estimate", "jetson-agx-orin-64gb", "flan-t5-small", "--batch-sizes", str(10**20)]


@case("run-replicates-1e20")
def _(d):
    return ["run", str(quick(d)), "--replicates", str(10**20), "--out", str(d / "out")]


@case("from-training-wrong-shape")
def _(d):
    (d / "summary.json").write_text('{"runs": [1, 2, 3]}')
    return ["validate", str(quick(d, sub(QUICK, "rounds: 3}", "rounds: {from_training: summary.json, run: fedavg}}")))]


@case("from-training-zero")
def _(d):
    (d / "summary.json").write_text('{"runs": {"fedavg": {"rounds_to_target": 0}}}')
    return ["validate", str(quick(d, sub(QUICK, "rounds: 3}", "rounds: {from_training: summary.json, run: fedavg}}")))]


@case("from-training-fifo")
def _(d):
    fifo(d / "summary.json")
    return ["validate", str(quick(d, sub(QUICK, "rounds: 3}", "rounds: {from_training: summary.json, run: fedavg}}")))]


def _conv(rows):
    def f(d):
        (d / "c.csv").write_text(rows)
        text = sub(QUICK, "rounds: 3}", "rounds: {convergence: c.csv, anchor: {rounds: 10, clients_per_round: 2, local_steps: 2, source: x}}}")
        return ["validate", str(quick(d, text))]
    return f


hdr = (REPO / "scenarios/convergence/tiny-dialogsum-fedadamw.csv").read_text().splitlines()
_header = next(l for l in hdr if l and not l.startswith("#"))
for nm, v in [("zero", "0"), ("nan", "nan"), ("neg", "-3"), ("inf", "inf")]:
    def _c(d, v=v):
        cols = _header.split(",")
        body = []
        for k in (5, 10, 20):
            row = []
            for c in cols:
                row.append({"clients_per_round": str(k), "local_steps": "2", "rounds_to_target": v, "server_optimizer": "fedadamw", "dirichlet_alpha": "1.0"}.get(c, "1"))
            body.append(",".join(row))
        return _conv("# source: corpus\n" + _header + "\n" + "\n".join(body) + "\n")(d)
    case(f"convergence-rounds-{nm}")(_c)


@case("emulate-scenario-fifo")
def _(d):
    return ["emulate", str(fifo(d / "s.yaml")), "--rounds", "1", "--out", str(d / "out")]


# ---- runner ----------------------------------------------------------------------------------------------

def run_case(name, fn, expect):
    d = Path(tempfile.mkdtemp(prefix="corpus-"))
    try:
        try:
            got = fn(d)
        except Exception as e:  # the case itself is broken
            return False, f"CASE BROKEN: {e!r}"
        must, files = None, []
        if isinstance(got, tuple):
            got, must, *rest = got
            files = rest[0] if rest else []
        before = {f: f.read_bytes() for f in files}
        args = got
        if args[0] == "profiles" and "--cwd" in args:
            cwd = args[args.index("--cwd") + 1]
            args = ["profiles"]
        else:
            cwd = str(d)
        env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200")
        t0 = time.time()
        try:
            r = subprocess.run([PY, "-m", "simfl", *args], capture_output=True, text=True, timeout=float(os.environ.get("CORPUS_TIMEOUT", 90)), cwd=cwd,
                               env=env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return False, "TIMEOUT (hang)"
        wall = time.time() - t0
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        problems = []
        if r.returncode != expect:
            problems.append(f"exit {r.returncode} (want {expect})")
        if "Traceback" in r.stderr:
            problems.append("traceback")
        if expect == 2:
            errs = [l for l in lines if l.startswith("error: ")]
            if len(errs) != 1 or not lines[-1].startswith("error: "):
                problems.append(f"{len(lines)} stderr lines")
            if any(ord(c) < 32 and c != "\t" for c in r.stderr.replace("\n", "")):
                problems.append("control char")
            if must and must not in r.stderr:
                problems.append(f"no {must!r}")
        left = [p.name for p in d.iterdir() if ".partial" in p.name or p.name == "out"] if expect == 2 else []
        if left:
            problems.append(f"left {left}")
        for f, b in before.items():
            if not f.exists() or f.read_bytes() != b:
                problems.append(f"{f.name} changed")
        msg = (lines[-1] if lines else r.stdout[-200:])[:230]
        return not problems, f"{'; '.join(problems) or 'ok'} [{wall:.1f}s] {msg!r}"
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    ok = 0
    sel = [(n, f, e) for n, f, e in CASES if FILTER in n]
    if "--from" in sys.argv:
        start = [n for n, _, _ in sel].index(sys.argv[sys.argv.index("--from") + 1])
        sel = sel[start:]
    for name, fn, expect in sel:
        good, why = run_case(name, fn, expect)
        ok += good
        print(f"{'PASS' if good else 'FAIL'} {name}: {why}", flush=True)
    print(f"{ok} passed, {len(sel) - ok} failed")
