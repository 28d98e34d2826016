"""The machine a run measured on: what its speed, and the last digits of its float sums, depend on.

Speed depends on the processor and on the threads torch uses. Float results depend, in their
last digits, on which kernels ran: torch picks its CPU kernels by instruction set
(``torch.backends.cpu.get_cpu_capability()``: ``AVX2``, ``AVX512``, ...) and MKL picks its own by
processor, and a matrix product summed in another order rounds differently: the same sweep on
two processors differs in the last digits of its perplexities and KLs (``docs/engine.md``, *The
results store*). So a run records its machine, the results store keys on
the processor and the kernel path (results computed elsewhere are recomputed, never mixed in),
and a baseline from another machine is named as such (its speedups are ratios and stay
comparable).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

CPUINFO = Path("/proc/cpuinfo")
SLOW_BF16 = (
    "WARNING: --prune-dtype bfloat16 on a CPU without native bfloat16 kernels (no avx512_bf16 or "
    "amx_bf16 flag): torch falls back to generic kernels, far slower than float32 (about 100x "
    "on an AVX2 processor); float32 is the faster choice on this machine"
)


@dataclass(frozen=True)
class Machine:
    """Where a run measured: the processor (or GPU), its cores, torch's threads, the kernel path."""

    cpu: str  # the processor's model name; the GPU's name on CUDA
    cores: int  # logical CPUs the operating system reports
    threads: int  # torch's intra-op threads in this process
    kernels: str  # torch's CPU capability (AVX2, AVX512, ...), or the GPU's compute capability

    @property
    def hardware(self) -> tuple[str, int, str]:
        """What two runs on the same machine share whatever threads each asked torch for."""
        return self.cpu, self.cores, self.kernels

    def describe(self) -> str:
        """One line for a summary: ``AMD EPYC, 2 cores, 2 torch threads, AVX2 kernels``."""
        threads = f"{self.threads} torch thread{'' if self.threads == 1 else 's'}"
        return f"{self.cpu}, {self.cores} cores, {threads}, {self.kernels} kernels"


def this_machine(device: str = "cpu") -> Machine:
    """The machine this process runs on, for ``device`` (``cpu``, ``cuda``, ``cuda:1``, ...)."""
    cores = os.cpu_count() or 1
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        major, minor = torch.cuda.get_device_capability(index)
        name = torch.cuda.get_device_name(index)
        return Machine(name, cores, torch.get_num_threads(), f"sm_{major}{minor}")
    return Machine(cpu_name(), cores, torch.get_num_threads(), torch.backends.cpu.get_cpu_capability())


def slow_bfloat16(device: str, cpuinfo: Path | None = None) -> bool:
    """Whether bfloat16 matrix products lack native kernels on ``device``: a CPU whose flags
    (``/proc/cpuinfo``) name neither ``avx512_bf16`` nor ``amx_bf16``. There torch falls back to
    slow generic kernels, far slower than its float32 ones. False off Linux or on a GPU (not known)."""
    flags = _cpuinfo("flags", cpuinfo) if device.startswith("cpu") else None
    return flags is not None and not {"avx512_bf16", "amx_bf16"} & set(flags.split())


def cpu_name(cpuinfo: Path | None = None) -> str:
    """The processor's model name: ``/proc/cpuinfo``'s ``model name`` on Linux, else what
    ``platform`` knows, else ``unknown``."""
    return _cpuinfo("model name", cpuinfo) or platform.processor() or platform.machine() or "unknown"


def _cpuinfo(key: str, cpuinfo: Path | None) -> str | None:
    """The first non-empty value of ``key`` in ``cpuinfo`` (default ``CPUINFO``, read when called,
    so a test can point it elsewhere), whitespace collapsed; None where unreadable or absent."""
    try:
        text = (cpuinfo or CPUINFO).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == key and value.strip():
            return " ".join(value.split())
    return None
