"""Which int8 kernels onnxruntime runs on this CPU, read from the CPU itself (CPUID on x86-64, the kernel's
hardware capabilities on ARM64), so a report can say whether int8 results may differ from a VNNI machine's.

- `x86-vnni`: AVX-512 VNNI or AVX-VNNI: u8×s8 products summed in 32 bits, exact.
- `x86-u8s8-saturating`: AVX2 or AVX-512 without VNNI: onnxruntime's u8×s8 kernels add pairs of products in
  16 bits, which can saturate (its `session.x64quantprecision` option converts the weights to u8 instead).
- `x86-sse`: older x86-64 (SSE4.1 kernels).
- `arm64-i8mm`, `arm64-dotprod`, `arm64-neon`: ARM64 with the int8 matrix-multiply extension, with the dot
  product extension, or NEON only.
- `unknown`: anything else, or where the CPU cannot be asked.
"""
from __future__ import annotations

import ctypes
import mmap
import platform
from functools import lru_cache
from typing import Optional

X86_VNNI = "x86-vnni"
X86_SATURATING = "x86-u8s8-saturating"
X86_SSE = "x86-sse"
ARM64_I8MM = "arm64-i8mm"
ARM64_DOTPROD = "arm64-dotprod"
ARM64_NEON = "arm64-neon"
UNKNOWN = "unknown"

# cpuid(leaf in edi, subleaf in esi, uint32 out[4] in rdx), System V x86-64
_CPUID = bytes([0x53, 0x89, 0xF8, 0x89, 0xF1, 0x49, 0x89, 0xD0, 0x0F, 0xA2, 0x41, 0x89, 0x00, 0x41, 0x89, 0x58,
                0x04, 0x41, 0x89, 0x48, 0x08, 0x41, 0x89, 0x50, 0x0C, 0x5B, 0xC3])


def _cpuid(leaf: int, subleaf: int = 0) -> Optional[tuple[int, int, int, int]]:
    """(eax, ebx, ecx, edx) of the CPUID instruction, run from a small executable page; None if not allowed."""
    try:
        page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except (OSError, ValueError, AttributeError):
        return None
    try:
        page.write(_CPUID)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(page))
        fn = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32))(addr)
        out = (ctypes.c_uint32 * 4)()
        fn(leaf, subleaf, out)
        result = (out[0], out[1], out[2], out[3])
        del fn, addr
        return result
    finally:
        try:
            page.close()
        except BufferError:  # a ctypes view still points into it; the page is freed with the process
            pass


def _x86() -> str:
    top = _cpuid(0)
    if top is None:
        return _x86_from_cpuinfo()
    leaf7 = _cpuid(7, 0) if top[0] >= 7 else (0, 0, 0, 0)
    leaf7_1 = _cpuid(7, 1) if top[0] >= 7 else (0, 0, 0, 0)
    assert leaf7 is not None and leaf7_1 is not None
    avx2 = bool(leaf7[1] & (1 << 5))
    avx512f = bool(leaf7[1] & (1 << 16))
    avx512_vnni = bool(leaf7[2] & (1 << 11))
    avx_vnni = bool(leaf7_1[0] & (1 << 4))
    if (avx512f and avx512_vnni) or (avx2 and avx_vnni):
        return X86_VNNI
    if avx2 or avx512f:
        return X86_SATURATING
    return X86_SSE


def _x86_from_cpuinfo() -> str:
    flags = set()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        return UNKNOWN
    if not flags:
        return UNKNOWN
    if {"avx512_vnni", "avx512f"} <= flags or {"avx_vnni", "avx2"} <= flags:
        return X86_VNNI
    return X86_SATURATING if flags & {"avx2", "avx512f"} else X86_SSE


def _arm64() -> str:
    try:
        getauxval = ctypes.CDLL(None).getauxval
    except (OSError, AttributeError):
        return UNKNOWN
    getauxval.restype = ctypes.c_ulong
    getauxval.argtypes = [ctypes.c_ulong]
    hwcap, hwcap2 = getauxval(16), getauxval(26)  # AT_HWCAP, AT_HWCAP2
    if hwcap2 & (1 << 13):  # HWCAP2_I8MM
        return ARM64_I8MM
    if hwcap & (1 << 20):  # HWCAP_ASIMDDP
        return ARM64_DOTPROD
    return ARM64_NEON if hwcap & (1 << 1) else UNKNOWN  # HWCAP_ASIMD


@lru_cache(maxsize=1)
def int8_path() -> str:
    """This CPU's int8 path: one of the names in this module's docstring."""
    machine = platform.machine().lower()
    try:
        if machine in ("x86_64", "amd64"):
            return _x86()
        if machine in ("aarch64", "arm64"):
            return _arm64()
    except Exception:  # a CPU or a sandbox this module does not know: say so rather than fail
        return UNKNOWN
    return UNKNOWN


def saturates() -> bool:
    """Whether onnxruntime's default u8×s8 int8 kernels can saturate on this CPU."""
    return int8_path() in (X86_SATURATING, X86_SSE)
