"""The device module: precision choice, the loud CPU-fallback warning, clear errors for a missing GPU."""
import os
import subprocess
import sys

import pytest
import torch

from cifarpipe.compute.device import Compute, compute_for
from cifarpipe.core.errors import PipelineError
from conftest import CPU_TRAIN, ROOT

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine where torch sees no GPU")


def test_auto_precision_is_fp32_on_the_cpu_and_explicit_choices_stand():
    assert compute_for({**CPU_TRAIN, "precision": "auto"}).precision == "fp32"
    assert [compute_for({**CPU_TRAIN, "precision": p}).precision for p in ("bf16", "fp16", "fp32")] == [
        "bf16", "fp16", "fp32"]
    assert compute_for({**CPU_TRAIN, "channels_last": True}).channels_last is False  # CUDA only


def test_only_fp16_scales_the_loss():
    cpu = torch.device("cpu")
    assert Compute(cpu, "fp16").grad_scaler().is_enabled()
    assert not Compute(cpu, "bf16").grad_scaler().is_enabled()
    assert not Compute(cpu, "fp32").grad_scaler().is_enabled()


@no_gpu
def test_asking_for_cuda_without_a_gpu_names_the_fix():
    with pytest.raises(PipelineError, match="train.device is cuda:1 but torch sees no CUDA GPU.*doctor"):
        compute_for({**CPU_TRAIN, "device": "cuda:1"})


@no_gpu
def test_auto_falling_back_to_the_cpu_while_nvidia_smi_sees_a_gpu_warns_loudly(tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3, 535.104.05'\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c",
                           "from cifarpipe.compute.device import compute_for; print(compute_for("
                           "{'device': 'auto', 'precision': 'auto', 'channels_last': True, 'deterministic': "
                           "False}).device)"], env=env, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "cpu"
    assert "WARNING: nvidia-smi sees NVIDIA H100 80GB HBM3, 535.104.05" in proc.stderr
    assert f"built for CUDA {torch.version.cuda or 'none'}" in proc.stderr
    assert "will take hours" in proc.stderr


@no_gpu
def test_no_warning_without_a_gpu(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path), "PYTHONPATH": str(ROOT)}  # no nvidia-smi on PATH
    proc = subprocess.run([sys.executable, "-c",
                           "from cifarpipe.compute.device import compute_for; compute_for("
                           "{'device': 'auto', 'precision': 'auto', 'channels_last': True, 'deterministic': "
                           "False})"],
                          env=env, capture_output=True, text=True, check=True)
    assert "WARNING" not in proc.stderr


def test_the_cuda_kernel_flags_leave_torchs_precision_getters_readable():
    """Setting TF32 through torch.backends.cuda.matmul.fp32_precision made
    torch.get_float32_matmul_precision() raise, which inductor's autotuning calls (train.compile_mode:
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
