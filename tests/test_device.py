"""The device module: what resolves to what on a stated machine, the loud CPU-fallback warning, clear errors
for a missing GPU."""
import os
import subprocess
import sys

import pytest
import torch

from cifarpipe.compute.device import Compute, Machine, configure_torch, resolve_compute
from cifarpipe.core.errors import PipelineError
from conftest import CPU_COMPUTE, ROOT

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine where torch sees no GPU")


def settings(**changes):
    return CPU_COMPUTE.model_copy(update=changes)


NO_GPU = Machine(cuda_gpus=0, cuda_bf16=False)  # and a CPU that reports nothing
TWO_GPUS = Machine(cuda_gpus=2, cuda_bf16=True)
OLD_GPU = Machine(cuda_gpus=1, cuda_bf16=False)


def cpu(name, *flags, onednn=True):
    """A machine without a GPU whose CPU reports `flags` (torch.cpu.get_capabilities' names)."""
    return Machine(cuda_gpus=0, cuda_bf16=False, cpu_name=name, cpu_flags=frozenset(flags), cpu_onednn=onednn)


ZEN4 = cpu("AMD EPYC 9654", "avx2", "avx512_f", "avx512_bf16", "avx512_vnni")
SAPPHIRE_RAPIDS = cpu("Intel Xeon Platinum 8480+", "avx2", "avx512_f", "avx512_bf16", "amx_tile", "amx_bf16")
SKYLAKE_X = cpu("Intel Xeon Gold 6148", "avx2", "avx512_f", "avx512_vnni")
ZEN1 = cpu("AMD EPYC 7601", "avx2", "fma3")
NO_ONEDNN = cpu("a CPU torch has no oneDNN for", "avx512_bf16", onednn=False)


def cpu_rule(machine, **changes):
    asked = {"device": "auto", "precision": "auto", "channels_last": True, **changes}
    compute = resolve_compute(settings(**asked), machine)
    assert compute.device.type == "cpu"
    return compute.precision, compute.channels_last


def test_auto_on_the_cpu_is_bf16_where_the_cores_multiply_it_natively_and_nhwc_wherever_onednn_runs():
    assert cpu_rule(ZEN4) == ("bf16", True)
    assert cpu_rule(SAPPHIRE_RAPIDS) == ("bf16", True)
    assert cpu_rule(SKYLAKE_X) == ("fp32", True)  # AVX-512 without its bf16 instructions: emulated
    assert cpu_rule(ZEN1) == ("fp32", True)
    assert cpu_rule(NO_ONEDNN) == ("fp32", False)
    assert cpu_rule(NO_GPU) == ("fp32", False)
    assert cpu_rule(ZEN4, channels_last=False) == ("bf16", False)


def test_an_explicit_precision_wins_on_any_cpu():
    for machine in (ZEN4, ZEN1, NO_ONEDNN):
        assert [cpu_rule(machine, precision=p)[0] for p in ("bf16", "fp16", "fp32")] == [
            "bf16", "fp16", "fp32"]
    assert resolve_compute(settings(precision="auto"), ZEN4, precision="fp32").precision == "fp32"  # GradCAM's


def test_the_cpu_choice_says_why_in_words():
    assert resolve_compute(settings(precision="auto"), SAPPHIRE_RAPIDS).why.startswith(
        "Intel Xeon Platinum 8480+ has amx_bf16 and avx512_bf16, native bf16 dot products")
    why = resolve_compute(settings(precision="auto", channels_last=True), ZEN1).why
    assert why == ("AMD EPYC 7601 has no amx_bf16 or avx512_bf16, so bf16 would be emulated, slower than "
                   "fp32; oneDNN runs NHWC convolutions without reordering")
    assert resolve_compute(settings(precision="fp32"), ZEN4).why.startswith("compute.precision says so")


def test_this_machine_reports_what_torch_reports():
    here, caps = Machine.probe(), torch.cpu.get_capabilities()
    assert ("avx512_bf16" in here.cpu_flags) == bool(caps.get("avx512_bf16"))
    assert ("amx_bf16" in here.cpu_flags) == bool(caps.get("amx_bf16"))
    assert here.cpu_onednn == torch.backends.mkldnn.is_available()


def test_resolving_only_decides_for_the_machine_it_is_given():
    """A pure function of the params and the machine: GPUs are claimed, and flags set, by configure_torch."""
    auto = settings(device="auto", precision="auto", channels_last=True, deterministic=True)
    on_two = resolve_compute(auto, TWO_GPUS)
    assert (str(on_two.device), on_two.precision, on_two.channels_last, on_two.deterministic) == (
        "cuda", "bf16", True, True)
    assert resolve_compute(auto, OLD_GPU).precision == "fp16"
    assert str(resolve_compute(settings(device="cuda:1"), TWO_GPUS).device) == "cuda:1"
    with pytest.raises(PipelineError, match="compute.device is cuda:2 but torch sees 2 GPU"):
        resolve_compute(settings(device="cuda:2"), TWO_GPUS)
    assert resolve_compute(auto, NO_GPU).device.type == "cpu"
    assert not torch.are_deterministic_algorithms_enabled()


def test_configuring_seeds_torch():
    configure_torch(resolve_compute(settings(), NO_GPU), seed=3)
    first = torch.rand(2)
    configure_torch(resolve_compute(settings(), NO_GPU), seed=3)
    assert torch.equal(first, torch.rand(2))


def test_only_fp16_scales_the_loss():
    cpu = torch.device("cpu")
    assert Compute(cpu, "fp16").grad_scaler().is_enabled()
    assert not Compute(cpu, "bf16").grad_scaler().is_enabled()
    assert not Compute(cpu, "fp32").grad_scaler().is_enabled()


@no_gpu
def test_asking_for_cuda_without_a_gpu_names_the_fix():
    with pytest.raises(PipelineError, match="compute.device is cuda:1 but torch sees no CUDA GPU.*doctor"):
        resolve_compute(settings(device="cuda:1"), NO_GPU)


@no_gpu
def test_auto_falling_back_to_the_cpu_while_nvidia_smi_sees_a_gpu_warns_loudly(tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3, 535.104.05'\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c",
                           "from cifarpipe.compute.device import configure_torch, resolve_compute; "
                           "from cifarpipe.core.params import load_params; "
                           "print(configure_torch(resolve_compute(load_params().compute)).device)"],
                          env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "cpu"
    assert "WARNING: nvidia-smi sees NVIDIA H100 80GB HBM3, 535.104.05" in proc.stderr
    assert f"built for CUDA {torch.version.cuda or 'none'}" in proc.stderr
    assert "will take hours" in proc.stderr


@no_gpu
def test_no_warning_without_a_gpu(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path), "PYTHONPATH": str(ROOT)}  # no nvidia-smi on PATH
    proc = subprocess.run([sys.executable, "-c",
                           "from cifarpipe.compute.device import configure_torch, resolve_compute; "
                           "from cifarpipe.core.params import load_params; "
                           "configure_torch(resolve_compute(load_params().compute))"],
                          env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert "WARNING" not in proc.stderr


def test_the_cuda_kernel_flags_leave_torchs_precision_getters_readable():
    """Setting TF32 through torch.backends.cuda.matmul.fp32_precision made
    torch.get_float32_matmul_precision() raise, which inductor's autotuning calls (compute.compile_mode:
    max-autotune). The flags are process-wide, so they are set in a process of their own; they need no GPU."""
    code = ("import torch; from cifarpipe.compute.device import use_fast_cuda_kernels; "
            "use_fast_cuda_kernels(deterministic=False); "
            "print(torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32, "
            "torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision, "
            "torch.backends.cudnn.benchmark)")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["high", "True", "tf32", "tf32", "True"]
