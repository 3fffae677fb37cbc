"""Power backends against fake sysfs trees, with joules worked out by hand."""

import pytest

from simfl.calibrate.power import JetsonRailsBackend, NoPower, PowerMonitor, RaplBackend, open_backend


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(text))


def rapl_tree(root, pkg0_uj, pkg1_uj, max_uj=1_000_000):
    for i, uj in ((0, pkg0_uj), (1, pkg1_uj)):
        write(root / f"intel-rapl:{i}" / "energy_uj", uj)
        write(root / f"intel-rapl:{i}" / "max_energy_range_uj", max_uj)
    write(root / "intel-rapl:0:0" / "energy_uj", 123)  # a sub-domain (core): must not be counted
    write(root / "intel-rapl:0:0" / "max_energy_range_uj", max_uj)


def test_rapl_window_sums_packages_and_handles_wraparound(tmp_path):
    rapl_tree(tmp_path, 900_000, 100_000)
    mon = PowerMonitor(RaplBackend(tmp_path), clock=(clock := Clock()), thread=False)
    mon.begin_window("w")
    # package 0: 900,000 -> 1,000,000 (max) -> wraps -> 50,000: 150,000 uJ; package 1: +200,000 uJ
    clock.t = 1.0
    write(tmp_path / "intel-rapl:0" / "energy_uj", 980_000)
    write(tmp_path / "intel-rapl:1" / "energy_uj", 200_000)
    mon.sample()
    clock.t = 2.0
    write(tmp_path / "intel-rapl:0" / "energy_uj", 50_000)
    write(tmp_path / "intel-rapl:1" / "energy_uj", 300_000)
    m = mon.end_window("w")
    assert m.energy_j == pytest.approx(0.15 + 0.2)
    assert m.duration_s == 2.0 and m.avg_power_w == pytest.approx(0.175)
    assert m.backend == "rapl" and m.samples == 3


def test_jetson_rails_trapezoid_energy(tmp_path):
    hw = tmp_path / "1-0040" / "hwmon" / "hwmon3"
    rails = {1: ("VDD_GPU_SOC", 5000, 2000), 2: ("VDD_CPU_CV", 5000, 1000), 3: ("VIN_SYS_5V0", 5000, 600)}
    for n, (label, mv, ma) in rails.items():
        write(hw / f"in{n}_label", label + "\n")
        write(hw / f"in{n}_input", mv)
        write(hw / f"curr{n}_input", ma)
    write(hw / "in7_label", "sum of shunt voltages")  # not a rail
    write(hw / "in7_input", 99)
    write(hw / "curr7_input", 99)
    backend = JetsonRailsBackend(tmp_path)
    assert [r[0] for r in backend.rails] == ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"]
    assert backend.read() == pytest.approx(10 + 5 + 3)  # watts: V x A per rail
    mon = PowerMonitor(backend, clock=(clock := Clock()), thread=False)
    mon.begin_window("w")  # 18 W at t=0
    clock.t = 0.5
    write(hw / "curr1_input", 4000)  # GPU rail to 20 W: 28 W in all
    mon.sample()
    clock.t = 1.5
    m = mon.end_window("w")  # still 28 W
    # trapezoids: 0.5 s x (18 + 28) / 2 = 11.5 J, then 1 s x 28 W = 28 J
    assert m.energy_j == pytest.approx(39.5)
    assert m.avg_power_w == pytest.approx(39.5 / 1.5)


def test_no_power_leaves_power_out():
    mon = PowerMonitor(NoPower(), clock=Clock(), thread=False)
    mon.begin_window("w")
    m = mon.end_window("w")
    assert (m.energy_j, m.avg_power_w, m.backend) == (None, None, "none")


def test_background_thread_samples_at_rate(tmp_path):
    import time

    rapl_tree(tmp_path, 0, 0)
    mon = PowerMonitor(RaplBackend(tmp_path), rate_hz=20)
    mon.begin_window("w")
    time.sleep(0.5)
    m = mon.end_window("w")
    mon.close()
    assert m.samples >= 5  # 20 Hz for 0.5 s, with generous slack for a loaded machine
    assert m.peak_rss_bytes and m.peak_rss_bytes > 0


def test_backend_choice():
    assert open_backend("none").name == "none"
    with pytest.raises(OSError, match="power backend 'jetson' is not available"):
        open_backend("jetson")
    with pytest.raises(ValueError, match="2 Hz"):
        PowerMonitor(NoPower(), rate_hz=1, thread=False)


def test_nvml_energy_on_a_gpu():
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        pytest.skip("no NVIDIA GPU / driver here")
    from simfl.calibrate.power import NvmlBackend

    mon = PowerMonitor(NvmlBackend(), rate_hz=10)
    mon.begin_window("w")
    import time

    time.sleep(1.0)
    m = mon.end_window("w")
    mon.close()
    assert m.energy_j > 0 and 10 < m.avg_power_w < 1500
