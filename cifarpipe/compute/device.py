"""Where and how the math runs: `resolve_compute` decides, `configure_torch` applies (docs/precision.md)."""
from __future__ import annotations

import contextlib
import functools
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace

import torch

from ..core.errors import PipelineError
from ..core.params import choose
from .gpus import claim_for_this_process
from .ranks import SINGLE, Ranks

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}
PRECISIONS = ("auto", *AMP_DTYPES)  # compute.precision


# The instructions that multiply bf16 natively, which oneDNN's convolutions use: AMX's TDPBF16PS (Intel
# Sapphire Rapids and later) and AVX512_BF16's VDPBF16PS (Intel Cooper Lake and later, AMD Zen 4 and later).
# Without them torch emulates bf16 and autocast runs several times slower than fp32 (docs/precision.md).
NATIVE_BF16 = ("amx_bf16", "avx512_bf16")


@dataclass(frozen=True)
class Machine:
    """What this machine offers: the GPUs torch sees, whether they run bf16, the GPUs the driver lists, the
    CPU's instruction sets as torch reports them (torch.cpu.get_capabilities), whether oneDNN runs its
    convolutions."""

    cuda_gpus: int
    cuda_bf16: bool
    driver_gpus: tuple[str, ...] = ()
    cpu_name: str = "CPU"
    cpu_flags: frozenset[str] = frozenset()
    cpu_onednn: bool = False

    @classmethod
    @functools.cache
    def probe(cls) -> Machine:
        caps = torch.cpu.get_capabilities()
        cpu = {"cpu_name": str(caps.get("cpu_name") or platform.processor() or "CPU"),
               "cpu_flags": frozenset(name for name, value in caps.items() if value is True),
               "cpu_onednn": torch.backends.mkldnn.is_available()}
        if torch.cuda.is_available():
            return cls(torch.cuda.device_count(), torch.cuda.is_bf16_supported(including_emulation=False),
                       **cpu)
        return cls(0, False, tuple(visible_nvidia_gpus()), **cpu)


@dataclass(frozen=True)
class Compute:
    """A resolved device, precision (bf16 | fp16 | fp32), memory format, determinism, this process's ranks.

    `device` is `cuda` without an index until `configure_torch` claims a free GPU for it.
    """

    device: torch.device
    precision: str
    channels_last: bool = False
    deterministic: bool = False
    ranks: Ranks = SINGLE
    warning: str = ""  # said once by configure_torch (a GPU torch cannot use, say)
    why: str = ""  # why this precision and memory format, in words (cifarpipe doctor)

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


def resolve_compute(settings, machine: Machine | None = None, *, precision: str | None = None,
                    device: str | None = None, ranks: Ranks = SINGLE) -> Compute:
    """The Compute that compute.device, .precision, .channels_last and .deterministic ask for on `machine`.

    `precision` and `device` replace compute.precision and compute.device, which are then not read (GradCAM
    computes in fp32; a rank of a distributed run trains on its own GPU). Nothing is claimed or set here.
    """
    machine = machine or Machine.probe()
    name, warning = device or settings.device, ""
    if name == "auto" and not machine.cuda_gpus:
        warning = cpu_fallback_warning(machine.driver_gpus) if machine.driver_gpus else ""
        name = "cpu"
    if name == "cpu":
        resolved = torch.device("cpu")
    elif not machine.cuda_gpus:
        raise PipelineError(f"compute.device is {name} but torch sees no CUDA GPU: set compute.device to auto or "
                            "cpu, or install a CUDA build of torch (`cifarpipe doctor` tells which)")
    else:
        resolved = torch.device("cuda" if name == "auto" else name)
        if resolved.index is not None and resolved.index >= machine.cuda_gpus:
            raise PipelineError(f"compute.device is {name} but torch sees {machine.cuda_gpus} GPU(s)")

    asked = choose(PRECISIONS, "compute.precision", precision or settings.precision)
    if resolved.type == "cuda":
        precision = asked if asked != "auto" else "bf16" if machine.cuda_bf16 else "fp16"
        why = ("compute.precision says so" if asked != "auto" else "this GPU runs bf16" if machine.cuda_bf16
               else "this GPU has no bf16, so fp16 with a loss scaler")
        channels_last = settings.channels_last
    else:
        precision, channels_last, why = cpu_choice(asked, settings.channels_last, machine)
    return Compute(resolved, precision, channels_last=channels_last, deterministic=settings.deterministic,
                   ranks=ranks, warning=warning, why=why)


def cpu_choice(asked: str, channels_last: bool, machine: Machine) -> tuple[str, bool, str]:
    """(precision, channels_last, why) on `machine`'s CPU: bf16 autocast where its cores multiply bf16
    natively, else fp32; NHWC wherever oneDNN runs the convolutions (docs/precision.md, measured)."""
    native = [flag for flag in NATIVE_BF16 if flag in machine.cpu_flags]
    if asked != "auto":
        precision, why = asked, "compute.precision says so"
    elif native and machine.cpu_onednn:
        precision, why = "bf16", f"{machine.cpu_name} has {' and '.join(native)}, native bf16 dot products"
    elif native:
        precision, why = "fp32", "this torch has no oneDNN for bf16 convolutions"
    else:
        precision, why = "fp32", (f"{machine.cpu_name} has no {' or '.join(NATIVE_BF16)}, so bf16 would be "
                                  "emulated, slower than fp32")
    if not channels_last:
        return precision, False, why + "; compute.channels_last is false"
    if not machine.cpu_onednn:
        return precision, False, why + "; no oneDNN for NHWC convolutions"
    return precision, True, why + "; oneDNN runs NHWC convolutions without reordering"


def configure_torch(compute: Compute, *, seed: int | None = None) -> Compute:
    """Claim a free GPU when `compute` names none, set torch's backend flags, seed torch; return the Compute
    on its GPU."""
    if compute.warning:
        print(compute.warning, file=sys.stderr, flush=True)
    if compute.device.type == "cuda" and compute.device.index is None:
        claimed = claim_for_this_process(torch.cuda.device_count())
        compute = replace(compute, device=torch.device("cuda", claimed))
    if compute.device.type == "cuda":
        torch.cuda.set_device(compute.device)
        use_fast_cuda_kernels(deterministic=compute.deterministic)
    if compute.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before the first matmul
        # warn_only: max-pool's backward has no deterministic CUDA kernel; with non-overlapping windows its
        # result does not depend on the order
        torch.use_deterministic_algorithms(True, warn_only=True)
    if seed is not None:
        torch.manual_seed(seed)
    return compute


def use_fast_cuda_kernels(*, deterministic: bool) -> None:
    """cuDNN autotuning (unless `deterministic`), TF32 for fp32 matmuls and convolutions.

    TF32 goes through set_float32_matmul_precision: the fp32_precision attribute makes
    torch.get_float32_matmul_precision() raise, which inductor's autotuning calls.
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


def cpu_fallback_warning(gpus) -> str:
    return ("\n" + "!" * 100 + "\nWARNING: nvidia-smi sees " + "; ".join(gpus) + ", but torch cannot use it "
            f"(torch {torch.__version__} is built for CUDA "
            f"{torch.version.cuda or 'none (a CPU-only build)'}). "
            "This run falls back to the CPU and will take hours. Install a torch build whose CUDA version "
            "the driver supports (docs/dependencies.md), check with `cifarpipe doctor`, or set compute.device: "
            "cpu to silence this.\n" + "!" * 100 + "\n")
