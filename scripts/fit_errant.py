"""Fit the ERRANT speed tests into network models: network_models/lte-errant.yaml and 3g-errant.yaml.

    python scripts/fit_errant.py [PATH/TO/errant-speed-tests.csv]

The measurements (ERRANT, Trevisan, Safari Khatouni, Giordano, Computer Networks 176, 2020; 1,000
MONROE speed tests on 3G/4G in Sweden and Norway) are GPL-3 data, so simfl ships only what is fitted
here. Per access technology, each operator with at least MIN_TESTS tests is one component of a
mixture, weighted by its count of tests; the operators with fewer are pooled as "other". A component
is a three-dimensional lognormal of (downlink bit/s, uplink bit/s, one-way latency s = RTT / 2): the
mean and covariance (n - 1) of the logs. The model's fixed rates and latency (used with
`link: fixed`) are the medians of all of the technology's tests.

The script prints, per technology, the data's quartiles beside those of 200,000 draws from the fit.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.make_data import COUNTS, LTE_BS, VISHWANATH, WIRED_PATH  # noqa: E402
from simfl.sim.variation import Component, LinkMix, draw_links  # noqa: E402

DEFAULT_CSV = ROOT.parent / "shared" / "reference" / "errant-speed-tests.csv"
MIN_TESTS = 20
CITE = ("ERRANT (Trevisan, Safari Khatouni, Giordano, Computer Networks 176, 2020), repository marty90/errant, "
        "model_creation/speed_test_sample.csv: 1,000 MONROE speed tests on operational 3G/4G networks in Sweden "
        "and Norway")


def read(path: Path) -> list[dict]:
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    return list(csv.DictReader(lines))


def fit(rows: list[dict]) -> tuple[list[dict], np.ndarray]:
    logs_by_op: dict[str, list] = {}
    for r in rows:
        v = (float(r["download_mbps"]) * 1e6, float(r["upload_mbps"]) * 1e6, float(r["rtt_ms"]) / 2000.0)
        logs_by_op.setdefault(r["operator"], []).append(np.log(v))
    big = {op: np.array(v) for op, v in logs_by_op.items() if len(v) >= MIN_TESTS}
    small = [x for op, v in logs_by_op.items() if len(v) < MIN_TESTS for x in v]
    if small:
        big["other"] = np.array(small)
    comps = []
    for op in sorted(big, key=lambda o: -len(big[o])):
        x = big[op]
        comps.append({"name": op, "weight": int(len(x)),
                      "log_mean": [round(float(m), 6) for m in x.mean(axis=0)],
                      "log_cov": [[round(float(c), 6) for c in row] for row in np.cov(x.T)]})
    return comps, np.vstack(list(big.values()))


# ERRANT's tests are Italian operators': Italy's average price of 1 GB of mobile data, Cable.co.uk worldwide
# mobile data pricing 2022 (5,292 plans in 233 countries, March-June 2022): USD 0.12, at 0.92 EUR per USD
# (the rate scripts/make_data.py assumes)
DATA_PRICE = {"per_gb": round(0.12 * 0.92, 4), "currency": "EUR",
              "source": "Cable.co.uk worldwide mobile data pricing 2022 (5,292 plans, 233 countries): Italy's "
                        "average price of 1 GB, USD 0.12 (ERRANT measured Italian operators), at 0.92 EUR per USD "
                        "(assumed rate)"}


def model(name: str, tech: str, rows: list[dict]) -> dict:
    comps, logs = fit(rows)
    med = np.exp(np.median(logs, axis=0))
    lte_path = "LTE base station per-bit energy" if tech == "4G" else (
        "no sourced 3G per-bit energy exists: the LTE base station's is used")
    return {
        "name": name,
        "source": f"rates, latency and distribution: fitted from {CITE}, the {len(rows)} {tech} tests, by "
                  f"scripts/fit_errant.py; path: {VISHWANATH}; {COUNTS}; {lte_path}",
        "downlink_bps": float(round(med[0], -3)), "uplink_bps": float(round(med[1], -3)),
        "latency_s": float(round(med[2], 5)),
        "derivation": "downlink_bps, uplink_bps and latency_s are the medians of the tests (latency = RTT / 2); "
                      f"distribution: per operator with at least {MIN_TESTS} tests (the rest pooled as other), "
                      "a lognormal in (downlink bit/s, uplink bit/s, one-way latency s), weight = tests",
        "path": [LTE_BS, *WIRED_PATH],
        "distribution": {"source": f"fitted from {CITE} ({tech}), scripts/fit_errant.py", "operators": comps},
        "data_price": DATA_PRICE,
    }


def check(tech: str, rows: list[dict], m: dict) -> None:
    mix = LinkMix(tuple(Component(c["weight"], tuple(c["log_mean"]), tuple(map(tuple, c["log_cov"])))
                        for c in m["distribution"]["operators"]))
    down, up, lat = mix.apply(*draw_links(np.random.default_rng(0), 200_000))
    data = {"down Mbit/s": [float(r["download_mbps"]) for r in rows],
            "up Mbit/s": [float(r["upload_mbps"]) for r in rows],
            "RTT ms": [float(r["rtt_ms"]) for r in rows]}
    drawn = {"down Mbit/s": down / 1e6, "up Mbit/s": up / 1e6, "RTT ms": lat * 2000}
    print(f"{tech}: {len(rows)} tests, components {[c['name'] for c in m['distribution']['operators']]}")
    for k in data:
        q_data = np.percentile(data[k], [25, 50, 75])
        q_fit = np.percentile(drawn[k], [25, 50, 75])
        print(f"  {k:12s} quartiles data {np.round(q_data, 1).tolist()}  fit {np.round(q_fit, 1).tolist()}")


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CSV
    rows = read(path)
    for tech, name in (("4G", "lte-errant"), ("3G", "3g-errant")):
        sel = [r for r in rows if r["access_technology"] == tech]
        m = model(name, tech, sel)
        check(tech, sel, m)
        out = ROOT / "network_models" / f"{name}.yaml"
        out.write_text("# Generated by scripts/fit_errant.py; edit the script, not this file.\n"
                       + yaml.safe_dump(m, sort_keys=False, width=110))
        print(f"  wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
