"""This CPU's int8 path, read from the CPU itself; other x86 CPUs under qemu user-mode (lean: base install)."""
import platform
import shutil
import subprocess
import sys

import pytest

from koner import cpu

NAMES = {cpu.X86_VNNI, cpu.X86_SATURATING, cpu.X86_SSE, cpu.ARM64_I8MM, cpu.ARM64_DOTPROD, cpu.ARM64_NEON, cpu.UNKNOWN}
QEMU = shutil.which("qemu-x86_64-static") or shutil.which("qemu-x86_64")


def test_this_cpu_has_a_known_int8_path():
    path = cpu.int8_path()
    assert path in NAMES
    if platform.machine() == "x86_64":
        assert path.startswith("x86-")
        flags = open("/proc/cpuinfo").read()
        assert (path == cpu.X86_VNNI) == (" avx512_vnni" in flags or " avx_vnni" in flags)  # CPUID agrees
    assert cpu.saturates() == (path in (cpu.X86_SATURATING, cpu.X86_SSE))


@pytest.mark.skipif(not QEMU or platform.machine() != "x86_64",
                    reason="needs qemu user-mode for x86-64 (apt-get install qemu-user-static)")
@pytest.mark.parametrize("model,path", [("Haswell", cpu.X86_SATURATING), ("EPYC-Rome", cpu.X86_SATURATING),
                                        ("Nehalem", cpu.X86_SSE)])
def test_other_x86_cpus_under_emulation(model, path):
    code = "from koner.cpu import int8_path; print(int8_path())"
    out = subprocess.run([QEMU, "-cpu", model, sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == path
