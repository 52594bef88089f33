"""This CPU's int8 path, read from the CPU itself; other x86 CPUs under qemu user-mode (lean: base install).

koner's CPUID logic is checked on each emulated CPU by loading `koner/cpu.py` on its own (it needs only the
standard library), so the answer does not depend on whether numpy's or onnxruntime's wheels run on that CPU;
the whole runtime is checked on the emulated CPUs where they do, and skipped, naming the dependency, where not."""
import platform

import pytest

from support.emulation import CPU_MODULE, needs_qemu, run, skip_unless_dependencies_start
from koner import cpu

pytestmark = pytest.mark.lean

NAMES = {cpu.X86_VNNI, cpu.X86_SATURATING, cpu.X86_SSE, cpu.ARM64_I8MM, cpu.ARM64_DOTPROD, cpu.ARM64_NEON, cpu.UNKNOWN}
EMULATED = [("Nehalem", cpu.X86_SSE), ("Haswell", cpu.X86_SATURATING), ("EPYC-Rome", cpu.X86_SATURATING)]

# koner/cpu.py alone, from its file: the standard library only, whatever the CPU
STANDALONE = f"""
import importlib.util
spec = importlib.util.spec_from_file_location("koner_cpu", {str(CPU_MODULE)!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(module.int8_path(), module.saturates())
"""


def test_this_cpu_has_a_known_int8_path():
    path = cpu.int8_path()
    assert path in NAMES
    if platform.machine() == "x86_64":
        assert path.startswith("x86-")
        flags = open("/proc/cpuinfo").read()
        assert (path == cpu.X86_VNNI) == (" avx512_vnni" in flags or " avx_vnni" in flags)  # CPUID agrees
    assert cpu.saturates() == (path in (cpu.X86_SATURATING, cpu.X86_SSE))


def test_the_cpu_module_needs_only_the_standard_library():
    """What lets the emulated checks below run it on CPUs that numpy's wheels refuse."""
    import ast

    tree = ast.parse(CPU_MODULE.read_text("utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert imported <= {"__future__", "ctypes", "mmap", "platform", "functools", "typing"}, imported


@needs_qemu
@pytest.mark.parametrize("model,path", EMULATED + [("core2duo", cpu.X86_SSE)])
def test_koners_cpuid_logic_on_other_x86_cpus(model, path):
    out = run(model, STANDALONE, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [path, str(path != cpu.X86_VNNI)]


@needs_qemu
@pytest.mark.parametrize("model,path", EMULATED)
def test_the_installed_runtime_on_other_x86_cpus(model, path):
    """`import koner` with its dependencies, where they start on the emulated CPU, gives the same answer."""
    skip_unless_dependencies_start(model)
    out = run(model, "from koner.cpu import int8_path; print(int8_path())", timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == path
