"""The command line's processes: SIGTERM, SIGHUP and SIGINT clean up (exit 128 + the signal, one line, no
.partial left, earlier output untouched); a sweep's pool workers die with their parent, even when it is
SIGKILLed; a dead worker is one line; counts of processes and every integer option are bounded."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from simfl.config.load import REPO_ROOT
from simfl.emulate.reaper import alive
from simfl.plan.sweep import JOURNAL
from tests.test_cli import QUICK, simfl

CORES = len(os.sched_getaffinity(0))


def wait_for(what, condition, timeout_s=60.0):
    """Poll until condition() is true; fail naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = condition()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _kill_what_a_test_started():
    """A failed test leaves nothing running: each CLI it started is killed with its session (pool workers too)."""
    yield
    while STARTED:
        p = STARTED.pop()
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.communicate()


def start(*args) -> subprocess.Popen:
    """The real CLI in its own session (so a signal to its group reaches nothing else), SIGINT at its default
    even when this test runs in a background job, which ignores it."""
    STARTED.append(_popen(*args))
    return STARTED[-1]


def _popen(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "simfl", *map(str, args)], cwd=REPO_ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def children(pid: int) -> list[int]:
    """Live processes whose parent is pid."""
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(stat[1]) == pid and stat[0] != "Z":
                kids.append(int(d.name))
    return kids


def partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".partial" in p.name)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def long_sweep(tmp_path, kind="sweep") -> Path:
    """A sweep (or plan) of 8 points of 20 replicates of the quickstart each: about 3 s a point here."""
    path = tmp_path / f"{kind}.yaml"
    body = {"scenario": str(QUICK), "replicates": 20}
    body.update({"axes": {"fleet[0].count": [50, 60, 70, 80, 90, 100, 110, 120]}} if kind == "sweep" else
                {"choose": {"fleet[0].count": [50, 60, 70, 80, 90, 100, 110, 120]}, "minimize": "cost_total"})
    path.write_text(yaml.safe_dump(body))
    return path


# -- signals: cleaned up like Ctrl-C, 128 + the signal, one line ------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signalled_run_leaves_no_partial_and_the_previous_output(tmp_path, sig):
    out = tmp_path / "r"
    first = simfl("run", QUICK, "--out", out, "--set", "federation.rounds=3", "--no-plots")
    assert first.returncode == 0, first.stderr
    before = snapshot(out)
    p = start("run", QUICK, "--out", out, "--replicates", "400", "--no-plots")  # ~60 s here, if let run
    wait_for("the run's temporary folder", lambda: list(tmp_path.glob(".r.partial-*")))
    (os.killpg if sig == signal.SIGINT else os.kill)(p.pid, sig)  # Ctrl-C reaches the whole group
    _, err = p.communicate(timeout=60)
    word = "interrupted" if sig == signal.SIGINT else "terminated"
    assert (p.returncode, err) == (128 + sig, f"{word} by {sig.name}\n")
    assert partials(tmp_path) == [] and snapshot(out) == before


def test_a_signalled_plan_leaves_no_partial(tmp_path):
    out = tmp_path / "p"
    p = start("plan", long_sweep(tmp_path, "plan"), "--out", out, "--workers", "2", "--no-report")
    wait_for("the plan's workers", lambda: len(children(p.pid)) >= 2)
    os.kill(p.pid, signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert (p.returncode, err) == (143, "terminated by SIGTERM\n")
    assert partials(tmp_path) == [] and not (out / "plan.json").exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_signalled_sweep_stops_its_workers_and_resumes(tmp_path, sig):
    spec, out = long_sweep(tmp_path), tmp_path / "s"
    p = start("sweep", spec, "--out", out, "--workers", "2", "--no-report")
    workers = wait_for("two pool workers", lambda: (lambda k: k if len(k) >= 2 else None)(children(p.pid)))
    wait_for("a journaled point", lambda: (out / JOURNAL).is_file() and (out / JOURNAL).read_text().strip())
    (os.killpg if sig == signal.SIGINT else os.kill)(p.pid, sig)
    t0 = time.monotonic()
    _, err = p.communicate(timeout=60)
    word = "interrupted" if sig == signal.SIGINT else "terminated"
    assert (p.returncode, err) == (128 + sig, f"{word} by {sig.name}\n")
    assert time.monotonic() - t0 < 10  # the workers are killed, not waited for (a point takes ~3 s)
    wait_for("the workers to be gone", lambda: not any(alive(w) for w in workers), 10)
    assert partials(tmp_path) == [] and not (out / "sweep.csv").exists()
    lines = (out / JOURNAL).read_text().splitlines()
    assert 1 <= len(lines) < 8 and all(json.loads(line)["row"]["status"] == "ok" for line in lines)


# -- pool workers die with their parent; a dead worker is one line -----------------------------------------

def test_a_sigkilled_sweeps_workers_die_with_it(tmp_path):
    p = start("sweep", long_sweep(tmp_path), "--out", tmp_path / "s", "--workers", "2", "--no-report")
    workers = wait_for("two pool workers", lambda: (lambda k: k if len(k) >= 2 else None)(children(p.pid)))
    p.kill()  # only the parent: no handler runs in it, and nothing signals its group
    p.communicate(timeout=30)
    wait_for("the workers to die with their parent", lambda: not any(alive(w) for w in workers), 15)


def test_a_worker_killed_outright_is_one_line(tmp_path):
    out = tmp_path / "s"
    p = start("sweep", long_sweep(tmp_path), "--out", out, "--workers", "2", "--no-report")
    workers = wait_for("two pool workers", lambda: (lambda k: k if len(k) >= 2 else None)(children(p.pid)))
    os.kill(workers[0], signal.SIGKILL)  # as the kernel's OOM killer would
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1 and err == (
        "error: a worker process died while simulating (killed by the system, perhaps out of memory: try fewer "
        "--workers); the points that finished are kept, so the same command finishes the rest\n")
    wait_for("the other worker to be gone", lambda: not any(alive(w) for w in workers), 15)
    assert partials(tmp_path) == []


# -- counts of processes and threads; every integer option --------------------------------------------------

@pytest.mark.parametrize("args", [["sweep", "SPEC", "--workers"], ["plan", "SPEC", "--workers"],
                                  ["train", "SCENARIO", "--threads"], ["calibrate", "--name", "x", "--threads"]],
                         ids=lambda a: f"{a[0]} {a[-1]}")
def test_counts_of_processes_are_bounded_by_the_cores(tmp_path, args):
    args = [{"SPEC": long_sweep(tmp_path, args[0]), "SCENARIO": QUICK}.get(a, a) for a in args]
    most = 4 * CORES
    for n, expected in ((most + 1, f"must be at most {most}, 4 x this machine's {CORES} cores (got {most + 1})"),
                        (1_000_000, f"must be at most {most}, 4 x this machine's {CORES} cores (got 1000000)"),
                        *([(0, "must be at least 1 (got 0)")] if args[-1] == "--workers" else [])):
        r = simfl(*args, n, "--out", tmp_path / "out")
        assert (r.returncode, r.stderr) == (2, f"error: {args[-1]}: {expected}\n")
        assert not (tmp_path / "out").exists()


def _int_options():
    import typer

    from simfl.cli import app
    from simfl.cli.common import int_params

    found = []
    for path, param in int_params(typer.main.get_command(app)):
        command = typer.main.get_command(app)
        for name in path:
            command = command.commands[name]
        positional = [p for p in command.params if p.param_type_name == "argument"]
        found.append((path, param.opts[0] if param.param_type_name == "option" else None,
                      [p.name for p in positional]))
    return found


INT_OPTIONS = _int_options()


def test_the_int_options_are_found():
    # a sample that must be among them, so an introspection that finds nothing does not pass vacuously
    names = {(" ".join(path), opt) for path, opt, _ in INT_OPTIONS}
    assert {("run", "--replicates"), ("sweep", "--workers"), ("calibrate", "--seed"), ("emulate", "--rounds"),
            ("train", "--rounds"), ("estimate", "--seq-len")} <= names


@pytest.mark.parametrize("value", ["100000000000000000000", "-100000000000000000000"], ids=["1e20", "-1e20"])
@pytest.mark.parametrize("path,opt,positional", INT_OPTIONS, ids=[f"{' '.join(p)} {o}" for p, o, _ in INT_OPTIONS])
def test_every_int_option_beyond_64_bits_is_one_line(tmp_path, path, opt, positional, value):
    args = [*path, *(["x"] * len(positional)), opt, value] if opt else [*path, value]
    r = subprocess.run([sys.executable, "-m", "simfl", *args], capture_output=True, text=True, cwd=tmp_path,
                       timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"error: Invalid value for '{opt}': ") and r.stderr.endswith(
        f" (got '{value}'); see simfl {path[-1]} --help\n"), r.stderr
    if value[0] != "-":  # below 0 an option's own minimum may speak first
        assert "must be at most 9223372036854775807 (2**63 - 1)" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_help_shows_brackets_as_typed():
    r = simfl("sweep", "--help")
    assert r.returncode == 0 and "pip install 'simfl[cluster]'" in " ".join(r.stdout.split())
