"""One `simfl train` session: data, the stand-in base, a priced schedule per method, every run."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from simfl.config.scenario import Scenario
from simfl.fl.ranked import stack_refusal
from simfl.fl.train import kernel_spec, prepare_task, pretrain_base, runs_of, schedule, to_target, train_run
from simfl.lora_ranks import ranks_differ


@dataclass(frozen=True)
class TrainResult:
    scenario: Scenario
    table: pd.DataFrame  # run, round, sim_time_s, energy_j, clients, train_loss, val_loss
    summary: dict


def fg_scenario(scenario: Scenario) -> Scenario:
    """The scenario as the forward-gradient run sees it: its adapter, its method, its perturbations. It trains
    one adapter on every client: fleet[i].lora_r are for backprop runs."""
    fg = scenario.train.forward_gradient
    model = scenario.model.model_copy(update={k: v for k, v in (("lora_r", fg.lora_r),
                                                                 ("lora_targets", fg.lora_targets)) if v})
    training = scenario.training.model_copy(update={"method": "forward_gradient", "perturbations": fg.perturbations})
    fleet = [g.model_copy(update={"lora_r": None}) if g.lora_r is not None else g for g in scenario.fleet]
    return scenario.model_copy(update={"model": model, "training": training, "fleet": fleet})


def check_rank_rule(scenario: Scenario, runs) -> None:
    """model.rank_aggregation stack with a server optimizer it has no form for: refused before any training."""
    if scenario.model.rank_rule == "stack" and ranks_differ(scenario.lora_ranks):
        for run in runs:
            why = stack_refusal(run.name, run.optimizer) if run.method == "backprop" else None
            if why:
                raise ValueError(why)


def train_scenario(scenario: Scenario, *, only: list[str] | None = None, target: float | None = None,
                   max_rounds: int | None = None, stop_at_target: bool = True,
                   on_round: Callable[[str, int, float | None], None] | None = None) -> TrainResult:
    max_rounds = max_rounds or scenario.federation.rounds
    runs = runs_of(scenario.train, only)  # a bad --optimizers fails here, before any training
    check_rank_rule(scenario, runs)
    task = prepare_task(scenario)
    base = None
    if scenario.train.pretrained is None:  # random weights: give the stand-in a pretrained base first
        base = pretrain_base(task, kernel_spec(scenario, task), scenario.train.pretrain_steps, scenario.seed)
    schedules: dict[str, object] = {}
    rows, timings, methods = [], {}, {}
    for run in runs:
        sc = fg_scenario(scenario) if run.method == "forward_gradient" else scenario
        if run.method not in schedules:
            schedules[run.method] = schedule(sc, run.method, sc.training.perturbations)
        t0 = time.perf_counter()
        info: dict = {}
        rows += train_run(sc, task, run, schedules[run.method], max_rounds, target if stop_at_target else None,
                          base, on_round, info)
        timings[run.name] = time.perf_counter() - t0
        methods[run.name] = {"method": run.method, "optimizer": run.optimizer, "hyper": run.hyper, **info}
    table = pd.DataFrame(rows)
    runs = to_target(table, target)
    for name in runs:
        runs[name].update(methods[name], wall_s=round(timings[name], 2))
    summary = {"scenario": scenario.name, "seed": scenario.seed, "target_val_loss": target,
               "max_rounds": max_rounds, "arch": task.arch_name, "priced_as": scenario.model.name, "runs": runs}
    return TrainResult(scenario, table, summary)
