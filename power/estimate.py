"""A power estimate from CPU utilisation (psutil), always labelled estimated.

Two attributions (``attribution``, reported by :meth:`EstimateMeter.describe`):

- ``process`` (the default): the energy of the process that opened the meter and its
  descendants. The job is charged for the CPU seconds it used, each at the per-CPU share
  of the board's idle power plus the busy power of a CPU:
  ``P = (idle power / n_cpus + busy_w_per_core) x job CPUs``, with ``job CPUs`` = the
  process tree's CPU seconds (user + system, reaped children included) per wall second.
  Other processes' load and the idle power of CPUs the job did not use are not charged,
  so a CPU-bound neighbour leaves a seeded run's joules where they were.  This is the
  per-vCPU attribution of the profile that the ``generic-x86`` figures come from (Cloud
  Carbon Footprint: watts per vCPU between its idle and full-load figures).
- ``machine``: the whole board, every process and the idle CPUs included
  (``P = idle power + busy_w_per_core x busy CPUs of the machine``), as a real meter sees it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Union

from power.base import Meter
from power.boards import machine_arch, read_board_model
from power.errors import SourceUnavailable
from power.profiles import PROFILES, EstimateProfile, pick_profile
from power.sample import Availability, PowerSample

#: What the energy of an estimate covers; see the module docstring.
ATTRIBUTIONS = ("process", "machine")
_BUSY = ("user", "nice", "system", "irq", "softirq")
_IDLE = ("idle", "iowait")


def _split(times: Any) -> tuple:
    """(busy, idle, steal) seconds from a ``psutil.cpu_times()`` result.

    guest/guest_nice are already inside user/nice on Linux and are not added again;
    steal (time the hypervisor gave to others) counts as elapsed, not busy, time.
    """
    busy = sum(getattr(times, f, 0.0) for f in _BUSY)
    idle = sum(getattr(times, f, 0.0) for f in _IDLE)
    return busy, idle, getattr(times, "steal", 0.0)


class ProcessTreeCpu:
    """User + system CPU seconds of process ``pid`` and its live descendants, cheaply.

    Each process's reaped children (``children_user``/``children_system``) are included,
    so a child's time moves from its own entry to its parent's when it exits and the
    total stays continuous.  Listing descendants scans all of ``/proc`` (~7 ms with 130
    processes), so the list is refreshed at most every ``refresh_s`` seconds; a read in
    between costs one ``times()`` call plus one ``/proc/PID/stat`` per descendant.  A
    read must be cheap: the sampler reads 20 times a second from the measured process,
    and its cost grows with wall time, which a busy neighbour stretches.
    """

    def __init__(self, pid: int | None = None, refresh_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        import psutil

        self._psutil = psutil
        self.pid = os.getpid() if pid is None else int(pid)
        self._proc = psutil.Process(self.pid)
        self._refresh_s, self._clock = refresh_s, clock
        self._kids: List[Any] = []
        self._next = float("-inf")

    def __call__(self) -> float:
        if self.pid == os.getpid():
            t = os.times()
        else:
            t = self._proc.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        now = self._clock()
        if now >= self._next:
            try:
                self._kids = self._proc.children(recursive=True)
            except self._psutil.NoSuchProcess:
                self._kids = []
            self._next = now + self._refresh_s
        for kid in self._kids:
            try:
                k = kid.cpu_times()
            except (self._psutil.NoSuchProcess, self._psutil.AccessDenied):
                continue  # exited: its time is in its parent's children_* once reaped
            total += k.user + k.system + k.children_user + k.children_system
        return total


class EstimateMeter(Meter):
    """``P = idle + per-busy-CPU watts x busy CPUs``, from CPU-time deltas.

    ``attribution="process"`` (default) charges the process tree of ``pid`` (default:
    this process) for its CPU seconds; ``"machine"`` charges the whole board from
    ``psutil.cpu_times()`` (see the module docstring).  Utilisation is measured between
    consecutive ``read()`` calls (the first against construction time), so it works
    without the sampler too. ``profile`` is a name from :data:`power.profiles.PROFILES`,
    a profile object, or None to pick one from the board model under ``sysfs_root``.
    ``cpu_times``/``cpu_count`` (machine) and ``process_cpu``/``clock`` (process:
    CPU seconds of the tree, wall seconds) are for tests.
    """

    source = "estimate"
    estimated = True

    def __init__(self, profile: Union[str, EstimateProfile, None] = None,
                 sysfs_root: Path = Path("/sys"), *,
                 cpu_times: Callable[[], Any] | None = None,
                 cpu_count: int | None = None, attribution: str = "process",
                 pid: int | None = None, process_cpu: Callable[[], float] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        if attribution not in ATTRIBUTIONS:
            raise SourceUnavailable("estimate", f"unknown attribution {attribution!r}; "
                                    f"known: {', '.join(ATTRIBUTIONS)}")
        self.attribution = attribution
        if profile is None:
            model = read_board_model(sysfs_root)
            name, self.profile_reason = pick_profile(model, machine_arch())
            self._profile = PROFILES[name]
        elif isinstance(profile, EstimateProfile):
            self._profile, self.profile_reason = profile, "given"
        else:
            if profile not in PROFILES:
                raise SourceUnavailable("estimate", f"unknown profile {profile!r}; known: "
                                        f"{', '.join(sorted(PROFILES))}")
            self._profile, self.profile_reason = PROFILES[profile], "requested"
            self.spec = f"estimate:{profile}"
        if attribution != "process":
            self.spec += f":{attribution}"
        self.profile = self._profile.name
        if cpu_times is None or cpu_count is None:
            import psutil
        self._cpu_times = cpu_times if cpu_times is not None else psutil.cpu_times
        self.n_cpus = int(cpu_count if cpu_count is not None else (psutil.cpu_count() or 1))
        self.pid = os.getpid() if pid is None else int(pid)
        self._clock = clock
        if attribution == "process":  # the process tree's CPU seconds; "machine" never reads them
            self._process_cpu = process_cpu if process_cpu is not None else ProcessTreeCpu(self.pid)
            self._last = (self._process_cpu(), self._clock())
        else:
            self._last = _split(self._cpu_times())
        self._busy_frac = 0.0

    @classmethod
    def is_available(cls, profile: str | None = None,
                     sysfs_root: Path = Path("/sys")) -> Availability:
        """Always available when psutil works and the profile exists."""
        try:
            meter = cls(profile, sysfs_root)
        except SourceUnavailable as e:
            return Availability(False, e.reason)
        return Availability(True, f"profile {meter.profile} ({meter.profile_reason})")

    @property
    def profile_info(self) -> EstimateProfile:
        """The profile in use, with its figures and sources."""
        return self._profile

    def read(self) -> PowerSample:
        t_s = time.monotonic()
        if self.attribution == "process":
            return self._read_process(t_s)
        now = _split(self._cpu_times())
        d_busy, d_idle, d_steal = (a - b for a, b in zip(now, self._last))
        elapsed = d_busy + d_idle + d_steal
        if elapsed > 0:
            self._busy_frac = min(1.0, max(0.0, d_busy / elapsed))
            self._last = now
        idle_w, busy_w = self._profile.power_w(self._busy_frac * self.n_cpus, self.n_cpus)
        return PowerSample(t_s, idle_w + busy_w, {"idle": idle_w, "cpu_busy": busy_w},
                           self.source, True)

    def _read_process(self, t_s: float) -> PowerSample:
        """The process tree's share: its CPUs x (idle power per CPU + busy power per CPU)."""
        cpu, wall = self._process_cpu(), self._clock()
        d_cpu, d_wall = cpu - self._last[0], wall - self._last[1]
        if d_wall > 0:
            # a descendant that exits unreaped by the tree takes its time with it: never < 0
            self._busy_frac = min(1.0, max(0.0, d_cpu / (d_wall * self.n_cpus)))
            self._last = (cpu, wall)
        job_cpus = self._busy_frac * self.n_cpus
        idle_all, _ = self._profile.power_w(0.0, self.n_cpus)
        idle_w = idle_all * job_cpus / self.n_cpus
        _, busy_w = self._profile.power_w(job_cpus, self.n_cpus)
        return PowerSample(t_s, idle_w + busy_w, {"idle": idle_w, "cpu_busy": busy_w},
                           self.source, True)

    @property
    def covers(self) -> str:
        """Whose energy: the process tree, or the whole machine."""
        if self.attribution == "process":
            return (f"process {self.pid} and its children: their CPU seconds x (idle power / "
                    f"CPUs + busy power per CPU); other processes are not counted")
        return "the whole machine: every process's CPU load and the idle power"

    def describe(self) -> Dict[str, Any]:
        info = super().describe()
        p = self._profile
        info.update(profile_reason=self.profile_reason, n_cpus=self.n_cpus, idle_w=p.idle_w,
                    idle_w_per_core=p.idle_w_per_core, busy_w_per_core=p.busy_w_per_core,
                    profile_description=p.description, profile_sources=list(p.sources))
        return info
