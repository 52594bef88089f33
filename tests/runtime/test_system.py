"""Usable CPUs under a container's CPU quota, from fake cgroup v1 and v2 trees (lean: base install and pytest)."""
import os

import pytest

from koner.system import cgroup_cpu_quota, usable_cpus

pytestmark = pytest.mark.lean


def _tree(tmp_path, proc_line, files):
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(proc_line + "\n")
    return root, proc


AFFINITY = len(os.sched_getaffinity(0))


@pytest.mark.parametrize("files,quota", [
    ({"kubepods/pod1/cpu.max": "150000 100000\n", "kubepods/cpu.max": "max 100000\n"}, 1.5),
    ({"kubepods/pod1/cpu.max": "max 100000\n", "kubepods/cpu.max": "50000 100000\n"}, 0.5),  # a parent's limit
    ({"kubepods/pod1/cpu.max": "300000 100000\n", "kubepods/cpu.max": "200000 100000\n"}, 2.0),  # the smaller
    ({"kubepods/pod1/cpu.max": "max 100000\n"}, None),
])
def test_cgroup_v2_cpu_max(tmp_path, files, quota):
    root, proc = _tree(tmp_path, "0::/kubepods/pod1", files)
    assert cgroup_cpu_quota(root, proc) == quota
    cpus = usable_cpus(root, proc)
    import math

    assert cpus == (AFFINITY if quota is None else min(AFFINITY, max(1, math.ceil(quota))))


@pytest.mark.parametrize("quota_us,period_us,quota", [("50000", "100000", 0.5), ("250000", "100000", 2.5),
                                                       ("-1", "100000", None)])
def test_cgroup_v1_cfs_quota(tmp_path, quota_us, period_us, quota):
    files = {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": quota_us + "\n",
             "cpu,cpuacct/docker/abc/cpu.cfs_period_us": period_us + "\n"}
    root, proc = _tree(tmp_path, "4:cpu,cpuacct:/docker/abc", files)
    assert cgroup_cpu_quota(root, proc) == quota
    assert usable_cpus(root, proc) == (AFFINITY if quota is None else min(AFFINITY, max(1, -(-quota // 1))))


def test_a_half_cpu_quota_still_gives_one_cpu_and_unreadable_files_are_no_limit(tmp_path):
    root, proc = _tree(tmp_path, "0::/a", {"a/cpu.max": "10000 100000\n"})
    assert usable_cpus(root, proc) == 1
    root, proc = _tree(tmp_path / "x", "0::/a", {"a/cpu.max": "garbage\n"})
    assert cgroup_cpu_quota(root, proc) is None
    assert cgroup_cpu_quota(tmp_path / "none", tmp_path / "no-proc-file") is None
