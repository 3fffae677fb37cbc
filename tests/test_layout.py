"""The package layout: one-way imports between rooms, a pure core, no private names across modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "simfl"

# What simfl.sim may import besides itself: pure helpers (no files, no torch, pandas or pydantic).
SIM_MAY_IMPORT = {"simfl.costs"}
# The rooms that may import torch, transformers or peft (DESIGN.md rule 7; lm/ holds the model code).
TORCH_ROOMS = {"lm", "calibrate", "fl", "emulate", "cli"}
HEAVY = ("pandas", "pydantic", "yaml", "torch", "matplotlib")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import in the module, function bodies and
    `if TYPE_CHECKING:` blocks included; relative imports resolved against the module's package."""
    path = MODULES[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.append((target, [a.name for a in node.names], node.lineno))
    return found


def resolve(target: str, names: list[str]) -> list[str]:
    """The simfl modules an import loads: `from simfl.lm import data` is simfl.lm.data, not simfl.lm alone."""
    if not (target == "simfl" or target.startswith("simfl.")):
        return []
    sub = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
    while target not in MODULES:
        target = target.rsplit(".", 1)[0]
    return sub if sub and len(sub) == len(names) else [target, *sub]


def unit(module: str) -> str:
    """The room a module lives in: the first component under simfl/ (simfl/__init__ is `simfl`)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "simfl"


def unit_graph() -> dict[str, dict[str, str]]:
    """unit -> {imported unit: "module:line -> module" of one import that makes the arrow}."""
    graph: dict[str, dict[str, str]] = defaultdict(dict)
    for name in MODULES:
        for target, names, line in imports(name):
            for dep in resolve(target, names):
                if unit(dep) != unit(name):
                    graph[unit(name)].setdefault(unit(dep), f"{name}:{line} -> {dep}")
    return graph


def find_cycle(graph: dict[str, dict[str, str]]) -> list[str] | None:
    """One cycle of the graph as a closed path of nodes, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_reports_a_cycle_through_function_level_imports():
    # the rule itself on a hand-made graph: a -> b -> c -> a is found, a DAG is not
    assert find_cycle({"a": {"b": ""}, "b": {"c": ""}, "c": {"a": ""}, "d": {"a": ""}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": "", "c": ""}, "b": {"c": ""}}) is None


def test_no_import_cycle_between_units():
    graph = unit_graph()
    cycle = find_cycle(graph)
    if cycle:
        steps = "\n  ".join(graph[a][b] for a, b in zip(cycle, cycle[1:]))
        raise AssertionError(f"import cycle {' -> '.join(cycle)}:\n  {steps}")


def test_core_imports_only_itself_and_pure_helpers():
    bad = []
    for name in (m for m in MODULES if m == "simfl.sim" or m.startswith("simfl.sim.")):
        for target, names, line in imports(name):
            for dep in resolve(target, names):
                if not (dep.startswith("simfl.sim.") or dep in ("simfl.sim", *SIM_MAY_IMPORT)):
                    bad.append(f"{name}:{line} imports {dep}")
            if target.split(".")[0] in HEAVY:
                bad.append(f"{name}:{line} imports {target}")
    assert not bad, "\n".join(bad)


def test_lm_imports_none_of_its_users():
    bad = [f"{name}:{line} imports {dep}" for name in MODULES if unit(name) == "lm"
           for target, names, line in imports(name) for dep in resolve(target, names)
           if unit(dep) in ("calibrate", "fl", "emulate", "cli")]
    assert not bad, "\n".join(bad)


def test_torch_only_in_the_torch_rooms():
    bad = [f"{name}:{line} imports {target}" for name in MODULES if unit(name) not in TORCH_ROOMS
           for target, _, line in imports(name) if target.split(".")[0] in ("torch", "transformers", "peft")]
    assert not bad, "\n".join(bad)


def test_no_private_name_imported_from_another_module():
    bad = [f"{name}:{line} imports {n} from {target}" for name in MODULES
           for target, names, line in imports(name) if target.startswith("simfl") and target != name
           for n in names if n.startswith("_") and not n.startswith("__")]
    assert not bad, "\n".join(bad)


def test_importing_the_core_loads_no_heavy_library():
    code = f"import sys, simfl.sim; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "", f"import simfl.sim loaded {out.stdout.strip()}"


def test_public_names_still_load_from_the_package():
    code = ("import sys; from simfl import simulate, load_scenario, SimResult, ScenarioError; import simfl; "
            "assert simfl.simulate is simulate and 'pydantic' in sys.modules; print(load_scenario.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "simfl.config.load"


# The Flower room (simfl/flower/): what `simfl flower` runs on. It may use the run's pieces (api, build, config,
# sim, summary) and the helpers; only the command line uses it, so that nothing else needs flwr.
FLOWER_MAY_IMPORT = {"api", "build", "config", "sim", "summary", "fl", "errors", "safeio", "costs", "stats",
                     "catalog", "training", "hostid", "uncertainty", "partition", "pricing", "flower"}


def test_flower_room_imports_only_the_run_and_only_the_cli_imports_it():
    graph = unit_graph()
    assert set(graph.get("flower", {})) <= FLOWER_MAY_IMPORT, graph.get("flower")
    users = sorted(u for u, deps in graph.items() if "flower" in deps)
    assert users == ["cli"], users
    # and flwr is imported only where Flower runs (here, and the emulation's Flower processes): no other room
    # needs Flower installed
    bad = [f"{name}:{line} imports {target}" for name in MODULES if unit(name) not in ("flower", "cli", "emulate")
           for target, _, line in imports(name) if target.split(".")[0] == "flwr"]
    assert not bad, "\n".join(bad)
