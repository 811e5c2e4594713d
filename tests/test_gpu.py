"""Every CUDA branch on tiny data: autocast training in bf16 and fp16 with channels_last, fused optimizers and
torch.compile; kill-and-resume on CUDA; the range test under autocast; GradCAM on a CUDA model; CUDA
generators.

Marked `gpu` and skipped where torch sees no CUDA GPU (CI has none): run them on a GPU box with
`python -m pytest -q -m gpu`.
"""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from cifarpipe.compute.device import Compute, configure_torch, resolve_compute
from cifarpipe.core.params import load_params
from cifarpipe.data.loader import DeviceLoader
from cifarpipe.gradcam.cams import explain
from cifarpipe.lr.range_test import range_test
from cifarpipe.model.networks import build_model
from cifarpipe.train.optimizers import make_optimizer
from cifarpipe.train.compile import compile_for_training
from cifarpipe.train.loop import TrainConfig, train
from conftest import PARAMS_YAML, REFERENCE_NETWORK, ROOT, defaults, dvc, live_history, set_params, tool_env
from synthetic_cifar import make_images

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
AUG = dict(pad=4, crop=32, flip=0.5, cutout=8, fill=(128, 128, 128))


def cuda_loaders(compute, n_train=200, n_test=64, batch_size=64, seed=0):
    rng = np.random.default_rng(seed)
    (x, y), (xt, yt) = make_images(n_train, rng), make_images(n_test, rng)
    stats = {"mean": [0.5] * 3, "std": [0.25] * 3}
    return (DeviceLoader(x, y, stats, compute, batch_size, augment=AUG, seed=seed),
            DeviceLoader(xt, yt, stats, compute, 64))


def cuda_run(precision, *, compile=False, deterministic=False, checkpoint=None, stop_after=None, epochs=3):
    train_params = defaults("compute", device="cuda", precision=precision, channels_last=True,
                            deterministic=deterministic)
    compute = configure_torch(resolve_compute(train_params), seed=0)
    model = build_model(REFERENCE_NETWORK).to(compute.device, memory_format=compute.memory_format)
    train_loader, test_loader = cuda_loaders(compute)
    params = load_params(PARAMS_YAML, {"schedule.epochs": epochs, "schedule.peak_epoch": 1})
    step_model = compile_for_training(model, train_loader, compute, mode=compile)[0] if compile else None

    # called before the epoch's checkpoint is saved: like a kill at the end of that epoch
    def on_epoch(history):
        if stop_after is not None and len(history) == stop_after:
            raise KeyboardInterrupt

    config = TrainConfig(optim=params.optim, epochs=params.schedule.epochs,
                         peak_epoch=params.schedule.peak_epoch, lr_max=0.003, lr_min=0.00003,
                         checkpoint=checkpoint, fingerprint="gpu")
    history = train(model, train_loader, test_loader, compute, config, step_model=step_model,
                    on_epoch=on_epoch)
    return model, history


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("compile", [False, "default", "reduce-overhead"])
def test_cuda_training_learns_in_each_precision_with_channels_last_fused_and_compile(precision, compile):
    torch._dynamo.reset()
    model, history = cuda_run(precision, compile=compile)
    assert history[-1]["train_loss"] < history[0]["train_loss"] and np.isfinite(history[-1]["test_loss"])
    assert all(p.dtype == torch.float32 and p.is_cuda for p in model.parameters())
    assert model.prep_layer[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert make_optimizer(model, defaults("optim", name="adam"), 0.01, torch.device("cuda")).defaults["fused"]


def test_auto_precision_on_this_gpu():
    compute = resolve_compute(defaults("compute", device="auto", precision="auto"))
    assert compute.device.type == "cuda" and compute.device.index is None  # claimed by configure_torch
    assert configure_torch(compute).device.index is not None
    assert compute.precision == ("bf16" if torch.cuda.is_bf16_supported(including_emulation=False)
                                 else "fp16")


def test_a_killed_cuda_run_resumes_within_tolerance_and_exactly_when_deterministic(tmp_path, capsys):
    for deterministic in (False, True):
        ckpt = tmp_path / f"ckpt_{deterministic}.pt"
        with pytest.raises(KeyboardInterrupt):  # killed at the end of epoch 2, before its checkpoint
            cuda_run("bf16", deterministic=deterministic, checkpoint=ckpt, stop_after=2)
        assert ckpt.exists()  # epoch 1's checkpoint
        killed = capsys.readouterr().out
        _, resumed = cuda_run("bf16", deterministic=deterministic, checkpoint=ckpt)
        assert f"resuming from {ckpt} after epoch 1" in capsys.readouterr().out  # it did resume
        assert f"epoch=1 train_loss={resumed[0]['train_loss']} " in killed  # epoch 1 restored, not rerun
        _, unbroken = cuda_run("bf16", deterministic=deterministic)
        assert [h["epoch"] for h in resumed] == [1, 2, 3]
        if deterministic:
            keys = ["train_loss", "train_acc", "test_loss", "test_acc", "lr"]
            assert [{k: h[k] for k in keys} for h in resumed] == [{k: h[k] for k in keys} for h in unbroken]
        else:  # cuDNN autotuning and atomics: close, not equal. Tolerance: 15% of the final train loss
            assert abs(resumed[-1]["train_loss"]
                       - unbroken[-1]["train_loss"]) <= 0.15 * unbroken[-1]["train_loss"]
    torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_range_test_under_cuda_autocast_restores_the_model(precision):
    compute = Compute(torch.device("cuda"), precision, channels_last=True)
    model = build_model(REFERENCE_NETWORK).to("cuda", memory_format=torch.channels_last)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loader, _ = cuda_loaders(compute)
    opt = make_optimizer(model, defaults("optim", name="adam"), 1e-5, compute.device)
    result = range_test(model, opt, loader, compute, defaults("lr_find", iterations=30))
    assert 3 <= len(result.lr) <= 30 and all(np.isfinite(result.loss))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_gradcam_on_a_cuda_model():
    model = build_model(REFERENCE_NETWORK).to("cuda", memory_format=torch.channels_last).eval()
    images = torch.randn(3, 3, 32, 32, device="cuda").contiguous(memory_format=torch.channels_last)
    for method in ("gradcam", "gradcam++"):
        heat = explain(model, images, [0, 1, 2], "layer2", method)
        assert heat.shape == (3, 32, 32) and np.isfinite(heat).all()


def test_cuda_generators_replay_the_same_epoch():
    compute = Compute(torch.device("cuda"), "bf16")
    a, _ = cuda_loaders(compute)
    b, _ = cuda_loaders(compute)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert xa.is_cuda and torch.equal(xa, xb) and torch.equal(ya, yb)


def test_the_nccl_path_runs_with_one_rank(repo):
    """torchrun with one process on one GPU: NCCL process group, DistributedDataParallel, SyncBatchNorm."""
    set_params(repo, {"optim.lr": 0.003})
    dvc("repro", "lr_pick", cwd=repo)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                           "1", "-m", "stages.train", "--seed", "0"], cwd=repo, env=tool_env(),
                           capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((repo / "dvclive/train/seed0/metrics.json").read_text())
    history = live_history(repo)
    assert summary["ranks"] == 1 and summary["epochs"] == len(history) == 2
    assert summary["train_loss"] == float(history[-1]["train_loss"]) < float(history[0]["train_loss"])
