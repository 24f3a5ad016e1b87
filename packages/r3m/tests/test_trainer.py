"""Tests of r3m.trainer and r3m.config: learning, early stopping, resume, the outlier report."""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from r3m.commands import clean_test_pairs
from r3m.config import TrainConfig
from r3m.data import PreferenceData
from r3m.functional import r3m_delta
from r3m.metrics import outlier_auroc
from r3m.synthetic import make_preference_data
from r3m.teachers import Flip, Oracle
from r3m.trainer import RewardTrainer


@pytest.fixture(scope="module")
def flipped() -> tuple[PreferenceData, PreferenceData, PreferenceData]:
    # A separable toy: linear truth, T = 4, D = 5, 20 % of the labels flipped at random.
    gen = torch.Generator().manual_seed(0)
    data, truth = make_preference_data(2000, T=4, D=5, reward="linear", teacher=Flip(0.2), generator=gen)
    train, val = data.split(0.1, gen)
    return train, val, clean_test_pairs(truth, 500, 4, 5, gen)


def test_clean_linear_reward_is_learned() -> None:
    gen = torch.Generator().manual_seed(1)
    data, truth = make_preference_data(1500, T=4, D=5, reward="linear", teacher=Oracle(), generator=gen)
    trainer = RewardTrainer(TrainConfig(epochs=4, early_stopping="none"))
    trainer.fit(data, progress=False)
    assert trainer.accuracy(clean_test_pairs(truth, 500, 4, 5, gen)) >= 0.95


def test_flagged_set_recovers_the_flipped_pairs(flipped: tuple[PreferenceData, PreferenceData, PreferenceData]) -> None:
    # Spec §5 item 7: with 20 % flips and λ = .5 the flagged set has high recall and precision.
    train, val, test = flipped
    trainer = RewardTrainer(TrainConfig(lam=0.5, epochs=5))
    trainer.fit(train, val, progress=False)
    rep = trainer.outlier_report(train)
    assert rep.recall is not None
    assert rep.recall >= 0.85
    assert rep.precision is not None
    assert rep.precision >= 0.7
    assert trainer.accuracy(test) >= 0.9
    # The report is the δ-step on the trained model's margins (computed here independently).
    margins = trainer.predict(train.chosen) - trainer.predict(train.rejected)
    assert torch.allclose(rep.delta, r3m_delta(margins, 0.5))
    assert rep.auroc == pytest.approx(outlier_auroc(r3m_delta(margins, 0.5), train.corrupted))
    assert [row["id"] for row in rep.top(3)] == [train.ids[i] for i in torch.argsort(rep.delta, descending=True)[:3]]
    assert rep.top(np.int64(3)) == rep.top(3)  # numpy integers are integers
    # past the flagged pairs (δ = 0 ties), the most nearly flagged come first, not data order (user report)
    everything = rep.top(len(train))
    flagged = int(rep.flagged.sum())
    assert [r["delta"] for r in everything[:flagged]] == sorted(rep.delta[rep.flagged].tolist(), reverse=True)
    assert [r["margin"] for r in everything[flagged:]] == sorted(margins[~rep.flagged].tolist())
    for bad in (-1, 2.0, True):
        with pytest.raises(ValueError, match="k must be an integer >= 0"):
            rep.top(bad)  # type: ignore[arg-type]
    # the rest of the report (mutation audit: these entries were not checked), from the margins by hand:
    # BT's detection baseline is the AUROC of −d, counted pair by pair here (Mann-Whitney, ties ½)
    pos, neg = -margins[train.corrupted], -margins[~train.corrupted]
    by_pairs = ((pos[:, None] > neg[None, :]).double() + 0.5 * (pos[:, None] == neg[None, :]).double()).mean()
    assert rep.margin_auroc == pytest.approx(float(by_pairs), abs=1e-12)
    report = rep.to_dict(k=0)
    assert report["top"] == []
    assert rep.top(0) == []
    assert report["n"] == len(train)
    assert report["flagged"] == flagged
    assert report["flagged_share"] == flagged / len(train)
    assert (report["precision"], report["recall"]) == (rep.precision, rep.recall)


def test_lambda_near_one_flags_nothing(flipped: tuple[PreferenceData, PreferenceData, PreferenceData]) -> None:
    train, val, _ = flipped
    trainer = RewardTrainer(TrainConfig(lam=0.5, epochs=1))
    trainer.fit(train, val, progress=False)
    # λ → 1: t_λ = log(1/λ − 1) ≈ −20.7, below every margin of a trained model, so nothing is flagged.
    assert float(trainer.margins(train).min()) > -20.0
    assert int(trainer.outlier_report(train, lam=1 - 1e-9).flagged.sum()) == 0


def test_training_at_lambda_near_one_is_bradley_terry() -> None:
    # λ → 1 trains as BT step by step: same seed and data give the same history and weights (the losses differ
    # only by kernels: softplus(−max(d, t)) against −logσ(d), equal while no margin falls below t ≈ −20.7).
    gen = torch.Generator().manual_seed(4)
    data, _ = make_preference_data(640, T=4, D=5, reward="linear", teacher=Flip(0.2), generator=gen)
    train, val = data.split(0.1, gen)
    runs, histories = {}, {}
    small = {"hidden": (16,), "epochs": 2, "early_stopping": "none"}
    for loss, lam in (("r3m", 1 - 1e-9), ("bt", 0.5)):
        trainer = RewardTrainer(TrainConfig(loss=loss, lam=lam, **small))  # type: ignore[arg-type]
        histories[loss] = trainer.fit(train, val, progress=False)
        runs[loss] = trainer
    for a, b in zip(histories["r3m"].epochs, histories["bt"].epochs, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_accuracy"] == b["val_accuracy"]
    weights = {k: dict(t.model.named_parameters()) for k, t in runs.items()}  # type: ignore[union-attr]
    for name, w in weights["r3m"].items():
        assert torch.allclose(w, weights["bt"][name], atol=1e-5), name
    # and λ = .5 on the same data does not (the test can fail)
    half = RewardTrainer(TrainConfig(loss="r3m", lam=0.5, **small))  # type: ignore[arg-type]
    half.fit(train, val, progress=False)
    assert not torch.allclose(half.predict(train.chosen), runs["bt"].predict(train.chosen), atol=1e-3)


def test_a_linear_reward_model_recovers_the_true_weights() -> None:
    # Spec §5: on clean pairs over a linear truth, a linear reward model (no hidden layer) finds the direction of
    # the true weights (the scale is not identified beyond the labels): cosine ≥ 0.99.
    gen = torch.Generator().manual_seed(2)
    data, truth = make_preference_data(2000, T=4, D=5, reward="linear", teacher=Oracle(), generator=gen)
    trainer = RewardTrainer(TrainConfig(hidden=(), lr=1e-2, epochs=5, early_stopping="none"))
    trainer.fit(data, progress=False)
    weight = next(p for name, p in trainer.model.named_parameters() if name.endswith("weight"))  # type: ignore[union-attr]
    cos = torch.nn.functional.cosine_similarity(weight.detach().flatten(), truth.params["w"], dim=0)
    assert float(cos) >= 0.99


def test_a_lambda_that_looks_like_one_over_n_warns() -> None:
    with pytest.warns(
        UserWarning, match=r"lam = 0\.0002 flags every pair whose margin is below t_lambda = 8\.52.*1/n"
    ) as rec:
        TrainConfig(lam=1 / 5000)
    assert rec[0].filename == __file__  # at the user's line, not inside the dataclass's generated __init__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TrainConfig(lam=0.1)  # the paper's range: no warning


def test_early_stopping_keeps_the_best_epoch(flipped: tuple[PreferenceData, PreferenceData, PreferenceData]) -> None:
    train, val, _ = flipped
    trainer = RewardTrainer(TrainConfig(loss="bt", epochs=6, lr=3e-2, patience=1))
    history = trainer.fit(train, val, progress=False)
    best = max(history.epochs, key=lambda r: r["val_accuracy"])
    assert history.best_epoch == best["epoch"]
    assert trainer.accuracy(val) == best["val_accuracy"]


def test_resume_after_interruption_is_bit_identical(
    flipped: tuple[PreferenceData, PreferenceData, PreferenceData], tmp_path: Path
) -> None:
    train, val, _ = flipped
    cfg = TrainConfig(epochs=3, batch_size=128)
    full = RewardTrainer(cfg)
    reference = full.fit(train, val, out_dir=tmp_path / "full", progress=False)

    def stop(epoch: int, record: dict[str, float]) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        RewardTrainer(cfg).fit(train, val, out_dir=tmp_path / "cut", progress=False, callback=stop)
    resumed = RewardTrainer(cfg)
    history = resumed.fit(train, val, out_dir=tmp_path / "cut", resume=True, progress=False)
    assert history.to_dict() == reference.to_dict()
    assert full.model is not None
    assert resumed.model is not None
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="other training/validation data"):
        RewardTrainer(cfg).fit(val, train, out_dir=tmp_path / "cut", resume=True, progress=False)


def test_resume_may_train_on_to_more_epochs(
    flipped: tuple[PreferenceData, PreferenceData, PreferenceData], tmp_path: Path
) -> None:
    # Two epochs, then a resume with epochs=4, equals four epochs in one go (no schedule depends on epochs);
    # patience 9 so early stopping does not end either run first.
    train, val, _ = flipped
    full = RewardTrainer(TrainConfig(epochs=4, batch_size=128, patience=9))
    reference = full.fit(train, val, out_dir=tmp_path / "full", progress=False)
    RewardTrainer(TrainConfig(epochs=2, batch_size=128, patience=9)).fit(
        train, val, out_dir=tmp_path / "x", progress=False
    )
    longer = RewardTrainer(TrainConfig(epochs=4, batch_size=128, patience=9))
    assert longer.fit(train, val, out_dir=tmp_path / "x", resume=True, progress=False).to_dict() == reference.to_dict()
    assert full.model is not None
    assert longer.model is not None
    for a, b in zip(full.model.state_dict().values(), longer.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="completed 4 epochs, more than epochs=3"):
        RewardTrainer(TrainConfig(epochs=3, batch_size=128, patience=9)).fit(
            train, val, out_dir=tmp_path / "x", resume=True, progress=False
        )
    with pytest.raises(ValueError, match=r"lam \(0.5 there, 0.7 here\); patience \(9 there, 2 here\)"):
        RewardTrainer(TrainConfig(epochs=4, batch_size=128, lam=0.7)).fit(
            train, val, out_dir=tmp_path / "x", resume=True, progress=False
        )


def test_a_run_with_nothing_left_to_train_says_so_on_resume(
    flipped: tuple[PreferenceData, PreferenceData, PreferenceData], tmp_path: Path
) -> None:
    # user report: resuming a run that had stopped early returned the same model and said nothing
    train, _, _ = flipped
    # validation pairs of identical segments: accuracy is 0.5 (ties) every epoch, so it never improves after
    # epoch 1 and patience 1 stops the run after epoch 2, whatever the weights
    same = PreferenceData(train.chosen[:50], train.chosen[:50].clone(), train.ids[:50])
    cfg = TrainConfig(epochs=5, batch_size=256, patience=1)
    first = RewardTrainer(cfg).fit(train, same, out_dir=tmp_path / "early", progress=False)
    assert (len(first.epochs), first.best_epoch) == (2, 1)
    with pytest.warns(
        UserWarning,
        match=r"stopped early after epoch 2 .*patience 1; the model kept is epoch 1's\). A run that stopped stays",
    ):
        again = RewardTrainer(TrainConfig(epochs=9, batch_size=256, patience=1)).fit(
            train, same, out_dir=tmp_path / "early", resume=True, progress=False
        )
    assert again.to_dict() == first.to_dict()
    with pytest.warns(UserWarning, match="stopped early after epoch 2"):  # not "resume with more epochs"
        RewardTrainer(TrainConfig(epochs=2, batch_size=256, patience=1)).fit(
            train, same, out_dir=tmp_path / "early", resume=True, progress=False
        )
    cfg = TrainConfig(epochs=2, batch_size=256, early_stopping="none")
    done = RewardTrainer(cfg).fit(train, out_dir=tmp_path / "done", progress=False)
    with pytest.warns(UserWarning, match=r"already trained all 2 epoch\(s\); resume with epochs > 2"):
        assert RewardTrainer(cfg).fit(train, out_dir=tmp_path / "done", resume=True, progress=False) == done
    with warnings.catch_warnings():  # an interrupted run has epochs left: no warning
        warnings.simplefilter("error")
        cut = tmp_path / "cut"

        def stop(epoch: int, record: dict[str, float]) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            RewardTrainer(cfg).fit(train, out_dir=cut, progress=False, callback=stop)
        assert RewardTrainer(cfg).fit(train, out_dir=cut, resume=True, progress=False) == done


def test_an_existing_run_is_not_overwritten_unless_asked(
    flipped: tuple[PreferenceData, PreferenceData, PreferenceData], tmp_path: Path
) -> None:
    train, _, _ = flipped
    cfg = TrainConfig(epochs=1, batch_size=256)
    first = RewardTrainer(cfg).fit(train, out_dir=tmp_path, progress=False)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(ValueError, match=r"holds a run \(checkpoint.pt\); pass resume=True .* overwrite=True"):
        RewardTrainer(TrainConfig(epochs=1, batch_size=256, lam=0.7)).fit(train, out_dir=tmp_path, progress=False)
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
        RewardTrainer(TrainConfig(epochs=2, lam=0.7)).fit(train, out_dir=tmp_path, overwrite=True, progress=False,
                                                          callback=stop)  # fmt: skip
    assert not (tmp_path / "model.pt").exists()
    assert not (tmp_path / "history.json").exists()
    other = RewardTrainer(TrainConfig(epochs=1, batch_size=256, lam=0.7))
    other.fit(train, out_dir=tmp_path, overwrite=True, progress=False)
    assert RewardTrainer.load(tmp_path / "model.pt").config.lam == 0.7
    assert len(first.epochs) == 1


def test_bfloat16_data_trains_like_its_float32_copy(
    flipped: tuple[PreferenceData, PreferenceData, PreferenceData], tmp_path: Path
) -> None:
    # bf16 features are accepted and trained in float32 (the data fingerprint of a checkpoint raised TypeError)
    train, _, _ = flipped
    bf = PreferenceData(train.chosen.bfloat16(), train.rejected.bfloat16(), train.ids)
    exact = PreferenceData(bf.chosen.float(), bf.rejected.float(), train.ids)
    a = RewardTrainer(TrainConfig(epochs=1)).fit(bf, out_dir=tmp_path, progress=False)
    b = RewardTrainer(TrainConfig(epochs=1)).fit(exact, progress=False)
    assert a.to_dict() == b.to_dict()


@pytest.mark.parametrize("loss", ["bt", "cbt", "rbt", "ipo", "hinge"])
def test_every_baseline_trains(flipped: tuple[PreferenceData, PreferenceData, PreferenceData], loss: str) -> None:
    train, val, test = flipped
    trainer = RewardTrainer(TrainConfig(loss=loss, epochs=2))
    trainer.fit(train, val, progress=False)
    assert trainer.accuracy(test) >= 0.8


class TestTrainConfig:
    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [({"loss": "focal"}, "loss"), ({"lam": 1.0}, "lam"), ({"eps": 0.5}, "eps"), ({"epochs": 0}, "epochs"),
         ({"discount": 0.0}, "discount"), ({"early_stopping": "loss"}, "early_stopping"), ({"lr": "1e-3"}, "lr"),
         ({"hidden": 5}, "hidden")],
    )  # fmt: skip
    def test_bad_field_is_named(self, kwargs: dict[str, object], name: str) -> None:
        with pytest.raises(ValueError, match=name):
            TrainConfig(**kwargs)  # type: ignore[arg-type]

    def test_dict_round_trip(self) -> None:
        cfg = TrainConfig(hidden=(16,), lam=0.7)
        assert TrainConfig.from_dict(cfg.to_dict()) == cfg
        with pytest.raises(ValueError, match="unknown TrainConfig key"):
            TrainConfig.from_dict({"lambda": 0.5})


def test_written_files_get_the_mode_of_the_umask(
    flipped: tuple[PreferenceData, PreferenceData, PreferenceData], tmp_path: Path
) -> None:
    # user report: data, model, checkpoint and history came out owner-only (0o600, mkstemp's mode) under umask 022
    train, _, _ = flipped
    old = os.umask(0o022)
    try:
        train.to_jsonl(tmp_path / "pairs.jsonl")
        RewardTrainer(TrainConfig(epochs=1)).fit(train, out_dir=tmp_path / "run", progress=False)
    finally:
        os.umask(old)
    for name in ("pairs.jsonl", "run/checkpoint.pt", "run/model.pt", "run/history.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def _ragged_pairs(n: int, t: int, d: int, seed: int, junk: float = 0.0) -> tuple[PreferenceData, torch.Tensor]:
    """Pairs of 1..t steps over a linear truth r*(z) = Σ_{real t} w·x_t, labelled by it; ``junk`` fills the padding."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, generator=g)
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
    # margins equal a per-pair score of each segment cut to its own length, and a linear model finds the truth.
    zeros, w = _ragged_pairs(1000, 6, 4, seed=3)
    junk, _ = _ragged_pairs(1000, 6, 4, seed=3, junk=100.0)
    assert zeros.ragged
    assert torch.equal(zeros.chosen_mask, junk.chosen_mask)
    assert not torch.equal(zeros.chosen, junk.chosen)
    cfg = TrainConfig(hidden=(), lr=3e-2, epochs=5, batch_size=64, early_stopping="none")
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
    weight = next(p for name, p in model.named_parameters() if name.endswith("weight"))
    assert float(torch.nn.functional.cosine_similarity(weight.detach().flatten(), w, dim=0)) >= 0.99
    # Without the masks the junk steps count, and the scores are another function.
    unmasked = PreferenceData(junk.chosen, junk.rejected, junk.ids)
    assert not torch.allclose(b.margins(unmasked), by_pair, atol=1e-2)


def test_a_ragged_run_resumes_only_with_its_masks(tmp_path: Path) -> None:
    data, _ = _ragged_pairs(300, 5, 3, seed=4)
    cfg = TrainConfig(epochs=2, batch_size=64, early_stopping="none")
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
    from r3m.trainer import _fingerprint

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
    from r3m.reward_model import SegmentRewardModel

    config = TrainConfig(epochs=1)
    trainer = RewardTrainer(config)
    trainer.model = SegmentRewardModel(
        3, 2, hidden=config.hidden, discount=config.discount, generator=torch.Generator().manual_seed(0)
    )
    trainer.save(tmp_path / "model.pt")
    loaded = RewardTrainer.load(tmp_path / "model.pt")
    assert loaded.model is not None
    assert (loaded.model.obs_dim, loaded.model.act_dim) == (3, 2)
    x = torch.randn(4, 6, 5, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loaded.predict(x), trainer.predict(x), rtol=0, atol=0)


def test_only_non_finite_margins_are_reported_as_divergence(
    flipped: tuple[PreferenceData, PreferenceData, PreferenceData],
) -> None:
    # The loss's NonFiniteMarginsError becomes "training diverged in epoch N"; any other error from a
    # (user-replaced) loss_fn keeps its own message instead of being relabelled as a divergence.
    from r3m.functional import NonFiniteMarginsError

    train, _, _ = flipped

    def raising(error: Exception):  # type: ignore[no-untyped-def]
        def loss_fn(r_w: torch.Tensor, r_l: torch.Tensor) -> tuple[torch.Tensor, None]:
            raise error

        return loss_fn

    trainer = RewardTrainer(TrainConfig(epochs=1, lr=1e-3))
    trainer.loss_fn = raising(NonFiniteMarginsError("margins must be finite"))
    with pytest.raises(ValueError, match=r"training diverged in epoch 1: margins must be finite; lower lr"):
        trainer.fit(train, progress=False)
    trainer = RewardTrainer(TrainConfig(epochs=1, lr=1e-3))
    trainer.loss_fn = raising(ValueError("shapes differ"))
    with pytest.raises(ValueError, match=r"^shapes differ$"):
        trainer.fit(train, progress=False)


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
