"""The CPU cores' peak FLOP/s from the clock, the cores and the instructions, and a run's FLOPs per image.

The peak is cores x clock x FLOPs per cycle, and the FLOPs per cycle are one instruction's FLOPs (exact) times
how many a core completes per cycle. Both the rate and the clock are measured here where a C compiler is at
hand (benchmarks/dot_rate.c: the instruction back to back on one core, the clock from a chain of dependent
multiplies, each against the thread's CPU time), the clock again before and after the run; elsewhere the
vendors' figures and the clock lscpu or /proc/cpuinfo states stand in, and the line says so
(docs/benchmarks.md).
"""
from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ...model.networks import build_model


@dataclass(frozen=True)
class Peak:
    gflops: float
    formula: str  # cores x clock x FLOPs a cycle
    clock: str  # where the clock was read
    instruction: str  # the multiply-add instruction and its FLOPs
    assumed: str  # which figures are assumed rather than read off this machine ("nothing" when measured)
    measured: bool = False  # the rate and the clock measured on this machine


DOT_RATE = Path(__file__).resolve().parents[3] / "benchmarks" / "dot_rate.c"


def instruction_mode(precision: str, flags: frozenset[str]) -> tuple[str, str] | None:
    """(dot_rate.c's mode, the instruction) that `precision`'s multiply-adds run on here (as per_cycle)."""
    if precision == "bf16" and "amx_bf16" in flags:
        return "amx", "AMX TDPBF16PS, 16,384 FLOP"
    if precision == "bf16" and "avx512_bf16" in flags:
        return "dpbf16", "VDPBF16PS zmm, 64 FLOP = 16 lanes x 2 bf16 products x multiply+add"
    if precision in ("fp32", "bf16", "fp16") and "avx512_f" in flags:
        return "fma512", "VFMADD zmm, 32 FLOP = 16 lanes x multiply+add"
    if "avx2" in flags and "fma3" in flags:
        return "fma256", "VFMADD ymm, 16 FLOP = 8 lanes x multiply+add"
    return None


@functools.cache
def dot_rate_binary() -> Path | None:
    """benchmarks/dot_rate.c compiled once a process (gcc or cc, -O2) in a temporary folder; None without the
    file, a compiler, or where it does not compile (not x86)."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None or not DOT_RATE.exists():
        return None
    binary = Path(tempfile.mkdtemp(prefix="cifarpipe-dot-rate-")) / "dot_rate"
    try:
        built = subprocess.run([compiler, "-O2", str(DOT_RATE), "-o", str(binary)], capture_output=True,
                               timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return binary if built.returncode == 0 else None


def dot_rate(mode: str, millions: int = 20) -> tuple[float, int, float] | None:
    """(instructions per ns of CPU time, FLOP each, the clock in GHz around them) of `mode` on one core, or
    (0, 0, GHz) for mode "clock"; None where it cannot be measured."""
    binary = dot_rate_binary()
    if binary is None:
        return None
    try:
        out = subprocess.run([str(binary), mode, str(millions)], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    fields = out.stdout.split()
    if out.returncode != 0 or len(fields) < 5 or fields[0] != mode:
        return None
    return float(fields[1]), int(fields[2]), max(float(fields[3]), float(fields[4]))


def measured_clock() -> float | None:
    """One core's clock now, in GHz (dot_rate.c's chain of multiplies); None where it cannot be measured."""
    found = dot_rate("clock", 10)
    return found[2] if found and found[2] > 0 else None


def cpu_identity(cpuinfo: str) -> tuple[str, int, int]:
    """(vendor, family, model) from /proc/cpuinfo's text."""
    def field(name: str) -> str:
        found = re.search(rf"^{name}\s*:\s*(.+)$", cpuinfo, re.M)
        return found.group(1).strip() if found else ""
    family, model = field("cpu family"), field("model")
    return field("vendor_id"), int(family) if family.isdigit() else 0, int(model) if model.isdigit() else 0


def clock_ghz(cpuinfo: str, lscpu: str) -> tuple[float | None, str]:
    """(GHz, where from): lscpu's "CPU max MHz" where it lists one, else /proc/cpuinfo's "cpu MHz"."""
    found = re.search(r"^CPU max MHz:\s*([\d.]+)", lscpu, re.M)
    if found:
        return float(found.group(1)) / 1000, "lscpu's CPU max MHz"
    found = re.search(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo, re.M)
    if found:
        return float(found.group(1)) / 1000, "/proc/cpuinfo's cpu MHz (nominal: cores may boost above it)"
    return None, "no clock found"


def per_cycle(precision: str, flags: frozenset[str], vendor: str, family: int,
              model: int) -> tuple[int, str, str] | None:
    """(FLOPs per cycle per core, the instruction, what is assumed) for `precision`'s multiply-adds; None
    where this CPU has no instruction for it in the table."""
    # how many 512-bit FMA-class instructions a core starts per cycle: AMD Zen 4 (family 0x19) runs each as
    # two 256-bit halves, so one; Zen 5 (0x1A) has two full-width pipes, as Intel's server cores with AVX-512
    amd = vendor == "AuthenticAMD"
    zmm_rate = 1 if amd and family == 0x19 else 2
    where = f"{'AMD' if amd else 'Intel' if vendor == 'GenuineIntel' else vendor} family {family:#x}"
    if precision == "bf16" and "amx_bf16" in flags:
        return 1024, "AMX TDPBF16PS, 16,384 FLOP per 16 cycles", "that rate (Intel's figure)"
    if precision == "bf16" and "avx512_bf16" in flags:
        return (64 * zmm_rate, f"VDPBF16PS zmm, 64 FLOP = 16 lanes x 2 bf16 products x multiply+add, "
                f"{zmm_rate} a cycle", f"{zmm_rate} a cycle on {where}")
    if precision in ("fp32", "bf16", "fp16") and "avx512_f" in flags:  # bf16/fp16 without their instructions
        return (32 * zmm_rate, f"VFMADD zmm, 32 FLOP = 16 lanes x multiply+add, {zmm_rate} a cycle",
                f"{zmm_rate} a cycle on {where}")
    if "avx2" in flags and "fma3" in flags:
        # two 256-bit FMA pipes since Haswell and Zen 2; Zen 1 and Zen+ (family 0x17 below model 0x30) split
        # each in two
        ymm_rate = 1 if amd and family == 0x17 and model < 0x30 else 2
        return (16 * ymm_rate, f"VFMADD ymm, 16 FLOP = 8 lanes x multiply+add, {ymm_rate} a cycle",
                f"{ymm_rate} a cycle on {where}")
    return None


def cpu_peak(precision: str, flags: frozenset[str], cores: int, run_ghz: float | None = None) -> Peak | None:
    """This machine's peak for `precision` on `cores` cores: the instruction rate measured here at `run_ghz`
    (the highest clock measured around the run; default the clock measured with the rate), else the vendors'
    rate at the stated clock (/proc/cpuinfo and lscpu); None if neither is known."""
    mode = instruction_mode(precision, flags)
    found = dot_rate(mode[0]) if mode else None
    if found and found[0] > 0 and found[2] > 0:
        per_ns, flop, ghz_then = found
        ghz = max(run_ghz or 0, ghz_then)
        per_cycle = per_ns / ghz_then
        return Peak(cores * ghz * per_cycle * flop,
                    f"{cores} cores x {ghz:.3f} GHz x {per_cycle:.4g} instructions x {flop} FLOP a cycle",
                    "measured on this machine: the highest of the clocks around the run and the rate",
                    f"{mode[1]}, {per_cycle:.4g} a cycle, measured", "nothing", measured=True)
    return stated_peak(precision, flags, cores)


def stated_peak(precision: str, flags: frozenset[str], cores: int) -> Peak | None:
    """The peak from the clock lscpu or /proc/cpuinfo states and the vendors' instruction rates (assumed)."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        lscpu = ""
    ghz, clock_from = clock_ghz(cpuinfo, lscpu)
    rate = per_cycle(precision, flags, *cpu_identity(cpuinfo))
    if ghz is None or rate is None:
        return None
    flop, instruction, assumed = rate
    return Peak(cores * ghz * flop, f"{cores} cores x {ghz:.3f} GHz x {flop} FLOP a cycle", clock_from,
                instruction, f"{assumed} and the stated clock")


def flops_per_image(model_params) -> tuple[float, float]:
    """(training, test) FLOPs per image of the network: forward+backward, and an eval forward (torch's flop
    counter, on a fresh fp32 copy on the CPU, so the run's own weights and statistics are untouched)."""
    model, x, y = build_model(model_params), torch.randn(2, 3, 32, 32), torch.tensor([0, 1])
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    train = counter.get_total_flops() / len(y)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(x)
    return train, counter.get_total_flops() / len(y)
