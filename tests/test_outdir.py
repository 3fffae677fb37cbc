"""Output folders: never touch a user's files, check the path before the run, replace only simfl's own output."""

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import simfl
from simfl.cli import app
from simfl.errors import ScenarioError
from simfl.report import outdir
from simfl.report.outdir import MARKER, OutputDir, default_dir, slug
from tests.test_cli import scenario_file, simfl as simfl_cli


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _users_folder(tmp_path: Path) -> Path:
    d = tmp_path / "mine"
    (d / "sub").mkdir(parents=True)
    (d / "notes.txt").write_text("do not delete")
    (d / "sub" / "data.csv").write_text("1,2\n")
    return d


@pytest.mark.parametrize("name, expected", [
    ("../../x", "x"), ("/etc/cron.d", "etc-cron.d"), ("..", "run"), ("", "run"), (".hidden", "hidden"),
    ("a b/c", "a-b-c"), ("quickstart", "quickstart"), ("x" * 300, "x" * 100), ("my-shop/../floor", "my-shop-floor"),
    ("v1.2", "v1.2"),
])
def test_slug_is_one_safe_path_component(name, expected):
    assert slug(name) == expected
    d = default_dir(name)
    assert d.parts == ("runs", expected)


def test_out_dot_refused_and_working_directory_untouched(tmp_path):
    work = _users_folder(tmp_path)
    before = _tree(work)
    r = simfl_cli("run", scenario_file(tmp_path), "--out", ".", "--no-plots", cwd=work)
    assert r.returncode == 2
    assert r.stderr == "error: --out: . is the working directory or one of its parents; give a folder of its own " \
                       "for the output\n"
    assert _tree(work) == before and sorted(os.listdir(work)) == ["notes.txt", "sub"]


@pytest.mark.parametrize("out", ["..", "{parent}"])
def test_parents_of_the_working_directory_refused(tmp_path, out):
    work = _users_folder(tmp_path)
    r = simfl_cli("run", scenario_file(tmp_path), "--out", out.format(parent=tmp_path), "--no-plots", cwd=work / "sub")
    assert r.returncode == 2 and "working directory or one of its parents" in r.stderr
    assert r.stderr.count("\n") == 1


def test_existing_user_folder_refused_untouched(tmp_path):
    mine = _users_folder(tmp_path)
    before = _tree(mine)
    r = simfl_cli("run", scenario_file(tmp_path), "--out", mine, "--no-plots")
    assert r.returncode == 2
    assert r.stderr == (f"error: --out: {mine} exists and is not a simfl output folder (it has no {MARKER} file), "
                        "so simfl will not replace it; give a new folder or remove it yourself\n")
    assert _tree(mine) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left


def test_previous_output_is_replaced_and_empty_folder_used(tmp_path):
    out = tmp_path / "out"
    assert simfl_cli("run", scenario_file(tmp_path), "--out", out, "--no-plots").returncode == 0
    assert (out / MARKER).is_file()
    (out / "stale.txt").write_text("from an older run")
    assert simfl_cli("run", scenario_file(tmp_path), "--out", out, "--no-plots").returncode == 0
    assert not (out / "stale.txt").exists() and (out / "summary.json").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert simfl_cli("run", scenario_file(tmp_path), "--out", empty, "--no-plots").returncode == 0
    assert (empty / "summary.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "out", "s.yaml"]  # nothing else left behind


def test_scenario_name_cannot_escape_runs(tmp_path):
    def evil(s):
        s["name"] = "../../escaped"
    work = tmp_path / "w"
    work.mkdir()
    r = simfl_cli("run", scenario_file(tmp_path, evil), "--no-plots", cwd=work)
    assert r.returncode == 0, r.stderr
    assert (work / "runs" / "escaped" / "summary.json").is_file()
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "escaped").exists()


@pytest.mark.parametrize("case", ["file in the way", "parent is a file", "cannot write", "user folder"])
def test_output_problems_found_before_the_simulation(tmp_path, monkeypatch, case):
    (tmp_path / "f.txt").write_text("x")
    mine = _users_folder(tmp_path)
    out = {"file in the way": tmp_path / "f.txt", "parent is a file": tmp_path / "f.txt" / "out",
           "cannot write": tmp_path / "new" / "out", "user folder": mine}[case]
    if case == "cannot write":
        def denied(parent, prefix):
            raise PermissionError(13, "Permission denied")
        monkeypatch.setattr(outdir, "_fresh_dir", denied)

    def never(*a, **k):
        raise AssertionError("the simulation ran before the output folder was checked")
    monkeypatch.setattr(simfl, "simulate", never)
    r = CliRunner().invoke(app, ["run", str(scenario_file(tmp_path)), "--out", str(out), "--no-plots"])
    assert r.exit_code == 2, r.output
    line = {"file in the way": f"{out} is a file, not a folder; give another output folder",
            "parent is a file": f"cannot create {out}: {tmp_path / 'f.txt'} is a file, not a folder",
            "cannot write": f"cannot write to {tmp_path / 'new'}: Permission denied",
            "user folder": f"{out} exists and is not a simfl output folder"}[case]
    assert line in r.output and r.output.count("\n") == 1 and "Traceback" not in r.output
    assert not (tmp_path / "new").exists()  # parents the claim made are removed again
    assert (tmp_path / "f.txt").read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the mapping is tested above")
def test_read_only_folder_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = simfl_cli("run", scenario_file(tmp_path), "--out", ro / "out", "--no-plots")
    finally:
        ro.chmod(0o755)
    assert r.returncode == 2 and r.stderr == f"error: --out: cannot write to {ro}: Permission denied\n"


def test_failed_run_leaves_previous_output_and_nothing_else(tmp_path):
    out = tmp_path / "deep" / "er" / "out"
    with pytest.raises(RuntimeError):
        with OutputDir(out, "run") as tmp:
            (tmp / "half.csv").write_text("half")
            raise RuntimeError("run failed")
    assert not (tmp_path / "deep").exists()  # the parents it made are gone too
    out.mkdir(parents=True)
    (out / MARKER).write_text("{}")
    (out / "summary.json").write_text("old")
    with pytest.raises(ScenarioError):
        with OutputDir(out, "run") as tmp:
            raise ScenarioError("bad")
    assert _tree(out) == {MARKER: b"{}", "summary.json": b"old"}
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]


def test_folder_that_changes_during_the_run_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ScenarioError, match="changed during the run"):
        with OutputDir(out, "run") as tmp:
            (tmp / "summary.json").write_text("new")
            out.mkdir()
            (out / "users.txt").write_text("arrived meanwhile")
    assert _tree(out) == {"users.txt": b"arrived meanwhile"}
