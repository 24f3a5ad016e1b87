"""Tests of adapref.trainer and adapref.config: learning, resume, τ report, validation."""

from __future__ import annotations

import math
import os
import stat
import warnings
from pathlib import Path

import pytest
import torch
from scipy.stats import spearmanr

from adapref.commands import clean_test_pairs
from adapref.config import TrainConfig
from adapref.data import PreferenceData
from adapref.scaling import solve_tau
from adapref.synthetic import Oracle, make_preference_data
from adapref.trainer import RewardTrainer


@pytest.fixture(scope="module")
def linear_data() -> tuple[object, object]:
    gen = torch.Generator().manual_seed(0)
    train, truth = make_preference_data(1500, T=4, D=5, reward="linear", teacher=Oracle(), generator=gen)
    test = clean_test_pairs(truth, 500, 4, 5, gen)
    return train, test


@pytest.mark.parametrize("loss", ["ada", "ada-quad", "bt", "hinge", "ipo"])
def test_every_loss_learns_a_linear_reward(linear_data: tuple[object, object], loss: str) -> None:
    # Oracle labels over a linear reward: a 2×64 MLP ranks clean held-out pairs almost perfectly.
    train, test = linear_data
    trainer = RewardTrainer(TrainConfig(loss=loss, epochs=4, lr=3e-3))
    history = trainer.fit(train, test, progress=False)  # type: ignore[arg-type]
    assert history.epochs[-1]["val_accuracy"] >= 0.93
    assert trainer.accuracy(test) == history.epochs[-1]["val_accuracy"]  # type: ignore[arg-type]


def test_resume_after_interruption_is_bit_identical(linear_data: tuple[object, object], tmp_path: Path) -> None:
    # Reference: three uninterrupted epochs. Second run: interrupted after epoch 1, then resumed.
    train, _ = linear_data
    cfg = TrainConfig(epochs=3, batch_size=128)
    full = RewardTrainer(cfg)
    full_history = full.fit(train, out_dir=tmp_path / "full", progress=False)  # type: ignore[arg-type]

    def stop_after_first(epoch: int, record: dict[str, float]) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        RewardTrainer(cfg).fit(train, out_dir=tmp_path / "cut", progress=False, callback=stop_after_first)  # type: ignore[arg-type]
    resumed = RewardTrainer(cfg)
    history = resumed.fit(train, out_dir=tmp_path / "cut", resume=True, progress=False)  # type: ignore[arg-type]
    assert history.epochs == full_history.epochs
    assert full.model is not None
    assert resumed.model is not None
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert (tmp_path / "cut" / "model.pt").is_file()
    assert (tmp_path / "cut" / "history.json").is_file()


def test_resume_refuses_a_different_config(linear_data: tuple[object, object], tmp_path: Path) -> None:
    train, _ = linear_data
    RewardTrainer(TrainConfig(epochs=1)).fit(train, out_dir=tmp_path, progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"rho0 \(0.1 there, 0.3 here\)"):
        RewardTrainer(TrainConfig(epochs=1, rho0=0.3)).fit(train, out_dir=tmp_path, resume=True, progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a checkpoint"):
        RewardTrainer().fit(train, out_dir=tmp_path / "empty", resume=True, progress=False)  # type: ignore[arg-type]


def test_a_finished_run_says_so_on_resume_and_is_not_overwritten(
    linear_data: tuple[PreferenceData, PreferenceData], tmp_path: Path
) -> None:
    # user report: resuming a finished run returned the same model silently, and fit() replaced an earlier run
    train, _ = linear_data
    cfg = TrainConfig(epochs=2, batch_size=256)
    done = RewardTrainer(cfg).fit(train, out_dir=tmp_path, progress=False)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.warns(UserWarning, match=r"already trained all 2 epoch\(s\); resume with epochs > 2"):
        assert RewardTrainer(cfg).fit(train, out_dir=tmp_path, resume=True, progress=False) == done
    with pytest.raises(ValueError, match=r"holds a run \(checkpoint.pt\); pass resume=True .* overwrite=True"):
        RewardTrainer(TrainConfig(epochs=1, rho0=0.3)).fit(train, out_dir=tmp_path, progress=False)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before  # refused before anything was written
    with pytest.raises(ValueError, match="pass one"):
        RewardTrainer(cfg).fit(train, out_dir=tmp_path, resume=True, overwrite=True, progress=False)
    # review findings: "needs a checkpoint at None/checkpoint.pt", and a bare FileExistsError for a file
    with pytest.raises(ValueError, match=r"^resume=True continues the run in out_dir: pass the out_dir of the run$"):
        RewardTrainer(cfg).fit(train, resume=True, progress=False)
    with pytest.raises(ValueError, match=r"checkpoint.pt is a file; give a folder for the run$"):
        RewardTrainer(cfg).fit(train, out_dir=tmp_path / "checkpoint.pt", progress=False)

    def stop(epoch: int, record: dict[str, float]) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # the new run stops before its end: nothing of the old one is left
        RewardTrainer(TrainConfig(epochs=2, rho0=0.3)).fit(train, out_dir=tmp_path, overwrite=True, progress=False,
                                                           callback=stop)  # fmt: skip
    assert not (tmp_path / "model.pt").exists()
    assert not (tmp_path / "history.json").exists()
    RewardTrainer(TrainConfig(epochs=1, rho0=0.3)).fit(train, out_dir=tmp_path, overwrite=True, progress=False)
    assert RewardTrainer.load(tmp_path / "model.pt").config.rho0 == 0.3


def test_rho0_at_or_above_log2_is_warned_about_once(linear_data: tuple[PreferenceData, PreferenceData]) -> None:
    # user report: the same "rho0 >= log 2" warning came three times (config, every loss call, tau_report)
    train, _ = linear_data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = RewardTrainer(TrainConfig(epochs=1, rho0=0.8, batch_size=256))
        trainer.fit(train, progress=False)
        report = trainer.tau_report(train)
    assert [str(w.message).split(":")[0] for w in caught] == ["rho0 = 0.8 >= log 2"]
    assert report.tau.unique().tolist() == pytest.approx([0.1])  # τ ≡ τ0, as the warning says


def test_resume_may_train_on_to_more_epochs(linear_data: tuple[object, object], tmp_path: Path) -> None:
    # Two epochs, then a resume with epochs=3, equals three epochs in one go (no schedule depends on epochs).
    train, _ = linear_data
    full = RewardTrainer(TrainConfig(epochs=3, batch_size=128))
    reference = full.fit(train, out_dir=tmp_path / "full", progress=False)  # type: ignore[arg-type]
    RewardTrainer(TrainConfig(epochs=2, batch_size=128)).fit(train, out_dir=tmp_path / "x", progress=False)  # type: ignore[arg-type]
    longer = RewardTrainer(TrainConfig(epochs=3, batch_size=128))
    assert longer.fit(train, out_dir=tmp_path / "x", resume=True, progress=False).epochs == reference.epochs  # type: ignore[arg-type]
    assert full.model is not None
    assert longer.model is not None
    for a, b in zip(full.model.state_dict().values(), longer.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="completed 3 epochs, more than epochs=2"):
        RewardTrainer(TrainConfig(epochs=2, batch_size=128)).fit(
            train, out_dir=tmp_path / "x", resume=True, progress=False
        )  # type: ignore[arg-type]


def test_resume_refuses_other_data(linear_data: tuple[object, object], tmp_path: Path) -> None:
    train, test = linear_data
    RewardTrainer(TrainConfig(epochs=1)).fit(train, out_dir=tmp_path, progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="other training/validation data"):
        RewardTrainer(TrainConfig(epochs=1)).fit(test, out_dir=tmp_path, resume=True, progress=False)  # type: ignore[arg-type]


def test_float64_data_trains_like_float32(linear_data: tuple[object, object]) -> None:
    from adapref.data import PreferenceData

    train, _ = linear_data
    as64 = PreferenceData(train.chosen.double(), train.rejected.double(), train.ids, None, None)  # type: ignore[attr-defined]
    a = RewardTrainer(TrainConfig(epochs=1)).fit(train, progress=False)  # type: ignore[arg-type]
    b = RewardTrainer(TrainConfig(epochs=1)).fit(as64, progress=False)
    assert a.epochs == b.epochs


def test_bfloat16_data_trains_like_its_float32_copy(linear_data: tuple[object, object], tmp_path: Path) -> None:
    # bf16 features are accepted and trained in float32 (the data fingerprint of a checkpoint raised TypeError)
    from adapref.data import PreferenceData

    train, _ = linear_data
    bf = PreferenceData(train.chosen.bfloat16(), train.rejected.bfloat16(), train.ids, None, None)  # type: ignore[attr-defined]
    exact = PreferenceData(bf.chosen.float(), bf.rejected.float(), train.ids, None, None)  # type: ignore[attr-defined]
    a = RewardTrainer(TrainConfig(epochs=1)).fit(bf, out_dir=tmp_path, progress=False)
    b = RewardTrainer(TrainConfig(epochs=1)).fit(exact, progress=False)
    assert a.epochs == b.epochs


def test_tau_report_agrees_with_an_independent_computation(linear_data: tuple[object, object]) -> None:
    train, _ = linear_data
    trainer = RewardTrainer(TrainConfig(epochs=1, rho0=0.3, tau_max=3.0))
    trainer.fit(train, progress=False)  # type: ignore[arg-type]
    rep = trainer.tau_report(train)  # type: ignore[arg-type]
    # τ = clip(|margin|/u*, τ0, τmax) at the model's margins; Spearman by scipy.
    margins = trainer.predict(train.chosen) - trainer.predict(train.rejected)  # type: ignore[attr-defined]
    assert torch.allclose(rep.tau, solve_tau(margins, rho0=0.3, tau_max=3.0))
    assert rep.spearman == pytest.approx(spearmanr(rep.tau.numpy(), train.strength.numpy()).statistic, abs=1e-9)  # type: ignore[attr-defined]
    assert sum(rep.histogram["counts"]) == len(train)  # type: ignore[arg-type]
    assert rep.quantile_table is not None
    assert len(rep.quantile_table) == 5
    # The ceiling: the strength's ranks with the report's shares at the bounds tied, by scipy.
    n = len(train)  # type: ignore[arg-type]
    n0 = round(rep.histogram["frac_at_tau0"] * n)
    n_max = round(rep.histogram["frac_at_tau_max"] * n)
    order = train.strength.numpy().argsort()  # type: ignore[attr-defined]
    best = torch.zeros(n, dtype=torch.float64).numpy()
    best[order] = [min(max(i, n0 - 1), n - n_max) for i in range(n)]
    expected = spearmanr(best, train.strength.numpy()).statistic  # type: ignore[attr-defined]
    assert rep.spearman_ceiling == pytest.approx(expected, abs=1e-9)
    assert rep.spearman <= rep.spearman_ceiling + 1e-12


def test_tau_report_takes_the_strength_as_an_argument(linear_data: tuple[PreferenceData, PreferenceData]) -> None:
    # spec §4: tau_report(data, strength=None); a strength the data do not carry (e.g. scored later) is passed in
    train, _ = linear_data
    trainer = RewardTrainer(TrainConfig(epochs=1, rho0=0.3, tau_max=3.0))
    trainer.fit(train, progress=False)
    assert train.strength is not None
    bare = PreferenceData(train.chosen, train.rejected, train.ids)
    assert trainer.tau_report(bare).spearman is None
    given = trainer.tau_report(bare, strength=train.strength)
    assert given.spearman == trainer.tau_report(train).spearman
    assert given.spearman == pytest.approx(spearmanr(given.tau.numpy(), train.strength.numpy()).statistic, abs=1e-9)
    reversed_ = trainer.tau_report(train, strength=-train.strength)  # the argument wins over the data's
    assert reversed_.spearman == pytest.approx(-given.spearman, abs=1e-9)
    for bad in (train.strength[:-1], [1.0] * len(train), torch.full((len(train),), math.nan)):
        with pytest.raises(ValueError, match="strength must be"):
            trainer.tau_report(train, strength=bad)  # type: ignore[arg-type]


def test_tau_report_of_the_quadratic_variant_has_no_share_at_tau_max(linear_data: tuple[object, object]) -> None:
    # ada-quad has τ ≥ τ0 and no upper bound: τ is the quadratic solve at the model's margins, the histogram
    # spans [τ0, max τ], and the share "at τmax" is undefined (nan) rather than the share at the largest τ.
    train, _ = linear_data
    trainer = RewardTrainer(TrainConfig(loss="ada-quad", epochs=1, rho0=0.3))
    trainer.fit(train, progress=False)  # type: ignore[arg-type]
    rep = trainer.tau_report(train)  # type: ignore[arg-type]
    margins = trainer.predict(train.chosen) - trainer.predict(train.rejected)  # type: ignore[attr-defined]
    assert torch.allclose(rep.tau, solve_tau(margins, rho0=0.3, quadratic=True))
    assert rep.histogram["edges"][-1] == pytest.approx(float(rep.tau.max()))
    assert math.isnan(rep.histogram["frac_at_tau_max"])
    assert sum(rep.histogram["counts"]) == len(train)  # type: ignore[arg-type]


def test_save_and_load_round_trip(linear_data: tuple[object, object], tmp_path: Path) -> None:
    train, test = linear_data
    trainer = RewardTrainer(TrainConfig(epochs=1))
    trainer.fit(train, progress=False)  # type: ignore[arg-type]
    trainer.save(tmp_path / "m.pt")
    loaded = RewardTrainer.load(tmp_path / "m.pt")
    assert torch.equal(loaded.predict(test.chosen), trainer.predict(test.chosen))  # type: ignore[attr-defined]
    assert loaded.config == trainer.config


def test_tau_report_needs_an_adaptive_loss(linear_data: tuple[object, object]) -> None:
    train, _ = linear_data
    trainer = RewardTrainer(TrainConfig(loss="bt", epochs=1))
    trainer.fit(train, progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tau_report needs loss"):
        trainer.tau_report(train)  # type: ignore[arg-type]


class TestTrainConfig:
    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"loss": "focal"}, "loss"),
            ({"rho0": -0.1}, "rho0"),
            ({"tau0": 2.0, "tau_max": 1.0}, "tau_max"),
            ({"epochs": 0}, "epochs"),
            ({"batch_size": 1.5}, "batch_size"),
            ({"lr": 0.0}, "lr"),
            ({"hidden": (0,)}, "hidden"),
            ({"device": "tpu"}, "device"),
            ({"loss": "bt", "temperature": -1.0}, "temperature"),
            ({"rho0": "0.1"}, "rho0"),
            ({"hidden": 5}, "hidden"),
        ],
    )
    def test_bad_field_is_named(self, kwargs: dict[str, object], name: str) -> None:
        with pytest.raises(ValueError, match=name):
            TrainConfig(**kwargs)  # type: ignore[arg-type]

    def test_dict_round_trip_and_unknown_keys(self) -> None:
        cfg = TrainConfig(hidden=(32,), rho0=0.3)
        assert TrainConfig.from_dict(cfg.to_dict()) == cfg
        with pytest.raises(ValueError, match="unknown TrainConfig key"):
            TrainConfig.from_dict({"rho": 0.1})

    def test_cuda_request_without_cuda_is_refused(self) -> None:
        if torch.cuda.is_available():
            pytest.skip("CUDA is available here")
        with pytest.raises(ValueError, match="CUDA is not available"):
            RewardTrainer(TrainConfig(device="cuda"))


def test_written_files_get_the_mode_of_the_umask(linear_data: tuple[object, object], tmp_path: Path) -> None:
    # user report: data, model, checkpoint and history came out owner-only (0o600, mkstemp's mode) under umask 022
    train, _ = linear_data
    old = os.umask(0o022)
    try:
        train.to_jsonl(tmp_path / "pairs.jsonl")  # type: ignore[attr-defined]
        RewardTrainer(TrainConfig(epochs=1)).fit(train, out_dir=tmp_path / "run", progress=False)  # type: ignore[arg-type]
    finally:
        os.umask(old)
    for name in ("pairs.jsonl", "run/checkpoint.pt", "run/model.pt", "run/history.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def _ragged_pairs(
    n: int, t: int, d: int, seed: int, junk: float = 0.0, w: torch.Tensor | None = None
) -> tuple[PreferenceData, torch.Tensor]:
    """Pairs of 1..t steps over a linear truth r*(z) = Σ_{real t} w·x_t, labelled by it; ``junk`` fills the padding.

    ``w`` (default: drawn from ``seed``) fixes the truth; given, the pairs are new draws (the next seed's stream).
    """
    g = torch.Generator().manual_seed(seed)
    drawn = torch.randn(d, generator=g)
    if w is None:
        w = drawn
    else:
        g.manual_seed(seed + 1)
    x = torch.randn(2, n, t, d, generator=g)
    lengths = torch.randint(1, t + 1, (2, n), generator=g)
    mask = torch.arange(t) < lengths[..., None]  # (2, n, t)
    x = torch.where(mask[..., None], x, junk * torch.randn(2, n, t, d, generator=g))
    score = ((x @ w) * mask).sum(-1)  # (2, n)
    first = score[0] >= score[1]
    chosen = torch.where(first[:, None, None], x[0], x[1])
    rejected = torch.where(first[:, None, None], x[1], x[0])
    m_c = torch.where(first[:, None], mask[0], mask[1])
    m_r = torch.where(first[:, None], mask[1], mask[0])
    return PreferenceData(chosen, rejected, [f"p{i}" for i in range(n)], chosen_mask=m_c, rejected_mask=m_r), w


def test_ragged_segments_train_on_their_real_steps_only(tmp_path: Path) -> None:
    # Padding holds zeros in one copy and large junk in the other: the masks make the two runs identical, the
    # margins equal a per-pair score of each segment cut to its own length, and the model ranks new pairs.
    zeros, w = _ragged_pairs(1000, 6, 4, seed=3)
    junk, _ = _ragged_pairs(1000, 6, 4, seed=3, junk=100.0)
    assert zeros.ragged
    assert torch.equal(zeros.chosen_mask, junk.chosen_mask)
    assert not torch.equal(zeros.chosen, junk.chosen)
    cfg = TrainConfig(hidden=(16,), lr=1e-2, epochs=5, batch_size=64)
    a, b = RewardTrainer(cfg), RewardTrainer(cfg)
    ha = a.fit(zeros, progress=False)
    hb = b.fit(junk, progress=False)
    assert ha.to_dict() == hb.to_dict()
    for pa, pb in zip(a.model.state_dict().values(), b.model.state_dict().values(), strict=True):  # type: ignore[union-attr]
        assert torch.equal(pa, pb)
    model = b.model
    assert model is not None
    len_c, len_r = junk.lengths()
    with torch.no_grad():
        by_pair = torch.stack([model(junk.chosen[i, : len_c[i]][None])[0] - model(junk.rejected[i, : len_r[i]][None])[0]
                               for i in range(len(junk))])  # fmt: skip
    assert torch.allclose(b.margins(junk), by_pair, atol=1e-5)
    assert b.accuracy(junk) == pytest.approx(
        float((by_pair > 0).double().mean() + 0.5 * (by_pair == 0).double().mean())
    )
    # fresh pairs of the same truth, scored on their real steps: the learned reward ranks them as r* does
    fresh, _ = _ragged_pairs(1000, 6, 4, seed=3, junk=100.0, w=w)
    assert b.accuracy(fresh) >= 0.95
    # Without the masks the junk steps count, and the scores are another function.
    unmasked = PreferenceData(junk.chosen, junk.rejected, junk.ids)
    assert not torch.allclose(b.margins(unmasked), by_pair, atol=1e-2)


def test_a_ragged_run_resumes_only_with_its_masks(tmp_path: Path) -> None:
    data, _ = _ragged_pairs(300, 5, 3, seed=4)
    cfg = TrainConfig(epochs=2, batch_size=64)
    full = RewardTrainer(cfg)
    reference = full.fit(data, out_dir=tmp_path / "full", progress=False)

    def stop(epoch: int, record: dict[str, float]) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        RewardTrainer(cfg).fit(data, out_dir=tmp_path / "cut", progress=False, callback=stop)
    unmasked = PreferenceData(data.chosen, data.rejected, data.ids)
    with pytest.raises(ValueError, match="other training/validation data"):
        RewardTrainer(cfg).fit(unmasked, out_dir=tmp_path / "cut", resume=True, progress=False)
    resumed = RewardTrainer(cfg)
    assert resumed.fit(data, out_dir=tmp_path / "cut", resume=True, progress=False).to_dict() == reference.to_dict()
    for pa, pb in zip(full.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):  # type: ignore[union-attr]
        assert torch.equal(pa, pb)


def test_the_resume_fingerprint_tells_which_side_a_mask_is_on() -> None:
    from adapref.trainer import _fingerprint

    data, _ = _ragged_pairs(20, 4, 2, seed=5)
    mask = data.chosen_mask
    plain = PreferenceData(data.chosen, data.rejected, data.ids)
    on_chosen = PreferenceData(data.chosen, data.rejected, data.ids, chosen_mask=mask)
    on_rejected = PreferenceData(data.chosen, data.rejected, data.ids, rejected_mask=mask)
    prints = {_fingerprint(d, None) for d in (plain, on_chosen, on_rejected, data)}
    assert len(prints) == 4
    # data without masks hash as before masks existed (checkpoints of earlier runs still resume): the old digest
    import hashlib

    old = hashlib.sha256()
    old.update(repr((len(plain), tuple(plain.chosen.shape))).encode())
    old.update("\x1f".join(plain.ids).encode())
    for t in (plain.chosen, plain.rejected):
        old.update(t.contiguous().numpy().tobytes())
    assert _fingerprint(plain, None) == old.hexdigest()


def test_a_state_action_model_saves_and_loads(tmp_path: Path) -> None:
    # review finding: save() recorded obs_dim only, so a SegmentRewardModel(obs_dim, act_dim) put in
    # trainer.model saved a checkpoint whose load built too narrow a first layer
    from adapref.reward_model import SegmentRewardModel

    config = TrainConfig(epochs=1)
    trainer = RewardTrainer(config)
    trainer.model = SegmentRewardModel(3, 2, hidden=config.hidden, generator=torch.Generator().manual_seed(0))
    trainer.save(tmp_path / "model.pt")
    loaded = RewardTrainer.load(tmp_path / "model.pt")
    assert loaded.model is not None
    assert (loaded.model.obs_dim, loaded.model.act_dim) == (3, 2)
    x = torch.randn(4, 6, 5, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loaded.predict(x), trainer.predict(x), rtol=0, atol=0)


def test_only_non_finite_margins_are_reported_as_divergence(linear_data: tuple[object, object]) -> None:
    # The loss's NonFiniteMarginsError becomes "training diverged in epoch N"; any other error from a
    # (user-replaced) loss_fn keeps its own message instead of being relabelled as a divergence.
    from adapref.scaling import NonFiniteMarginsError

    train, _ = linear_data

    def raising(error: Exception):  # type: ignore[no-untyped-def]
        def loss_fn(r_w: torch.Tensor, r_l: torch.Tensor) -> tuple[torch.Tensor, None]:
            raise error

        return loss_fn

    trainer = RewardTrainer(TrainConfig(epochs=1, lr=1e-3))
    trainer.loss_fn = raising(NonFiniteMarginsError("margins must be finite"))
    with pytest.raises(ValueError, match=r"training diverged in epoch 1: margins must be finite; lower lr"):
        trainer.fit(train, progress=False)  # type: ignore[arg-type]
    trainer = RewardTrainer(TrainConfig(epochs=1, lr=1e-3))
    trainer.loss_fn = raising(ValueError("shapes differ"))
    with pytest.raises(ValueError, match=r"^shapes differ$"):
        trainer.fit(train, progress=False)  # type: ignore[arg-type]


def test_mismatched_inputs_are_named_before_any_training() -> None:
    # review findings: a val with another feature width failed only after an epoch, naming x; predict's
    # batch_size 0 and a wrong width gave torch's messages; a float64 batch gave "mat1 and mat2 must have the
    # same dtype" from the model
    gen = torch.Generator().manual_seed(0)
    train, _ = make_preference_data(64, T=2, D=4, generator=gen)
    other, _ = make_preference_data(16, T=2, D=5, generator=gen)
    trainer = RewardTrainer(TrainConfig(epochs=1))
    with pytest.raises(ValueError, match=r"^val has 5 features per step and train 4: they must match$"):
        trainer.fit(train, other, progress=False)
    trainer.fit(train, progress=False)
    with pytest.raises(ValueError, match=r"^batch_size must be an int >= 1, got 0$"):
        trainer.predict(train.chosen, batch_size=0)
    with pytest.raises(ValueError, match=r"^segments must have shape \(N, T, D=4\) as in training, got \(16, 2, 5\)$"):
        trainer.predict(other.chosen)
    assert trainer.model is not None
    with pytest.raises(ValueError, match=r"^x must have the model's dtype torch.float32, got torch.float64"):
        trainer.model(train.chosen.double())
    assert torch.equal(trainer.predict(train.chosen.double()), trainer.predict(train.chosen))  # predict converts
