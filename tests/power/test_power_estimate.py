"""The CPU-utilisation estimate and its documented profiles."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import pytest

from power import PROFILES, SourceUnavailable, open_source
from power.estimate import EstimateMeter
from power.profiles import DEFAULT_ARM_PROFILE, DEFAULT_PROFILE, pick_profile
from power.testing import write_board_model

Times = namedtuple("Times", "user nice system idle iowait irq softirq steal guest guest_nice")


class FakeClock:
    """cpu_times() that advances by what the test says."""

    def __init__(self) -> None:
        self.t = Times(*[0.0] * 10)

    def advance(self, busy_s: float, idle_s: float) -> None:
        self.t = self.t._replace(user=self.t.user + busy_s, idle=self.t.idle + idle_s)

    def __call__(self) -> Times:
        return self.t


def test_machine_estimate_from_cpu_time_deltas() -> None:
    clock = FakeClock()
    meter = EstimateMeter("raspberry-pi-4", cpu_times=clock, cpu_count=4, attribution="machine")
    clock.advance(busy_s=0.2, idle_s=0.2)  # 50 % of 4 CPUs = 2 busy cores
    sample = meter.read()
    profile = PROFILES["raspberry-pi-4"]
    assert sample.total_w == pytest.approx(profile.idle_w + 2 * profile.busy_w_per_core)
    assert sample.estimated is True and sample.source == "estimate"
    assert meter.profile == "raspberry-pi-4" and meter.estimated
    assert sample.rails_w["idle"] == pytest.approx(profile.idle_w)
    same = meter.read()  # no time passed: keep the last utilisation
    assert same.total_w == sample.total_w
    clock.advance(0.0, 1.0)
    assert meter.read().total_w == pytest.approx(profile.idle_w)


def test_generic_x86_scales_idle_with_cpus() -> None:
    clock = FakeClock()
    meter = EstimateMeter("generic-x86", cpu_times=clock, cpu_count=8, attribution="machine")
    clock.advance(busy_s=8.0, idle_s=0.0)
    assert meter.read().total_w == pytest.approx(8 * 0.74 + 8 * 2.76)


class FakeProcess:
    """CPU seconds of a process tree and wall seconds, advanced by the test."""

    def __init__(self) -> None:
        self.cpu = self.wall = 0.0

    def advance(self, cpu_s: float, wall_s: float) -> None:
        self.cpu += cpu_s
        self.wall += wall_s


def test_process_estimate_charges_the_job_for_its_cpu_seconds_only() -> None:
    job, machine = FakeProcess(), FakeClock()
    meter = EstimateMeter("raspberry-pi-4", cpu_times=machine, cpu_count=4,
                          process_cpu=lambda: job.cpu, clock=lambda: job.wall)
    assert meter.attribution == "process" and meter.spec == "estimate:raspberry-pi-4"
    profile = PROFILES["raspberry-pi-4"]
    per_cpu = profile.idle_w / 4 + profile.busy_w_per_core
    job.advance(cpu_s=1.0, wall_s=1.0)  # one CPU busy for the job
    machine.advance(busy_s=4.0, idle_s=0.0)  # while the machine was fully busy
    sample = meter.read()
    assert sample.total_w == pytest.approx(per_cpu)
    assert sample.rails_w["idle"] == pytest.approx(profile.idle_w / 4)
    job.advance(cpu_s=0.5, wall_s=2.0)  # a quarter of one CPU
    assert meter.read().total_w == pytest.approx(0.25 * per_cpu)
    job.advance(cpu_s=-0.5, wall_s=1.0)  # a child's time vanished: never negative
    assert meter.read().total_w == 0.0
    info = meter.describe()
    assert info["attribution"] == "process" and "children" in info["covers"]


@pytest.mark.parametrize("spec, profile, attribution", [
    ("estimate", None, "process"), ("estimate:machine", None, "machine"),
    ("estimate:generic-arm:machine", "generic-arm", "machine"),
    ("estimate:process:jetson-nano", "jetson-nano", "process")])
def test_spec_names_profile_and_attribution(spec, profile, attribution) -> None:
    meter = open_source(spec)
    assert meter.attribution == attribution
    assert profile is None or meter.profile == profile
    assert meter.describe()["attribution"] == attribution


def test_spec_with_two_attributions_is_refused() -> None:
    with pytest.raises(SourceUnavailable, match="estimate:process:machine"):
        open_source("estimate:process:machine")


def test_real_meters_say_they_measure_the_whole_board() -> None:
    from power.base import Meter

    assert Meter.attribution == "board"
    assert "every process" in Meter.covers.fget(None)


def test_real_psutil_read_works() -> None:
    for attribution in ("process", "machine"):
        meter = EstimateMeter(attribution=attribution)
        sum(i * i for i in range(200_000))  # some CPU time for this process
        sample = meter.read()
        assert sample.total_w > 0 and sample.estimated


def test_process_tree_counts_a_child_process() -> None:
    import subprocess
    import sys
    import time

    from power.estimate import ProcessTreeCpu

    tree = ProcessTreeCpu(refresh_s=0.0)
    before = tree()
    child = subprocess.Popen([sys.executable, "-c",
                              "import time\nt = time.process_time()\n"
                              "while time.process_time() - t < 0.3: pass\ntime.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        while tree() - before < 0.25:
            assert time.monotonic() < deadline, "child CPU time never counted"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    # reaped: its time now sits in this process's children_* fields
    assert tree() - before >= 0.25


@pytest.mark.parametrize("model, arch, expected", [
    ("Raspberry Pi 4 Model B Rev 1.4", "aarch64", "raspberry-pi-4"),
    ("Raspberry Pi 5 Model B Rev 1.0", "aarch64", "raspberry-pi-5"),
    ("Raspberry Pi 400 Rev 1.0", "aarch64", "raspberry-pi-400"),
    ("Raspberry Pi 3 Model B Plus Rev 1.3", "armv7l", "raspberry-pi-3"),
    ("NVIDIA Jetson TX2", "aarch64", "jetson-tx2"),
    ("quill", "aarch64", "jetson-tx2"),
    ("NVIDIA Jetson Nano Developer Kit", "aarch64", "jetson-nano"),
    ("NVIDIA Jetson Orin Nano Developer Kit", "aarch64", DEFAULT_ARM_PROFILE),
    ("Pine64 RockPro64", "aarch64", DEFAULT_ARM_PROFILE),
    ("LENOVO 20XW", "x86_64", DEFAULT_PROFILE),
    (None, "x86_64", "generic-x86"),
])
def test_profile_from_board_model(model: str, arch: str, expected: str) -> None:
    assert pick_profile(model, arch)[0] == expected


def test_profile_picked_from_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "sys"
    write_board_model(root, "Raspberry Pi 5 Model B Rev 1.0")
    meter = open_source("estimate", root)
    assert meter.profile == "raspberry-pi-5" and "Raspberry Pi 5" in meter.profile_reason


def test_every_profile_names_its_sources() -> None:
    assert DEFAULT_PROFILE in PROFILES and DEFAULT_ARM_PROFILE in PROFILES
    for profile in PROFILES.values():
        assert profile.sources and all(len(s) > 20 for s in profile.sources), profile.name
        assert profile.idle_w >= 0 and profile.busy_w_per_core > 0


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(SourceUnavailable, match="'estimate:nope'.*jetson-tx2"):
        open_source("estimate:nope")
