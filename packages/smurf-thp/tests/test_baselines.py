"""The MLE baselines: likelihoods against quadrature and hand computations, exact sampling, causality, padding."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from smurf_thp import baselines
from smurf_thp.baselines import FlexibleIntensityMLE, THPIntensity, compensator, quadratic_grid
from smurf_thp.smurf import SamplerConfig, SMURFConfig

Model = FlexibleIntensityMLE | THPIntensity


def _cfg(num_types: int = 3) -> SMURFConfig:
    return SMURFConfig(num_types=num_types, d_model=8, d_inner=16, n_layers=1, n_head=2, d_k=4, d_v=4, dropout=0.0)


def _make(kind: str, seed: int = 0, **kwargs: object) -> Model:
    torch.manual_seed(seed)
    cls = FlexibleIntensityMLE if kind == "flex" else THPIntensity
    return cls(_cfg(), **kwargs)  # type: ignore[arg-type]


def _batch(seed: int = 0, B: int = 3, L: int = 7, K: int = 3) -> tuple[torch.Tensor, ...]:
    """Random padded batch in the mean-scaled space: row b has L − b events; ``u_next`` = the true gaps."""
    g = torch.Generator().manual_seed(seed)
    gaps = torch.empty(B, L).exponential_(generator=g)
    times = gaps.cumsum(1)
    types = torch.randint(0, K, (B, L), generator=g)
    lengths = torch.tensor([L - b for b in range(B)])
    mask = torch.arange(L).unsqueeze(0) < lengths.unsqueeze(1)
    types = torch.where(mask, types, torch.full_like(types, -1))
    times = torch.where(mask, times, torch.zeros_like(times))
    u_next = torch.where(mask[:, 1:], gaps[:, 1:], torch.zeros_like(gaps[:, 1:]))
    return types, times, mask, u_next


def _fine_compensator(fn: object, u: torch.Tensor, n: int = 20_001) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Λ(u), max|λ''|)`` by a 20k-interval trapezoid rule and second differences on the same grid (float64)."""
    frac = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    s = u.unsqueeze(-1) * frac
    lam = fn(s)  # type: ignore[operator]
    ds = (u / (n - 1)).unsqueeze(-1)
    Lam = (lam.sum(-1) - 0.5 * (lam[..., 0] + lam[..., -1])) * ds.squeeze(-1)
    second = (lam[..., 2:] - 2 * lam[..., 1:-1] + lam[..., :-2]) / ds**2
    return Lam, second.abs().amax(-1)


class TestLikelihood:
    def test_flexible_time_nll_matches_fine_quadrature_within_the_trapezoid_bound(self) -> None:
        # brute force: Λ by a 20k-interval trapezoid; 16-interval error ≤ u³ max|λ''| / (12·16²)
        model = _make("flex").double()
        types, times, mask, u_next = _batch()
        u = 3.0 * u_next.double()
        time_nll, _ = model.nll(types, times, mask, u)
        h = model.encode(types, times, mask)
        Lam, lam2 = _fine_compensator(lambda s: model.time_head.intensity(h, s), u)
        lam_u = model.time_head.intensity(h, u.unsqueeze(-1)).squeeze(-1)
        brute = Lam - torch.log(lam_u)
        valid = mask[:, 1:]
        err = (time_nll - brute).detach().abs()[valid]
        bound = (u**3 * lam2 / (12 * 16**2))[valid]
        assert bool((err <= 1.01 * bound + 1e-9).all())
        assert float(err.max()) > 1e-8  # the test exercises a non-trivial trapezoid error

    def test_flexible_trapezoid_converges_quadratically(self) -> None:
        model = _make("flex", seed=1).double()
        types, times, mask, u_next = _batch(1)
        u = 3.0 * u_next.double()
        h = model.encode(types, times, mask)
        exact, _ = _fine_compensator(lambda s: model.time_head.intensity(h, s), u)
        errors = []
        for G in (4, 16, 64):
            model.grid_points = G
            time_nll, _ = model.nll(types, times, mask, u)
            lam_u = model.time_head.intensity(h, u.unsqueeze(-1)).squeeze(-1)
            errors.append(float((time_nll + torch.log(lam_u) - exact).detach().abs()[mask[:, 1:]].sum()))
        assert errors[0] > errors[1] > errors[2]
        assert errors[2] < errors[0] / 100  # O(G^-2): 16² = 256 in theory

    def test_flexible_constant_intensity_gives_the_exponential_nll(self) -> None:
        # λ ≡ softplus(c) when w = 0 and uniform types when W_c = 0: nll = −log λ + λ u + log K, exactly
        model = _make("flex")
        with torch.no_grad():
            model.time_head.w.zero_()
            model.time_head.c.fill_(0.7)
            model.type_head.out.weight.zero_()
        types, times, mask, u_next = _batch()
        lam = math.log1p(math.exp(0.7))
        out = model.loss(types, times, mask, u_next)
        valid = mask[:, 1:]
        expected = (-math.log(lam) + lam * u_next + math.log(3))[valid].mean()
        torch.testing.assert_close(out.total, expected, atol=1e-5, rtol=1e-5)
        assert out.type.item() == pytest.approx(math.log(3), abs=1e-6)
        assert out.n_events == int(valid.sum())

    def test_thp_nll_matches_a_hand_computation_on_one_event(self) -> None:
        # one predicted event after t_0 = 0 (pitfall 5: t_0 + 1, no explosion); λ_k by hand, ∫ by scipy.quad
        model = _make("thp", beta=1.5)
        with torch.no_grad():
            model.alpha.copy_(torch.tensor([0.8, -0.5, 0.3]))
        types, times, mask = torch.tensor([[2, 1]]), torch.tensor([[0.0, 1.3]]), torch.ones(1, 2, dtype=torch.bool)
        u = torch.tensor([[1.3]])
        h = model.encode(types, times, mask)[0, 0].detach().numpy().astype(np.float64)
        W, b = model.linear.weight.detach().numpy().astype(np.float64), model.linear.bias.detach().numpy()
        alpha, beta, t0 = np.array([0.8, -0.5, 0.3]), 1.5, 0.0

        def lam_k(s: float) -> np.ndarray:
            return np.log1p(np.exp(beta * (W @ h + alpha * s / (t0 + 1.0) + b))) / beta

        integral, _ = integrate.quad(lambda s: float(lam_k(s).sum()), 0.0, 1.3, epsabs=1e-12)
        hand = -math.log(lam_k(1.3)[1]) + integral
        model.grid_points = 4096
        assert model.loss(types, times, mask, u).total.item() == pytest.approx(hand, abs=1e-5)
        model.grid_points = 1  # one trapezoid interval: Λ = u (λ(0) + λ(u)) / 2, by hand
        hand_1 = -math.log(lam_k(1.3)[1]) + 1.3 * (lam_k(0.0).sum() + lam_k(1.3).sum()) / 2
        assert model.loss(types, times, mask, u).total.item() == pytest.approx(hand_1, abs=1e-5)

    def test_thp_type_probabilities_are_the_intensity_shares_and_sum_to_one(self) -> None:
        model = _make("thp")
        h, t_prev, u = torch.randn(4, 8), torch.tensor([0.0, 1.0, 5.0, 50.0]), torch.rand(4, 6) * 3
        p = model.type_log_probs(h, t_prev, u).exp()
        lam_k = model.per_type_intensity(h, t_prev, u)
        torch.testing.assert_close(p, lam_k / lam_k.sum(-1, keepdim=True))
        torch.testing.assert_close(p.sum(-1), torch.ones(4, 6))
        with torch.no_grad():
            model.linear.bias.fill_(-300.0)  # intensities underflow to 0; the shares stay defined
        p = model.type_log_probs(h, t_prev, u).exp()
        assert bool(torch.isfinite(p).all())
        torch.testing.assert_close(p.sum(-1), torch.ones(4, 6))

    def test_compensator_and_grid_helpers(self) -> None:
        # a linear intensity is integrated exactly by the trapezoid rule
        lam, Lam = compensator(lambda s: 0.5 + 2.0 * s, torch.tensor([0.0, 2.0]), 3)
        torch.testing.assert_close(Lam, torch.tensor([0.0, 5.0]))
        torch.testing.assert_close(lam, torch.tensor([0.5, 4.5]))
        grid = quadratic_grid(20.0, 1025)
        assert float(grid[0]) == 0.0
        assert float(grid[-1]) == pytest.approx(20.0)
        assert bool((grid[1:] > grid[:-1]).all())


@pytest.mark.parametrize("kind", ["flex", "thp"])
class TestModels:
    def test_adam_steps_lower_the_loss(self, kind: str) -> None:
        model = _make(kind)
        types, times, mask, u_next = _batch(2, B=6, L=12)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        first = model.loss(types, times, mask, u_next).total.item()
        for _ in range(30):
            opt.zero_grad()
            model.loss(types, times, mask, u_next).total.backward()
            opt.step()
        assert model.loss(types, times, mask, u_next).total.item() < first - 0.05

    def test_samples_shapes_support_and_determinism(self, kind: str) -> None:
        model = _make(kind)
        types, times, mask, _ = _batch(3)
        sampler = SamplerConfig(n_samples=7)
        a = model.sample(types, times, mask, sampler, (0.1, 3.0), torch.Generator().manual_seed(5))
        b = model.sample(types, times, mask, sampler, (0.1, 3.0), torch.Generator().manual_seed(5))
        c = model.sample(types, times, mask, sampler, (0.1, 3.0), torch.Generator().manual_seed(6))
        assert a.tau.shape == a.types.shape == (3, 6, 7)
        assert a.type_probs.shape == (3, 6, 3)
        assert bool((a.tau >= 0).all())
        assert torch.equal(a.tau, b.tau)
        assert torch.equal(a.types, b.types)
        assert not torch.equal(a.tau, c.tau)
        hist = mask[:, :-1]
        assert bool(((a.types >= 0) & (a.types < 3)).all())
        torch.testing.assert_close(a.type_probs[hist].sum(-1), torch.ones(int(hist.sum())))
        assert bool((a.tau[~hist] == 0).all())

    def test_causality(self, kind: str) -> None:
        # changing events 5.. leaves the losses of positions 0..3 (predicting events 1..4) unchanged
        model = _make(kind)
        types, times, mask, u_next = _batch(4, B=2, L=8)
        mask = torch.ones_like(mask)
        types2, times2, u2 = types.clone().clamp_min(0), times.clone(), u_next.clone()
        types2[:, 5:] = (types2[:, 5:] + 1) % 3
        times2[:, 5:] += 2.0
        u2[:, 4:] += 1.5
        t1, k1 = model.nll(types.clamp_min(0), times, mask, u_next)
        t2, k2 = model.nll(types2, times2, mask, u2)
        torch.testing.assert_close(t1[:, :4], t2[:, :4])
        torch.testing.assert_close(k1[:, :4], k2[:, :4])
        assert not torch.allclose(t1[:, 4:], t2[:, 4:])

    def test_padding_values_do_not_change_the_loss(self, kind: str) -> None:
        model = _make(kind)
        types, times, mask, u_next = _batch(5)
        base = model.loss(types, times, mask, u_next).total
        pad = ~mask[:, 1:]
        for fill in (1e6, -3.0, float("nan")):
            other = torch.where(pad, torch.full_like(u_next, fill), u_next)
            torch.testing.assert_close(model.loss(types, times, mask, other).total, base)
        # a sequence alone gives the same per-event losses as inside the padded batch
        alone, _ = model.nll(types[2:, :5], times[2:, :5], mask[2:, :5], u_next[2:, :4])
        batched, _ = model.nll(types, times, mask, u_next)
        torch.testing.assert_close(alone[0], batched[2, :4], atol=1e-5, rtol=1e-5)

    def test_space_is_mean(self, kind: str) -> None:
        model = _make(kind)
        assert model.space == "mean"
        types, times, mask, u_next = _batch()
        with pytest.raises(ValueError, match="mean-scaled"):
            model.loss(types, times, mask, u_next - 2.0)


def test_constant_intensity_samples_are_exponential() -> None:
    # flexible head with w = 0: λ ≡ softplus(c); THP with α = 0: λ = Σ_k λ_k constant, types ∝ λ_k
    flex = _make("flex")
    with torch.no_grad():
        flex.time_head.w.zero_()
        flex.time_head.c.fill_(0.3)
    types, times, mask = torch.tensor([[0, 1]]), torch.tensor([[0.5, 1.0]]), torch.ones(1, 2, dtype=torch.bool)
    g = torch.Generator().manual_seed(0)
    x = flex.sample(types, times, mask, SamplerConfig(n_samples=4000), None, g).tau.flatten().numpy()
    rate = math.log1p(math.exp(0.3))
    assert stats.kstest(x, "expon", args=(0, 1 / rate)).pvalue > 0.01

    thp = _make("thp")
    with torch.no_grad():
        thp.alpha.zero_()
    out = thp.sample(types, times, mask, SamplerConfig(n_samples=4000), None, g)
    h = thp.encode(types, times, mask)[0, 0]
    lam_k = thp.per_type_intensity(h, torch.tensor(0.5), torch.zeros(1))[0].detach()
    assert stats.kstest(out.tau.flatten().numpy(), "expon", args=(0, 1 / float(lam_k.sum()))).pvalue > 0.01
    freq = torch.bincount(out.types.flatten(), minlength=3).double() / 4000
    torch.testing.assert_close(freq, (lam_k / lam_k.sum()).double(), atol=0.03, rtol=0)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="grid_points must be an integer >= 1"):
        FlexibleIntensityMLE(_cfg(), grid_points=0)
    with pytest.raises(ValueError, match="sample_upper must be a finite number > 0"):
        THPIntensity(_cfg(), sample_upper=-1.0)
    with pytest.raises(ValueError, match="sample_points must be an integer >= 2"):
        THPIntensity(_cfg(), sample_points=1)
    with pytest.raises(ValueError, match="beta must be a finite number > 0"):
        THPIntensity(_cfg(), beta=0.0)
    types, times, mask, u_next = _batch()
    with pytest.raises(ValueError, match="u_next must have shape"):
        FlexibleIntensityMLE(_cfg()).loss(types, times, mask, u_next[:, :-1])


def test_docstring_examples() -> None:
    result = doctest.testmod(baselines, extraglobs={"torch": torch})
    assert result.failed == 0
    assert result.attempted > 0
