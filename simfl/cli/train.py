"""simfl train: real federated training with each server optimizer, on the simulated clock."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from simfl.cli.calibrate import check_local_name, short_text
from simfl.cli.common import app, bad_input, csv_list, err, need_torch, out
from simfl.cli.simulate import SET_HELP, overrides_of
from simfl.errors import ScenarioError, short


@app.command()
@bad_input
def train(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML with a train: section.")],
    optimizers: Annotated[str | None, typer.Option(help="Runs to do, comma-separated (default: all in the scenario).")] = None,
    target_val_loss: Annotated[float | None, typer.Option(help="Stop a run at this val loss (default: the scenario's).")] = None,
    rounds: Annotated[int | None, typer.Option(min=1, help="Most rounds per run (default: federation.rounds).")] = None,
    stop: Annotated[bool, typer.Option(help="Stop each run when it reaches the target.")] = True,
    data: Annotated[Path | None, typer.Option(help="JSONL of dialogue/summary pairs (e.g. SAMSum) instead of train.data.")] = None,
    tokenizer: Annotated[str | None, typer.Option(help="Tokenizer NAME_OR_PATH for --data.")] = None,
    pretrained: Annotated[str | None, typer.Option(help="Weights NAME_OR_PATH (from_pretrained) instead of random.")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder (default runs/<name>-train/).")] = None,
    grid: Annotated[list[str] | None, typer.Option(
        help="PATH=V1,V2,...: train at every combination (repeatable), e.g. federation.clients_per_round=5,10,20; "
             "writes convergence.csv, the table federation.rounds: {convergence: ...} reads.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help=SET_HELP)] = None,
) -> None:
    """Really train with each server optimizer (and forward-gradient clients) on the simulated clock."""
    import warnings

    from simfl import load_scenario

    if target_val_loss is not None and not (0 < target_val_loss < float("inf")):
        raise ScenarioError(f"must be a positive number, got {target_val_loss:g}", field="--target-val-loss")
    if threads is not None:
        from simfl.plan.executors import check_workers

        check_workers(threads, "--threads")
    fixed = overrides_of(set_)
    sc = load_scenario(scenario, fixed)
    if sc.train is None:
        raise ScenarioError("has no train: section; simfl train needs one", field="train")
    overrides = {k: v for k, v in (("data", str(data) if data else None), ("tokenizer", tokenizer),
                                   ("pretrained", pretrained)) if v is not None}
    if overrides:
        sc = sc.model_copy(update={"train": sc.train.model_copy(update=overrides)})
    _check_paths(sc.train, data, tokenizer, pretrained)
    only = csv_list(optimizers, option="--optimizers") if optimizers is not None else None
    if only == []:  # `--optimizers ,,` or "": not "every optimizer", which is what leaving it out means
        raise ScenarioError(f"give at least one run name, got {short(optimizers)}", field="--optimizers")
    need_torch("train")
    warnings.filterwarnings("ignore", category=FutureWarning)
    import torch

    from simfl.fl.session import train_scenario
    from simfl.report.outdir import OutputDir, default_dir
    from simfl.report.training import write_training_files

    if threads:
        torch.set_num_threads(threads)
    target = target_val_loss if target_val_loss is not None else sc.train.target_val_loss
    max_rounds = rounds or sc.federation.rounds
    target_dir = out_dir or default_dir(sc.name, "-train")
    if grid:
        return _grid(scenario, grid, only, target, max_rounds, target_dir, sc.train.eval_every, fixed)
    with OutputDir(target_dir, "train") as folder:  # claimed (and checked) before any training
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[val]}"), TimeRemainingColumn(), console=err,
                      disable=not sys.stderr.isatty()) as bar:
            tasks: dict[str, int] = {}

            def on_round(run: str, r: int, val: float | None) -> None:
                if run not in tasks:
                    tasks[run] = bar.add_task(run, total=max_rounds, val="")
                bar.update(tasks[run], completed=r, **({"val": f"val loss {val:.3f}"} if val is not None else {}))
                if not sys.stderr.isatty() and val is not None:
                    err.print(f"  {run} round {r}: val loss {val:.4f}", highlight=False)

            try:
                result = train_scenario(sc, only=only, target=target, max_rounds=max_rounds, stop_at_target=stop,
                                        on_round=on_round)
            except ScenarioError:
                raise
            except ValueError as e:
                raise ScenarioError(str(e).splitlines()[0], field="train") from None
            except OSError as e:  # transformers: weights or a tokenizer it cannot find or download
                field = _loading_field(sc.train, pretrained, tokenizer)
                if field is None:
                    raise
                raise ScenarioError(short_text(str(e).strip().splitlines()[0] if str(e).strip() else
                                               type(e).__name__), field=field) from None
        write_training_files(result, folder)
    t = Table(title=f"simfl train: {sc.name}" + (f" (target val loss {target:g})" if target else ""))
    for col in ("run", "rounds run", "best val loss", "rounds to target", "sim hours to target", "kWh to target"):
        t.add_column(col, justify="right")
    fmt = lambda v, f: "not reached" if v is None else format(v, f)  # noqa: E731
    for name, r in result.summary["runs"].items():
        t.add_row(name, str(r["rounds_run"]), f"{r['best_val_loss']:.4f}", fmt(r["rounds_to_target"], "d"),
                  fmt(r["sim_hours_to_target"], ".3f"), fmt(r["kwh_to_target"], ".4f"))
    out.print(t)
    out.print(f"wrote {target_dir}/", highlight=False)


def _grid(scenario: Path, assignments: list[str], only, target: float | None, max_rounds: int, target_dir: Path,
          eval_every: int, fixed: dict) -> None:
    """simfl train --grid: rounds to the target at every combination, as a convergence table."""
    from simfl.config.load import load_scenario
    from simfl.config.overrides import parse_assignment
    from simfl.fl.grid import convergence_grid, write_table
    from simfl.report.outdir import OutputDir

    if target is None:
        raise ScenarioError("a convergence grid needs a target: give --target-val-loss or train.target_val_loss",
                            field="--grid")
    axes: dict[str, list] = {}
    for a in assignments:
        path, values = parse_assignment(a)
        if isinstance(values, str) and "," in values:  # PATH=5,10,20: each item read as YAML
            values = [parse_assignment(f"{path}={v}")[1] for v in values.split(",") if v.strip()]
        values = values if isinstance(values, list) else [values]
        if not values:
            raise ScenarioError(f"{path}: give at least one value", field="--grid")
        axes[path] = values
    for path, value in fixed.items():  # a --set is an axis of one value
        axes.setdefault(path, [value])
    from simfl.plan.spec import points

    for point in points(axes):  # every point validated before any training
        load_scenario(scenario, point)
    with OutputDir(target_dir, "train") as folder:
        def on_run(point, row):
            got = "not reached" if row["rounds_to_target"] is None else f"{row['rounds_to_target']} rounds"
            err.print(f"  {', '.join(f'{k}={v}' for k, v in point.items())} {row['server_optimizer']}: {got}",
                      highlight=False, markup=False)
        rows = convergence_grid(scenario, axes, only=only, target=target, max_rounds=max_rounds, on_run=on_run)
        write_table(rows, folder / "convergence.csv", scenario, target, max_rounds, eval_every)
    out.print(f"{len(rows)} runs; wrote {target_dir}/convergence.csv", highlight=False)


def _check_paths(spec, data, tokenizer, pretrained) -> None:
    """The training data, tokenizer and weights named by option or in train:, checked before any training."""
    from simfl.safeio import regular_file

    if spec.data != "tiny-dialogsum":
        regular_file(spec.data, field="--data" if data is not None else "train.data")
    check_local_name(spec.tokenizer, "--tokenizer" if tokenizer is not None else "train.tokenizer")
    check_local_name(spec.pretrained, "--pretrained" if pretrained is not None else "train.pretrained")


def _loading_field(spec, pretrained, tokenizer) -> str | None:
    if spec.pretrained is not None:
        return "--pretrained" if pretrained is not None else "train.pretrained"
    if spec.tokenizer is not None:
        return "--tokenizer" if tokenizer is not None else "train.tokenizer"
    return None
