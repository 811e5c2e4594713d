"""Where and how the math runs: the device, seeding, backend flags, precision (autocast) and memory format.

Every stage that touches a model gets a `Compute` from `compute_for(params["train"])` and asks it, never
torch directly, so the CPU and every GPU run one code path:

- device `auto` is CUDA when torch sees a GPU, else the CPU, with a loud warning when `nvidia-smi` sees a
  GPU that torch cannot use (a torch built for a newer CUDA than the driver): a 24-epoch run must not
  drift silently into hours on the CPU.
- precision `auto` is bf16 on GPUs that have it (Ampere and newer), fp16 with a gradient scaler on older
  ones (T4, V100), fp32 on the CPU. bf16 and fp16 are autocast: weights, BatchNorm and its running
  statistics stay fp32. An explicit bf16 or fp16 also runs on the CPU (slowly), so the CPU tests cover
  the autocast path.
- on CUDA: cuDNN autotuning and TF32 matmuls/convolutions, unless `deterministic` asks for
  bit-repeatable runs (deterministic kernels, no autotuning, at some cost in speed).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

import torch

from ..core.errors import PipelineError
from ..core.params import choose
from .gpus import claim_for_this_process
from .ranks import SINGLE, Ranks

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}
PRECISIONS = ("auto", *AMP_DTYPES)  # train.precision


@dataclass(frozen=True)
class Compute:
    """A resolved device, precision (bf16 | fp16 | fp32), memory format, and this process's ranks."""

    device: torch.device
    precision: str
    channels_last: bool = False
    ranks: Ranks = SINGLE

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return AMP_DTYPES[self.precision]

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self):
        """The forward pass's precision: autocast in bf16/fp16, or nothing for fp32."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaling for fp16, whose small gradients would underflow; a no-op for bf16 and fp32."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def describe(self) -> str:
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "CPU"
        return f"{self.device} ({name}), {self.precision}" + (", channels_last" if self.channels_last else "")


def compute_for(train: dict, *, seed: int | None = None, precision: str | None = None,
                device: str | None = None, ranks: Ranks = SINGLE, claim: bool = True) -> Compute:
    """The Compute the train params ask for (train.device, .precision, .channels_last, .deterministic).

    `precision` and `device` override train.precision and train.device, which are then not read: a stage that
    does not declare them in dvc.yaml may not read them (GradCAM computes in fp32; a rank of a distributed run
    trains on its own GPU). `auto` and `cuda` claim a free GPU for this process (compute/gpus.py;
    `claim=False` only says which one, for the doctor), so stages run side by side by `dvc queue start --jobs
    N` spread over the box's GPUs; `cuda:K` pins GPU K by hand. torch is seeded with `seed` when given.
    """
    name = device or train["device"]
    if name == "auto" and not torch.cuda.is_available():
        gpus = visible_nvidia_gpus()
        if gpus:
            print(cpu_fallback_warning(gpus), file=sys.stderr, flush=True)
        name = "cpu"
    if name == "cpu":
        resolved = torch.device("cpu")
    elif not torch.cuda.is_available():
        raise PipelineError(f"train.device is {name} but torch sees no CUDA GPU: set train.device to auto or "
                            "cpu, or install a CUDA build of torch (`cifarpipe doctor` tells which)")
    elif name.startswith("cuda:"):
        resolved = torch.device(name)
        if resolved.index >= torch.cuda.device_count():
            raise PipelineError(f"train.device is {name} but torch sees {torch.cuda.device_count()} GPU(s)")
    else:
        resolved = torch.device("cuda", claim_for_this_process(torch.cuda.device_count()) if claim else 0)
    if resolved.type == "cuda" and claim:
        torch.cuda.set_device(resolved)

    precision = choose(PRECISIONS, "train.precision", precision or train["precision"])
    if precision == "auto":
        precision = ("fp32" if resolved.type != "cuda" else
                     "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16")

    if train["deterministic"]:
        # cuBLAS needs a fixed workspace to be deterministic; set before the first matmul
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # warn_only: max-pool backward has no deterministic CUDA kernel, but with non-overlapping windows (the
        # only pooling here) each input gets at most one gradient, so its result does not depend on the order
        torch.use_deterministic_algorithms(True, warn_only=True)
    if resolved.type == "cuda":
        use_fast_cuda_kernels(deterministic=train["deterministic"])
    if seed is not None:
        torch.manual_seed(seed)
    return Compute(resolved, precision, channels_last=resolved.type == "cuda" and train["channels_last"],
                   ranks=ranks)


def use_fast_cuda_kernels(*, deterministic: bool) -> None:
    """cuDNN autotuning (unless `deterministic`) and TF32 for fp32 matmuls and convolutions.

    The matmuls' TF32 is set with torch.set_float32_matmul_precision, not torch.backends.cuda.matmul.
    fp32_precision: after the latter, torch.get_float32_matmul_precision() raises ("mix of the legacy and new
    APIs"), and inductor's autotuning calls it, so train.compile_mode max-autotune would fail.
    """
    torch.backends.cudnn.benchmark = not deterministic
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.conv.fp32_precision = "tf32"


def nvidia_smi(*args: str) -> str | None:
    """What `nvidia-smi <args>` prints; None without nvidia-smi, or when it fails (no driver)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def visible_nvidia_gpus() -> list[str]:
    """'name, driver version' of each GPU nvidia-smi lists; empty without nvidia-smi or a driver."""
    out = nvidia_smi("--query-gpu=name,driver_version", "--format=csv,noheader") or ""
    return [line.strip() for line in out.splitlines() if line.strip()]


def cpu_fallback_warning(gpus: list[str]) -> str:
    return ("\n" + "!" * 100 + "\nWARNING: nvidia-smi sees " + "; ".join(gpus) + ", but torch cannot use it "
            f"(torch {torch.__version__} is built for CUDA "
            f"{torch.version.cuda or 'none (a CPU-only build)'}). "
            "This run falls back to the CPU and will take hours. Install a torch build whose CUDA version "
            "the driver supports (docs/dependencies.md), check with `cifarpipe doctor`, or set train.device: "
            "cpu to silence this.\n" + "!" * 100 + "\n")
