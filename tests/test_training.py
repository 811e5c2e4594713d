"""The training loop and LR finder in-process, on tiny synthetic data: divergence, resume rules, finder stops,
the autocast paths (bf16, fp16 with a loss scaler) and torch.compile without recompiles."""
import numpy as np
import pytest
import torch

from cifarpipe.compute.device import Compute, resolve_compute
from cifarpipe.core.errors import DivergedError
from cifarpipe.core.params import load_params
from cifarpipe.data.loader import DeviceLoader
from cifarpipe.lr.range_test import range_test
from cifarpipe.model.networks import build_model
from cifarpipe.train.optimizers import make_optimizer
from cifarpipe.train.compile import compile_for_training
from cifarpipe.train.loop import TrainConfig, train
from conftest import NARROW, PARAMS_YAML, ROOT, defaults
from synthetic_cifar import make_images

AUG = dict(pad=4, crop=32, flip=0.5, cutout=8, fill=(128, 128, 128))
CPU = Compute(torch.device("cpu"), "fp32")


STATS = {"mean": [0.5] * 3, "std": [0.25] * 3}


# bf16 as this CPU's auto picks it; the bf16 tests run only where that is native bf16
ON_THIS_CPU = resolve_compute(defaults("compute", device="cpu", precision="auto", channels_last=True))
native_bf16 = pytest.mark.skipif(ON_THIS_CPU.precision != "bf16", reason="this CPU has no avx512_bf16 or "
                                 "amx_bf16: bf16 autocast is emulated here, minutes instead of seconds")


def loaders(n_train=64, n_test=32, seed=0, batch_size=32, compute=CPU):
    rng = np.random.default_rng(seed)
    x, y = make_images(n_train, rng)
    xt, yt = make_images(n_test, rng)
    return (DeviceLoader(x, y, STATS, compute, batch_size, augment=AUG, seed=seed),
            DeviceLoader(xt, yt, STATS, compute, 32))


def config(**schedule):
    return load_params(PARAMS_YAML, {"schedule.epochs": 1, "schedule.peak_epoch": 0.5,
                                              **{f"schedule.{k}": v for k, v in schedule.items()}})


def run_training(params, lr, checkpoint=None, fingerprint="run", compute=CPU, n_train=64, batch_size=32,
                 step_model=None, model=None):
    torch.manual_seed(0)
    model = build_model(NARROW, compute) if model is None else model
    train_loader, test_loader = loaders(n_train=n_train, batch_size=batch_size, compute=compute)
    config = TrainConfig(optim=params.optim, epochs=params.schedule.epochs,
                         peak_epoch=params.schedule.peak_epoch, lr_max=lr, lr_min=lr / 100,
                         checkpoint=checkpoint, fingerprint=fingerprint)
    history = train(model, train_loader, test_loader, compute, config, step_model=step_model)
    return model, history


def test_a_nan_loss_stops_training_naming_epoch_and_step():
    params = config()
    params.optim = params.optim.model_copy(update={"name": "sgd", "weight_decay": 0.0})
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


@pytest.mark.parametrize("precision", ["fp32", pytest.param("bf16", marks=native_bf16)])
def test_lr_finder_stops_cleanly_when_the_loss_diverges(precision):
    torch.manual_seed(0)
    model = build_model(NARROW)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_loader, _ = loaders()
    opt = make_optimizer(model, defaults("optim", name="sgd", weight_decay=0.0), 1e-3, torch.device("cpu"))
    result = range_test(model, opt, train_loader, Compute(torch.device("cpu"), precision),
                        defaults("lr_find", start_lr=1e-3, end_lr=1e8, iterations=40, diverge=5.0))
    assert result.stopped in ("loss passed 5.0 x its minimum", "loss became NaN/inf")
    assert len(result.lr) < 40
    assert all(np.isfinite(result.loss))
    # the finder restores the model
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("precision", [pytest.param("bf16", marks=native_bf16),
                                       pytest.param("fp16", marks=pytest.mark.slow)])  # fp16: minutes here
def test_autocast_training_learns_and_keeps_weights_and_batchnorm_in_fp32(precision):
    """Autocast on the CPU: bf16 as auto picks it on a CPU with native bf16 (channels_last), and the GPU's
    fp16 with its loss scaler. The weights stay fp32: the checkpoint is an fp32 model in either memory
    format."""
    compute = ON_THIS_CPU if precision == "bf16" else Compute(torch.device("cpu"), precision)
    model, history = run_training(config(epochs=3, peak_epoch=1), 0.003, compute=compute)
    assert history[-1]["train_loss"] < history[0]["train_loss"] and np.isfinite(history[-1]["test_loss"])
    assert all(p.dtype == torch.float32 for p in model.parameters())
    bn = model.prep_layer[1]
    assert bn.running_mean.dtype == torch.float32 and bn.running_var.dtype == torch.float32
    assert model.prep_layer[0].weight.is_contiguous(memory_format=compute.memory_format)
    with compute.autocast():
        assert model.eval()(torch.zeros(2, 3, 32, 32)).dtype == {"bf16": torch.bfloat16,
                                                                 "fp16": torch.float16}[precision]
    fresh = build_model(NARROW).eval()  # as export and predict load it: fp32, contiguous
    fresh.load_state_dict(model.state_dict())
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(fresh(images), model(images.contiguous(memory_format=compute.memory_format)),
                              atol=1e-4)


def test_compile_builds_one_graph_per_batch_shape_then_never_recompiles():
    """70 images in batches of 32: shapes 32 and 6 every epoch. Compiled before training, never again
    after."""
    compiles = []

    def counting_backend(graph, example_inputs):
        compiles.append(tuple(example_inputs[0].shape) if example_inputs else ())
        return graph.forward

    torch._dynamo.reset()
    torch.manual_seed(0)
    model = build_model(NARROW)
    train_loader, _ = loaders(n_train=70)
    assert train_loader.batch_sizes() == [32, 6]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    compiled, seconds = compile_for_training(model, train_loader, CPU, backend=counting_backend)
    after_warmup = len(compiles)
    assert after_warmup >= 2 and seconds > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # warm-up changed nothing

    _, history = run_training(config(epochs=3, peak_epoch=1), 0.003, n_train=70, step_model=compiled,
                              model=model)
    assert len(history) == 3 and len(compiles) == after_warmup, compiles
    torch._dynamo.reset()
