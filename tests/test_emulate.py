"""Emulation's network: namespaces, shaped links measured with real TCP transfers, and cleanup (even after
SIGKILL). These need root and network namespaces; elsewhere they skip, saying so (CI runs as root)."""

import subprocess
import sys
import time

import pytest

from simfl.emulate.netns import SERVER_IP, ClientLink, Topology, check_can_emulate, namespaces
from simfl.errors import ScenarioError


def _can() -> str | None:
    try:
        check_can_emulate()
    except ScenarioError as e:
        return e.message
    return None


WHY = _can()
needs_netns = pytest.mark.skipif(WHY is not None, reason=f"cannot emulate here: {WHY}")


def test_without_root_it_is_one_clear_line(monkeypatch):
    import os

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ScenarioError, match="emulation needs root \\(network namespaces and tc\\): run it with sudo"):
        check_can_emulate()


def _serve(topo, port):
    srv = topo.exec(topo.server_ns, [sys.executable, "-m", "simfl.emulate.probe", "serve", str(port)],
                    stdout=subprocess.PIPE, text=True)
    assert srv.stdout.readline().strip() == "ready"
    return srv


def _client(topo, i, mode, nbytes, port):
    return subprocess.Popen(["ip", "netns", "exec", topo.client_ns(i), sys.executable, "-m", "simfl.emulate.probe",
                             mode, SERVER_IP, str(port), str(nbytes)], stdout=subprocess.PIPE, text=True)


# TCP over Ethernet carries 1448 payload bytes in a 1514-byte frame: goodput is at most 95.6 % of the shaped rate
GOODPUT = 1448 / 1514


@needs_netns
def test_a_clients_links_run_at_their_shaped_rates():
    with Topology([ClientLink(downlink_bps=20e6, uplink_bps=5e6)], server_down_bps=1e9, server_up_bps=1e9) as t:
        srv = _serve(t, 9000)
        down_s = float(_client(t, 0, "fetch", 4_000_000, 9000).communicate()[0])
        srv.wait(30)
        srv = _serve(t, 9001)
        up_s = float(_client(t, 0, "send", 1_500_000, 9001).communicate()[0])
        srv.wait(30)
    down, up = 4e6 * 8 / down_s, 1.5e6 * 8 / up_s
    assert 0.85 * GOODPUT * 20e6 < down < 1.02 * 20e6, down
    assert 0.85 * GOODPUT * 5e6 < up < 1.02 * 5e6, up


def _free_core_share(wall_s: float = 0.5) -> float:
    """CPU seconds a busy loop gets per wall second, here and now: about 1.0 where a core is free, about 2/3
    with two CPU hogs on this 2-core machine."""
    t0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < wall_s:
        pass
    return (time.process_time() - c0) / (time.perf_counter() - t0)


def _skip_timing_if_busy(*shares: float) -> None:
    """Timing accuracy is a property of a quiet machine. Where other processes hold the cores (a busy loop got
    under 90 % of a core before or after the emulation), the behaviour has been checked; the accuracy bounds
    are skipped, saying why (make fidelity measures them on a quiet machine)."""
    share = min(shares)
    if share < 0.9:
        pytest.skip(f"timing accuracy not checked: other load left a busy loop {100 * share:.0f} % of a core; "
                    "make fidelity measures it on a quiet machine")


@needs_netns
def test_clients_of_a_cell_share_its_capacity():
    links = [ClientLink(20e6, 20e6, cell="a"), ClientLink(20e6, 20e6, cell="a")]
    before = _free_core_share()
    with Topology(links, 1e9, 1e9, cells={"a": (8e6, 8e6)}) as t:
        servers = [_serve(t, 9100 + i) for i in range(2)]
        fetches = [_client(t, i, "fetch", 2_000_000, 9100 + i) for i in range(2)]
        times = [float(p.communicate()[0]) for p in fetches]
        for s in servers:
            s.wait(30)
    # both at once through one 8 Mbit/s class: together about 8 Mbit/s, so each about 4, not 20
    total = 2 * 2e6 * 8 / max(times)
    assert 0.8 * GOODPUT * 8e6 < total, (times, total)  # each about 4 Mbit/s, not 20: the cell binds
    # the rate from each client's own clock: on a loaded machine one starts late and has the cell to itself a while
    _skip_timing_if_busy(before, _free_core_share())
    # 10 %: each client times its own fetch, and one that starts late has the cell to itself a while (8.5 Mbit/s
    # measured on 2026-12-03); without the cell the two would total 40 Mbit/s
    assert total < 1.1 * 8e6, (times, total)


@needs_netns
def test_namespaces_are_removed_on_exit_and_on_an_exception():
    with Topology([ClientLink(1e7, 1e7)], 1e9, 1e9) as t:
        made = [n for n in namespaces() if n.startswith(t.run_id)]
        assert len(made) == 3
    assert not [n for n in namespaces() if n.startswith(t.run_id)]
    with pytest.raises(RuntimeError):
        with Topology([ClientLink(1e7, 1e7)], 1e9, 1e9) as t:
            raise RuntimeError("boom")
    assert not [n for n in namespaces() if n.startswith(t.run_id)]


@needs_netns
def test_namespaces_are_removed_when_the_owner_is_killed_outright():
    code = ("import time, sys\nfrom simfl.emulate.netns import Topology, ClientLink\n"
            "t = Topology([ClientLink(1e7, 1e7)], 1e9, 1e9)\nt.build()\nprint(t.run_id, flush=True)\n"
            "time.sleep(600)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    run_id = p.stdout.readline().strip()
    assert [n for n in namespaces() if n.startswith(run_id)]
    p.kill()  # SIGKILL: no handler runs; the reaper must
    p.wait()
    deadline = time.time() + 10
    while time.time() < deadline and [n for n in namespaces() if n.startswith(run_id)]:
        time.sleep(0.1)
    assert not [n for n in namespaces() if n.startswith(run_id)]


@needs_netns
def test_a_short_transfer_keeps_to_its_rate():
    # 100 KB on a 10 Mbit/s uplink takes at least 80 ms: with segmentation offload a 64 KB packet passed HTB at
    # once and it took 55 ms; packets of ~1 ms of the rate (netns.gso_segments) keep it to the rate
    with Topology([ClientLink(downlink_bps=40e6, uplink_bps=10e6)], server_down_bps=1e9, server_up_bps=1e9) as t:
        srv = _serve(t, 9200)
        up_s = float(_client(t, 0, "send", 100_000, 9200).communicate()[0])
        srv.wait(30)
    assert 0.97 * 100_000 * 8 / 10e6 < up_s < 1.3 * 100_000 * 8 / 10e6 / GOODPUT, up_s


def test_gso_segments_are_about_a_millisecond_of_the_rate():
    from simfl.emulate.netns import gso_segments

    # 1 ms of 1 Gbit/s is 125,000 bytes: 86 segments of 1448; of 40 Mbit/s 5,000 bytes: 3; of 10 Mbit/s: 1
    assert (gso_segments(1e9), gso_segments(40e6), gso_segments(10e6), gso_segments(1e5)) == (86, 3, 1, 1)


def _flower_or_skip():
    from simfl.emulate.rounds import flower_python

    try:
        flower_python()
    except ScenarioError as e:
        pytest.skip(e.message)


@needs_netns
def test_flower_rounds_transfer_times_are_the_link_model_plus_framing():
    from simfl.emulate.rounds import Plan, flower_rounds, phases

    _flower_or_skip()
    params = 250_000  # float32: 1 MB each way
    plan = Plan(params=params, rounds=[{"selected": [0], "steps": [1], "compute_s": [0.2], "k": 1,
                                        "deadline_s": None}] * 3)
    before = _free_core_share()
    with Topology([ClientLink(40e6, 10e6)], 1e9, 1e9) as t:
        log = flower_rounds(t, plan)
    later = phases(log)
    assert len(later) == 3 and all(p["aggregated"] for p in later)
    bits = params * 32
    # simfl's transfer time is bits / rate; on the wire TCP/IP frames 1448 payload bytes in 1514 (4.6 % more),
    # and Flower serializes at ~3.3e8 B/s (docs/fidelity.md): 1 MB adds 3 ms. No transfer beats its shaped rate,
    # busy machine or not; how much slower it may be depends on the cores being free
    for p in later:
        assert bits / 40e6 * 0.97 < p["download_s"] and bits / 10e6 * 0.97 < p["upload_s"], p
        assert p["compute_s"] >= 0.2 - 0.005, p
    _skip_timing_if_busy(before, _free_core_share())
    # + 0.04 s: serialization is CPU work, fitted at 3.3e8 B/s (3 ms a MB) on a day this VM computed 2.2x faster
    # than on 2026-12-03, when downloads took 0.24-0.25 s against 0.209 s of wire time
    for p in later:
        assert p["download_s"] < bits / 40e6 / GOODPUT * 1.1 + 0.04, p
        assert p["upload_s"] < bits / 10e6 / GOODPUT * 1.1 + 0.04, p
        assert p["compute_s"] == pytest.approx(0.2, abs=0.05)


def _calibrate_unless_here() -> list[str]:
    """--calibrate where the shipped emulation profile was measured on another host (emulate refuses it)."""
    from simfl.config.load import REPO_ROOT, load_model
    from simfl.config.profiles import HardwareProfile
    from simfl.hostid import here, of_profile, same_host

    shipped = load_model(HardwareProfile, REPO_ROOT / "hardware_profiles/cpu-1core-epyc-emulate.yaml")
    return [] if same_host(of_profile(shipped.provenance), here())[0] else ["--calibrate"]


def _delayed(topo, which, argv_for):
    """Make topo.exec start the processes of the namespaces `which` selects as argv_for(argv) instead."""
    start = topo.exec

    def exec_(ns, argv, **kwargs):
        return start(ns, argv_for(argv) if which(ns) else argv, **kwargs)
    topo.exec = exec_


ONE_ROUND = {"selected": [0, 1], "steps": [1, 1], "compute_s": [0.05, 0.05], "k": 2, "deadline_s": None}


@needs_netns
def test_clients_started_before_the_server_listens_still_connect():
    # the clients used to connect once, a fixed second after the server started, and exit on "connection
    # refused": here the server starts listening 3 s late (as on a loaded machine), and they retry until it does
    from simfl.emulate.rounds import Plan, flower_rounds

    _flower_or_skip()
    with Topology([ClientLink(40e6, 10e6), ClientLink(40e6, 10e6)], 1e9, 1e9) as t:
        _delayed(t, lambda ns: ns == t.server_ns, lambda argv: ["sh", "-c", 'sleep 3; exec "$@"', "sh", *argv])
        log = flower_rounds(t, Plan(params=1000, rounds=[ONE_ROUND]), timeout_s=120)
    assert [e["round"] for e in log] == [0, 1]
    assert sorted(m["client"] for m in log[1]["clients"]) == [0, 1] and all(m["aggregated"] for m in log[1]["clients"])


@needs_netns
def test_a_client_that_never_connects_is_one_line_within_the_bound():
    from simfl.emulate.rounds import Plan, flower_rounds
    from simfl.errors import RunFailed

    _flower_or_skip()
    with Topology([ClientLink(40e6, 10e6), ClientLink(40e6, 10e6)], 1e9, 1e9) as t:
        _delayed(t, lambda ns: ns == t.client_ns(1), lambda argv: ["sleep", "600"])  # started, never connects
        t0 = time.monotonic()
        with pytest.raises(RunFailed) as e:
            flower_rounds(t, Plan(params=1000, rounds=[ONE_ROUND], connect_timeout_s=3), timeout_s=300)
        took = time.monotonic() - t0
        run_id = t.run_id
    assert str(e.value) == "client 1 never connected to the Flower server within 3 s"
    # the server's own start (its worker imports torch: a few seconds, more when the machine is loaded) and the
    # 3 s it waits: well under the 300 s the run was allowed
    assert took < 60, took
    assert not [n for n in namespaces() if n.startswith(run_id)] and not _running_flower(run_id)


def _emulate(tmp_path, scenario, *args, calibrate=False):
    import json

    from simfl.config.load import REPO_ROOT
    from tests.test_cli import simfl

    out = tmp_path / "emu"
    r = simfl("emulate", REPO_ROOT / "scenarios/emulate" / scenario, "--out", out, "--set", "model.name=t5-tiny", *args,
              *(["--calibrate"] if calibrate else _calibrate_unless_here()))
    assert r.returncode == 0, r.stderr
    return json.loads((out / "emulation.json").read_text()), out


@needs_netns
def test_simfl_emulate_trains_for_real_and_measures_rounds_against_the_prediction(tmp_path):
    _flower_or_skip()
    # calibrated here first, as make fidelity does: a CPU label is no proof of speed (on 2026-12-03 this VM, "AMD
    # EPYC, 2 cores" like the shipped profile's, took 2.2x its t5-tiny compute: round MAPE 35 % against it)
    before = _free_core_share()
    res, out = _emulate(tmp_path, "lte-two-clients.yaml", "--rounds", "2", calibrate=True)
    assert (out / "emulation.png").stat().st_size > 10_000
    rounds = res["rounds"]
    assert [r["round"] for r in rounds] == [0, 1] and res["compute"] == "train"
    assert res["mape_round_pct"] == pytest.approx(
        sum(abs(r["measured_s"] - r["predicted_s"]) / r["measured_s"] for r in rounds) / 2 * 100)
    for r in rounds:
        assert r["completed_measured"] == r["completed_predicted"] == 2
        assert all(c["compute_measured_s"] > 0 and c["upload_measured_s"] > 0 for c in r["clients"])
    assert 0.9 < res["wire_to_model"] < 1.15  # frames both ways against payload x framing (measured 1.00-1.04)
    assert not [n for n in namespaces() if n.startswith("sf")]
    _skip_timing_if_busy(before, _free_core_share())
    assert res["mape_round_pct"] < 30  # measured 7.5 % on this tiny model (docs/fidelity.md)


@needs_netns
def test_a_deadline_cuts_the_slow_client_off_in_both(tmp_path):
    # t5-tiny steps take ~0.03 s: the first client is done in ~0.2 s; the second, with 40 steps (~1.3 s), is
    # still computing at the 0.6 s deadline, so each round closes then with one update, as simfl says
    _flower_or_skip()
    before = _free_core_share()
    res, _ = _emulate(tmp_path, "lte-deadline.yaml", "--rounds", "2", "--set", "fleet[1].local_steps=40",
                      "--set", "federation.deadline_s=0.6")
    for r in res["rounds"]:
        assert r["completed_predicted"] == 1 and r["predicted_s"] == pytest.approx(0.6, abs=0.01)
        slow = next(c for c in r["clients"] if c["client"] == 1)
        assert slow["status_predicted"] == "late" and slow["aggregated"] is False
        assert slow["status_measured"] == "cut" and slow["upload_measured_s"] is None
        assert r["measured_s"] >= 0.6, r["measured_s"]  # the deadline closes the round, never earlier
    _skip_timing_if_busy(before, _free_core_share())  # loaded, the fast client may miss 0.6 s as well
    for r in res["rounds"]:
        assert r["completed_measured"] == 1 and r["measured_s"] < 0.75, r


@needs_netns
def test_a_killed_emulation_leaves_nothing_behind(tmp_path):
    import os
    import signal

    from simfl.config.load import REPO_ROOT
    from simfl.emulate.netns import run_folder

    _flower_or_skip()
    p = subprocess.Popen([sys.executable, "-m", "simfl", "emulate", str(REPO_ROOT / "scenarios/emulate/lte-two-clients.yaml"),
                          "--set", "model.name=t5-tiny", "--rounds", "200", "--out", str(tmp_path / "emu"),
                          *_calibrate_unless_here()],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    prefix = f"sf{p.pid}n"
    deadline = time.time() + 60
    while time.time() < deadline and not _running_flower(prefix):
        time.sleep(0.2)
    mine = [n for n in namespaces() if n.startswith(prefix)]
    assert mine and _running_flower(prefix), "the emulation never got its clients running"
    os.kill(p.pid, signal.SIGKILL)  # no handler runs: the reaper must clean up
    p.wait()
    deadline = time.time() + 15
    while time.time() < deadline and ([n for n in namespaces() if n.startswith(prefix)] or _running_flower(prefix)):
        time.sleep(0.2)
    assert not [n for n in namespaces() if n.startswith(prefix)]
    assert not _running_flower(prefix)
    assert not run_folder(mine[0].rsplit("-", 1)[0]).exists()
    assert not (tmp_path / "emu").exists()  # nothing half-written where the user asked for output


@needs_netns
def test_a_terminated_emulation_cleans_up_and_says_so(tmp_path):
    import os
    import signal

    from simfl.config.load import REPO_ROOT
    from simfl.emulate.netns import run_folder

    _flower_or_skip()
    p = subprocess.Popen([sys.executable, "-m", "simfl", "emulate", str(REPO_ROOT / "scenarios/emulate/lte-two-clients.yaml"),
                          "--set", "model.name=t5-tiny", "--rounds", "200", "--out", str(tmp_path / "emu")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    prefix = f"sf{p.pid}n"
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not _running_flower(prefix):
            time.sleep(0.2)
        mine = [n for n in namespaces() if n.startswith(prefix)]
        assert mine and _running_flower(prefix), "the emulation never got its clients running"
        os.kill(p.pid, signal.SIGTERM)  # handled like Ctrl-C: every `with` on the way out cleans up
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:  # a failure above: SIGKILL, the reaper removes the rest
            p.kill()
            p.communicate()
    assert p.returncode == 143 and err.splitlines()[-1] == "terminated by SIGTERM" and "Traceback" not in err, err
    assert not [n for n in namespaces() if n.startswith(prefix)] and not _running_flower(prefix)
    assert not run_folder(mine[0].rsplit("-", 1)[0]).exists()
    assert list(tmp_path.iterdir()) == []  # neither the output nor its .emu.partial-*


def _running_flower(prefix: str) -> bool:
    """A Flower client or worker of the run (its plan folder is named after the run) is running."""
    r = subprocess.run(["pgrep", "-f", f"simfl-emulate-{prefix}"], capture_output=True, text=True)
    return bool(r.stdout.strip())


# -- what runs anywhere: refusals, and the arithmetic of the comparison ------------------------------------

def _refused(tmp_path, *args):
    from simfl.config.load import REPO_ROOT
    from tests.test_cli import simfl

    r = simfl("emulate", REPO_ROOT / "scenarios/emulate/lte-two-clients.yaml", *args, "--out", tmp_path / "x")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "x").exists()
    return r.stderr


def test_a_bad_compute_option_is_one_line(tmp_path):
    assert "--compute: expected train or sleep, got 'gpu'" in _refused(tmp_path, "--compute", "gpu")


def test_what_cannot_be_emulated_is_one_line():
    import os

    from simfl import load_scenario
    from simfl.config.load import REPO_ROOT
    from simfl.emulate.run import emulable

    path = REPO_ROOT / "scenarios/emulate/lte-two-clients.yaml"
    cores = len(os.sched_getaffinity(0))
    many = load_scenario(path, {"fleet[0].count": cores + 1, "federation.clients_per_round": cores + 1})
    with pytest.raises(ScenarioError, match=f"{cores + 1} clients training at once on {cores} cores"):
        emulable(many)
    emulable(many, "sleep")  # sleeping clients need no core of their own
    orin = load_scenario(path, {"fleet[0].device": "jetson-agx-orin-64gb"})
    with pytest.raises(ScenarioError, match="fleet\\[0\\].device 'jetson-agx-orin-64gb' with --compute train"):
        emulable(orin)
    emulable(orin, "sleep")
    with pytest.raises(ScenarioError, match="not emulated: dropout"):
        emulable(load_scenario(path, {"federation.dropout_prob": 0.1}))


def test_transport_adds_a_fixed_part_and_the_payload_at_the_serialization_rate():
    from simfl.build import build
    from simfl.config.load import REPO_ROOT
    from simfl.config.scenario import TransportSpec
    from simfl import load_scenario

    t = TransportSpec(per_transfer_s=0.002, serialization_bytes_per_s=1e6, source="by hand")
    assert t.added_s(8e6) == pytest.approx(0.002 + 1.0)  # 1e6 bytes at 1e6 B/s
    assert TransportSpec(per_transfer_s=0.002, source="x").added_s(8e6) == 0.002
    # FLAN-T5-small LoRA r16 on q, v: 688,128 float32 parameters, 2,752,512 bytes at 3.3e8 B/s
    sc = load_scenario(REPO_ROOT / "scenarios/emulate/lte-two-clients.yaml")
    assert build(sc).inputs.per_transfer_s == pytest.approx(2_752_512 / 3.3e8)


class _Predicted:
    """What compare() reads of a simfl run: its rounds and client rows."""

    def __init__(self, rounds, clients):
        import pandas as pd

        self.rounds, self.clients = pd.DataFrame(rounds), pd.DataFrame(clients)


def test_the_comparison_by_hand():
    from simfl.emulate.run import compare

    nan = float("nan")
    kw = {"bits_down": 8e6, "bits_up": 8e6}
    predicted = _Predicted(
        [{"start_s": 0.0, "end_s": 4.0, "clients_completed": 1, **kw},
         {"start_s": 4.0, "end_s": 8.0, "clients_completed": 1, "bits_down": 4e6, "bits_up": 4e6}],
        [{"round": 0, "client": 0, "status": "completed", "download_start_s": 0.0, "download_end_s": 0.4,
          "compute_start_s": 0.4, "compute_end_s": 2.4, "upload_start_s": 2.4, "upload_end_s": 4.0},
         {"round": 0, "client": 1, "status": "late", "download_start_s": 0.0, "download_end_s": 0.4,
          "compute_start_s": 0.4, "compute_end_s": 4.0, "upload_start_s": nan, "upload_end_s": nan},
         {"round": 1, "client": 0, "status": "completed", "download_start_s": 4.0, "download_end_s": 4.2,
          "compute_start_s": 4.2, "compute_end_s": 6.2, "upload_start_s": 6.2, "upload_end_s": 8.0}])
    log = [{"round": 0, "clients": []},
           {"round": 1, "configure_s": 100.0, "results_s": 104.0, "aggregated_s": 104.1,
            "server_nic_bytes": [1000, 2000], "server_nic_bytes_closed": [3000, 2500],
            "clients": [{"client": 0, "status": "completed", "aggregated": True, "fit_start_s": 100.5,
                         "fit_end_s": 102.5, "arrived_s": 104.0},
                        {"client": 1, "status": "cut", "aggregated": False, "fit_start_s": 100.6,
                         "fit_end_s": 104.2, "arrived_s": 104.3, "after_close": True}]},
           {"round": 2, "configure_s": 104.2, "results_s": 108.1, "aggregated_s": 108.2,
            "server_nic_bytes": [3000, 2500], "server_nic_bytes_closed": [4000, 4000],
            "clients": [{"client": 0, "status": "completed", "aggregated": True, "fit_start_s": 104.4,
                         "fit_end_s": 106.4, "arrived_s": 108.1}]}]
    res = compare(log, predicted, framing=1.25)
    r0, r1 = res["rounds"]
    assert (r0["measured_s"], r0["predicted_s"]) == (pytest.approx(4.1), 4.0)
    assert r0["error_pct"] == pytest.approx(2.5)  # 4.1 / 4.0 - 1
    assert (r1["measured_s"], r1["predicted_s"]) == (pytest.approx(4.0), 4.0)
    # MAPE is relative to the measured: (0.1 / 4.1 + 0) / 2
    assert res["mape_round_pct"] == pytest.approx(100 * (0.1 / 4.1) / 2)
    # the total runs from the first configuration to the last aggregate: 8.2 s against 8.0
    assert (res["measured_total_s"], res["predicted_total_s"]) == (pytest.approx(8.2), 8.0)
    assert res["error_total_pct"] == pytest.approx(2.5)
    # phases of completed, aggregated client-rounds only: download 0.5 vs 0.4 and 0.2 vs 0.2
    dl = res["phases"]["download"]
    assert dl["n"] == 2 and dl["mape_pct"] == pytest.approx(100 * (0.1 / 0.5 + 0) / 2)
    assert res["phases"]["compute"]["mape_pct"] == pytest.approx(0.0)
    # uploads 1.5 vs 1.6 and 1.7 vs 1.8
    assert res["phases"]["upload"]["mape_pct"] == pytest.approx(100 * (0.1 / 1.5 + 0.1 / 1.7) / 2)
    assert r0["completed_measured"] == 1 == r0["completed_predicted"]
    late = r0["clients"][1]
    assert late["status_measured"] == "cut" and late["upload_predicted_s"] is None
    # bytes: the server's frames while the round was open against payload x framing
    assert (r0["wire_bytes_down"], r0["wire_bytes_up"]) == (2000, 500)
    assert r0["model_bytes_down"] == pytest.approx(8e6 / 8 * 1.25)
    assert res["wire_bytes"] == 2000 + 500 + 1000 + 1500
    assert res["wire_to_model"] == pytest.approx(5000 / (2 * 1.25e6 + 2 * 0.625e6))
