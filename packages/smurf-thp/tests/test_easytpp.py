"""The EasyTPP anchors: batch conversion (by hand and against EasyTPP's own tokenizer), each model's loss and
samples, the metrics path, checkpoints, the CLI and the bench; the missing-extra error runs without easy_tpp."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from scipy import stats

from smurf_thp import _easytpp, easytpp
from smurf_thp.cli import main
from smurf_thp.commands import ANCHOR_MODELS
from smurf_thp.data import EventDataset, collate
from smurf_thp.easytpp import EasyTPPAnchor, EasyTPPConfig, from_easytpp_batch, to_easytpp_batch
from smurf_thp.simulate import PRESETS
from smurf_thp.smurf import SamplerConfig
from smurf_thp.train import TrainConfig, Trainer, evaluate, load_checkpoint

MODEL_IDS = ("THP", "SAHP", "NHP", "IntensityFree")


@pytest.fixture
def etpp() -> Any:
    return pytest.importorskip("easy_tpp")


@pytest.fixture(scope="module")
def tiny() -> tuple[EventDataset, EventDataset]:
    process = PRESETS["hawkes3"]
    return process.simulate(24, t_end=8.0, seed=0), process.simulate(8, t_end=8.0, seed=1)


def _anchor(model_id: str, seed: int = 0, **kwargs: Any) -> EasyTPPAnchor:
    torch.manual_seed(seed)
    cfg = EasyTPPConfig(num_types=3, model_id=model_id, hidden_size=8, num_layers=1, num_heads=2, **kwargs)
    return EasyTPPAnchor(cfg)


def _hand_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    types = torch.tensor([[1, 0, 2], [2, -1, -1]])
    times = torch.tensor([[0.5, 1.5, 4.0], [1.0, 0.0, 0.0]])
    return types, times, types >= 0


# -- no easy_tpp needed ---------------------------------------------------------------------------------------------
class TestWithoutEasyTPP:
    def test_missing_extra_names_the_install_line(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
        for name in ("easy_tpp", "easy_tpp.model", "easy_tpp.config_factory"):
            monkeypatch.setitem(sys.modules, name, None)  # an import of these now fails, installed or not
        with pytest.raises(ImportError, match=r"pip install 'smurf-thp\[easytpp\]'"):
            EasyTPPAnchor(EasyTPPConfig(num_types=2))
        with pytest.raises(ImportError, match=r"smurf-thp\[easytpp\]"):
            easytpp.require_easy_tpp()
        from smurf_thp.bench import run_bench

        with pytest.raises(ImportError, match=r"smurf-thp\[easytpp\]"):
            run_bench("anchors-quick", tmp_path / "bench", jobs=1, progress=False)
        data = tmp_path / "data"
        assert main(["simulate", "--process", "hawkes3", "--n-seqs", "4,2,2", "--t-end", "5", "--out", str(data)]) == 0
        capsys.readouterr()
        code = main(["train", "--data", str(data), "--model", "easytpp-nhp", "--out", str(tmp_path / "run")])
        err = capsys.readouterr().err
        assert code == 2
        assert "pip install 'smurf-thp[easytpp]'" in err
        assert len(err.strip().splitlines()) == 1

    def test_importing_the_package_and_the_module_does_not_import_easy_tpp(self) -> None:
        code = "import sys, smurf_thp, smurf_thp.easytpp, smurf_thp.cli; assert 'easy_tpp' not in sys.modules"
        subprocess.run([sys.executable, "-c", code], check=True, timeout=120)

    def test_cli_names_match_the_module(self) -> None:
        assert tuple(easytpp.ANCHORS) == ANCHOR_MODELS
        assert set(easytpp.ANCHORS.values()) == set(MODEL_IDS)

    def test_to_easytpp_batch_by_hand(self) -> None:
        # times / 0.5; gaps [0, 1/0.5, 2.5/0.5]; row 2 has one event: times, gaps and types padded with K = 3
        out = to_easytpp_batch(*_hand_batch(), num_types=3, time_scale=0.5)
        assert out["time_seqs"].tolist() == [[1.0, 3.0, 8.0], [2.0, 3.0, 3.0]]
        assert out["time_delta_seqs"].tolist() == [[0.0, 2.0, 5.0], [0.0, 3.0, 3.0]]
        assert out["type_seqs"].tolist() == [[1, 0, 2], [2, 3, 3]]
        assert out["seq_non_pad_mask"].tolist() == [[True, True, True], [True, False, False]]
        f, t = False, True  # True = query i may not attend key j: j > i, or j is padding
        assert out["attention_mask"].tolist() == [[[f, t, t], [f, f, t], [f, f, f]], [[f, t, t], [f, t, t], [f, t, t]]]
        assert out["time_seqs"].dtype == out["time_delta_seqs"].dtype == torch.float32
        assert out["type_seqs"].dtype == torch.int64

    def test_round_trip_and_given_gaps(self) -> None:
        types, times, mask = _hand_batch()
        out = to_easytpp_batch(types, times, mask, 3, time_scale=0.5)
        back = from_easytpp_batch(out, time_scale=0.5)
        assert torch.equal(back[0], types)
        assert torch.equal(back[1], times)
        assert torch.equal(back[2], mask)
        gaps = torch.tensor([[2.0, 5.0], [9.0, 9.0]])  # scaled gaps of events 1..L-1 (any value at padding)
        torch.testing.assert_close(to_easytpp_batch(types, times, mask, 3, 0.5, gaps), out)

    def test_collate_and_conversion_agree_on_a_simulated_batch(self) -> None:
        ds = PRESETS["hawkes3"].simulate(5, t_end=6.0, seed=3)
        b = collate(ds)
        out = to_easytpp_batch(b.types, b.times, b.mask, 3, 2.0)
        for i, seq in enumerate(ds):
            n = len(seq)
            np.testing.assert_allclose(out["time_seqs"][i, :n].numpy(), seq.times / 2.0, rtol=1e-6)
            np.testing.assert_allclose(out["time_delta_seqs"][i, 1:n].numpy(), np.diff(seq.times) / 2.0, atol=1e-5)
            assert (out["type_seqs"][i, n:] == 3).all()

    def test_bad_batches_and_configs(self) -> None:
        types, times, mask = _hand_batch()
        with pytest.raises(ValueError, match="right-padded"):
            to_easytpp_batch(types, times, torch.tensor([[True, False, True], [True, False, False]]), 3)
        with pytest.raises(ValueError, match=r"types must lie in \[0, 2\)"):
            to_easytpp_batch(types, times, mask, 2)
        with pytest.raises(ValueError, match="time_scale must be a finite number > 0"):
            to_easytpp_batch(types, times, mask, 3, time_scale=0.0)
        with pytest.raises(ValueError, match="gaps must have shape"):
            to_easytpp_batch(types, times, mask, 3, gaps=torch.zeros(2, 3))
        with pytest.raises(ValueError, match="model_id must be one of"):
            EasyTPPConfig(num_types=2, model_id="RMTPP")
        with pytest.raises(ValueError, match=r"hidden_size \(30\) must be divisible by num_heads \(4\)"):
            EasyTPPConfig(num_types=2, hidden_size=30, num_heads=4)
        with pytest.raises(ValueError, match="sampler must be one of"):
            EasyTPPConfig(num_types=2, sampler="ogata")  # type: ignore[arg-type]
        assert easytpp.preset_settings("so")["hidden_size"] == 64


# -- with easy_tpp ----------------------------------------------------------------------------------------------------
class TestConventions:
    def test_conversion_equals_easytpp_tokenizer(self, etpp: Any) -> None:
        from easy_tpp.config_factory import DataSpecConfig
        from easy_tpp.preprocess.event_tokenizer import EventTokenizer

        tokenizer = EventTokenizer(DataSpecConfig(num_event_types=3, pad_token_id=3, padding_side="right"))
        theirs = tokenizer.pad([{"time_seqs": [1.0, 3.0, 8.0], "time_delta_seqs": [0.0, 2.0, 5.0], "type_seqs": [1, 0, 2]},
                                {"time_seqs": [2.0], "time_delta_seqs": [0.0], "type_seqs": [2]}], return_tensors="pt")  # fmt: skip
        ours = to_easytpp_batch(*_hand_batch(), num_types=3, time_scale=0.5)
        for key in ours:
            assert torch.equal(ours[key], theirs[key]), key

    def test_prepare_sets_the_mean_gap_and_log_gap_statistics(self, etpp: Any, tiny: tuple[EventDataset, ...]) -> None:
        model = _anchor("IntensityFree")
        trainer = Trainer(model, TrainConfig(epochs=1, batch_size=8))
        trainer.fit(tiny[0], tiny[1], progress=False)
        gaps = tiny[0].all_gaps()
        log_u = np.log(np.clip(gaps / gaps.mean(), 1e-5, None))  # EasyTPP's TPPDataset.get_dt_stats, in numpy
        assert float(model.time_scale) == pytest.approx(gaps.mean())
        assert model.net.mean_log_inter_time == pytest.approx(log_u.mean())
        assert model.net.std_log_inter_time == pytest.approx(log_u.std())

    @pytest.mark.parametrize("model_id", ["THP", "SAHP", "NHP"])
    def test_intensity_loss_equals_a_fine_quadrature_of_the_intensity(self, etpp: Any, model_id: str) -> None:
        # −Σ log λ_k(τ) + Σ ∫_0^τ λ, with λ from compute_intensities_at_sample_times on a 4001-point trapezoid grid,
        # against loglike_loss with a 4001-point compensator: checks the off-by-one, masks and padding of the batch
        model = _anchor(model_id, loss_integral_num_sample_per_step=4001, use_ln=False)
        model.eval()
        types, times, mask = _hand_batch()
        u = torch.diff(times, dim=1)
        loss = model.loss(types, times, mask, u).total * int(mask[:, 1:].sum())
        batch = model.inputs(types, times, mask)
        ts, dts, ks = (batch[k][:, :-1] for k in ("time_seqs", "time_delta_seqs", "type_seqs"))
        frac = torch.linspace(0, 1, 4001)
        with torch.no_grad():
            lam = model.net.compute_intensities_at_sample_times(ts, dts, ks, u.clamp_min(0)[..., None] * frac)
        total = lam.sum(-1)
        integral = (total[..., 1:] + total[..., :-1]).mul(0.5).mean(-1) * u
        log_event = lam[..., -1, :].gather(-1, types[:, 1:].clamp_min(0)[..., None]).squeeze(-1).log()
        valid = mask[:, 1:]
        expected = (integral - log_event)[valid].sum()
        torch.testing.assert_close(loss.detach(), expected, rtol=2e-4, atol=2e-4)

    def test_intensity_free_distribution_reproduces_its_loss(self, etpp: Any) -> None:
        # the mixture we sample from, scored at the true gaps (+ its mark log-probabilities), is EasyTPP's loss
        model = _anchor("IntensityFree")
        model.log_gap_stats.copy_(torch.tensor([-0.3, 1.2], dtype=torch.float64))
        model._sync()
        types, times, mask = _hand_batch()
        u = torch.diff(times, dim=1)
        loss = model.loss(types, times, mask, u).total * int(mask[:, 1:].sum())
        batch = model.inputs(types, times, mask)
        with torch.no_grad():
            dist, probs = model._intensity_free(batch["time_delta_seqs"][:, :-1], batch["type_seqs"][:, :-1])
            context = model.net.forward(batch["time_delta_seqs"][:, :-1], batch["type_seqs"][:, :-1])
        full = torch.log_softmax(model.net.mark_linear(context), -1)  # K + 1 classes, as EasyTPP's loss
        valid = mask[:, 1:]
        k = types[:, 1:].clamp_min(0)[..., None]
        expected = -(dist.log_prob(u.clamp_min(1e-5)) + full.gather(-1, k).squeeze(-1))[valid].sum()
        torch.testing.assert_close(loss.detach(), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(probs.sum(-1), torch.ones(2, 2))


@pytest.mark.parametrize("model_id", MODEL_IDS)
class TestModels:
    def test_adam_steps_lower_a_finite_loss(self, etpp: Any, model_id: str, tiny: tuple[EventDataset, ...]) -> None:
        model = _anchor(model_id)
        b = collate(list(tiny[0])[:8])
        u = torch.where(b.mask[:, 1:], b.gaps[:, 1:], torch.ones_like(b.gaps[:, 1:]))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        first = model.loss(b.types, b.times, b.mask, u).total.item()
        for _ in range(15):
            opt.zero_grad()
            model.loss(b.types, b.times, b.mask, u).total.backward()
            opt.step()
        last = model.loss(b.types, b.times, b.mask, u).total.item()
        assert np.isfinite(first)
        assert last < first

    def test_samples_shape_support_and_determinism(self, etpp: Any, model_id: str,
                                                   tiny: tuple[EventDataset, ...]) -> None:  # fmt: skip
        model = _anchor(model_id)
        b = collate(list(tiny[0])[:5])
        B, L = b.types.shape
        sampler = SamplerConfig(n_samples=6)
        state = torch.get_rng_state()
        a = model.sample(b.types, b.times, b.mask, sampler, None, torch.Generator().manual_seed(1))
        assert torch.equal(torch.get_rng_state(), state)  # EasyTPP's global draws ran in a forked RNG
        again = model.sample(b.types, b.times, b.mask, sampler, None, torch.Generator().manual_seed(1))
        other = model.sample(b.types, b.times, b.mask, sampler, None, torch.Generator().manual_seed(2))
        assert a.tau.shape == a.types.shape == (B, L - 1, 6)
        assert a.type_probs.shape == (B, L - 1, 3)
        hist = b.mask[:, :-1]
        assert bool((a.tau[hist] > 0).all())
        assert bool(torch.isfinite(a.tau).all())
        assert bool((a.tau[~hist] == 0).all())
        assert bool(((a.types >= 0) & (a.types < 3)).all())
        torch.testing.assert_close(a.type_probs[hist].sum(-1), torch.ones(int(hist.sum())))
        assert torch.equal(a.tau, again.tau)
        assert torch.equal(a.types, again.types)
        assert not torch.equal(a.tau, other.tau)

    def test_train_evaluate_and_checkpoint(self, etpp: Any, model_id: str, tiny: tuple[EventDataset, ...],
                                           tmp_path: Path) -> None:  # fmt: skip
        train, dev = tiny
        model = _anchor(model_id)
        trainer = Trainer(model, TrainConfig(epochs=2, batch_size=8, lr=5e-3))
        history = trainer.fit(train, dev, checkpoint=tmp_path / "model.pt", progress=False)
        assert all(np.isfinite(r["dev_loss"]) for r in history.records)
        assert trainer.normalizer is not None
        sampler = SamplerConfig(n_samples=20)
        metrics = evaluate(trainer.model, trainer.normalizer, dev, sampler, process=PRESETS["hawkes3"])
        for key in ("cs", "oracle_cs", "crps", "il", "accuracy", "rmse_median", "pit_ks"):
            assert np.isfinite(metrics[key]), key
        assert metrics["frac_negative"] == 0.0
        loaded, _, state = load_checkpoint(tmp_path / "model.pt")
        assert state["model_class"] == "EasyTPPAnchor"
        assert float(loaded.time_scale) == pytest.approx(float(model.time_scale))
        b = collate(list(dev)[:3])
        g = [torch.Generator().manual_seed(3) for _ in range(2)]
        x = trainer.model.sample(b.types, b.times, b.mask, sampler, None, g[0])
        y = loaded.sample(b.types, b.times, b.mask, sampler, None, g[1])
        assert torch.equal(x.tau, y.tau)


def test_thinning_draws_follow_the_model_law_like_the_inverse_cdf(etpp: Any, tiny: tuple[EventDataset, ...]) -> None:
    # PIT of each draw under the model's own next-gap CDF F(τ) = 1 − exp(−Λ(τ)), Λ by a fine trapezoid: uniform for
    # the exact inverse CDF (KS); EasyTPP's thinning draws share proposals within an event, so only their deciles
    # are compared (loosely), and their ties are counted
    model = _anchor("NHP", seed=3)
    model.eval()
    b = collate(list(tiny[0])[:12])
    grid = torch.linspace(0, 25, 5001)
    batch = model.inputs(b.types, b.times, b.mask)
    ts, dts, ks = (batch[k][:, :-1] for k in ("time_seqs", "time_delta_seqs", "type_seqs"))
    with torch.no_grad():
        lam = model.net.compute_intensities_at_sample_times(ts, dts, ks, grid.expand(*ts.shape, -1)).sum(-1)
    Lam = torch.cat(
        [torch.zeros_like(lam[..., :1]), torch.cumsum(0.5 * (lam[..., 1:] + lam[..., :-1]) * 0.005, -1)], -1
    )
    valid = b.mask[:, 1:]

    def pit(tau: torch.Tensor) -> np.ndarray:
        idx = torch.searchsorted(grid, tau.clamp_max(25.0).contiguous()).clamp(max=5000)
        return (1 - torch.exp(-Lam.gather(-1, idx)))[valid].flatten().numpy()

    sampler = SamplerConfig(n_samples=200)
    model.sampler_method = "inverse-cdf"
    exact = pit(model.sample(b.types, b.times, b.mask, sampler, None, torch.Generator().manual_seed(0)).tau)
    model.sampler_method = "thinning"
    thinned = model.sample(b.types, b.times, b.mask, sampler, None, torch.Generator().manual_seed(0)).tau
    assert stats.kstest(exact, "uniform").statistic < 0.02
    deciles = np.quantile(pit(thinned), np.linspace(0.1, 0.9, 9))
    np.testing.assert_allclose(deciles, np.linspace(0.1, 0.9, 9), atol=0.05)
    distinct = np.mean([len(torch.unique(row)) for row in thinned[valid]])
    assert distinct < 200  # ties: the draws of one event are made from one shared set of proposals
    assert model.thinning_stats["at_dtime_max"] == 0


@pytest.mark.filterwarnings("ignore:.*fewer than 2 events")
def test_cli_train_and_evaluate_an_anchor(etpp: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert main(["simulate", "--process", "hawkes3", "--n-seqs", "20,6,6", "--t-end", "8", "--out", str(data)]) == 0
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--model", "easytpp-intensityfree", "--epochs", "2", "--set",
                 "hidden_size=8", "--out", str(run), "--json"]) == 0  # fmt: skip
    assert json.loads((run / "config.json").read_text())["model_config"]["model_id"] == "IntensityFree"
    capsys.readouterr()
    assert main(["evaluate", "--ckpt", str(run / "model.pt"), "--data", str(data), "--n-samples", "10", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert np.isfinite(metrics["oracle_cs"])
    assert main(["train", "--data", str(data), "--model", "easytpp-thp", "--set", "num_mix=3", "--out", str(run)]) == 2
    assert "unknown EasyTPP anchor setting" in capsys.readouterr().err


def test_quick_anchor_bench(etpp: Any, tmp_path: Path) -> None:
    from smurf_thp.bench import run_bench

    threads = torch.get_num_threads()
    try:
        report = run_bench("anchors-quick", tmp_path, jobs=1, progress=False)  # in-process: run_one sets 1 thread
    finally:
        torch.set_num_threads(threads)
    rows = report["table"]["hawkes3"]
    assert {"easytpp-thp", "easytpp-thp (inverse CDF)", "easytpp-intensityfree", "oracle"} <= set(rows)
    assert "easytpp-intensityfree (inverse CDF)" not in rows
    assert all(np.isfinite(cell["crps"][0]) for cell in rows.values())
    md = (tmp_path / "anchors-quick.md").read_text()
    assert "EasyTPP anchors (easy-tpp" in md
    assert "Machine:" in md


@pytest.mark.parametrize("module", [easytpp, _easytpp], ids=["easytpp", "_easytpp"])
def test_docstring_examples(module: Any) -> None:
    result = doctest.testmod(module, extraglobs={"torch": torch})
    assert result.failed == 0
    assert result.attempted > 0
