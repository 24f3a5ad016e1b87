"""The trainer (early stopping, checkpoints, bit-identical resume), prediction and evaluation in original units."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from smurf_thp.metrics import pit, pit_ks
from smurf_thp.simulate import PRESETS
from smurf_thp.smurf import SMURFTHP, SamplerConfig, SMURFConfig
from smurf_thp.train import TrainConfig, Trainer, choose_steps, evaluate, load_checkpoint, predict

PROCESS = PRESETS["hawkes3"]
TRAIN = PROCESS.simulate(30, t_end=10.0, seed=0)
DEV = PROCESS.simulate(10, t_end=10.0, seed=1)
SAMPLER = SamplerConfig(n_samples=20, step=0.02, n_steps=40)


def _model() -> SMURFTHP:
    torch.manual_seed(0)
    return SMURFTHP(SMURFConfig(num_types=3, d_model=8, d_inner=16, n_layers=1, n_head=2, d_k=4, d_v=4,
                                num_noise=4, loss_lambda=5.0))  # fmt: skip


def test_training_lowers_the_dev_loss_and_keeps_the_best_state(tmp_path: Path) -> None:
    trainer = Trainer(_model(), TrainConfig(epochs=6, batch_size=8, lr=5e-3, patience=10))
    history = trainer.fit(TRAIN, DEV, checkpoint=tmp_path / "model.pt", progress=False)
    dev = [r["dev_loss"] for r in history.records]
    assert len(dev) == 6
    assert min(dev) < dev[0]
    assert history.best_dev == min(dev)
    assert history.best_epoch == dev.index(min(dev))
    assert trainer.normalizer is not None
    assert trainer.normalizer.mode == "log"
    model, norm, record = load_checkpoint(tmp_path / "model.pt")
    for a, b in zip(model.state_dict().values(), trainer.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # the checkpoint's best state is the trained model's
    assert norm.state_dict() == trainer.normalizer.state_dict()
    assert record["epoch"] == 6


def test_resume_continues_bit_identically(tmp_path: Path) -> None:
    full = Trainer(_model(), TrainConfig(epochs=4, batch_size=8, lr=5e-3, patience=10))
    full.fit(TRAIN, DEV, checkpoint=tmp_path / "full.pt", progress=False)
    part = Trainer(_model(), TrainConfig(epochs=2, batch_size=8, lr=5e-3, patience=10))
    part.fit(TRAIN, DEV, checkpoint=tmp_path / "part.pt", progress=False)
    resumed = Trainer(_model(), TrainConfig(epochs=4, batch_size=8, lr=5e-3, patience=10))
    resumed.fit(TRAIN, DEV, checkpoint=tmp_path / "part.pt", resume=True, progress=False)
    assert [r["dev_loss"] for r in resumed.history.records] == [r["dev_loss"] for r in full.history.records]
    for a, b in zip(resumed.model.state_dict().values(), full.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_resume_refuses_another_model(tmp_path: Path) -> None:
    Trainer(_model(), TrainConfig(epochs=1, batch_size=8)).fit(TRAIN, DEV, checkpoint=tmp_path / "m.pt",
                                                               progress=False)  # fmt: skip
    torch.manual_seed(0)
    other = SMURFTHP(SMURFConfig(num_types=3, d_model=8, d_inner=16, n_layers=1, n_head=2, d_k=4, d_v=4, num_noise=5))
    with pytest.raises(ValueError, match=r"another model .* or configuration"):
        Trainer(other, TrainConfig(epochs=2)).fit(TRAIN, DEV, checkpoint=tmp_path / "m.pt", resume=True, progress=False)


def test_resume_refuses_other_optimiser_settings_but_may_extend_the_run(tmp_path: Path) -> None:
    # The restored optimiser and schedule keep the saved lr: a resume with another lr would train at the old
    # one while the new config says otherwise, so it is refused; more epochs (or patience) are allowed.
    Trainer(_model(), TrainConfig(epochs=1, batch_size=8, lr=5e-3)).fit(TRAIN, DEV, checkpoint=tmp_path / "m.pt",
                                                                        progress=False)  # fmt: skip
    with pytest.raises(ValueError, match=r"other settings \(lr 0.005 -> 0.001\); not resuming"):
        Trainer(_model(), TrainConfig(epochs=2, batch_size=8, lr=1e-3)).fit(
            TRAIN, DEV, checkpoint=tmp_path / "m.pt", resume=True, progress=False
        )
    longer = Trainer(_model(), TrainConfig(epochs=2, batch_size=8, lr=5e-3, patience=9))
    longer.fit(TRAIN, DEV, checkpoint=tmp_path / "m.pt", resume=True, progress=False)
    assert len(longer.history.records) == 2


def test_predict_and_evaluate_in_original_units() -> None:
    trainer = Trainer(_model(), TrainConfig(epochs=2, batch_size=8, lr=5e-3))
    trainer.fit(TRAIN, DEV, progress=False)
    assert trainer.normalizer is not None
    pred = predict(trainer.model, trainer.normalizer, DEV, SAMPLER, seed=3)
    n = sum(len(s) - 1 for s in DEV)
    assert pred.tau.shape == (n, 20)
    assert pred.y.shape == (n,)
    assert len(pred.where) == n
    # the true gaps are the data's own, row by row
    i, j = pred.where[5]
    assert float(pred.y[5]) == pytest.approx(float(DEV[i].times[j + 1] - DEV[i].times[j]), rel=1e-6)
    assert bool((pred.tau > 0).all())  # log space: never a negative gap
    again = predict(trainer.model, trainer.normalizer, DEV, SAMPLER, seed=3)
    assert torch.equal(pred.tau, again.tau)
    metrics = evaluate(trainer.model, trainer.normalizer, DEV, SAMPLER, process=PROCESS)
    for key in ("cs", "crps", "rmse_median", "accuracy", "oracle_cs", "frac_negative"):
        assert key in metrics
    assert metrics["frac_negative"] == 0.0
    assert 0.0 <= metrics["oracle_cs"] <= 1.0
    # the PIT summary is that of the predictions' own samples, recomputed here
    pred0 = predict(trainer.model, trainer.normalizer, DEV, SAMPLER, seed=0)  # evaluate's default seed
    u = pit(pred0.tau, pred0.y, randomized=True, generator=torch.Generator().manual_seed(0))
    assert metrics["pit_ks"] == pytest.approx(pit_ks(u))
    assert len(metrics["pit_hist"]) == 10
    assert sum(metrics["pit_hist"]) * 0.1 == pytest.approx(1.0)


def test_resume_of_an_early_stopped_run_trains_no_more(tmp_path: Path) -> None:
    trainer = Trainer(_model(), TrainConfig(epochs=30, batch_size=8, lr=0.5, patience=1))  # lr too large: stops
    history = trainer.fit(TRAIN, DEV, checkpoint=tmp_path / "m.pt", progress=False)
    assert history.stopped_early
    again = Trainer(_model(), TrainConfig(epochs=30, batch_size=8, lr=0.5, patience=1))
    again.fit(TRAIN, DEV, checkpoint=tmp_path / "m.pt", resume=True, progress=False)
    assert len(again.history.records) == len(history.records)


def test_a_bounded_boundary_is_refused_in_log_space() -> None:
    model = _model()
    types, times = torch.tensor([[0, 1, 2]]), torch.tensor([[0.1, 0.4, 0.9]])
    with pytest.raises(ValueError, match="needs a space with a lower bound"):
        model.sample(types, times, types >= 0, SamplerConfig(n_samples=4, boundary="reflect"), (-1.0, 1.0))


def test_choose_steps_on_dev() -> None:
    trainer = Trainer(_model(), TrainConfig(epochs=1, batch_size=8))
    trainer.fit(TRAIN, progress=False)
    assert trainer.normalizer is not None
    best, scores = choose_steps(trainer.model, trainer.normalizer, DEV, SAMPLER, record_every=10, process=PROCESS)
    assert sorted(scores) == [10, 20, 30, 40]
    assert best in scores
    assert scores[best] == min(scores.values())
    with pytest.raises(ValueError, match="record_every"):
        choose_steps(trainer.model, trainer.normalizer, DEV, SAMPLER, record_every=100)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"epochs": 0}, "epochs must be an integer >= 1"), ({"lr": 0.0}, "lr must be > 0"),
     ({"grad_clip": -1.0}, "grad_clip must be None or > 0")],
)  # fmt: skip
def test_bad_train_config(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)  # type: ignore[arg-type]
