"""CUDA checks of SMURF-THP (``make gpu-check``; skipped without a CUDA device)."""

from __future__ import annotations

import pytest
import torch

from smurf_thp.losses import dsm_loss
from smurf_thp.simulate import PRESETS
from smurf_thp.smurf import SMURFTHP, SamplerConfig, SMURFConfig
from smurf_thp.train import TrainConfig, Trainer, evaluate

pytestmark = pytest.mark.gpu


def _model() -> SMURFTHP:
    torch.manual_seed(0)
    return SMURFTHP(SMURFConfig(num_types=3, d_model=16, d_inner=32, n_layers=2, n_head=2, d_k=8, d_v=8,
                                dropout=0.0, num_noise=8))  # fmt: skip


def test_cuda_loss_and_gradients_match_cpu() -> None:
    gen = torch.Generator().manual_seed(0)
    types = torch.randint(0, 3, (4, 20), generator=gen)
    times = torch.cumsum(torch.rand(4, 20, generator=gen) + 0.05, 1)
    u = torch.log(times[:, 1:] - times[:, :-1])
    results = []
    for device in ("cpu", "cuda"):
        model = _model().to(device)
        # the same noise on both devices: a CPU generator (the package draws on the generator's device)
        out = model.loss(types.to(device), times.to(device), torch.ones(4, 20, dtype=torch.bool, device=device),
                         u.to(device), torch.Generator().manual_seed(1))  # fmt: skip
        out.total.backward()
        results.append((float(out.total), model.time_head.a.weight.grad.detach().cpu()))
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-4)
    torch.testing.assert_close(results[1][1], results[0][1], atol=1e-4, rtol=1e-3)


def test_cuda_score_matches_autograd_and_dsm_runs() -> None:
    head = _model().time_head.cuda()
    h, tau = torch.randn(5, 16, device="cuda"), torch.rand(5, 7, device="cuda")
    torch.testing.assert_close(head.score(h, tau), head.score_autograd(h, tau), atol=1e-4, rtol=1e-4)
    eps = torch.randn(5, 7, device="cuda")
    assert torch.isfinite(dsm_loss(lambda t: head.score(h, t), tau + 0.1 * eps, eps, 0.1)).all()


def test_cuda_training_and_evaluation_end_to_end() -> None:
    process = PRESETS["hawkes3"]
    train, dev = process.simulate(40, t_end=20.0, seed=0), process.simulate(10, t_end=20.0, seed=1)
    trainer = Trainer(_model(), TrainConfig(epochs=2, batch_size=16, lr=3e-3), device="cuda")
    trainer.fit(train, dev, progress=False)
    assert next(trainer.model.parameters()).is_cuda
    assert trainer.normalizer is not None
    metrics = evaluate(trainer.model, trainer.normalizer, dev, SamplerConfig(n_samples=20, step=0.02, n_steps=50),
                       process=process, device="cuda")  # fmt: skip
    assert metrics["frac_negative"] == 0.0
    assert 0.0 <= metrics["oracle_cs"] <= 1.0
