"""Write hardware_profiles/ and network_models/ from the seed paper's tables and datasheets.

Every number here is either transcribed from a cited source or derived by a
formula written next to it; the YAML files carry the same `source:` and
`derivation:` text. Run `python scripts/make_data.py` after changing a figure.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from simfl.costs import J_PER_KWH

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
                    "2039 GB/s (paper Figure 1), 400 W TDP (SXM4)",
        idle_power_w=55.0,
        idle_source="estimate, not measured: the paper reports no idle figure; 55 W is an assumed idle draw of "
                    "an A100 SXM4 below its lowest measured training power (75.8 W, small batch 1)",
        agg_power_w=75.8, tdp_w=400.0, device_class="gpu",
    ),
    "jetson-agx-orin-64gb": dict(
        peak_flops=42.5e12, memory_bytes=64e9, bw=204.8e9,
        spec_source="NVIDIA Jetson AGX Orin 64GB: 42.5 TFLOP/s as the paper's MFU peak (13 % of the A100), "
                    "64 GB LPDDR5 at 204.8 GB/s (paper Figure 1), 60 W "
                    "maximum power mode (MAXN)",
        idle_power_w=7.0,
        idle_source="estimate, not measured: the paper reports no idle figure; 7 W is an assumed board idle "
                    "draw below its lowest measured training power (16.7 W, small batch 1)",
        agg_power_w=16.7, tdp_w=60.0, device_class="soc-gpu",
    ),
}

AGG_DERIVATION = ("estimate: a weighted mean reads each upload and reads+writes the accumulator, 12 bytes per "
                  "parameter per upload, at half the memory bandwidth: params_per_s = 0.5 * bandwidth / 12; "
                  "power = the device's lowest measured training power (a light-load proxy)")


# Prices, all in EUR (simfl converts no currency); a USD figure is converted at 0.92 EUR per USD, an
# assumed rate written next to it. A purchase is written off over 5 years, an assumed service life.
USD = 0.92
LIFE = 5.0
PRICES = {
    "jetson-agx-orin-64gb": {"purchase": 2400.0, "service_life_years": LIFE, "currency": "EUR", "source":
                             "seed paper (section 6): 10 Orins about EUR 30,000 with SSDs, switch and enclosure, "
                             "EUR 2,400 an Orin; 5-year service life assumed"},
    "a100-80gb": {"rental_per_hour": round(1.99 * USD, 4),
                  "rental_per_hour_range": [round(1.49 * USD, 4), round(2.49 * USD, 4)], "currency": "EUR", "source":
                  "USD 1.99 an hour, the middle of the USD 1.49-2.49 typical on-demand range for an A100 80GB SXM "
                  "(Lambda, CoreWeave, vast.ai, RunPod; pricegpu.pages.dev/blog/h100-vs-a100-cloud-price, early "
                  "2026), at 0.92 EUR per USD (assumed rate)"},
    "h100-sxm-80gb": {"rental_per_hour": round(3.24 * USD, 4),
                      "rental_per_hour_range": [round(2.49 * USD, 4), round(3.99 * USD, 4)], "currency": "EUR",
                      "source":
                      "USD 3.24 an hour, the middle of the USD 2.49-3.99 typical on-demand range for an H100 SXM "
                      "80GB (pricegpu.pages.dev/blog/h100-vs-a100-cloud-price, early 2026), at 0.92 EUR per USD "
                      "(assumed rate)"},
    "jetson-orin-nano-8gb": {"purchase": round(249 * USD, 2), "service_life_years": LIFE, "currency": "EUR",
                             "source": "NVIDIA Jetson Orin Nano Super Developer Kit list price USD 249 (December "
                                       "2024), at 0.92 EUR per USD (assumed rate); 5-year service life assumed"},
    "jetson-orin-nx-16gb": {"purchase": round(599 * USD, 2), "service_life_years": LIFE, "currency": "EUR",
                            "source": "NVIDIA Jetson Orin NX 16GB module list price USD 599 (1,000-unit, 2023), "
                                      "the module only (a carrier board adds to it), at 0.92 EUR per USD (assumed "
                                      "rate); 5-year service life assumed"},
    "jetson-nano-4gb": {"purchase": round(99 * USD, 2), "service_life_years": LIFE, "currency": "EUR",
                        "source": "NVIDIA Jetson Nano Developer Kit list price USD 99 (2019), at 0.92 EUR per USD "
                                  "(assumed rate); 5-year service life assumed"},
    "raspberry-pi-4-8gb": {"purchase": round(75 * USD, 2), "service_life_years": LIFE, "currency": "EUR",
                           "source": "Raspberry Pi 4 Model B 8GB list price USD 75 (Raspberry Pi Ltd, 2020), at 0.92 "
                                     "EUR per USD (assumed rate); 5-year service life assumed"},
    "rtx-4090-24gb": {"purchase": round(1599 * USD, 2), "service_life_years": LIFE, "currency": "EUR",
                      "source": "NVIDIA GeForce RTX 4090 launch list price USD 1,599 (October 2022), the card only, "
                                "at 0.92 EUR per USD (assumed rate); 5-year service life assumed"},
}

# Embodied carbon (kg CO2e to make one device), only where a source publishes a figure for the device; every other
# profile has none, and a run says its embodied carbon is not counted.
EMBODIED = {
    "a100-80gb": {"co2e_kg": 318.0, "service_life_years": LIFE, "source":
                  "Chien et al., 'Reducing the Carbon Impact of Generative AI Inference (today and in 2035)', "
                  "HotCarbon '23: 318 kg CO2 per A100 GPU, 1/8 of their estimate for an 8-GPU instance (GPU, IC "
                  "packaging, CPU, DRAM, SSD and HDD); as quoted by the Scope3 methodology's NVIDIA A100 page. "
                  "Shared over a 5-year service life (assumed, as the purchases)"},
}


def paper_profile(name: str) -> dict:
    """A device the seed paper measured: its LoRA steps as measured, nothing derived (configurations it did
    not measure, full fine-tuning and forward gradient among them, come from simfl's hardware model)."""
    d = DEVICES[name]
    training = []
    for model, by_batch in PAPER_STEPS[name].items():
        for batch, row in by_batch.items():
            base = {"model": model, "finetuning": "lora", "method": "backprop", "seq_len": 512, "batch_size": batch}
            if row is None:
                training.append({**base, "oom": True})
                continue
            step_s, tps, power_w = row
            training.append({**base, "step_time_s": step_s, "power_w": power_w, "tokens_per_s": tps})
    return {
        "name": name,
        "source": f"{PAPER} (LoRA step times and power, measured); {d['spec_source']}",
        "estimated": False,
        "device_class": d["device_class"],
        "peak_flops": d["peak_flops"],
        **peaks_of(name),
        "memory_bytes": d["memory_bytes"],
        "memory_bandwidth_bytes_per_s": d["bw"],
        "power_limit_w": d["tdp_w"],
        "idle_power_w": d["idle_power_w"],
        "idle_power_source": d["idle_source"],
        "idle_power_estimated": True,
        "aggregation": {"params_per_s": float(f"{0.5 * d['bw'] / 12:.4g}"), "power_w": d["agg_power_w"],
                        "estimated": True, "source": AGG_DERIVATION},
        **({"price": PRICES[name]} if name in PRICES else {}),
        **({"embodied": EMBODIED[name]} if name in EMBODIED else {}),
        "training": training,
    }


# Devices nobody here measured: datasheet figures only. Step time, memory and power come from simfl's
# hardware model (simfl/hardware/) with the parameters of the device's class. Peak FLOP/s is at the
# precision of its class's measured member: dense FP16/BF16 tensor peak for GPUs (the A100's 312), the
# paper's MFU peak scaled by INT8 TOPS for Orin-generation Jetsons, FP32 vector peak for CPUs.
ORIN_PEAK = "42.5 TFLOP/s (the seed paper's MFU peak of the AGX Orin 64GB, 275 INT8 TOPS)"
DATASHEET_ONLY = {
    "jetson-orin-nano-8gb": dict(
        device_class="soc-gpu", peak_flops=42.5e12 * 40 / 275, memory_bytes=8e9, bw=68e9, tdp_w=15.0,
        idle_power_w=3.0,
        source=f"NVIDIA Jetson Orin Nano 8GB datasheet: 40 INT8 TOPS (sparse), so {ORIN_PEAK} x 40 / 275; "
               "8 GB LPDDR5 at 68 GB/s (paper Figure 1); 7-15 W power modes (limit: 15 W)",
    ),
    "jetson-orin-nx-16gb": dict(
        device_class="soc-gpu", peak_flops=42.5e12 * 100 / 275, memory_bytes=16e9, bw=102.4e9, tdp_w=25.0,
        idle_power_w=4.0,
        source=f"NVIDIA Jetson Orin NX 16GB datasheet: 100 INT8 TOPS (sparse), so {ORIN_PEAK} x 100 / 275; "
               "16 GB 128-bit LPDDR5 at 102.4 GB/s; 10-25 W power modes (limit: 25 W)",
    ),
    "jetson-nano-4gb": dict(
        device_class="soc-gpu", peak_flops=472e9, memory_bytes=4e9, bw=25.6e9, tdp_w=10.0,
        idle_power_w=1.5,
        source="NVIDIA Jetson Nano datasheet: 472 GFLOP/s FP16 (128 Maxwell cores), 4 GB LPDDR4 at 25.6 GB/s "
               "(paper Figure 1), 5-10 W power modes (limit: 10 W)",
    ),
    "raspberry-pi-4-8gb": dict(
        device_class="cpu", peak_flops=4 * 1.5e9 * 8, memory_bytes=8e9, bw=4e9, tdp_w=7.0,
        idle_power_w=2.7,
        source="Raspberry Pi 4 Model B 8GB: 4 Cortex-A72 cores at 1.5 GHz, 8 FP32 FLOP/cycle/core with NEON "
               "FMA (48 GFLOP/s), 8 GB LPDDR4 at about 4 GB/s (paper Figure 1); board power under load "
               "taken as 7 W (an assumption: the 5 V / 3 A supply allows 15 W)",
    ),
    "snapdragon-8-gen-2-phone": dict(
        device_class="cpu", peak_flops=3.2e9 * 32 + 4 * 2.8e9 * 16 + 3 * 2.0e9 * 8, memory_bytes=12e9,
        bw=67e9, tdp_w=8.0, idle_power_w=0.5,
        source="Qualcomm Snapdragon 8 Gen 2 (a phone-class SoC, training on its CPU): 1 Cortex-X3 at 3.2 GHz, "
               "4 Cortex-A715/A710 at 2.8 GHz, 3 Cortex-A510 at 2.0 GHz (Qualcomm product brief); FP32 "
               "FLOP/cycle from Arm's NEON widths (X3 four 128-bit FMA pipes: 32; A715/A710 two: 16; A510: 8) "
               "= 330 GFLOP/s; 12 GB LPDDR5X-4200 on a 64-bit bus, 67 GB/s; 8 W sustained package power "
               "assumed (phones throttle to about this), 0.5 W idle assumed",
    ),
    "h100-sxm-80gb": dict(
        device_class="gpu", peak_flops=989e12, memory_bytes=80e9, bw=3.35e12, tdp_w=700.0,
        idle_power_w=70.0,
        source="NVIDIA H100 SXM5 datasheet: 989 TFLOP/s dense BF16, 80 GB HBM3 at 3.35 TB/s (paper "
               "Figure 1), 700 W TDP",
    ),
    "l4-24gb": dict(
        device_class="gpu", peak_flops=121e12, memory_bytes=24e9, bw=300e9, tdp_w=72.0, idle_power_w=16.0,
        source="NVIDIA L4 datasheet: 242 TFLOP/s FP16/BF16 tensor with sparsity (121 dense), 24 GB GDDR6 at "
               "300 GB/s, 72 W maximum power",
    ),
    "rtx-4090-24gb": dict(
        device_class="gpu", peak_flops=165.2e12, memory_bytes=24e9, bw=1008e9, tdp_w=450.0, idle_power_w=20.0,
        source="NVIDIA Ada Lovelace architecture whitepaper (GeForce RTX 4090): 165.2 TFLOP/s dense FP16/BF16 "
               "tensor with FP32 accumulate, 24 GB GDDR6X at 1008 GB/s, 450 W total graphics power",
    ),
}
# Dense peaks by precision (TFLOP/s; INT8 in TOPS), each from a transcription of the vendor's datasheet (the PDFs
# themselves could not be fetched; docs/data/published-finetuning.yaml's collection notes say how each was read).
# Devices without a citable figure at some precision (Jetson BF16 tensor peaks) list none: their steps at another
# precision than fp32 are not scaled, and say so.
LOCKWOOD_A100 = "Glenn K. Lockwood, 'A100' (glennklockwood.com/garden/processors/A100), transcribing NVIDIA's A100 datasheet"
PEAKS = {
    "a100-80gb": dict(fp32=19.5, tf32=156, bf16=312, fp16=312, int8=624,
                      source=f"{LOCKWOOD_A100}: FP32 19.5; TF32 156, BF16 and FP16 312, INT8 624 dense tensor"),
    "h100-sxm-80gb": dict(fp32=67, tf32=494.7, bf16=989.4, fp16=989.4, int8=1978.9,
                          source="NVIDIA H100 SXM5 datasheet as transcribed by HPC Technologies (FP32 67) and Glenn "
                                 "K. Lockwood, 'H100' (TF32 494.7, BF16/FP16 989.4, INT8 1978.9 dense tensor)"),
    "rtx-4090-24gb": dict(fp32=82.58, tf32=82.58, bf16=165.15, fp16=165.15, int8=660.6,
                          source="WareDB 'NVIDIA GeForce RTX 4090' (Ada whitepaper figures): FP32 82.58; TF32 82.58, "
                                 "FP16/BF16 165.15 (FP32 accumulate), INT8 660.6 dense tensor"),
    "l4-24gb": dict(fp32=30.29, tf32=60, bf16=121, fp16=121, int8=242.5,
                    source="NVIDIA L4 datasheet as listed by fpsbench (FP32 30.29) and a reseller (Source Code): "
                           "TF32 120, FP16/BF16 242, INT8 485 with sparsity, halved for dense as NVIDIA's footnote "
                           "says"),
}


def peaks_of(name: str) -> dict:
    """The profile's peak_flops_by_precision entry (FLOP/s), when the device has one."""
    if name not in PEAKS:
        return {}
    p = PEAKS[name]
    return {"peak_flops_by_precision": {**{k: float(v * 1e12) for k, v in p.items() if k != "source"},
                                        "source": p["source"]}}


DATASHEET_METHOD = ("datasheet only: no training step was measured on this device. Step time, memory and power "
                    "of every configuration come from simfl's hardware model (simfl/hardware/, fitted by "
                    "scripts/fit_hardware_model.py) with the parameters of its device class; its expected error "
                    "is the leave-one-device-out error in docs/hardware-model.md")


def datasheet_profile(name: str) -> dict:
    e = DATASHEET_ONLY[name]
    return {
        "name": name,
        "source": e["source"],
        "estimated": True,
        "method": DATASHEET_METHOD,
        "device_class": e["device_class"],
        "peak_flops": float(f"{e['peak_flops']:.4g}"),
        **peaks_of(name),
        "memory_bytes": e["memory_bytes"],
        "memory_bandwidth_bytes_per_s": e["bw"],
        "power_limit_w": e["tdp_w"],
        "idle_power_w": e["idle_power_w"],
        "idle_power_source": "estimate, not measured",
        "idle_power_estimated": True,
        "aggregation": {"params_per_s": float(f"{0.5 * e['bw'] / 12:.4g}"),
                        "power_w": float(f"{e['idle_power_w'] + 0.25 * (e['tdp_w'] - e['idle_power_w']):.4g}"),
                        "estimated": True, "source": AGG_DATASHEET},
        **({"price": PRICES[name]} if name in PRICES else {}),
        **({"embodied": EMBODIED[name]} if name in EMBODIED else {}),
        "training": [],
    }


# Whole machines: a device as bought and run (a developer kit, a node of the seed paper's testbed), not its bare
# component. Price and idle power are the machine's, each with its source; a figure no source gave is left out
# (an RTX 4090 workstation's price and idle power were not found, so none ships). Speed and memory are the
# component's.
NANO_SUPER = ("https://www.brojogopalsapui.com/ai-foundations/sub_contents/AI_hardware/jetson_orin_nano_light.html "
              "('NVIDIA's $249 generative-AI edge computer', 'Numbers from NVIDIA's Jetson Orin Nano Super Developer "
              "Kit datasheet (Dec 2024)')")
WHOLE_MACHINES = {
    "jetson-agx-orin-64gb-node": dict(
        component="jetson-agx-orin-64gb",
        includes="the Jetson AGX Orin 64GB Developer Kit and the 1 TB NVMe SSD each node of the seed paper's testbed "
                 "was fitted with; not the switch, cables or enclosure (the network's and the rack's)",
        price={"purchase": 2400.0 + 700.0 / 10, "service_life_years": LIFE, "currency": "EUR", "source":
               "seed paper, Appendix B: the Orins bought mid-2023 at 'a unit price tag of roughly EUR 2,400', each "
               "with a Samsung 980 Pro 1 TB NVMe SSD, 'EUR 700' for the ten: EUR 2,470 a node; 5-year service "
               "life assumed"},
        idle_source="the component's estimate (7 W, not measured); the whole node's idle power was not found",
    ),
    "jetson-orin-nano-super-devkit": dict(
        component="jetson-orin-nano-8gb",
        includes="the Jetson Orin Nano Super Developer Kit: the 8 GB module in its Super (25 W) mode on NVIDIA's "
                 "carrier board, as sold",
        price={"purchase": round(249 * USD, 2), "service_life_years": LIFE, "currency": "EUR", "source":
               f"USD 249, {NANO_SUPER}, at 0.92 EUR per USD (assumed rate); 5-year service life assumed"},
        device_class="soc-gpu", peak_flops=42.5e12 * 67 / 275, memory_bytes=8e9, bw=102e9, tdp_w=25.0,
        source=f"Jetson Orin Nano Super Developer Kit: 67 INT8 TOPS (sparse), 8 GB LPDDR5 at 102 GB/s, 7-25 W "
               f"(limit: 25 W), {NANO_SUPER}; peak {ORIN_PEAK} x 67 / 275. Idle power: not found",
    ),
}


def whole_machine_profile(name: str) -> dict:
    """A whole machine: the component's profile (measured or datasheet) with the machine's price and idle power."""
    e = WHOLE_MACHINES[name]
    machine = {"component": e["component"], "includes": e["includes"], "source": e["price"]["source"]}
    if e["component"] in DEVICES:  # a measured component: its steps, the machine's price
        out = paper_profile(e["component"])
        out.update(name=name, idle_power_source=e["idle_source"], price=e["price"], whole_machine=machine)
        return out
    out = {
        "name": name, "source": e["source"], "estimated": True, "method": DATASHEET_METHOD,
        "device_class": e["device_class"], "peak_flops": float(f"{e['peak_flops']:.4g}"),
        "memory_bytes": e["memory_bytes"], "memory_bandwidth_bytes_per_s": e["bw"], "power_limit_w": e["tdp_w"],
        # no idle power: none was found, so none ships (its energy is not counted, and a run says so)
        "aggregation": {"params_per_s": float(f"{0.5 * e['bw'] / 12:.4g}"), "estimated": True,
                        "source": AGG_DATASHEET.split("; power")[0]},
        "price": e["price"], "whole_machine": machine, "training": [],
    }
    return out


AGG_DATASHEET = ("estimate: a weighted mean reads each upload and reads+writes the accumulator, 12 bytes per "
                 "parameter per upload, at half the memory bandwidth: params_per_s = 0.5 * bandwidth / 12; "
                 "power = idle + a quarter of the way to the limit (a memory-bound light load; assumed)")


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
        rows[m] = ((kwh - 0.005) * J_PER_KWH / bits_per_round, (kwh + 0.005) * J_PER_KWH / bits_per_round)
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


LTE_DATA_PRICE = {"per_gb": round(0.62 * USD, 4), "currency": "EUR", "source":
                  "Cable.co.uk worldwide mobile data pricing 2023 (5,603 plans in 237 countries, July-September "
                  "2023): the UK's average price of 1 GB, USD 0.62 (the US: USD 6.00), at 0.92 EUR per USD "
                  "(assumed rate)"}


def networks() -> dict[str, dict]:
    lte_lat = ("ERRANT (Trevisan et al., Computer Networks 176, 2020) 4G-good RTT means 83-112 ms; "
               "one-way latency taken as half of about 100 ms")
    wired_lat = "assumed 1 ms one-way for a metro wired path (no measured figure in the sources)"
    out = {
        "lte": {"name": "lte", "source": "rates: seed paper section 3 (40 Mbit/s down, 10 Mbit/s up); "
                f"latency: {lte_lat}; path: {VISHWANATH}; {COUNTS}; no sourced value exists for the LTE "
                "user equipment, so it is left out",
                "downlink_bps": 40e6, "uplink_bps": 10e6, "latency_s": 0.05, "path": [LTE_BS, *WIRED_PATH],
                "data_price": LTE_DATA_PRICE},
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
    for name in DEVICES:
        write("hardware_profiles", name, paper_profile(name))
    for name in DATASHEET_ONLY:
        write("hardware_profiles", name, datasheet_profile(name))
    for name in WHOLE_MACHINES:
        write("hardware_profiles", name, whole_machine_profile(name))
    for name, net in networks().items():
        write("network_models", name, net)


if __name__ == "__main__":
    main()
