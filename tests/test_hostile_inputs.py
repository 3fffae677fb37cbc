"""Hostile files given to every reader of the CLI: each is one line `error: ...`, exit code 2, promptly.

The matrix is CLASSES of input (a FIFO, /dev/zero, a folder, dangling and looping links, UTF-16, binary,
oversized, alias bombs, deep nesting, control characters) x KINDS of file (scenario, trace, carbon series,
profile by path and by bare name, network model, sweep and plan files, convergence table, training summary,
training data, a --set value). The cases of a class run through `simfl.cli.main` in one subprocess (the CLI
in-process, one case after another), under a deadline and a memory limit, so that a hang or a runaway read
fails its class instead of hanging the suite; a few cases run `python -m simfl` on its own as well.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

from simfl.config.load import REPO_ROOT
from simfl.errors import ScenarioError, escape

QUICK = REPO_ROOT / "scenarios" / "quickstart.yaml"
TRAIN = REPO_ROOT / "scenarios" / "train" / "tiny-dialogsum.yaml"
FORGED = "\nerror: forged \x1b[31mred"  # a line break and a colour code where a name or key should be

DRIVER = r"""
import contextlib, io, json, os, resource, sys, time, traceback
resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))  # a runaway read fails, not the machine
from simfl.cli import main
real_stdout = sys.stdout
for name, argv, cwd in json.load(sys.stdin):
    os.chdir(cwd)
    sys.argv = ["simfl", *argv]
    err, out = io.StringIO(), io.StringIO()
    t0 = time.monotonic()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            main()
            rc = 0
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except BaseException:
            rc = "exception"
            traceback.print_exc()
    print(json.dumps({"name": name, "rc": rc, "stderr": err.getvalue(), "s": time.monotonic() - t0}),
          file=real_stdout, flush=True)
"""

CLASSES = ["fifo", "dev-zero", "folder", "dangling", "loop", "utf16", "binary", "big", "bomb", "deep", "ctrl-key",
           "ctrl-name"]
YAML_KINDS = ["scenario", "profile-path", "profile-name", "network", "sweep", "plan"]
CSV_KINDS = ["trace", "carbon", "convergence"]
KINDS = [*YAML_KINDS, *CSV_KINDS, "from-training", "train-data", "set"]
NOT_REGULAR = {"fifo", "dev-zero", "folder", "dangling", "loop"}
PHRASE = {"fifo": "a FIFO (named pipe), not a regular file", "dev-zero": "a character device, not a regular file",
          "folder": "folder", "dangling": "a dangling symbolic link", "loop": "a symbolic link loop",
          "utf16": "UTF-16 text (it starts with a UTF-16 byte-order mark); expected UTF-8",
          "binary": "(a NUL byte at offset 3); expected UTF-8 text", "big": "MB limit for a",
          "bomb": "aliases expand it to more than 100,000 values, the limit for a YAML document",
          "deep": "nested more than 100 levels deep, the limit"}


def applies(cls: str, kind: str) -> bool:
    if kind == "set":
        return cls in ("bomb", "deep")
    if kind == "train-data":  # only what is refused before torch is imported; content is read in training
        return cls in NOT_REGULAR
    if cls == "bomb":
        return kind in YAML_KINDS
    if cls == "deep":
        return kind in YAML_KINDS or kind == "from-training"
    return True


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))  # 9^9 x's


def write_hostile(path: Path, cls: str, kind: str) -> Path:
    """Make `path` a member of class `cls` (its name changed for ctrl-name); returns the path made."""
    if cls == "ctrl-name":
        path = path.with_name(path.stem + FORGED + path.suffix)
    if cls == "fifo":
        os.mkfifo(path)
    elif cls == "dev-zero":
        path.symlink_to("/dev/zero")
    elif cls == "folder":
        path.mkdir()
    elif cls == "dangling":
        path.symlink_to(path.with_name("gone"))
    elif cls == "loop":
        path.symlink_to(path.with_name(path.name + ".b"))
        path.with_name(path.name + ".b").symlink_to(path.name)
    elif cls == "utf16":
        path.write_bytes("name: x\n".encode("utf-16"))
    elif cls in ("binary", "ctrl-name"):
        path.write_bytes(b"abc\0\xff\xfe garbage \x00\x01")
    elif cls == "big":  # sparse: its size is refused before a byte is read
        with open(path, "wb") as f:
            f.truncate((300 if kind in CSV_KINDS else 50) * 1_000_000)
    elif cls == "bomb":
        path.write_text(BOMB)
    elif cls == "deep":
        path.write_text("[" * 10_000 + "]" * 10_000 if kind != "from-training" else '{"runs": ' + "[" * 10_000)
    elif cls == "ctrl-key":  # a key holding a line break and a colour code, shown in the error
        if kind in CSV_KINDS:  # a CSV line cannot hold a line break: a bell and ESC
            raw = "k\x07\x1b[31mred"
            path.write_text({"trace": f"client,start_s,{raw}\n", "carbon": f"time,{raw}\n"}.get(
                kind, f"# source: x\n{raw}\n"))
        elif kind == "from-training":
            path.write_text(json.dumps({"k" + FORGED: 1}))
        else:  # the key twice: the YAML error names it
            key = json.dumps("k" + FORGED)  # double-quoted YAML: the escapes become the characters
            path.write_text(f"{key}: 1\n{key}: 2\n")
    return path


def scenario_with(tmp: Path, mutate=None, name="s.yaml", base=QUICK) -> Path:
    sc = yaml.safe_load(base.read_text())
    if base == QUICK:
        sc["federation"]["rounds"] = 2
    if mutate:
        mutate(sc)
    p = tmp / name
    p.write_text(yaml.safe_dump(sc))
    return p


def case(tmp: Path, cls: str, kind: str) -> tuple[list[str], str, Path]:
    """(argv, what the line must name, the output folder that must not appear) for one cell."""
    tmp.mkdir(parents=True)
    out = tmp / "out"
    ext = ".csv" if kind in CSV_KINDS else ".json" if kind == "from-training" else ".jsonl" \
        if kind == "train-data" else ".yaml"
    if kind == "profile-name":
        (tmp / "hardware_profiles").mkdir()
        h = write_hostile(tmp / "hardware_profiles" / f"evil{ext}", cls, kind)
        s = scenario_with(tmp, lambda sc: sc["fleet"][0].update(device=h.stem))
        named = "fleet[0].device" if cls in NOT_REGULAR else escape(str(h))
        return ["validate", str(s)], named, out
    h = write_hostile(tmp / f"h{ext}", cls, kind) if kind != "set" else None
    fld = {"trace": lambda sc: sc["fleet"][0].update(availability={"kind": "trace", "file": str(h)}),
           "carbon": lambda sc: sc.update(start_time="2026-06-01T00:00:00+00:00",
                                          accounting={"carbon_intensity_file": str(h)}),
           "convergence": lambda sc: sc["federation"].update(rounds={"convergence": str(h)}),
           "from-training": lambda sc: sc["federation"].update(rounds={"from_training": str(h), "run": "fedavg"}),
           "profile-path": lambda sc: sc["fleet"][0].update(device=str(h)),
           "network": lambda sc: sc["fleet"][0].update(network=str(h))}
    if kind in fld:
        return ["validate", str(scenario_with(tmp, fld[kind]))], escape(str(h)), out
    if kind == "scenario":
        return ["validate", str(h)], escape(str(h)), out
    if kind in ("sweep", "plan"):
        return [kind, str(h), "--out", str(out)], escape(str(h)), out
    if kind == "train-data":
        return ["train", str(TRAIN), "--data", str(h), "--tokenizer", "x", "--out", str(out)], escape(str(h)), out
    value = BOMB.replace("\n", ", ").rstrip(", ") if cls == "bomb" else "[" * 10_000 + "]" * 10_000
    value = "{" + value + "}" if cls == "bomb" else value
    return ["validate", str(scenario_with(tmp)), "--set", f"federation.rounds={value}"], "federation.rounds", out


@cache
def results(cls: str, root: str) -> dict:
    cases, expect = [], {}
    for kind in KINDS:
        if applies(cls, kind):
            argv, named, out = case(Path(root) / kind, cls, kind)
            cases.append((kind, argv, str(Path(root) / kind)))
            expect[kind] = (named, out)
    try:
        p = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(cases), capture_output=True, text=True,
                           timeout=60, cwd=REPO_ROOT)
        stdout = p.stdout
    except subprocess.TimeoutExpired as e:  # the cases that finished still count; the one that hung fails
        stdout = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
    got = {r["name"]: r for r in map(json.loads, stdout.splitlines())}
    return {kind: (got.get(kind), *expect[kind]) for kind in expect}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile")


@pytest.mark.parametrize(("cls", "kind"), [(c, k) for c in CLASSES for k in KINDS if applies(c, k)])
def test_hostile_file_is_one_line_exit_2(root, cls, kind):
    got, named, out = results(cls, str(root / cls))[kind]
    assert got is not None, f"{cls} as a {kind} did not finish within the deadline (a hang)"
    line = got["stderr"]
    assert (got["rc"], line.count("\n"), line[:7]) == (2, 1, "error: "), line
    assert "Traceback" not in line and "\x1b" not in line and named in line, line
    if (cls, kind) == ("deep", "from-training"):
        assert "is not a simfl train summary (JSON with a runs mapping)" in line, line
    elif cls in PHRASE and not (kind == "profile-name" and cls in NOT_REGULAR):
        assert PHRASE[cls] in line, line
    if kind == "profile-name" and cls in NOT_REGULAR:  # not a candidate at all: only regular files count
        assert "unknown hardware profile 'evil'" in line, line
    if cls == "ctrl-name" or (cls == "ctrl-key" and kind in ("scenario", "profile-path", "profile-name",
                                                             "network", "sweep", "plan")):
        assert "\\x1b" in line and "\\n" in line, line  # shown escaped, not obeyed
    if cls == "ctrl-key" and kind in ("trace", "carbon"):
        assert "\\x1b" in line and "\\x07" in line, line
    assert not out.exists() and not [p for p in out.parent.iterdir() if ".partial" in p.name]
    assert got["s"] < 20


# -- the real command line on its own ------------------------------------------------------------------


def simfl(*args, cwd=REPO_ROOT):
    return subprocess.run([sys.executable, "-m", "simfl", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=60)


def test_fifo_scenario_and_data_with_the_real_cli(tmp_path):
    fifo = tmp_path / "s.yaml"
    os.mkfifo(fifo)
    r = simfl("run", fifo, "--out", tmp_path / "out")
    assert (r.returncode, r.stderr) == (2, f"error: {fifo}: a FIFO (named pipe), not a regular file\n")
    assert list(tmp_path.iterdir()) == [fifo]
    r = simfl("validate", "/dev/zero")
    assert (r.returncode, r.stderr) == (2, "error: /dev/zero: a character device, not a regular file\n")


def test_a_fifo_lying_in_hardware_profiles_is_not_a_candidate(tmp_path):
    """`simfl profiles` and a sweep list and fingerprint every profile beside the scenario: a FIFO there used
    to block them for ever; now it is not a profile at all, and the rest works."""
    (tmp_path / "hardware_profiles").mkdir()
    os.mkfifo(tmp_path / "hardware_profiles" / "stuck.yaml")
    r = simfl("profiles", cwd=tmp_path)
    assert r.returncode == 0 and "jetson-agx-orin-64gb" in r.stdout and "stuck" not in r.stdout, r.stderr
    scenario_with(tmp_path, lambda sc: sc["federation"].update(rounds=1))
    (tmp_path / "sw.yaml").write_text("scenario: s.yaml\naxes: {federation.clients_per_round: [2]}\n")
    r = simfl("sweep", tmp_path / "sw.yaml", "--out", tmp_path / "out", "--no-report", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "sweep.csv").is_file()


def test_utf8_bom_files_load(tmp_path):
    """A byte-order mark that Windows editors put before UTF-8 is dropped: the files load as without it."""
    prof = (REPO_ROOT / "hardware_profiles" / "jetson-agx-orin-64gb.yaml").read_bytes()
    (tmp_path / "orin.yaml").write_bytes(b"\xef\xbb\xbf" + prof)
    s = scenario_with(tmp_path, lambda sc: sc["fleet"][0].update(device="./orin.yaml"))
    s.write_bytes(b"\xef\xbb\xbf" + s.read_bytes())
    r = simfl("validate", s)
    assert r.returncode == 0 and "ok: quickstart, 100 clients" in r.stdout, r.stderr


def test_forged_lines_in_a_file_name_and_a_key_are_shown_escaped(tmp_path):
    r = simfl("validate", tmp_path / f"s{FORGED}.yaml")
    assert (r.returncode, r.stderr) == (2, f"error: {tmp_path}/s\\nerror: forged \\x1b[31mred.yaml: file not found\n")
    s = tmp_path / "k.yaml"
    s.write_text(QUICK.read_text() + f"{json.dumps('extra' + FORGED)}: 1\n")
    r = simfl("validate", s)
    assert (r.returncode, r.stderr.count("\n")) == (2, 1) and "extra\\nerror: forged \\x1b[31mred" in r.stderr


def test_train_with_a_missing_pretrained_path_is_one_line_before_training(tmp_path):
    r = simfl("train", TRAIN, "--pretrained", tmp_path / "no-such-weights", "--out", tmp_path / "out")
    assert (r.returncode, r.stderr) == (2, f"error: --pretrained: {tmp_path}/no-such-weights: no such file or folder\n")
    r = simfl("train", TRAIN, "--set", "train.pretrained=./gone", "--out", tmp_path / "out")
    assert (r.returncode, r.stderr) == (2, f"error: {TRAIN}: train.pretrained: ./gone: no such file or folder\n")
    assert not (tmp_path / "out").exists()


# -- the pieces ----------------------------------------------------------------------------------------


def test_from_training_of_the_wrong_shape(tmp_path):
    from simfl import load_scenario

    cases = {'{"runs": []}': "runs must be a mapping of run name to its figures (got a list)",
             '{"runs": {"fedavg": {"rounds_to_target": 0}}}': "rounds_to_target must be a whole number of rounds >= 1 "
                                                                "(got 0)",
             '{"runs": {"fedavg": {"rounds_to_target": NaN}}}': "(got nan)",
             '{"runs": {"fedavg": {"rounds_to_target": "12"}}}': "(got '12')",
             '{"runs": {"fedavg": 7}}': "run 'fedavg' must be a mapping (got 7)",
             '[1, 2]': "is not a simfl train summary"}
    for text, expected in cases.items():
        (tmp_path / "t.json").write_text(text)
        s = scenario_with(tmp_path, lambda sc: sc["federation"].update(rounds={"from_training": "t.json",
                                                                              "run": "fedavg"}))
        with pytest.raises(ScenarioError, match="federation.rounds") as e:
            load_scenario(s)
        assert expected in str(e.value), (text, str(e.value))


@pytest.mark.parametrize("value, expected", [
    ("0", "line 3: rounds_to_target must be a number of rounds >= 1 (got '0')"),
    ("-3", "line 3: rounds_to_target must be a number of rounds >= 1 (got '-3')"),
    ("nan", "line 3: rounds_to_target must be a number of rounds >= 1 (got 'nan')"),
    ("inf", "line 3: rounds_to_target must be a number of rounds >= 1 (got 'inf')"),
    ("many", "line 3: rounds_to_target must be a number of rounds >= 1 (got 'many')"),
])
def test_convergence_rounds_must_be_rounds(tmp_path, value, expected):
    from simfl.convergence import read_table

    # The comment is line 1, so the row is line 3 of the file (the old reader counted from the header).
    p = tmp_path / "c.csv"
    p.write_text("# source: x\nclients_per_round,local_steps,dirichlet_alpha,server_optimizer,rounds_to_target\n"
                 f"5,1,1.0,fedavg,{value}\n")
    with pytest.raises(ScenarioError) as e:
        read_table(p, "federation.rounds")
    assert str(e.value) == f"federation.rounds: {p} {expected}"


def test_convergence_counts_must_be_whole_and_a_row_complete(tmp_path):
    from simfl.convergence import read_table

    p = tmp_path / "c.csv"
    head = "# source: x\nclients_per_round,local_steps,dirichlet_alpha,server_optimizer,rounds_to_target\n"
    for row, expected in (("2.5,1,1.0,fedavg,10", "clients_per_round must be a whole number >= 1 (got '2.5')"),
                          ("5,1,nan,fedavg,10", "dirichlet_alpha must be a positive number (got 'nan')"),
                          ("5,1", "expected 5 values, got '5,1'")):
        p.write_text(head + row + "\n")
        with pytest.raises(ScenarioError, match="line 3: ") as e:
            read_table(p, "f")
        assert expected in str(e.value)


def test_yaml_aliases_are_copies_and_limits_are_named():
    from simfl.config.overrides import parse_assignment
    from simfl.safeio import load_yaml

    d = load_yaml("a: &g {count: 1}\nb: *g\n")
    d["a"]["count"] = 5  # what --set fleet[0].count does: the alias's copy must not change with it
    assert d == {"a": {"count": 5}, "b": {"count": 1}}
    with pytest.raises(ScenarioError, match=r"x.yaml: YAML error at line 1, column 5: alias \*a is inside"):
        load_yaml("&a [*a]", "x.yaml")
    with pytest.raises(ScenarioError, match="nested more than 100 levels deep, the limit"):
        load_yaml("[" * 101 + "]" * 101)
    assert load_yaml("[" * 100 + "]" * 100) is not None  # 100 levels are allowed
    with pytest.raises(ScenarioError, match=r"--set: a: cannot read .* as a value \(YAML error at line 1, column "
                                            r"\d+: aliases expand it to more than 100,000 values"):
        parse_assignment("a=" + "{" + BOMB.replace("\n", ", ").rstrip(", ") + "}")


def test_read_text_classes(tmp_path):
    from simfl.safeio import read_text

    p = tmp_path / "f.yaml"
    p.write_bytes("é: 1\n".encode("utf-32"))
    with pytest.raises(ScenarioError, match="UTF-32 text"):
        read_text(p)
    p.write_bytes(b"\xef\xbb\xbfok")
    assert read_text(p) == "ok"
    p.write_bytes(b"ok \xff")
    with pytest.raises(ScenarioError, match=r"not UTF-8 text \(byte 0xff at offset 3\)"):
        read_text(p)
    p.write_bytes(b"x" * 101)
    with pytest.raises(ScenarioError, match="f.yaml: larger than the 0 MB limit"):
        read_text(p, max_bytes=100)
    with pytest.raises(ScenarioError) as e:
        read_text(tmp_path / ("x" * 300), field="f")
    assert "file name too long" in str(e.value)
    q = tmp_path / "closed.yaml"
    q.write_text("x")
    q.chmod(0)
    if os.geteuid() != 0:  # root reads anything
        with pytest.raises(ScenarioError, match="permission denied"):
            read_text(q)


# -- writing -------------------------------------------------------------------------------------------


def profile_29(path: Path) -> bytes:
    """A calibrated-looking profile of 29 points, as simfl writes it."""
    prof = yaml.safe_load((REPO_ROOT / "hardware_profiles" / "jetson-agx-orin-64gb.yaml").read_text())
    first = prof["training"][0]
    prof["training"] = [{**first, "batch_size": b} for b in range(1, 30)]
    data = ("# Written by simfl calibrate; provenance below.\n" + yaml.safe_dump(prof, sort_keys=False)).encode()
    path.write_bytes(data)
    return data


def test_disk_full_while_rewriting_a_profile_leaves_the_old_one(tmp_path, monkeypatch):
    import simfl.safeio as safeio

    target = tmp_path / "orin.yaml"
    old = profile_29(target)
    assert len(old) > 4096

    def write_then_fill(fd, data):  # the disk fills after the first 4,096 bytes, as in the issue
        os.write(fd, data[:4096])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safeio, "_write_all", write_then_fill)
    with pytest.raises(ScenarioError) as e:
        safeio.atomic_write_text(target, "# Written by simfl calibrate\n" + "x" * 20_000)
    assert str(e.value) == f"--out: cannot write {target}: no space left on device; the old file, if any, is unchanged"
    assert target.read_bytes() == old and os.listdir(tmp_path) == ["orin.yaml"]  # no temporary file left


def test_atomic_write_replaces_whole_and_keeps_permissions(tmp_path):
    from simfl.safeio import atomic_write, atomic_write_text

    p = tmp_path / "t.csv"
    p.write_text("old")
    p.chmod(0o640)
    atomic_write_text(p, "new\n")
    assert (p.read_text(), p.stat().st_mode & 0o777) == ("new\n", 0o640)

    def half(tmp):
        tmp.write_text("half")
        raise OSError(errno.EIO, "Input/output error")
    with pytest.raises(ScenarioError, match="cannot write .*t.csv: input/output error"):
        atomic_write(p, half)
    assert p.read_text() == "new\n" and os.listdir(tmp_path) == ["t.csv"]


def test_disk_full_inside_an_output_folder_is_one_line_and_leaves_no_partial(tmp_path):
    from simfl.report.outdir import OutputDir

    target = tmp_path / "out"
    with OutputDir(target, "run") as d:
        (d / "summary.json").write_text("{}")
    before = sorted(p.name for p in target.iterdir())
    with pytest.raises(ScenarioError) as e:
        with OutputDir(target, "run") as d:
            raise OSError(errno.ENOSPC, "No space left on device", str(d / "rounds.csv"))
    assert str(e.value) == f"--out: cannot write {target}/rounds.csv: no space left on device; nothing was written"
    assert os.listdir(tmp_path) == ["out"] and sorted(p.name for p in target.iterdir()) == before


# -- calibrate --out -----------------------------------------------------------------------------------

CAL = ["calibrate", "--name", "x", "--models", "t5-tiny", "--batch-sizes", "1", "--power", "none", "--steps", "1",
       "--warmup", "0", "--idle-s", "0"]


@pytest.mark.parametrize("make, expected", [
    (lambda p: p.write_text("my notes, not a profile\n"),
     "exists and is not a simfl profile (no '# Written by simfl calibrate' line, not a valid hardware profile), so "
     "simfl will not replace it"),
    (lambda p: p.mkdir(), "is a folder; give a profile file"),
    (lambda p: (p.with_name("real.yaml").write_text("name: x\n"), p.symlink_to("real.yaml")),
     "is a symbolic link; give the profile file's own path"),
    (lambda p: p.write_text("# Written by simfl calibrate; provenance below.\nname: [cut short"),
     "is a simfl profile that no longer loads"),
    (lambda p: os.mkfifo(p), "a FIFO (named pipe), not a regular file"),
])
def test_calibrate_refuses_an_out_it_did_not_write_before_measuring(tmp_path, make, expected):
    target = tmp_path / "notes.txt"
    make(target)
    before = {p.name: (p.lstat().st_mtime_ns, p.read_bytes() if p.is_file() and not p.is_symlink() else None)
              for p in tmp_path.iterdir() if not p.is_fifo()}
    r = simfl(*CAL, "--out", target)
    assert (r.returncode, r.stderr.count("\n"), r.stderr[:14]) == (2, 1, "error: --out: "), r.stderr
    assert expected in r.stderr and "calibrating on" not in r.stderr  # refused before any measuring
    after = {p.name: (p.lstat().st_mtime_ns, p.read_bytes() if p.is_file() and not p.is_symlink() else None)
             for p in tmp_path.iterdir() if not p.is_fifo()}
    assert after == before


def test_calibrate_refuses_an_unwritable_folder_and_missing_inputs_before_measuring(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.geteuid() != 0:
            r = simfl(*CAL, "--out", locked / "p.yaml")
            assert (r.returncode, r.stderr) == (2, f"error: --out: cannot write to {locked}: permission denied\n")
    finally:
        locked.chmod(0o700)
    r = simfl(*CAL, "--pretrained", tmp_path / "weights", "--out", tmp_path / "p.yaml")
    assert (r.returncode, r.stderr) == (2, f"error: --pretrained: {tmp_path}/weights: no such file or folder\n")
    r = simfl(*CAL, "--data", tmp_path / "d.jsonl", "--tokenizer", "t", "--out", tmp_path / "p.yaml")
    assert (r.returncode, r.stderr) == (2, f"error: --data: {tmp_path}/d.jsonl: file not found\n")
    assert sorted(os.listdir(tmp_path)) == ["locked"]


def test_calibrate_accepts_a_valid_profile_without_the_marker():
    """A profile written by hand (no marker line) but valid is simfl's to merge into: checked, not refused."""
    from simfl.cli.calibrate import profile_target

    old = profile_target(REPO_ROOT / "hardware_profiles" / "jetson-agx-orin-64gb.yaml")
    assert old["name"] == "jetson-agx-orin-64gb" and len(old["training"]) > 1


def test_disk_full_while_journaling_a_sweep_point_is_one_line(tmp_path, monkeypatch):
    import simfl.plan.sweep as sweep

    (tmp_path / "points.jsonl").write_text('{"index": 0, "key": "k0", "row": {}}\n')
    before = (tmp_path / "points.jsonl").read_bytes()
    monkeypatch.setattr(sweep, "run_local", lambda jobs, workers: iter([(1, {"status": "ok"})]))

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(sweep.os, "fsync", full)
    with pytest.raises(ScenarioError) as e:
        sweep.run_points(tmp_path / "s.yaml", [{"a": 1}, {"a": 2}], 1, tmp_path)
    assert str(e.value) == (f"--out: cannot write {tmp_path}/points.jsonl: no space left on device; the points "
                            "journaled so far are kept: run it again to finish")
    assert (tmp_path / "points.jsonl").read_bytes().startswith(before)
