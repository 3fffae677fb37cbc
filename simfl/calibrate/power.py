"""Power measurement: NVML, Intel RAPL, Jetson INA3221 rails or none, behind begin_window/end_window.

Two kinds of backend. Counter backends (RAPL, NVML's energy counter) return a
cumulative energy in joules; a window's energy is the sum of the deltas between
consecutive reads, each delta corrected for the counter's wraparound. Power
backends (Jetson rails, NVML's power reading) return watts; a window's energy is
the trapezoid integral of the samples over time. A background thread reads the
backend at `rate_hz` (2 Hz at least, as the seed paper sampled) while windows are
open, and also samples the process's resident memory.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Measurement:
    """What one window saw. energy_j / power_w are None when there is no power backend."""

    duration_s: float
    energy_j: float | None
    avg_power_w: float | None
    samples: int
    backend: str
    peak_rss_bytes: int | None = None


class Backend:
    name = "none"
    kind = "none"  # "counter" (cumulative joules) | "power" (watts) | "none"

    def read(self) -> float:
        raise NotImplementedError

    def close(self) -> None:
        pass


class NoPower(Backend):
    def read(self) -> float:
        return 0.0


class RaplBackend(Backend):
    """Intel RAPL package domains under /sys/class/powercap: energy_uj, wrapping at max_energy_range_uj."""

    name = "rapl"
    kind = "counter"

    def __init__(self, root: str | Path = "/sys/class/powercap"):
        root = Path(root)
        # top-level package domains only (intel-rapl:0, intel-rapl:1); sub-domains (intel-rapl:0:0)
        # are parts of a package and would double count
        self.domains = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
        if not self.domains:
            raise OSError(f"no RAPL package domains under {root}")
        self.max_uj = [int((d / "max_energy_range_uj").read_text()) for d in self.domains]
        self.last_uj = [self._raw(i) for i in range(len(self.domains))]
        self.total_j = 0.0

    def _raw(self, i: int) -> int:
        return int((self.domains[i] / "energy_uj").read_text())

    def read(self) -> float:
        """Cumulative joules since this backend was opened, across all packages, wraparound corrected."""
        for i in range(len(self.domains)):
            now = self._raw(i)
            delta = now - self.last_uj[i]
            if delta < 0:  # the counter wrapped once since the last read (reads are < 1 wrap apart)
                delta += self.max_uj[i]
            self.total_j += delta / 1e6
            self.last_uj[i] = now
        return self.total_j


class JetsonRailsBackend(Backend):
    """Jetson INA3221 rails (sysfs hwmon): watts = sum over rails of in*_input (mV) x curr*_input (mA)."""

    name = "jetson-ina3221"
    kind = "power"

    def __init__(self, root: str | Path = "/sys/bus/i2c/drivers/ina3221"):
        self.rails: list[tuple[str, Path, Path]] = []
        for hwmon in sorted(Path(root).glob("*/hwmon/hwmon*")):
            for label in sorted(hwmon.glob("in*_label")):
                n = label.name[2:].split("_")[0]
                volt, curr = hwmon / f"in{n}_input", hwmon / f"curr{n}_input"
                name = label.read_text().strip()
                # 'sum of shunt voltages' channels on some boards are not rails
                if volt.exists() and curr.exists() and not name.lower().startswith("sum"):
                    self.rails.append((name, volt, curr))
        if not self.rails:
            raise OSError(f"no INA3221 rails under {root}")

    def read(self) -> float:
        return sum(int(v.read_text()) * int(c.read_text()) for _, v, c in self.rails) / 1e6


class NvmlBackend(Backend):
    """NVIDIA GPU through NVML: the total-energy counter (Volta and newer) or the power reading."""

    name = "nvml"

    def __init__(self, index: int = 0):
        import pynvml  # nvidia-ml-py

        pynvml.nvmlInit()
        self._nvml = pynvml
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        try:
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            self.kind = "counter"
            self.name = "nvml-energy-counter"
        except pynvml.NVMLError:
            self.kind = "power"
            self.name = "nvml-power"

    def read(self) -> float:
        if self.kind == "counter":
            return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1e3  # mJ -> J
        return self._nvml.nvmlDeviceGetPowerUsage(self.handle) / 1e3  # mW -> W

    def close(self) -> None:
        self._nvml.nvmlShutdown()


def open_backend(choice: str = "auto", device: str = "cpu") -> Backend:
    """'auto' picks what the machine offers: NVML for a CUDA device, Jetson rails, RAPL, else none."""
    tries: list[Callable[[], Backend]] = {
        "nvml": [NvmlBackend], "rapl": [RaplBackend], "jetson": [JetsonRailsBackend], "none": [NoPower],
        "auto": ([NvmlBackend] if device.startswith("cuda") else []) + [JetsonRailsBackend, RaplBackend],
    }[choice]
    errors = []
    for make in tries:
        try:
            return make()
        except Exception as e:  # noqa: BLE001 - any failure means this backend is not available here
            errors.append(f"{getattr(make, 'name', make.__name__)}: {e}")
    if choice == "auto":
        return NoPower()
    raise OSError(f"power backend {choice!r} is not available: " + "; ".join(errors))


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None


class _Window:
    def __init__(self, kind: str):
        self.kind = kind
        self.t0: float | None = None
        self.t_last: float | None = None
        self.v_last: float | None = None
        self.energy_j = 0.0
        self.samples = 0
        self.peak_rss: int | None = None

    def add(self, t: float, value: float, rss: int | None = None) -> None:
        if self.t0 is None:
            self.t0 = t
        elif self.kind == "counter":
            self.energy_j += value - self.v_last
        elif self.kind == "power":
            self.energy_j += 0.5 * (value + self.v_last) * (t - self.t_last)
        self.t_last, self.v_last = t, value
        self.samples += 1
        if rss is not None:
            self.peak_rss = rss if self.peak_rss is None else max(self.peak_rss, rss)


class PowerMonitor:
    """Windows over a backend, sampled by a background thread while any window is open.

    begin_window(name) / end_window(name) -> Measurement, as in Zeus. `clock` and
    `sample()` exist so tests can drive a monitor without the thread.
    """

    def __init__(self, backend: Backend, rate_hz: float = 10.0, clock: Callable[[], float] = time.monotonic,
                 thread: bool = True):
        if rate_hz < 2:
            raise ValueError("sample at 2 Hz or faster")
        self.backend = backend
        self.rate_hz = rate_hz
        self.clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True) if thread else None
        if self._thread:
            self._thread.start()

    def sample(self) -> None:
        """Read the backend once and feed every open window (the thread calls this at rate_hz)."""
        value = self.backend.read() if self.backend.kind != "none" else 0.0
        t = self.clock()
        rss = _rss_bytes()
        with self._lock:
            for w in self._windows.values():
                w.add(t, value, rss)

    def _loop(self) -> None:
        period = 1.0 / self.rate_hz
        while not self._stop.wait(period):
            if self._windows:
                self.sample()

    def begin_window(self, name: str) -> None:
        with self._lock:
            self._windows[name] = _Window(self.backend.kind)
        self.sample()

    def end_window(self, name: str) -> Measurement:
        self.sample()
        with self._lock:
            w = self._windows.pop(name)
        duration_s = (w.t_last or 0.0) - (w.t0 or 0.0)
        if self.backend.kind == "none":
            return Measurement(duration_s, None, None, w.samples, self.backend.name, w.peak_rss)
        avg = w.energy_j / duration_s if duration_s > 0 else None
        return Measurement(duration_s, w.energy_j, avg, w.samples, self.backend.name, w.peak_rss)

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.backend.close()
