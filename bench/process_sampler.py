"""CPU time and peak memory of this process and every process it started (Ray's raylet, workers, actors).

CPU seconds count what the work cost whatever else the machine runs (wall time here is shared
with other users of the cores). Memory is PSS (proportional set size): pages shared between
processes, such as the object store's, count once in total instead of once per process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import psutil

MIB = 1024**2
GONE = (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess)


@dataclass
class ProcessStats:
    name: str
    peak_mib: float = 0.0
    cpu_s: float = 0.0


@dataclass
class ProcessPeaks:
    driver_mib: float = 0.0
    workers_mib: float = 0.0
    total_mib: float = 0.0
    processes: dict[int, ProcessStats] = field(default_factory=dict)

    def largest(self, count: int = 6) -> dict[str, float]:
        top = sorted(self.processes.items(), key=lambda item: -item[1].peak_mib)[:count]
        return {f"{pid} {stats.name}": round(stats.peak_mib, 1) for pid, stats in top}


def _title(process: psutil.Process) -> str:
    words = process.cmdline()
    title = words[0] if words and words[0].startswith("ray::") else process.name()
    return title.split(" ")[0][:60]


class ProcessSampler:
    """``with ProcessSampler() as sampler: ...`` then ``sampler.peaks`` and ``sampler.cpu_s()``.

    Samples every ``interval`` seconds; ``memory=False`` skips PSS (reading smaps costs CPU itself).
    The driver's CPU counts from entering the block; other processes' from their start.
    """

    def __init__(self, interval: float = 0.5, memory: bool = True) -> None:
        self.interval, self.memory = interval, memory
        self._driver_start = 0.0
        self._at_start: dict[int, float] = {}
        self.peaks = ProcessPeaks()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _observe(self, process: psutil.Process, driver: bool) -> float:
        try:
            with process.oneshot():
                pss = process.memory_full_info().pss / MIB if self.memory else 0.0
                times = process.cpu_times()
                title = "driver" if driver else _title(process)
        except GONE:
            return 0.0
        stats = self.peaks.processes.setdefault(process.pid, ProcessStats(title))
        if title != "ray::IDLE":
            stats.name = title
        stats.peak_mib = max(stats.peak_mib, pss)
        stats.cpu_s = times.user + times.system
        return pss

    def sample(self) -> None:
        me = psutil.Process()
        driver = self._observe(me, driver=True)
        workers = sum(self._observe(child, driver=False) for child in me.children(recursive=True))
        self.peaks.driver_mib = max(self.peaks.driver_mib, driver)
        self.peaks.workers_mib = max(self.peaks.workers_mib, workers)
        self.peaks.total_mib = max(self.peaks.total_mib, driver + workers)

    def cpu_s(self) -> float:
        """CPU seconds of the driver (since entering) and of every process it started."""
        own = psutil.Process().pid
        return sum(s.cpu_s for pid, s in self.peaks.processes.items() if pid != own) + self.driver_cpu_s()

    def cpu_s_in_block(self) -> float:
        """CPU seconds spent inside the block by the driver and every process it started (processes that
        were already running count from the block's start: a Ray kept up between runs)."""
        return sum(max(0.0, s.cpu_s - self._at_start.get(pid, 0.0)) for pid, s in self.peaks.processes.items())

    def cpu_by_name(self) -> dict[str, float]:
        """CPU seconds summed over processes of the same title (Ray titles workers by what they run)."""
        own = psutil.Process().pid
        totals: dict[str, float] = {"driver": self.driver_cpu_s()}
        for pid, stats in self.peaks.processes.items():
            if pid != own:
                totals[stats.name] = totals.get(stats.name, 0.0) + stats.cpu_s
        return {name: round(seconds, 2) for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1])}

    def driver_cpu_s(self) -> float:
        return self.peaks.processes[psutil.Process().pid].cpu_s - self._driver_start

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> ProcessSampler:
        self.sample()
        self._driver_start = self.peaks.processes[psutil.Process().pid].cpu_s
        self._at_start = {pid: stats.cpu_s for pid, stats in self.peaks.processes.items()}
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
