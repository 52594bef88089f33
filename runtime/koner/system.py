"""What this process may use of the machine: usable CPUs (affinity mask and cgroup CPU quota) and memory."""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Optional

CGROUP = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def usable_cpus(cgroup_root: Path = CGROUP, proc_cgroup: Path = PROC_CGROUP) -> int:
    """CPUs this process may really use: the affinity mask, capped by a container's cgroup CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        n = min(n, max(1, math.ceil(quota - 1e-9)))
    return max(1, n)


def engine_cpus() -> int:
    """CPUs a data engine reserved for this worker (a Ray actor's CPUs, Spark's `spark.task.cpus`), else
    `usable_cpus()`. Looks only at engines this process has already imported."""
    if "ray" in sys.modules:
        try:
            ray = sys.modules["ray"]
            if ray.is_initialized():
                cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
                if cpus:
                    return max(1, round(cpus))
        except Exception:  # not inside a Ray worker, or an older Ray
            pass
    if "pyspark" in sys.modules:
        try:
            from pyspark import TaskContext

            ctx = TaskContext.get()
            if ctx is not None:
                return max(1, int(ctx.cpus()))
        except Exception:  # not inside a Spark task
            pass
    return usable_cpus()


def cgroup_cpu_quota(root: Path = CGROUP, proc_cgroup: Path = PROC_CGROUP) -> Optional[float]:
    """The CPU quota of this process's cgroup in CPUs (e.g. 1.5), or None when there is none.

    cgroup v2: `cpu.max` ("max 100000" or "150000 100000") of the process's own cgroup and its parents;
    cgroup v1: `cpu.cfs_quota_us` / `cpu.cfs_period_us` (quota -1: none).
    """
    limits = []
    for d in _cgroup_dirs(root, proc_cgroup):
        try:
            if (d / "cpu.max").is_file():
                quota, period = (d / "cpu.max").read_text().split()[:2]
                if quota != "max":
                    limits.append(int(quota) / int(period))
            elif (d / "cpu.cfs_quota_us").is_file():
                quota = int((d / "cpu.cfs_quota_us").read_text())
                period = int((d / "cpu.cfs_period_us").read_text())
                if quota > 0 and period > 0:
                    limits.append(quota / period)
        except (OSError, ValueError):
            continue
    return min(limits) if limits else None


def _cgroup_dirs(root: Path, proc_cgroup: Path) -> list[Path]:
    """This process's cgroup folders (as `proc_cgroup` lists them), innermost first, then their parents."""
    dirs: list[Path] = []
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return [root]
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        ctrl, rel = parts[1], parts[2].lstrip("/")
        if ctrl == "":  # v2 unified hierarchy
            base = root
        elif "cpu" in ctrl.split(","):
            base = root / ctrl if (root / ctrl).is_dir() else root / "cpu"
        else:
            continue
        d = base / rel if rel else base
        while True:
            dirs.append(d)
            if d == base:
                break
            d = d.parent
    return dirs or [root]


def _status_kb(field: str) -> Optional[float]:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """This process's resident set now, in MB (VmRSS; 0 where /proc is missing)."""
    kb = _status_kb("VmRSS")
    return kb / 1024 if kb is not None else 0.0


def peak_rss_mb() -> float:
    """This process's own peak resident set in MB (VmHWM; ru_maxrss can carry a parent's peak across exec)."""
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb / 1024
    import resource  # not on Windows

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
