"""The training loop and LR finder in-process, on tiny synthetic data: divergence, resume rules, finder stops."""
import numpy as np
import pytest
import torch

from cifarpipe.errors import DivergedError
from cifarpipe.loader import DeviceLoader
from cifarpipe.lr_finder import range_test
from cifarpipe.models import build_model
from cifarpipe.params import load_params
from cifarpipe.training import make_optimizer, train
from conftest import ROOT
from synthetic_cifar import make_images

AUG = dict(pad=4, crop=32, flip=0.5, cutout=8, fill=(128, 128, 128))


def loaders(n_train=64, n_test=32, seed=0):
    rng = np.random.default_rng(seed)
    x, y = make_images(n_train, rng)
    xt, yt = make_images(n_test, rng)
    stats = dict(mean=[0.5] * 3, std=[0.25] * 3, device=torch.device("cpu"))
    gen = torch.Generator().manual_seed(seed)
    return (DeviceLoader(x, y, batch_size=32, augment=AUG, generator=gen, **stats),
            DeviceLoader(xt, yt, batch_size=32, **stats), gen)


def config(**train_overrides):
    params = load_params(ROOT / "params.yaml", {"schedule.epochs": 1, "schedule.peak_epoch": 0.5})
    params["train"].update(train_overrides)
    return params


def run_training(params, lr, checkpoint=None, fingerprint="run"):
    torch.manual_seed(0)
    model = build_model("custom_resnet")
    train_loader, test_loader, gen = loaders()
    history = train(model, train_loader, test_loader, optim=params["optim"], lr_max=lr, schedule=params["schedule"],
                    train_cfg=params["train"], generator=gen, checkpoint_path=checkpoint, fingerprint=fingerprint)
    return model, history


def test_a_nan_loss_stops_training_naming_epoch_and_step():
    params = config()
    params["optim"].update(name="sgd", weight_decay=0.0)
    with pytest.raises(DivergedError, match=r"epoch 1, step \d+.*optim.lr"):
        run_training(params, lr=1e12)


def test_a_checkpoint_from_other_params_is_not_resumed(tmp_path, capsys):
    params = config()
    ckpt = tmp_path / "ckpt.pt"
    _, first = run_training(params, 0.01, ckpt, fingerprint="A")
    assert ckpt.exists()
    _, resumed = run_training(params, 0.01, ckpt, fingerprint="A")
    assert "resuming" in capsys.readouterr().out and resumed == first  # all epochs done: nothing to rerun
    _, other = run_training(params, 0.01, ckpt, fingerprint="B")
    assert "other params" in capsys.readouterr().out and len(other) == 1


def test_an_unreadable_checkpoint_costs_a_restart_not_a_crash(tmp_path, capsys):
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"garbage")
    _, history = run_training(config(), 0.01, ckpt)
    assert "unreadable" in capsys.readouterr().out and len(history) == 1


def test_lr_finder_stops_cleanly_when_the_loss_diverges():
    torch.manual_seed(0)
    model = build_model("custom_resnet")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_loader, _, _ = loaders()
    opt = make_optimizer(model, {"name": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 0.0}, 1e-3,
                         torch.device("cpu"))
    result = range_test(model, opt, train_loader, start_lr=1e-3, end_lr=1e8, iterations=40, smooth=0.05,
                        diverge=5.0, skip_start=2, skip_end=1, bf16=False)
    assert result["stopped"] in ("loss diverged", "loss became NaN/inf") and len(result["lr"]) < 40
    assert result["lr"][0] <= result["suggested_lr"] <= result["lr"][-1]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the finder restores the model
