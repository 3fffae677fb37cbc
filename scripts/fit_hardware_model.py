"""Fit simfl's hardware model to the measured profiles, validate it, and write what users read.

    python scripts/fit_hardware_model.py

Writes simfl/hardware/fitted.yaml (class parameters and the expected errors the simulator quotes),
docs/data/hardware-model-validation.csv (every prediction of every validation), docs/img/hardware-model.png
and the tables of docs/hardware-model.md (between its `tables` markers). Validations, each refitting the
whole model without what it predicts:
  within_device  leave one measured point out
  other_model    leave one model of one device out (all its batches)
  other_family   leave one architecture family of one device out (the decoders of the CPU, or its T5)
  other_device   leave one device out (predicted from its datasheet and the other devices)
  oom            every point's fits / does-not-fit, with every OOM row removed from the fit
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import numpy as np
import yaml

from simfl.config.load import load_model
from simfl.config.profiles import HardwareProfile
from simfl.hardware.predict import FITTED_FILE, fit_model, observations
from simfl.hardware.work import family
from simfl.stats import abs_log_error, interval_half_width, interval_text, loo_inside

ROOT = Path(__file__).resolve().parents[1]
# Measured devices, each with the profiles of its measurements (the CPU's LLM points were a second run).
DEVICES = {"a100-80gb": ["a100-80gb"], "jetson-agx-orin-64gb": ["jetson-agx-orin-64gb"],
           "cpu-2core-epyc": ["cpu-2core-epyc", "cpu-2core-epyc-llm"]}
DOC = ROOT / "docs" / "hardware-model.md"
CSV_OUT = ROOT / "docs" / "data" / "hardware-model-validation.csv"
PLOT = ROOT / "docs" / "img" / "hardware-model.png"
KINDS = ("within_device", "other_model", "other_family", "other_device")


def profile(name: str) -> HardwareProfile:
    return load_model(HardwareProfile, ROOT / "hardware_profiles" / f"{name}.yaml")


def load() -> tuple[list, dict, dict]:
    obs, classes, profiles = [], {}, {}
    for device, names in DEVICES.items():
        for n in names:
            p = profile(n)
            obs += observations(p, device)
            classes[device] = p.device_class
        profiles[device] = profile(names[0])
    return obs, classes, profiles


def predict(model, profiles, device, o, remaining):
    """The model's estimate of observation o from the device's remaining points."""
    mine = [r for r in remaining if r.device == device]
    return model.estimate(profiles[device], o.config, _speed=model.speed_for(profiles[device], mine))


def row(kind, o, e):
    return {"validation": kind, "device": o.device, "model": o.config.model, "finetuning": o.config.finetuning,
            "method": o.config.method, "seq_len": o.config.seq_len, "batch_size": o.config.batch_size,
            "measured_step_time_s": o.step_time_s, "predicted_step_time_s": round(e.step_time_s, 5),
            "step_time_error": round(e.step_time_s / o.step_time_s - 1, 4),
            "measured_power_w": o.power_w, "predicted_power_w": None if e.power_w is None else round(e.power_w, 2),
            "power_error": None if e.power_w is None or o.power_w is None else round(e.power_w / o.power_w - 1, 4),
            "measured_peak_memory_bytes": o.peak_memory_bytes, "predicted_memory_bytes": round(e.memory_bytes),
            "memory_error": None if not o.peak_memory_bytes else round(e.memory_bytes / o.peak_memory_bytes - 1, 4)}


def validate(obs, classes, profiles) -> tuple[list[dict], list[dict]]:
    rows = []
    timed = [o for o in obs if o.step_time_s is not None and not o.oom]
    for o in timed:  # leave one point out
        rest = [r for r in obs if r is not o]
        rows.append(row("within_device", o, predict(fit_model(rest, classes), profiles, o.device, o, rest)))
    for device, model in sorted({(o.device, o.config.model) for o in timed}):  # leave one model out
        out = [o for o in obs if (o.device, o.config.model) == (device, model)]
        rest = [r for r in obs if (r.device, r.config.model) != (device, model)]
        if not [r for r in rest if r.device == device and r.step_time_s]:
            continue  # the device measured nothing else: that is the device validation
        m = fit_model(rest, classes)
        rows += [row("other_model", o, predict(m, profiles, device, o, rest)) for o in out if o in timed]
    for device, fam in sorted({(o.device, family(o.config.model)) for o in timed}):  # leave one family out
        rest = [r for r in obs if (r.device, family(r.config.model)) != (device, fam)]
        if not [r for r in rest if r.device == device and r.step_time_s]:
            continue
        m = fit_model(rest, classes)
        rows += [row("other_family", o, predict(m, profiles, device, o, rest)) for o in timed
                 if (o.device, family(o.config.model)) == (device, fam)]
    for device in DEVICES:  # leave one device out
        rest = [r for r in obs if r.device != device]
        m = fit_model(rest, classes)
        rows += [row("other_device", o, predict(m, profiles, device, o, rest)) for o in timed if o.device == device]
    no_oom = [o for o in obs if not o.oom]
    m = fit_model(no_oom, classes)
    ooms = []
    for o in obs:
        if o.step_time_s is None and not o.oom:
            continue
        e = predict(m, profiles, o.device, o, no_oom)
        ooms.append({"device": o.device, "model": o.config.model, "batch_size": o.config.batch_size,
                     "measured": "OOM" if o.oom else "ran", "predicted": "fits" if e.fits else "OOM",
                     "memory_gb": round(e.memory_bytes / 1e9, 1), "memory_of_device_gb": round(e.usable_memory_bytes / 1e9, 1)})
    return rows, ooms


def error_stats(errs) -> dict:
    """Of held-out relative errors: the median absolute error, the stated 80 % interval (the 80th percentile of the
    absolute log errors: prediction x exp(±interval_80)), and how many points fall inside the interval stated from
    all the others (leave one out: no point checks an interval it helped set)."""
    logs = [abs_log_error(e) for e in errs]
    out = {"median": round(float(np.median(np.abs(errs))), 4), "interval_80": round(interval_half_width(logs), 4),
           "points": len(errs)}
    if len(logs) >= 2:
        out["inside_80"] = loo_inside(logs)
    return out


def summary(rows, classes, key="step_time_error") -> dict:
    """Per validation, over all devices and per class: error_stats of the held-out errors."""
    out = {}
    for kind in KINDS:
        for group in ("all", *sorted(set(classes.values()))):
            errs = [r[key] for r in rows if r["validation"] == kind and r[key] is not None
                    and group in ("all", classes[r["device"]])]
            if errs:
                out.setdefault(kind, {})[group] = error_stats(errs)
    return out


def pct(x):
    return f"{100 * x:.0f} %"


def cells(errs) -> str:
    """median | 80 % interval | inside it, held out | worst: the cells every validation table shows."""
    st = error_stats(errs)
    worst = errs[int(np.argmax(np.abs(errs)))]
    inside = f"{st['inside_80']} of {st['points']} ({pct(st['inside_80'] / st['points'])})" if "inside_80" in st \
        else "-"
    return (f"{pct(st['median'])} | {interval_text(st['interval_80'])} | {inside} | "
            f"{'+' if worst > 0 else ''}{pct(worst)}")


def tables(rows, ooms, fitted) -> str:
    head = ("| median abs error | stated 80 % interval | inside it, each point left out | worst |",
            "---:|---:|---:|---:|")
    lines = [f"| validation | device | points {head[0]} inside the interval set on the other devices |",
             f"|---|---|---:|{head[1]}---:|"]
    for kind in KINDS:
        for device in [*DEVICES, "all"]:
            errs = [r["step_time_error"] for r in rows if r["validation"] == kind
                    and (device == "all" or r["device"] == device)]
            others = [abs_log_error(r["step_time_error"]) for r in rows if r["validation"] == kind
                      and r["device"] != device]
            across = "-"
            if device != "all" and len(others) >= 2:
                h = interval_half_width(others)
                across = f"{sum(abs_log_error(e) <= h for e in errs)} of {len(errs)} ({interval_text(h)})"
            if errs:
                lines.append(f"| {kind.replace('_', ' ')} | {device} | {len(errs)} | {cells(errs)} | {across} |")
    out = ["### Step time", "", *lines, ""]
    lines = [f"| validation | device | points {head[0]}", f"|---|---|---:|{head[1]}"]
    for key, what in (("power_error", "power"), ("memory_error", "peak memory")):
        for kind in KINDS:
            for device in DEVICES:
                errs = [r[key] for r in rows if r["validation"] == kind and r["device"] == device
                        and r[key] is not None]
                if errs:
                    lines.append(f"| {what}, {kind.replace('_', ' ')} | {device} | {len(errs)} | {cells(errs)} |")
    out += ["### Power and memory", "", *lines, ""]
    lines = ["| device | model | batch | measured | predicted | needs GB | device GB |", "|---|---|---:|---|---|---:|---:|"]
    agree = sum((r["measured"] == "OOM") == (r["predicted"] == "OOM") for r in ooms)
    for r in ooms:
        if r["measured"] == "OOM" or r["predicted"] == "OOM" or r["device"] != "cpu-2core-epyc":
            mark = "" if (r["measured"] == "OOM") == (r["predicted"] == "OOM") else " **miss**"
            lines.append(f"| {r['device']} | {r['model']} | {r['batch_size']} | {r['measured']} | "
                         f"{r['predicted']}{mark} | {r['memory_gb']} | {r['memory_of_device_gb']} |")
    out += ["### Out of memory, predicted with every OOM row left out of the fit", "",
            f"{agree} of {len(ooms)} measured points agree (ran and predicted to fit, or OOM and predicted "
            "not to).", "", *lines, ""]
    lines = ["| class | fitted on | overhead ms/block | compute eff. | half width | memory eff. | overlap p | "
             "power floor | power slope | activation scale |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for k, c in fitted["classes"].items():
        s, p = c["speed"], c["power"]
        lines.append(f"| {k} | {', '.join(c['fitted_on']) or 'all, pooled'} | {1e3 * s['overhead_s_per_block']:.3g} | "
                     f"{s['compute_efficiency']:.3g} | {s['half_width']:.3g} | {s['memory_efficiency']:.3g} | {s['overlap']:.3g} | "
                     + (f"{p['floor']:.3g} | {p['slope']:.3g}" + (" (pooled)" if c["power_pooled"] else "")
                        if p else "- | -")
                     + f" | {c['activation_scale']:.3g} |")
    mem = fitted["memory"]
    out += ["### Fitted parameters", "", *lines, "",
            f"Memory: activation factor {mem['activation_factor']:.3g}, logits factor {mem['logits_factor']:.3g}, "
            f"forward-gradient factor "
            f"{mem['forward_gradient_factor']:.3g}, runtime {mem['runtime_bytes'] / 1e9:.2f} GB; forward-gradient "
            f"compute efficiency x {fitted['forward_gradient_efficiency']:.3g} of backprop's.", ""]
    return "\n".join(out)


DATASHEET_ONLY = ("raspberry-pi-4-8gb", "snapdragon-8-gen-2-phone", "jetson-nano-4gb", "jetson-orin-nano-8gb",
                  "jetson-orin-nx-16gb", "l4-24gb", "rtx-4090-24gb", "h100-sxm-80gb")
BESIDE = {"cpu-2core-epyc": "cpu-2core-epyc", "jetson-agx-orin-64gb": "jetson-agx-orin-64gb",
          "a100-80gb": "a100-80gb"}


def device_table(model) -> str:
    """What the fitted model says of every shipped device for flan-t5-small LoRA (seq 512): step time at
    batch 1 and 8, power at 8, the largest batch predicted to fit, with the error to expect."""
    from simfl.hardware.lookup import step_cost
    from simfl.training import TrainingConfig

    lines = ["| device | class | step s, batch 1 | step s, batch 8 | W at batch 8 | largest batch that fits | "
             "stated 80 % interval |", "|---|---|---:|---:|---:|---:|---|"]
    for name in (*BESIDE, *DATASHEET_ONLY):
        p = profile(name)
        got = []
        for b in (1, 8):
            try:
                c = step_cost(p, TrainingConfig("flan-t5-small", batch_size=b))
                got.append((c.step_time_s, c.power_w, bool(c.estimated_because)))
            except Exception:  # noqa: BLE001 - an OOM row of the table
                got.append(None)
        fits = max((b for b in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
                    if model.estimate(p, TrainingConfig("flan-t5-small", batch_size=b)).fits), default=0)
        e = model.estimate(p, TrainingConfig("flan-t5-small", batch_size=8))
        stated = "not validated" if e.interval_80 is None else interval_text(e.interval_80)
        err = (f"{stated} ({e.error_kind.replace('_', ' ')})" if e.error_kind != "within_device"
               or got[1] is None or got[1][2] else "measured")

        def t(c):
            return "OOM" if c is None else f"{c[0]:.3g}" + ("" if c[2] else " (measured)")
        w = "-" if got[1] is None or got[1][1] is None else f"{got[1][1]:.3g}"
        lines.append(f"| {name} | {p.device_class} | {t(got[0])} | {t(got[1])} | {w} | {fits} | {err} |")
    return "\n".join(lines)


def plot(rows) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4), sharex=True, sharey=True)
    for ax, kind in zip(axes, KINDS):
        lo, hi = 0.05, 200
        ax.fill_between([lo, hi], [lo / 1.3, hi / 1.3], [lo * 1.3, hi * 1.3], color="0.88", label="±30 %", zorder=0)
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8, zorder=1)
        for device, marker, color in zip(DEVICES, "os^", ("tab:blue", "tab:orange", "tab:green")):
            pts = [(r["measured_step_time_s"], r["predicted_step_time_s"]) for r in rows
                   if r["validation"] == kind and r["device"] == device]
            if pts:
                x, y = zip(*pts)
                ax.scatter(x, y, marker=marker, color=color, label=device, alpha=0.8, zorder=3)
        ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), title=kind.replace("_", " "),
               xlabel="measured step time (s)")
    axes[0].set_ylabel("predicted step time (s)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=110)


def same_fit(a, b, rel: float = 1e-6) -> bool:
    """Whether two fits' parameters (nested dicts of numbers) agree to `rel`, the source line aside."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_fit(a[k], b[k], rel) for k in a
                                                                     if k != "source")
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(b, (int, float)) and abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)
    return a == b


def main() -> None:
    obs, classes, profiles = load()
    rows, ooms = validate(obs, classes, profiles)
    today = dt.date.today().isoformat()
    model = fit_model(obs, classes, source=f"fitted by scripts/fit_hardware_model.py on {today} to the measured "
                                           f"points of {', '.join(p for ps in DEVICES.values() for p in ps)}")
    fitted = model.to_dict()
    if FITTED_FILE.exists():
        shipped_fit = yaml.safe_load(FITTED_FILE.read_text())
        params = [k for k in fitted if k not in ("source", "expected_error")]
        if all(k in shipped_fit and same_fit(fitted[k], shipped_fit[k]) for k in params):
            # the least-squares fits land a few 1e-10 apart with another BLAS: keep the shipped parameters (and
            # their date) so that a rerun moves no simulation output; the errors below are written afresh
            fitted = {k: shipped_fit[k] for k in fitted}
    fitted["expected_error"] = summary(rows, classes)
    fitted["expected_power_error"] = summary(rows, classes, "power_error")
    CSV_OUT.parent.mkdir(parents=True, exist_ok=True)
    with CSV_OUT.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    FITTED_FILE.write_text("# Generated by scripts/fit_hardware_model.py; edit the script, not this file.\n"
                           + yaml.safe_dump(fitted, sort_keys=False, width=110))
    from simfl.hardware.predict import HardwareModel, shipped

    shipped.cache_clear()
    text = tables(rows, ooms, fitted) + "\n### Every shipped device, flan-t5-small LoRA, sequence 512\n\n" + \
        device_table(HardwareModel.from_dict(fitted)) + "\n"
    doc = DOC.read_text()
    doc = re.sub(r"(<!-- tables:start -->\n).*?(<!-- tables:end -->)", lambda m: m.group(1) + text + m.group(2),
                 doc, flags=re.S)
    DOC.write_text(doc)
    plot(rows)
    print(text)


if __name__ == "__main__":
    main()
