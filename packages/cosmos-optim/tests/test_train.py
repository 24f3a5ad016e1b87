"""Tests of the training shell: schedule, histories, checkpoints, bit-identical resume, validation."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path

import pytest
import torch

from cosmos_optim.data import TextData, load_corpus
from cosmos_optim.model import parameter_shapes
from cosmos_optim.train import CHECKPOINT, DEFAULT_LR, RESULT, TrainConfig, TrainResult, build, lr_factor, train

TINY = TrainConfig(d_model=32, n_layer=1, n_head=2, seq_len=16, batch_size=4, steps=10, warmup=2, eval_every=5,
                   eval_batches=1, rank=4, checkpoint_every=5)  # fmt: skip


@pytest.fixture(scope="module")
def corpus() -> TextData:
    return load_corpus()


class TestSchedule:
    def test_hand_values(self) -> None:
        # Worked by hand: warm-up 1/2, 2/2; cosine over steps 2..4 at progress 0, 1/2, 1 -> 1, 0.55, 0.1.
        got = [lr_factor(s, steps=5, warmup=2, min_ratio=0.1) for s in range(5)]
        assert got == pytest.approx([0.5, 1.0, 1.0, 0.55, 0.1])

    def test_ends_at_min_ratio_and_decreases_after_warmup(self) -> None:
        f = [lr_factor(s, steps=200, warmup=30, min_ratio=0.1) for s in range(200)]
        assert f[29] == 1.0
        assert f[-1] == pytest.approx(0.1)
        assert all(a >= b for a, b in itertools.pairwise(f[30:]))

    def test_is_applied_to_every_group(self, corpus: TextData, tmp_path: Path) -> None:
        cfg = dataclasses.replace(TINY, optimizer="muon")
        train(cfg, tmp_path, progress=False, data=corpus, stop_after=4)
        groups = torch.load(tmp_path / CHECKPOINT, weights_only=False)["optimizer"]["param_groups"]
        factor = lr_factor(3, steps=10, warmup=2, min_ratio=0.1)  # the lr of the last step taken (step 4)
        assert sorted(g["lr"] for g in groups) == pytest.approx(sorted([2e-3 * factor, DEFAULT_LR["muon"] * factor]))


class TestConfig:
    def test_default_lr_per_optimizer(self) -> None:
        assert TrainConfig(optimizer="soap").resolved_lr == DEFAULT_LR["soap"] == 1.6e-2
        assert TrainConfig(optimizer="soap", lr=0.5).resolved_lr == 0.5

    def test_round_trips_through_a_dict(self) -> None:
        cfg = dataclasses.replace(TINY, gamma=0.3, text="x.txt", threads=2)
        assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
        with pytest.raises(ValueError, match=r"unknown TrainConfig key\(s\) \['nope'\]"):
            TrainConfig.from_dict({"nope": 1})

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"optimizer": "sgd"}, "optimizer must be one of"),
            ({"lr": -1.0}, "lr must be > 0, got -1.0"),
            ({"adam_lr": 0.0}, "adam_lr must be > 0"),
            ({"gamma": math.nan}, "gamma must be a finite number"),
            ({"weight_decay": -0.1}, "weight_decay must be >= 0"),
            ({"steps": 0}, "steps must be an integer >= 1, got 0"),
            ({"rank": -1}, "rank must be an integer >= 0"),
            ({"min_lr_ratio": 1.5}, r"min_lr_ratio must be in \[0, 1\]"),
            ({"d_model": 30, "n_head": 4}, "d_model must be divisible by n_head"),
            ({"device": "tpu"}, "device must be 'cpu', 'cuda' or 'auto'"),
            ({"threads": 0}, "threads must be an integer >= 1"),
            ({"batch_size": True}, "batch_size must be an integer >= 1, got True"),
        ],
    )
    def test_rejects_bad_values(self, kwargs: dict[str, object], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            TrainConfig(**kwargs)  # type: ignore[arg-type]


def test_histories_have_the_expected_lengths_and_loss_falls(corpus: TextData) -> None:
    cfg = dataclasses.replace(TINY, optimizer="adamw", steps=30, eval_every=10, eval_batches=2, lr=1e-2)
    res = train(cfg, progress=False, data=corpus)
    assert res.steps_done == len(res.step_seconds) == 30
    assert res.val_steps == [0, 10, 20, 30]
    # val_seconds are the cumulative step times at the evaluation points.
    assert res.val_seconds == pytest.approx([0.0, *(math.fsum(res.step_seconds[:s]) for s in (10, 20, 30))])
    assert res.tokens_per_second == pytest.approx(30 * 4 * 16 / math.fsum(res.step_seconds))
    assert res.val_loss[0] == pytest.approx(math.log(corpus.tokenizer.vocab_size), abs=0.3)
    assert res.final_val_loss < res.val_loss[0] - 0.5


def test_val_loss_at_seconds_interpolates_between_evaluations() -> None:
    res = TrainResult(TINY, step_seconds=[1.0] * 10, val_steps=[0, 5, 10], val_loss=[4.0, 3.0, 2.0])
    # By hand: evaluations at 0 s, 5 s and 10 s; 7.5 s lies halfway between 3.0 and 2.0.
    assert res.val_loss_at_seconds(7.5) == pytest.approx(2.5)
    assert res.val_loss_at_seconds(5.0) == pytest.approx(3.0)
    assert res.val_loss_at_seconds(0.0) == 4.0
    assert math.isnan(res.val_loss_at_seconds(10.5))


@pytest.mark.parametrize("optimizer", ["adamw", "muon", "soap", "cosmos"])
def test_resume_continues_bit_identically(optimizer: str, corpus: TextData, tmp_path: Path) -> None:
    cfg = dataclasses.replace(TINY, optimizer=optimizer, checkpoint_every=100)
    straight = train(cfg, tmp_path / "a", progress=False, data=corpus)
    first = train(cfg, tmp_path / "b", progress=False, data=corpus, stop_after=5)
    assert first.steps_done == 5
    assert not (tmp_path / "b" / RESULT).exists()
    resumed = train(cfg, tmp_path / "b", resume=True, progress=False, data=corpus)
    assert resumed.train_loss == straight.train_loss  # exact float equality, step by step
    assert resumed.val_loss == straight.val_loss
    a = torch.load(tmp_path / "a" / CHECKPOINT, weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / CHECKPOINT, weights_only=False)["model"]
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_run_folder_holds_config_checkpoint_and_result(corpus: TextData, tmp_path: Path) -> None:
    cfg = dataclasses.replace(TINY, optimizer="cosmos", lr=3e-3)
    res = train(cfg, tmp_path, progress=False, data=corpus)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["train"] == cfg.to_dict()
    assert config["lr"] == 3e-3
    assert config["model"]["n_params"] == res.n_params
    assert json.loads((tmp_path / RESULT).read_text())["final_val_loss"] == res.final_val_loss
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.pt",
        "config.json",
        "result.json",
    ]  # no temp files
    # A finished run resumes to the same result without training.
    again = train(cfg, tmp_path, resume=True, progress=False, data=corpus)
    assert again.train_loss == res.train_loss


def test_state_bytes_equal_the_closed_form(corpus: TextData) -> None:
    # AdamW keeps exp_avg and exp_avg_sq: 2 float32 entries per parameter. COSMOS: mn + nr + r² + mr
    # per hidden matrix and 2 entries per other parameter (shapes from parameter_shapes, r = 4).
    cfg = dataclasses.replace(TINY, steps=1, eval_every=1)
    adamw = train(dataclasses.replace(cfg, optimizer="adamw"), progress=False, data=corpus)
    assert adamw.state_bytes == 2 * 4 * adamw.n_params
    cosmos = train(dataclasses.replace(cfg, optimizer="cosmos"), progress=False, data=corpus)
    shapes = parameter_shapes(cfg.model_config(corpus.tokenizer.vocab_size))
    r = 4
    expected = sum(
        m * n + n * r + r * r + m * r if name.startswith("blocks.") and len(s) == 2 else 2 * math.prod(s)
        for name, s in shapes.items()
        for m, n in [(s[0], s[-1])]
    )
    assert cosmos.state_bytes == 4 * expected


@pytest.mark.parametrize(("optimizer", "overrides"), [("adamw", {"lr": 1e30}), ("cosmos", {"adam_lr": 1e37})])
def test_divergence_stops_the_run(corpus: TextData, optimizer: str, overrides: dict[str, float]) -> None:
    # COSMOS raises FloatingPointError on the non-finite gradient; the loop records it as a divergence.
    cfg = dataclasses.replace(TINY, optimizer=optimizer, grad_clip=0.0, warmup=0, **overrides)  # type: ignore[arg-type]
    res = train(cfg, progress=False, data=corpus)
    assert res.diverged
    assert res.steps_done < 10
    assert math.isnan(res.final_val_loss)


def test_threads_are_restored(corpus: TextData) -> None:
    before = torch.get_num_threads()
    train(dataclasses.replace(TINY, steps=1, threads=1), progress=False, data=corpus)
    assert torch.get_num_threads() == before


def test_build_gives_the_same_model_for_the_same_seed() -> None:
    (m1, _), (m2, _) = build(TINY, 50), build(dataclasses.replace(TINY, optimizer="adamw"), 50)
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(p, q)


class TestResumeErrors:
    def test_no_checkpoint(self, corpus: TextData, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="resume needs a checkpoint"):
            train(TINY, tmp_path, resume=True, progress=False, data=corpus)

    def test_other_configuration(self, corpus: TextData, tmp_path: Path) -> None:
        train(dataclasses.replace(TINY, steps=2), tmp_path, progress=False, data=corpus)
        with pytest.raises(ValueError, match=r"another configuration \(differs in \['lr'\]\)"):
            train(dataclasses.replace(TINY, steps=2, lr=1.0), tmp_path, resume=True, progress=False, data=corpus)

    def test_other_corpus(self, corpus: TextData, tmp_path: Path) -> None:
        cfg = dataclasses.replace(TINY, steps=2)
        train(cfg, tmp_path, progress=False, data=corpus)
        other = TextData.from_text("abcdefgh" * 100)
        with pytest.raises(ValueError, match="another corpus"):
            train(cfg, tmp_path, resume=True, progress=False, data=other)


def test_text_too_short_for_the_sequence_length(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("short text " * 10)  # 11 validation characters
    with pytest.raises(ValueError, match="seq_len 16 needs at least 17"):
        train(dataclasses.replace(TINY, text=str(tmp_path / "t.txt")), progress=False)
