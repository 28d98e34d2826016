from __future__ import annotations

import torch

from pruning.common.machine import Machine, cpu_name, slow_bfloat16, this_machine


def test_cpu_name_reads_the_model_name_and_falls_back_where_there_is_none(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD  EPYC 7B13\n\nprocessor\t: 1\n")
    assert cpu_name(info) == "AMD EPYC 7B13"
    info.write_text("processor\t: 0\nmodel name\t:\n")  # some virtual machines leave it empty
    assert cpu_name(info) not in ("", "AMD EPYC 7B13")
    assert cpu_name(tmp_path / "missing") != ""


def test_this_machine_on_the_cpu_records_torch_threads_and_its_kernel_path():
    machine = this_machine("cpu")
    assert machine.threads == torch.get_num_threads() and machine.cores >= 1
    assert machine.kernels == torch.backends.cpu.get_cpu_capability() and machine.cpu
    assert Machine("AMD EPYC", 2, 2, "AVX2").describe() == "AMD EPYC, 2 cores, 2 torch threads, AVX2 kernels"
    assert Machine("AMD EPYC", 2, 1, "AVX2").describe() == "AMD EPYC, 2 cores, 1 torch thread, AVX2 kernels"


def test_slow_bfloat16_reads_the_cpu_flags(tmp_path):
    """bfloat16 is flagged slow on a CPU whose flags name neither avx512_bf16 nor amx_bf16 (there
    torch's bfloat16 kernels are generic and slow), never on a GPU or where unknown."""
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n")
    assert slow_bfloat16("cpu", info)
    assert not slow_bfloat16("cuda", info)
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile amx_bf16\n")
    assert not slow_bfloat16("cpu", info)
    assert not slow_bfloat16("cpu", tmp_path / "missing")
