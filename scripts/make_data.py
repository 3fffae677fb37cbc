"""Write hardware_profiles/ and network_models/ from the seed paper's tables and datasheets.

Every number here is either transcribed from a cited source or derived by a
formula written next to it; the YAML files carry the same `source:` and
`derivation:` text. Run `python scripts/make_data.py` after changing a figure.
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PAPER = ("Woisetschlager et al., 'Federated Fine-Tuning of LLMs on the Very Edge: The Good, "
         "the Bad, the Ugly', DEEM 2024 (arXiv 2310.03150), Tables 2 and 4 as rebuilt in "
         "shared/reference/paper-facts.md")
PARAMS = {"flan-t5-small": 76_961_152, "flan-t5-base": 247_577_856, "flan-t5-large": 783_150_080,
          "flan-t5-xl": 2_849_757_184}  # simfl/catalog.py reproduces these; tests check it

# (model, batch, device) -> (step_s, tokens/s Table 4, power_w); None = OOM. Sequence length 512.
PAPER_STEPS = {
    "a100-80gb": {
        "flan-t5-small": {1: (0.32, 1657.87, 75.80), 8: (0.33, 13051.3, 103.17), 16: (0.31, 26741.79, 120.96),
                          32: (0.37, 45428.27, 171.15), 64: (0.51, 65944.32, 212.53),
                          128: (0.81, 82045.0, 247.72)},
        "flan-t5-base": {1: (0.46, 1134.51, 85.63), 8: (0.47, 8805.38, 135.57), 16: (0.54, 15380.06, 159.09),
                         32: (0.74, 22427.21, 223.55), 64: (1.26, 26250.25, 260.68)},
        "flan-t5-large": {1: (0.92, 562.2, 91.61), 8: (0.97, 4260.38, 173.43), 16: (1.23, 6728.79, 196.90)},
        "flan-t5-xl": {1: (0.93, 560.07, 128.21)},
    },
    "jetson-agx-orin-64gb": {
        "flan-t5-small": {1: (0.55, 927.51, 16.70), 8: (0.73, 5665.54, 28.10), 16: (1.15, 7112.45, 35.80),
                          32: (2.15, 7713.02, 38.84), 64: (4.15, 7992.08, 38.82),
                          128: (8.15, 8046.96, 41.08)},
        "flan-t5-base": {1: (0.82, 631.08, 24.86), 8: (1.76, 2339.49, 31.30), 16: (3.19, 2590.44, 38.59),
                         32: (6.09, 2692.26, 38.54), 64: None},
        "flan-t5-large": {1: (1.75, 298.91, 26.10), 8: (4.85, 850.43, 41.46), 16: None},
        "flan-t5-xl": {1: None},
    },
}

DEVICES = {
    "a100-80gb": dict(
        peak_flops=312e12, memory_bytes=80e9, bw=2039e9,
        spec_source="NVIDIA A100 datasheet: 312 TFLOP/s dense BF16 (the paper's MFU peak), 80 GB HBM2e at "
                    "2039 GB/s (paper Figure 1)",
        idle_power_w=55.0,
        idle_source="estimate, not measured: the paper reports no idle figure; 55 W is an assumed idle draw of "
                    "an A100 SXM4 below its lowest measured training power (75.8 W, small batch 1)",
        agg_power_w=75.8, tdp_w=400.0,
    ),
    "jetson-agx-orin-64gb": dict(
        peak_flops=42.5e12, memory_bytes=64e9, bw=204.8e9,
        spec_source="NVIDIA Jetson AGX Orin 64GB: 42.5 TFLOP/s as the paper's MFU peak (13 % of the A100), "
                    "64 GB LPDDR5 at 204.8 GB/s (paper Figure 1)",
        idle_power_w=7.0,
        idle_source="estimate, not measured: the paper reports no idle figure; 7 W is an assumed board idle "
                    "draw below its lowest measured training power (16.7 W, small batch 1)",
        agg_power_w=16.7, tdp_w=60.0,
    ),
}

AGG_DERIVATION = ("estimate: a weighted mean reads each upload and reads+writes the accumulator, 12 bytes per "
                  "parameter per upload, at half the memory bandwidth: params_per_s = 0.5 * bandwidth / 12; "
                  "power = the device's lowest measured training power (a light-load proxy)")
FULL_DERIVATION = ("estimated from the measured LoRA step at the same batch: LoRA skips the weight-gradient "
                   "matmuls of the frozen base, about a third of a full step's matmul FLOPs (forward 1, input "
                   "gradients 1, weight gradients 1), so full = 1.5 x LoRA step + the SGD update's memory "
                   "traffic (read weight and gradient, write weight: 12 bytes x total params / memory "
                   "bandwidth); power as measured for LoRA; OOM where LoRA ran out of memory")


CPU_PROFILE = ROOT / "hardware_profiles" / "cpu-2core-epyc.yaml"  # measured by simfl calibrate


def forward_gradient_ratio(perturbations: int = 16) -> tuple[float, str]:
    """Measured forward-gradient / backprop step-time ratio of flan-t5-small LoRA on this project's CPU."""
    cpu = yaml.safe_load(CPU_PROFILE.read_text())["training"]
    bp = {p["batch_size"]: p["step_time_s"] for p in cpu if p["method"] == "backprop" and not p.get("oom")}
    fg = {p["batch_size"]: p["step_time_s"] for p in cpu
          if p["method"] == "forward_gradient" and p.get("perturbations") == perturbations}
    ratios = {b: fg[b] / bp[b] for b in sorted(fg) if b in bp}
    ratio = sum(ratios.values()) / len(ratios)
    text = (f"estimated: the measured LoRA backprop step x {ratio:.2f}, the mean forward-gradient / backprop "
            f"step-time ratio (P={perturbations}, jvp, vmap'd) measured by simfl calibrate for flan-t5-small on "
            "hardware_profiles/cpu-2core-epyc.yaml ("
            + ", ".join(f"batch {b}: {fg[b]:.2f} s / {bp[b]:.3f} s = {r:.1f}" for b, r in ratios.items())
            + "); power as measured for the backprop step; no entries beyond the measured backprop batches")
    return ratio, text


def paper_profile(name: str) -> dict:
    d = DEVICES[name]
    training = []
    for model, by_batch in PAPER_STEPS[name].items():
        for batch, row in by_batch.items():
            base = {"model": model, "finetuning": "lora", "method": "backprop", "seq_len": 512, "batch_size": batch}
            if row is None:
                training.append({**base, "oom": True})
                training.append({**base, "finetuning": "full", "oom": True, "estimated": True,
                                 "derivation": FULL_DERIVATION})
                continue
            step_s, tps, power_w = row
            training.append({**base, "step_time_s": step_s, "power_w": power_w, "tokens_per_s": tps})
            full_s = 1.5 * step_s + 12 * PARAMS[model] / d["bw"]
            training.append({**base, "finetuning": "full", "step_time_s": round(full_s, 4), "power_w": power_w,
                             "estimated": True, "derivation": FULL_DERIVATION})
            ratio, fg_text = forward_gradient_ratio(16)
            training.append({**base, "method": "forward_gradient", "perturbations": 16,
                             "step_time_s": round(step_s * ratio, 4), "power_w": power_w, "estimated": True,
                             "derivation": fg_text})
    return {
        "name": name,
        "source": f"{PAPER} (LoRA step times and power, measured); {d['spec_source']}",
        "estimated": False,
        "peak_flops": d["peak_flops"],
        "memory_bytes": d["memory_bytes"],
        "memory_bandwidth_bytes_per_s": d["bw"],
        "idle_power_w": d["idle_power_w"],
        "idle_power_source": d["idle_source"],
        "idle_power_estimated": True,
        "aggregation": {"params_per_s": float(f"{0.5 * d['bw'] / 12:.4g}"), "power_w": d["agg_power_w"],
                        "estimated": True, "source": AGG_DERIVATION},
        "training": training,
    }


# Spec-derived devices: (reference measured device, datasheet figures, how power and memory scale).
ESTIMATED = {
    "jetson-orin-nano-8gb": dict(
        ref="jetson-agx-orin-64gb", peak_flops=42.5e12 * 40 / 275, memory_bytes=8e9, bw=68e9, tdp_w=15.0,
        idle_power_w=3.0,
        source="NVIDIA Jetson Orin Nano 8GB datasheet: 40 INT8 TOPS (sparse) against 275 for AGX Orin 64GB, "
               "8 GB at 68 GB/s (paper Figure 1), 7-15 W power modes",
    ),
    "jetson-nano-4gb": dict(
        ref="jetson-agx-orin-64gb", peak_flops=472e9, memory_bytes=4e9, bw=25.6e9, tdp_w=10.0,
        idle_power_w=1.5,
        source="NVIDIA Jetson Nano datasheet: 472 GFLOP/s FP16, 4 GB at 25.6 GB/s (paper Figure 1), "
               "5-10 W power modes",
    ),
    "raspberry-pi-4-8gb": dict(
        ref="jetson-agx-orin-64gb", peak_flops=4 * 1.5e9 * 8, memory_bytes=8e9, bw=4e9, tdp_w=7.0,
        idle_power_w=2.7,
        source="Raspberry Pi 4 Model B 8GB: 4 Cortex-A72 cores at 1.5 GHz, 8 FP32 FLOP/cycle/core with NEON "
               "FMA (48 GFLOP/s), 8 GB LPDDR4 at about 4 GB/s (paper Figure 1); board power under load "
               "taken as 7 W",
    ),
    "h100-sxm-80gb": dict(
        ref="a100-80gb", peak_flops=989e12, memory_bytes=80e9, bw=3.35e12, tdp_w=700.0,
        idle_power_w=70.0,
        source="NVIDIA H100 SXM5 datasheet: 989 TFLOP/s dense BF16, 80 GB HBM3 at 3.35 TB/s (paper "
               "Figure 1), 700 W TDP",
    ),
}
ESTIMATE_METHOD = ("spec-derived from the measured {ref} profile: step time x (reference peak FLOP/s / this "
                   "device's peak FLOP/s); power = measured reference power x (this device's max power / "
                   "reference max power {ref_tdp:g} W); a batch is OOM when reference OOM batch x (this memory / "
                   "reference memory) is at or below it, or when 16 bytes x total params (weights, gradients, "
                   "optimizer working set) exceed the memory; idle power an assumed figure")


def estimated_profile(name: str, refs: dict[str, dict]) -> dict:
    e = ESTIMATED[name]
    ref = refs[e["ref"]]
    ref_dev = DEVICES[e["ref"]]
    speed = ref["peak_flops"] / e["peak_flops"]
    power_scale = e["tdp_w"] / ref_dev["tdp_w"]
    mem_scale = e["memory_bytes"] / ref["memory_bytes"]
    method = ESTIMATE_METHOD.format(ref=e["ref"], ref_tdp=ref_dev["tdp_w"])
    training = []
    for fin in ("lora", "full"):
        points = [p for p in ref["training"] if p["finetuning"] == fin and p.get("method", "backprop") == "backprop"]
        for model in PARAMS:
            mp = [p for p in points if p["model"] == model]
            if not mp:
                continue
            ref_oom = min((p["batch_size"] for p in mp if p.get("oom")), default=math.inf)
            oom_at = ref_oom * mem_scale
            weights_fit = (16 if fin == "full" else 4) * PARAMS[model] < e["memory_bytes"]
            for p in mp:
                q = {k: p[k] for k in ("model", "finetuning", "method", "seq_len", "batch_size")}
                if p.get("oom") or p["batch_size"] >= oom_at or not weights_fit:
                    q["oom"] = True
                else:
                    q["step_time_s"] = float(f"{p['step_time_s'] * speed:.4g}")
                    q["power_w"] = float(f"{p['power_w'] * power_scale:.4g}")
                training.append(q)
    return {
        "name": name,
        "source": e["source"],
        "estimated": True,
        "method": method,
        "peak_flops": float(f"{e['peak_flops']:.4g}"),
        "memory_bytes": e["memory_bytes"],
        "memory_bandwidth_bytes_per_s": e["bw"],
        "idle_power_w": e["idle_power_w"],
        "idle_power_source": "estimate, not measured",
        "idle_power_estimated": True,
        "aggregation": {"params_per_s": float(f"{0.5 * e['bw'] / 12:.4g}"),
                        "power_w": float(f"{ref_dev['agg_power_w'] * power_scale:.4g}"),
                        "estimated": True, "source": AGG_DERIVATION},
        "training": training,
    }


# Per-bit constants: Vishwanath et al., IEEE JSAC 33(4) 2015, as adopted by Green FL (arXiv 2303.14604);
# element counts of the seed paper's Appendix A. See shared/reference/network-and-models.md.
VISHWANATH = "Vishwanath et al., IEEE JSAC 33(4), 2015 (constants adopted by Green FL, arXiv 2303.14604)"
COUNTS = "element counts from the seed paper, Appendix A (n_as=1, n_bng=1, n_e=3, n_c=4, n_d=2)"
WIRED_PATH = [
    {"element": "edge-ethernet-switch", "count": 1, "energy_per_bit_j": 21.4e-9, "source": VISHWANATH},
    {"element": "broadband-network-gateway", "count": 1, "energy_per_bit_j": 18.3e-9, "source": VISHWANATH},
    {"element": "edge-router", "count": 3, "energy_per_bit_j": 25.2e-9, "source": VISHWANATH},
    {"element": "core-router", "count": 4, "energy_per_bit_j": 8.5e-9, "source": VISHWANATH},
    {"element": "data-center-switch", "count": 2, "energy_per_bit_j": 19.6e-9, "source": VISHWANATH},
]
LTE_BS = {"element": "lte-base-station", "count": 1, "energy_per_bit_up_j": 19.0e-6,
          "energy_per_bit_down_j": 76.2e-6, "source": VISHWANATH}

# Table 1 of the seed paper: communication kWh per FL round, 10 clients, FedAdamW, full-model rows
# (three significant figures; the PEFT rows round to 0.01 kWh and carry less information).
TABLE1_FULL_KWH = {"lte": {"flan-t5-small": 0.81, "flan-t5-base": 2.60, "flan-t5-large": 8.22},
                   "1gbit": {"flan-t5-small": 0.13, "flan-t5-base": 0.40, "flan-t5-large": 1.27}}


def table1_interval_j(link: str) -> tuple[float, float, dict[str, tuple[float, float]]]:
    """The per-bit energies that reproduce every full-model row of Table 1 to its printed rounding.

    A printed 0.13 kWh is a true value in [0.125, 0.135); with
    kWh = E_bit x 10 clients x 2 directions x params x 32 bits / 3.6e6 J/kWh, each row bounds E_bit,
    and a value that reproduces all three rows lies in the intersection of their bounds.
    """
    rows = {}
    for m, kwh in TABLE1_FULL_KWH[link].items():
        bits_per_round = 10 * 2 * PARAMS[m] * 32
        rows[m] = ((kwh - 0.005) * 3.6e6 / bits_per_round, (kwh + 0.005) * 3.6e6 / bits_per_round)
    lo, hi = max(r[0] for r in rows.values()), min(r[1] for r in rows.values())
    if not lo < hi:
        raise ValueError(f"no single per-bit energy reproduces Table 1's full-model rows on {link}")
    return lo, hi, rows


def table1_per_bit_j(link: str) -> tuple[float, str]:
    """The middle of table1_interval_j, to 4 significant figures, with its derivation in words."""
    lo, hi, rows = table1_interval_j(link)
    per_bit = float(f"{(lo + hi) / 2:.4g}")
    assert lo <= per_bit < hi
    text = ("derived from the seed paper's Table 1 (communication kWh per round, full-model rows, printed to "
            "0.01 kWh): kWh = E_bit x 10 clients x 2 directions x params x 32 bits / 3.6e6 J/kWh, so each "
            "printed value v bounds E_bit to [(v - 0.005), (v + 0.005)) x 3.6e6 / (640 x params): "
            + ", ".join(f"{m} {TABLE1_FULL_KWH[link][m]} kWh -> {a * 1e6:.4f} to {b * 1e6:.4f} uJ/bit"
                        for m, (a, b) in rows.items())
            + f"; all three rows hold for E_bit in [{lo * 1e6:.4f}, {hi * 1e6:.4f}) uJ/bit, whose middle "
            f"{per_bit * 1e6:.4g} uJ/bit is used, one value for both directions since Table 1 cannot "
            "separate them")
    return per_bit, text


def networks() -> dict[str, dict]:
    lte_lat = ("ERRANT (Trevisan et al., Computer Networks 176, 2020) 4G-good RTT means 83-112 ms; "
               "one-way latency taken as half of about 100 ms")
    wired_lat = "assumed 1 ms one-way for a metro wired path (no measured figure in the sources)"
    out = {
        "lte": {"name": "lte", "source": "rates: seed paper section 3 (40 Mbit/s down, 10 Mbit/s up); "
                f"latency: {lte_lat}; path: {VISHWANATH}; {COUNTS}; no sourced value exists for the LTE "
                "user equipment, so it is left out",
                "downlink_bps": 40e6, "uplink_bps": 10e6, "latency_s": 0.05, "path": [LTE_BS, *WIRED_PATH]},
        "ethernet-1gbit": {"name": "ethernet-1gbit", "source": f"rate: seed paper (wired 1 Gbit); latency: "
                           f"{wired_lat}; path: {VISHWANATH}; {COUNTS}",
                           "downlink_bps": 1e9, "uplink_bps": 1e9, "latency_s": 0.001, "path": WIRED_PATH},
        "ethernet-10gbit": {"name": "ethernet-10gbit", "source": f"rate: 10GBASE-T; latency: assumed 0.5 ms "
                            f"one-way inside a data center; path: {VISHWANATH}; {COUNTS}",
                            "downlink_bps": 10e9, "uplink_bps": 10e9, "latency_s": 0.0005, "path": WIRED_PATH},
    }
    for name, link, base in (("paper-lte", "lte", out["lte"]), ("paper-1gbit", "1gbit", out["ethernet-1gbit"])):
        per_bit, text = table1_per_bit_j(link)
        out[name] = {"name": name, "source": "rates and latency as the network model "
                     f"'{base['name']}'; per-bit energy: {text}",
                     "downlink_bps": base["downlink_bps"], "uplink_bps": base["uplink_bps"],
                     "latency_s": base["latency_s"], "derivation": text,
                     "path": [{"element": "paper-table-1-equivalent", "count": 1, "energy_per_bit_j": per_bit,
                               "source": "seed paper Table 1, derived as stated in derivation"}]}
    return out


def write(folder: str, name: str, data: dict) -> None:
    path = ROOT / folder / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    header = "# Generated by scripts/make_data.py; edit the script, not this file.\n"
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, width=110))


def main() -> None:
    refs = {name: paper_profile(name) for name in DEVICES}
    for name, prof in refs.items():
        write("hardware_profiles", name, prof)
    for name in ESTIMATED:
        write("hardware_profiles", name, estimated_profile(name, refs))
    for name, net in networks().items():
        write("network_models", name, net)


if __name__ == "__main__":
    main()
