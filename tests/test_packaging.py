"""The package works when installed from its wheel, not only from the repo: shipped data travels with it."""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from simfl.config.load import REPO_ROOT

pytest.importorskip("setuptools", reason="building the wheel needs setuptools (the dev extra installs it)")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """Build the wheel from a copy of the project and install it, alone, into a folder of its own."""
    base = tmp_path_factory.mktemp("pkg")
    src = base / "src"
    skip = shutil.ignore_patterns(".venv", ".git", "runs", "mutants", "build", "dist", "*.egg-info", "__pycache__",
                                  ".pytest_cache")
    shutil.copytree(REPO_ROOT, src, symlinks=True, ignore=skip)
    wheels = base / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("simfl-*.whl")
    target = base / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    return target


def _simfl(site: Path, *args, cwd: Path):
    # The installed copy first; the dependencies from this environment's site-packages (whose .pth
    # files, including the editable install's, are not read from PYTHONPATH).
    env = {"PYTHONPATH": f"{site}:{sysconfig.get_paths()['purelib']}", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "simfl", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_wheel_carries_the_shipped_data(installed):
    data = installed / "simfl" / "_data"
    for name in ("hardware_profiles/jetson-agx-orin-64gb.yaml", "network_models/lte.yaml",
                 "scenarios/quickstart.yaml", "scenarios/paper/large-orin-lte-lora.yaml",
                 "model_configs/qwen2.5-7b.json", "model_configs/SOURCES.md"):
        assert (data / name).is_file() and not (data / name).is_symlink(), name
    assert sorted(p.name for p in (data / "hardware_profiles").glob("*.yaml")) == \
        sorted(p.name for p in (REPO_ROOT / "hardware_profiles").glob("*.yaml"))


def test_installed_simfl_finds_profiles_from_any_directory(installed, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    scenario = elsewhere / "mine.yaml"
    scenario.write_text((REPO_ROOT / "scenarios" / "quickstart.yaml").read_text().replace("rounds: 845", "rounds: 3"))
    where = subprocess.run([sys.executable, "-c", "import simfl; print(simfl.__file__)"], capture_output=True,
                           text=True, cwd=elsewhere,
                           env={"PYTHONPATH": f"{installed}:{sysconfig.get_paths()['purelib']}"})
    assert where.stdout.strip() == str(installed / "simfl" / "__init__.py")  # not the checkout
    r = _simfl(installed, "run", scenario, "--out", elsewhere / "out", "--no-plots", cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert (elsewhere / "out" / "summary.json").is_file()
    r = _simfl(installed, "profiles", cwd=elsewhere)
    assert r.returncode == 0 and "jetson-agx-orin-64gb" in r.stdout
    assert str(installed / "simfl" / "_data" / "hardware_profiles") in r.stdout.replace("\n", "")
