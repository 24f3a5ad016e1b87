"""The score head, the DSM/Hyvärinen losses, Langevin and inverse-CDF sampling, causality and padding."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch
from scipy import stats

from smurf_thp import losses, model, sampling, smurf
from smurf_thp.losses import dsm_loss, noisy_copies, type_ce
from smurf_thp.model import IntensityScoreHead, THPEncoder
from smurf_thp.sampling import inverse_cdf_sample, langevin
from smurf_thp.smurf import SMURFTHP, SamplerConfig, SMURFConfig

torch.set_default_dtype(torch.float32)


def _head(seed: int = 0, d: int = 6) -> tuple[IntensityScoreHead, torch.Tensor]:
    torch.manual_seed(seed)
    head = IntensityScoreHead(d, 5).double()
    return head, torch.randn(3, d, dtype=torch.float64)


def test_score_is_the_derivative_of_the_log_density() -> None:
    # log p(τ) = log λ(τ) − Λ(τ), Λ by a 4001-point trapezoid rule; central finite difference of log p
    head, h = _head()
    grid = torch.linspace(0.0, 3.0, 4001, dtype=torch.float64).expand(3, -1)
    lam = head.intensity(h, grid)
    Lam = torch.cat(
        [torch.zeros(3, 1, dtype=torch.float64), torch.cumsum(0.5 * (lam[:, 1:] + lam[:, :-1]) * (3 / 4000), 1)], 1
    )
    logp = torch.log(lam) - Lam
    i = torch.arange(200, 3800, 400)
    fd = (logp[:, i + 1] - logp[:, i - 1]) / (2 * 3 / 4000)
    torch.testing.assert_close(head.score(h, grid[:, i]), fd, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(head.score(h, grid[:, i]), head.score_autograd(h, grid[:, i]), atol=1e-10, rtol=1e-8)


def _dsm_of(
    head: IntensityScoreHead, h: torch.Tensor, tilde: torch.Tensor, eps: torch.Tensor, semi: bool
) -> torch.Tensor:
    return dsm_loss(lambda t: head.score(h, t, semi=semi), tilde, eps, 0.3).sum()


def test_exact_gradient_matches_finite_differences_and_semi_does_not() -> None:
    head, h = _head(1)
    tilde, eps = noisy_copies(torch.rand(3, dtype=torch.float64), 0.3, 8, torch.Generator().manual_seed(0))
    params = [head.a.weight, head.w]
    exact = torch.autograd.grad(_dsm_of(head, h, tilde, eps, False), params)
    semi = torch.autograd.grad(_dsm_of(head, h, tilde, eps, True), params)
    for p, g_exact, g_semi in zip(params, exact, semi, strict=True):
        flat = p.detach().view(-1)
        for k in range(0, flat.numel(), max(1, flat.numel() // 5)):
            old = float(flat[k])
            with torch.no_grad():
                flat[k] = old + 1e-6
                up = float(_dsm_of(head, h, tilde, eps, False))
                flat[k] = old - 1e-6
                down = float(_dsm_of(head, h, tilde, eps, False))
                flat[k] = old
            fd = (up - down) / 2e-6
            assert float(g_exact.view(-1)[k]) == pytest.approx(fd, rel=1e-4, abs=1e-7)
        assert not torch.allclose(g_exact, g_semi)  # the official semi-gradient is another vector


def test_dsm_optimum_of_a_gaussian_is_the_noised_score() -> None:
    # data N(m, s²), model s(x) = −(x − a)/b: the DSM minimiser is a = m, b = s² + σ² (Vincent 2011)
    m, s, sigma = 1.5, 0.7, 0.4
    g = torch.Generator().manual_seed(0)
    x = m + s * torch.randn(200000, generator=g, dtype=torch.float64)
    tilde, eps = noisy_copies(x, sigma, 2, g)
    a = torch.zeros((), dtype=torch.float64, requires_grad=True)
    log_b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([a, log_b], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = dsm_loss(lambda t: -(t - a) / log_b.exp(), tilde, eps, sigma).mean()
        loss.backward()
        return loss

    opt.step(closure)
    assert float(a.detach()) == pytest.approx(m, abs=0.01)
    assert float(log_b.detach().exp()) == pytest.approx(s**2 + sigma**2, rel=0.02)


def test_tweedie_step_is_the_posterior_mean() -> None:
    # x ~ N(m, s²), x̃ = x + σz: E[x | x̃] = m + s²/(s² + σ²)(x̃ − m) = x̃ + σ² ∇log p_σ(x̃), p_σ = N(m, s² + σ²)
    m, s, sigma = -0.5, 1.2, 0.3
    x_tilde = torch.linspace(-3, 3, 13, dtype=torch.float64)
    score = lambda t: -(t - m) / (s**2 + sigma**2)  # noqa: E731
    out, _ = langevin(score, x_tilde, 0.1, 0, denoise_sigma=sigma)
    torch.testing.assert_close(out, m + s**2 / (s**2 + sigma**2) * (x_tilde - m), atol=1e-12, rtol=0)


def test_langevin_samples_a_known_law() -> None:
    # Exp(1) in u = log τ has density e^{u − e^u}, score 1 − e^u (spec §5.5); its left tail mixes slowly
    # (drift +1/2 per unit time there), so run to Langevin time 30 (at time 10 the KS statistic was still 0.035)
    g = torch.Generator().manual_seed(0)
    u, _ = langevin(lambda v: 1 - v.exp(), torch.zeros(5000, dtype=torch.float64), 0.01, 3000, generator=g)
    assert stats.kstest(u.exp().numpy(), "expon").pvalue > 0.01


def test_reflecting_boundary_never_returns_negatives_and_records() -> None:
    g = torch.Generator().manual_seed(1)
    x, records = langevin(lambda v: -torch.ones_like(v), torch.full((4000,), 0.1), 0.05, 200, boundary="reflect",
                          generator=g, record_every=50)  # fmt: skip
    assert bool((x >= 0).all())
    assert len(records) == 4
    assert all(bool((r >= 0).all()) for r in records)
    # density e^{−x} on x ≥ 0 (score −1 with reflection): mean 1
    assert float(x.mean()) == pytest.approx(1.0, abs=0.08)


def test_inverse_cdf_sampling_matches_the_law() -> None:
    grid = torch.linspace(0, 8, 4001, dtype=torch.float64)
    rate = lambda t: 0.5 + 0.5 * t  # noqa: E731  (Λ(τ) = τ/2 + τ²/4, F = 1 − e^{−Λ})
    x = inverse_cdf_sample(rate, grid, 20000, torch.Generator().manual_seed(0)).numpy()
    cdf = lambda v: 1 - np.exp(-(v / 2 + v**2 / 4))  # noqa: E731
    assert stats.kstest(x, cdf).pvalue > 0.01


def test_type_ce_with_smoothing_by_hand() -> None:
    logits = torch.log(torch.tensor([[[0.7, 0.2, 0.1]]]))
    q = torch.tensor([0.9 * 1 + 0.1 / 3, 0.1 / 3, 0.1 / 3])
    expected = -(q * torch.log(torch.tensor([0.7, 0.2, 0.1]))).sum()
    assert float(type_ce(logits, torch.tensor([0]), 0.1)) == pytest.approx(float(expected), rel=1e-6)
    with pytest.raises(ValueError, match="smoothing must be in"):
        type_ce(logits, torch.tensor([0]), 1.0)


def _tiny(grad_mode: str = "exact", **kw: object) -> SMURFTHP:
    torch.manual_seed(0)
    config = SMURFConfig(num_types=3, d_model=8, d_inner=16, n_layers=2, n_head=2, d_k=4, d_v=4, dropout=0.0,
                         num_noise=6, grad_mode=grad_mode, **kw)  # type: ignore[arg-type]  # fmt: skip
    return SMURFTHP(config).eval()


def test_causality_later_events_do_not_change_earlier_states() -> None:
    enc = _tiny().encoder
    types = torch.tensor([[0, 1, 2, 1, 0]])
    times = torch.tensor([[0.2, 0.5, 1.1, 1.3, 2.0]])
    h = enc(types, times, types >= 0)
    types2, times2 = types.clone(), times.clone()
    types2[0, 3:], times2[0, 3:] = torch.tensor([2, 2]), torch.tensor([4.0, 9.0])
    h2 = enc(types2, times2, types2 >= 0)
    torch.testing.assert_close(h[:, :3], h2[:, :3])
    assert not torch.allclose(h[:, 3:], h2[:, 3:])


def test_padding_invariance_of_the_loss_and_zero_gradient_on_pads() -> None:
    model = _tiny()
    a_types, a_times = torch.tensor([[0, 1, 2, 1]]), torch.tensor([[0.2, 0.5, 1.1, 1.3]])
    b_types, b_times = torch.tensor([[2, 0]]), torch.tensor([[0.3, 0.9]])
    u_a = torch.log(a_times[:, 1:] - a_times[:, :-1])
    u_b = torch.log(b_times[:, 1:] - b_times[:, :-1])
    types = torch.tensor([[0, 1, 2, 1], [2, 0, -1, -1]])
    times = torch.tensor([[0.2, 0.5, 1.1, 1.3], [0.3, 0.9, 0.0, 0.0]])
    u = torch.tensor([[*u_a[0].tolist()], [float(u_b[0, 0]), 123.0, -5.0]])
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    config = dict(model.config.__dict__)
    model_sum = SMURFTHP(SMURFConfig(**{**config, "reduction": "sum"})).eval()
    model_sum.load_state_dict(model.state_dict())
    both = model_sum.loss(types, times, types >= 0, u, g()).total
    # the noise of row b's first event is drawn at index (1, 0) of a (2, 3, M) tensor: rebuild it alone
    torch.manual_seed(0)
    noise = torch.randn(2, 3, model.config.num_noise, generator=g())
    alone_a = _loss_with_noise(model_sum, a_types, a_times, u_a, noise[:1, :3])
    alone_b = _loss_with_noise(model_sum, b_types, b_times, u_b, noise[1:, :1])
    assert float(both.detach()) == pytest.approx(float((alone_a + alone_b).detach()), rel=1e-5)
    # the values at padded positions (123, −5) change nothing
    u2 = u.clone()
    u2[1, 1:] = torch.tensor([0.0, 0.0])
    assert float(model_sum.loss(types, times, types >= 0, u2, g()).total.detach()) == pytest.approx(
        float(both.detach()), rel=1e-6
    )


def _loss_with_noise(model: SMURFTHP, types: torch.Tensor, times: torch.Tensor, u: torch.Tensor,
                     eps: torch.Tensor) -> torch.Tensor:  # fmt: skip
    c = model.config
    h = model.encode(types, times, types >= 0)
    tilde = u.unsqueeze(-1) + c.sigma * eps
    l_time = dsm_loss(lambda t: model.score(h, t), tilde, eps, c.sigma)
    l_type = type_ce(model.type_head(h, tilde), types[:, 1:], c.smoothing)
    return (c.loss_lambda * l_time + l_type).sum()


def test_training_steps_lower_the_loss_in_both_modes_and_hyvarinen_runs() -> None:
    gen = torch.Generator().manual_seed(3)
    types = torch.randint(0, 3, (8, 12), generator=gen)
    times = torch.cumsum(torch.distributions.Exponential(2.0).sample((8, 12)), 1)
    u = torch.log(times[:, 1:] - times[:, :-1])
    for mode in ("exact", "semi"):
        model = _tiny(mode).train()
        opt = torch.optim.Adam(model.parameters(), lr=5e-3)
        first = float(model.loss(types, times, types >= 0, u, torch.Generator().manual_seed(0)).total)
        for step in range(60):
            opt.zero_grad()
            model.loss(types, times, types >= 0, u, torch.Generator().manual_seed(step)).total.backward()
            opt.step()
        last = float(model.loss(types, times, types >= 0, u, torch.Generator().manual_seed(0)).total)
        assert last < first, mode
    hyv = _tiny(objective="hyvarinen")
    out = hyv.loss(types, times, types >= 0, u)
    out.total.backward()
    assert math.isfinite(float(out.total))
    assert out.n_events == 8 * 11


def test_sampling_is_deterministic_and_shaped() -> None:
    model = _tiny()
    types = torch.tensor([[0, 1, 2], [1, 0, -1]])
    times = torch.tensor([[0.2, 0.5, 1.1], [0.3, 0.9, 0.0]])
    cfg = SamplerConfig(n_samples=16, step=0.02, n_steps=30)
    a = model.sample(types, times, types >= 0, cfg, (-1.0, 1.0), torch.Generator().manual_seed(5))
    b = model.sample(types, times, types >= 0, cfg, (-1.0, 1.0), torch.Generator().manual_seed(5))
    assert a.tau.shape == (2, 2, 16)
    assert a.types.shape == (2, 2, 16)
    assert a.type_probs.shape == (2, 2, 3)
    assert torch.equal(a.tau, b.tau)
    assert torch.equal(a.types, b.types)
    torch.testing.assert_close(a.type_probs.sum(-1), torch.ones(2, 2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_types": 0}, "num_types must be an integer >= 1"),
        ({"sigma": 0.0}, "sigma must be a number > 0"),
        ({"grad_mode": "half"}, "grad_mode must be one of"),
        ({"dropout": 1.0}, "dropout must be in"),
        ({"normalize": "sqrt"}, "normalize must be one of"),
    ],
)
def test_bad_config(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SMURFConfig(**{"num_types": 2, **kwargs})  # type: ignore[arg-type]


def test_bad_sampler_and_langevin_arguments() -> None:
    with pytest.raises(ValueError, match="n_samples must be an integer >= 2"):
        SamplerConfig(n_samples=1)
    with pytest.raises(ValueError, match="step must be a finite number > 0"):
        langevin(lambda v: -v, torch.zeros(3), 0.0, 10)
    with pytest.raises(ValueError, match="non-finite samples"):
        langevin(lambda v: v**3, torch.full((3,), 5.0), 1.0, 50)
    with pytest.raises(ValueError, match="grid must be"):
        inverse_cdf_sample(lambda t: t, torch.tensor([1.0, 2.0]), 3)
    with pytest.raises(ValueError, match="u_next must have shape"):
        _tiny().loss(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3), torch.ones(1, 3, dtype=torch.bool),
                     torch.zeros(1, 3))  # fmt: skip
    with pytest.raises(ValueError, match="d_model must be an integer >= 1"):
        THPEncoder(2, d_model=0)


@pytest.mark.parametrize("module", [model, losses, sampling, smurf])
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module, extraglobs={"torch": torch})  # type: ignore[arg-type]
    assert result.failed == 0
    assert result.attempted > 0
