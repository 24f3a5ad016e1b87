"""Simulators and next-event oracles of ``smurf_thp.simulate`` against independent computations.

Each numeric test says where its reference comes from: a naive O(n^2) compensator or intensity loop written
here, a closed form from the spec, ``scipy.stats``, quadrature, Monte Carlo from a naive thinning sampler written
here, or a case worked by hand.
"""

from __future__ import annotations

import doctest
import importlib
import json
import math
import re
from typing import Any

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from smurf_thp.data import EventSequence
from smurf_thp.simulate import (
    PRESET_T_END,
    PRESETS,
    PROCESSES,
    HawkesExp,
    HawkesSumExp,
    PoissonProcess,
    RenewalLogNormal,
    SelfCorrecting,
    TemporalPointProcess,
    TimeDependentMarks,
    process_from_dict,
)

MU3 = np.array([0.2, 0.3, 0.1])
ALPHA3 = np.array([[0.3, 0.1, 0.0], [0.1, 0.3, 0.1], [0.0, 0.2, 0.3]])
BETA3 = 2.0


# -- independent references ---------------------------------------------------------------------------------
def naive_compensator(seq: EventSequence, t: float, mu: Any, alpha: Any, beta: Any) -> float:
    """``Λ(t) = Σ_k μ_k t + Σ_{t_i < t} Σ_{k,m} α[k, k_i, m] (1 − e^{−β[k, k_i, m] (t − t_i)})``, one event at a time."""
    mu, alpha, beta = np.atleast_1d(mu), np.asarray(alpha, dtype=float), np.asarray(beta, dtype=float)
    total = float(mu.sum()) * (t - seq.t_start)
    for ti, ki in zip(seq.times, seq.types, strict=True):
        if ti < t:
            for k in range(mu.size):
                for m in range(alpha.shape[2]):
                    total += alpha[k, ki, m] * (1.0 - math.exp(-beta[k, ki, m] * (t - ti)))
    return total


def naive_intensity(times: Any, types: Any, t: float, mu: Any, alpha: Any, beta: float) -> np.ndarray:
    """``λ_k(t) = μ_k + Σ_{t_i < t} α[k, k_i] β e^{−β (t − t_i)}`` (scalar ``β``), a plain loop."""
    lam = np.array(mu, dtype=float)
    for ti, ki in zip(times, types, strict=True):
        if ti < t:
            lam += alpha[:, ki] * beta * math.exp(-beta * (t - ti))
    return lam


def naive_next_events(seq: EventSequence, j: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` draws of the event after ``j`` of hawkes3 by textbook Ogata thinning with the naive intensity."""
    rng = np.random.default_rng(seed)
    hist_t, hist_k = seq.times[: j + 1], seq.types[: j + 1]
    t0 = float(hist_t[-1])
    bound = naive_intensity(hist_t, hist_k, np.nextafter(t0, np.inf), MU3, ALPHA3, BETA3).sum() + 1e-12
    gaps, kinds = np.empty(n), np.empty(n, dtype=int)
    for s in range(n):
        t = t0
        while True:
            t += rng.exponential(1.0 / bound)
            lam = naive_intensity(hist_t, hist_k, t, MU3, ALPHA3, BETA3)
            if rng.random() * bound < lam.sum():
                gaps[s], kinds[s] = t - t0, rng.choice(3, p=lam / lam.sum())
                break
    return gaps, kinds


def hawkes3_history() -> tuple[EventSequence, int]:
    seq = PRESETS["hawkes3"].simulate(1, t_end=40.0, seed=3).seqs[0]
    j = int(np.argmin(np.diff(seq.times)))  # right after a burst: strong excitation
    return seq, j


def binomial_band(p: np.ndarray, n: int) -> np.ndarray:
    return 4.0 * np.sqrt(p * (1.0 - p) / n) + 1e-3


# -- time rescaling and mean counts -------------------------------------------------------------------------
def rescaled_increments(ds: Any, compensator: Any) -> np.ndarray:
    out = []
    for seq in ds:
        values = [0.0] + [compensator(seq, float(t)) for t in seq.times]
        out.append(np.diff(values))
    return np.concatenate(out)


class TestTimeRescaling:
    def test_hawkes_exp_increments_are_exp1(self) -> None:
        # reference: naive compensator loop; KS against Exp(1) (time-rescaling theorem)
        ds = PRESETS["hawkes3"].simulate(20, t_end=40.0, seed=0)
        inc = rescaled_increments(
            ds, lambda s, t: naive_compensator(s, t, MU3, ALPHA3[:, :, None], np.full((3, 3, 1), BETA3))
        )
        assert inc.size > 500
        assert stats.kstest(inc, "expon").pvalue > 0.01

    def test_hawkes_exp_matrix_beta_increments_are_exp1(self) -> None:
        beta = np.array([[1.0, 4.0], [0.5, 2.0]])
        alpha = np.array([[0.5, 0.2], [0.3, 0.4]])
        proc = HawkesExp(mu=(0.3, 0.2), alpha=alpha, beta=beta)
        ds = proc.simulate(15, t_end=60.0, seed=1)
        inc = rescaled_increments(
            ds, lambda s, t: naive_compensator(s, t, (0.3, 0.2), alpha[:, :, None], beta[:, :, None])
        )
        assert stats.kstest(inc, "expon").pvalue > 0.01

    def test_hawkes_sumexp_increments_are_exp1(self) -> None:
        ds = PRESETS["hawkes2"].simulate(20, t_end=50.0, seed=2)
        alpha, beta = np.array([[[0.4, 0.4]]]), np.array([[[1.0, 20.0]]])
        inc = rescaled_increments(ds, lambda s, t: naive_compensator(s, t, 0.2, alpha, beta))
        assert inc.size > 500
        assert stats.kstest(inc, "expon").pvalue > 0.01

    def test_self_correcting_increments_are_exp1(self) -> None:
        # reference: quadrature of λ(t) = exp(t − N(t)) between events
        ds = PRESETS["self-correcting"].simulate(12, t_end=50.0, seed=3)
        inc = []
        for seq in ds:
            prev = 0.0
            for i, t in enumerate(seq.times):
                inc.append(integrate.quad(lambda s, i=i: math.exp(s - i), prev, t)[0])
                prev = float(t)
        assert stats.kstest(inc, "expon").pvalue > 0.01

    def test_time_marks_increments_are_exp1(self) -> None:
        # the gap after a type-l event is Exp(rates[l]); the first gap is Exp(rates[0])
        ds = PRESETS["time-marks"].simulate(20, t_end=50.0, seed=4)
        rates = np.array([2.0, 0.5])
        inc = np.concatenate([np.diff(s.times, prepend=0.0) * rates[np.r_[0, s.types[:-1]]] for s in ds])
        assert stats.kstest(inc, "expon").pvalue > 0.01

    def test_oracle_cumhazard_equals_naive_compensator(self) -> None:
        proc, seq = PRESETS["hawkes3"], PRESETS["hawkes3"].simulate(1, t_end=40.0, seed=5).seqs[0]
        naive = [
            naive_compensator(seq, float(t), MU3, ALPHA3[:, :, None], np.full((3, 3, 1), BETA3)) for t in seq.times
        ]
        oracle = [
            float(proc.next_cumhazard(seq, i - 1, seq.times[i] - (seq.times[i - 1] if i else 0.0)))
            for i in range(len(seq))
        ]
        np.testing.assert_allclose(oracle, np.diff(naive, prepend=0.0), rtol=1e-10, atol=1e-12)


class TestMeanCount:
    def test_hawkes3_mean_count_matches_stationary_rate(self) -> None:
        # E N(T) ≈ Σ (I − A)^{-1} μ T for T ≫ the relaxation time 1 / (β (1 − ρ(A))) ≈ 0.9
        t_end = 400.0
        ds = PRESETS["hawkes3"].simulate(30, t_end=t_end, seed=6)
        expected = np.linalg.solve(np.eye(3) - ALPHA3, MU3) * t_end
        per_type = np.mean([np.bincount(s.types, minlength=3) for s in ds], axis=0)
        assert abs(per_type.sum() / expected.sum() - 1.0) < 0.05
        np.testing.assert_allclose(per_type, expected, rtol=0.08)

    def test_hawkes1_mean_count_matches_transient_formula(self) -> None:
        # by hand: m' = −β(1−α) (m − μ/(1−α)) from m(0) = μ gives
        # E N(T) = μT/(1−α) − αμ (1 − e^{−κT}) / ((1−α) κ), κ = β(1 − α)
        mu, alpha, beta, t_end = 0.2, 0.8, 1.0, 50.0
        kappa = beta * (1 - alpha)
        exact = mu * t_end / (1 - alpha) - alpha * mu * (1 - math.exp(-kappa * t_end)) / ((1 - alpha) * kappa)
        counts = np.array([len(s) for s in PRESETS["hawkes1"].simulate(400, t_end=t_end, seed=7)])
        assert abs(counts.mean() - exact) < 4 * counts.std() / math.sqrt(counts.size)
        assert abs(exact - 46.0) < 0.01  # the mean length documented for the preset

    def test_mean_count_agrees_with_tick(self) -> None:
        tick_hawkes = pytest.importorskip("tick.hawkes")
        sim = tick_hawkes.SimuHawkesExpKernels(ALPHA3, BETA3, MU3, end_time=40.0, seed=1, verbose=False)
        multi = tick_hawkes.SimuHawkesMulti(sim, n_simulations=200, n_threads=1)
        multi.simulate()
        tick_counts = np.array([sum(len(ts) for ts in real) for real in multi.timestamps])
        ours = np.array([len(s) for s in PRESETS["hawkes3"].simulate(200, t_end=40.0, seed=8)])
        se = math.sqrt(tick_counts.var() / tick_counts.size + ours.var() / ours.size)
        assert abs(tick_counts.mean() - ours.mean()) < 4 * se


# -- oracles ----------------------------------------------------------------------------------------------
class TestHawkesOracle:
    def test_next_cdf_matches_spec_formula(self) -> None:
        # spec §5 item 9: 1 − exp(−(Σμ)τ − Σ_k S_k (1 − e^{−βτ}) / β), S_k = λ_k(t_j+) − μ_k from the naive loop
        proc, (seq, j) = PRESETS["hawkes3"], hawkes3_history()
        t_j = float(seq.times[j])
        s_k = (
            naive_intensity(seq.times[: j + 1], seq.types[: j + 1], np.nextafter(t_j, np.inf), MU3, ALPHA3, BETA3) - MU3
        )
        tau = np.linspace(0.0, 5.0, 11)
        formula = 1 - np.exp(-MU3.sum() * tau - s_k.sum() * (1 - np.exp(-BETA3 * tau)) / BETA3)
        np.testing.assert_allclose(proc.next_cdf(seq, j, tau), formula, rtol=1e-12, atol=1e-15)

    def test_next_cdf_and_type_probs_match_monte_carlo(self) -> None:
        proc, (seq, j) = PRESETS["hawkes3"], hawkes3_history()
        n = 4000
        gaps, kinds = naive_next_events(seq, j, n, seed=9)
        tau = np.array([0.05, 0.2, 0.5, 1.0, 2.0, 4.0])
        cdf = proc.next_cdf(seq, j, tau)
        empirical = (gaps[:, None] <= tau[None, :]).mean(axis=0)
        assert np.all(np.abs(empirical - cdf) < binomial_band(cdf, n))
        probs = proc.next_type_probs(seq, j)
        freq = np.bincount(kinds, minlength=3) / n
        assert np.all(np.abs(freq - probs) < binomial_band(probs, n))

    def test_next_type_probs_sum_to_one_and_match_quadrature(self) -> None:
        # reference: scipy.integrate.quad of λ_k(τ) e^{−Λ(τ)} per type on [0, 60] (the tail beyond is < e^{−36})
        proc, (seq, j) = PRESETS["hawkes3"], hawkes3_history()
        probs = proc.next_type_probs(seq, j)
        dens = [
            integrate.quad(
                lambda t, k=k: proc.next_intensity(seq, j, t)[k] * math.exp(-proc.next_cumhazard(seq, j, t)),
                0,
                60,
                limit=200,
            )[0]
            for k in range(3)
        ]
        assert abs(sum(dens) - 1.0) < 1e-7
        np.testing.assert_allclose(probs, dens, atol=1e-7)
        assert abs(probs.sum() - 1.0) < 1e-12

    def test_next_sample_matches_next_cdf(self) -> None:
        proc, (seq, j) = PRESETS["hawkes3"], hawkes3_history()
        tau, types = proc.next_sample(seq, j, 3000, np.random.default_rng(10))
        assert stats.kstest(tau, lambda x: proc.next_cdf(seq, j, x)).pvalue > 0.01
        probs = proc.next_type_probs(seq, j)
        assert np.all(np.abs(np.bincount(types, minlength=3) / 3000 - probs) < binomial_band(probs, 3000))

    def test_empty_history_is_poisson_baseline(self) -> None:
        proc, (seq, _) = PRESETS["hawkes3"], hawkes3_history()
        tau = np.array([0.1, 1.0, 3.0])
        np.testing.assert_allclose(proc.next_cdf(seq, -1, tau), 1 - np.exp(-MU3.sum() * tau), rtol=1e-13)
        np.testing.assert_allclose(proc.next_type_probs(seq, -1), MU3 / MU3.sum(), atol=1e-9)

    def test_oracle_ignores_events_after_j(self) -> None:
        proc, (seq, j) = PRESETS["hawkes3"], hawkes3_history()
        cut = EventSequence(seq.times[: j + 1], seq.types[: j + 1], t_end=None)
        tau = np.array([0.3, 1.7])
        np.testing.assert_array_equal(proc.next_cdf(seq, j, tau), proc.next_cdf(cut, j, tau))
        np.testing.assert_array_equal(proc.next_type_probs(seq, j), proc.next_type_probs(cut, j))

    def test_scalar_and_matrix_beta_agree(self) -> None:
        (seq, j), tau = hawkes3_history(), np.array([0.2, 2.0])
        a, b = PRESETS["hawkes3"], HawkesExp(MU3, ALPHA3, np.full((3, 3), BETA3))
        np.testing.assert_allclose(a.next_cdf(seq, j, tau), b.next_cdf(seq, j, tau), rtol=1e-14)
        assert a.loglik(seq) == pytest.approx(b.loglik(seq), rel=1e-13)

    def test_loglik_matches_naive_loop(self) -> None:
        # Σ log λ_{k_i}(t_i) − Λ(T) with the naive intensity and compensator
        proc, (seq, _) = PRESETS["hawkes3"], hawkes3_history()
        ref = sum(
            math.log(naive_intensity(seq.times, seq.types, t, MU3, ALPHA3, BETA3)[k])
            for t, k in zip(seq.times, seq.types, strict=True)
        )
        ref -= naive_compensator(seq, 40.0, MU3, ALPHA3[:, :, None], np.full((3, 3, 1), BETA3))
        assert proc.loglik(seq) == pytest.approx(ref, rel=1e-11)

    def test_sumexp_loglik_matches_naive_loop(self) -> None:
        proc = PRESETS["hawkes2"]
        seq = proc.simulate(1, t_end=50.0, seed=11).seqs[0]
        ref = 0.0
        for i, t in enumerate(seq.times):
            dt = t - seq.times[:i]
            ref += math.log(0.2 + np.sum(0.4 * 1.0 * np.exp(-1.0 * dt) + 0.4 * 20.0 * np.exp(-20.0 * dt)))
        ref -= naive_compensator(seq, 50.0, 0.2, np.array([[[0.4, 0.4]]]), np.array([[[1.0, 20.0]]]))
        assert proc.loglik(seq) == pytest.approx(ref, rel=1e-11)


ALL_PROCESSES = {**PRESETS, "poisson": PoissonProcess([0.5, 1.5])}


@pytest.mark.parametrize("name", sorted(ALL_PROCESSES))
def test_next_quantile_inverts_next_cdf(name: str) -> None:
    # reference: scipy.optimize.brentq on next_cdf
    proc = ALL_PROCESSES[name]
    seq = proc.simulate(1, t_end=PRESET_T_END.get(name, 20.0), seed=12).seqs[0]
    q = np.array([0.0, 0.05, 0.3, 0.5, 0.9, 0.999])
    for j in (-1, len(seq) // 2):
        quant = proc.next_quantile(seq, j, q)
        np.testing.assert_allclose(proc.next_cdf(seq, j, quant), q, atol=1e-11)
        for qi, x in zip(q[1:], quant[1:], strict=True):
            root = optimize.brentq(lambda t, qi=qi, j=j: float(proc.next_cdf(seq, j, t)) - qi, 0.0, 1e3, xtol=1e-14)
            assert x == pytest.approx(root, rel=1e-8)
    assert proc.next_quantile(seq, 0, 1.0) == math.inf


@pytest.mark.parametrize("name", sorted(ALL_PROCESSES))
def test_next_sample_follows_next_cdf_and_type_probs(name: str) -> None:
    proc = ALL_PROCESSES[name]
    seq = proc.simulate(1, t_end=PRESET_T_END.get(name, 20.0), seed=13).seqs[0]
    j = len(seq) // 3
    tau, types = proc.next_sample(seq, j, 2000, np.random.default_rng(14))
    assert tau.dtype == np.float64
    assert types.dtype == np.int64
    assert tau.shape == types.shape == (2000,)
    assert stats.kstest(tau, lambda x: proc.next_cdf(seq, j, x)).pvalue > 0.01
    probs = proc.next_type_probs(seq, j)
    assert probs.shape == (proc.num_types,)
    assert abs(probs.sum() - 1) < 1e-12
    assert np.all(np.abs(np.bincount(types, minlength=proc.num_types) / 2000 - probs) < binomial_band(probs, 2000))


class TestSelfCorrecting:
    def test_closed_form_quantile_matches_oracle_cdf(self) -> None:
        # spec §5 item 8: τ_q = log(1 + μ (−log(1−q)) e^{−(μ t_n − α n)}) / μ, with n = j + 1 events so far
        proc, mu, alpha = SelfCorrecting(mu=1.5, alpha=0.7), 1.5, 0.7
        seq = proc.simulate(1, t_end=10.0, seed=15).seqs[0]
        j, q = 6, np.array([0.1, 0.5, 0.95])
        t_n, n = float(seq.times[j]), j + 1
        spec = np.log(1 + mu * (-np.log(1 - q)) * np.exp(-(mu * t_n - alpha * n))) / mu
        np.testing.assert_allclose(proc.next_quantile(seq, j, q), spec, rtol=1e-13)
        np.testing.assert_allclose(proc.next_cdf(seq, j, spec), q, rtol=1e-12)

    def test_next_cdf_matches_quadrature_of_intensity(self) -> None:
        proc = PRESETS["self-correcting"]
        seq = proc.simulate(1, t_end=20.0, seed=16).seqs[0]
        j, t_j = 4, float(seq.times[4])
        for tau in (0.2, 1.0, 2.5):
            lam_int = integrate.quad(lambda s: math.exp(t_j + s - (j + 1)), 0.0, tau)[0]
            assert float(proc.next_cdf(seq, j, tau)) == pytest.approx(1 - math.exp(-lam_int), rel=1e-12)


class TestRenewalLogNormal:
    def test_matches_scipy_lognorm(self) -> None:
        proc, ref = RenewalLogNormal(mu=-0.5, s=1.0), stats.lognorm(1.0, scale=math.exp(-0.5))
        seq = proc.simulate(1, t_end=30.0, seed=17).seqs[0]
        tau, q = np.array([0.01, 0.3, 1.0, 4.0, 50.0]), np.array([0.01, 0.5, 0.99])
        np.testing.assert_allclose(proc.next_cdf(seq, 3, tau), ref.cdf(tau), rtol=1e-12)
        np.testing.assert_allclose(proc.next_quantile(seq, 3, q), ref.ppf(q), rtol=1e-12)
        np.testing.assert_allclose(proc.next_intensity(seq, 3, tau)[:, 0], ref.pdf(tau) / ref.sf(tau), rtol=1e-10)
        gaps = np.diff(seq.times, prepend=0.0)  # the first gap is from t_start (an ordinary renewal process)
        expected = ref.logpdf(gaps).sum() + ref.logsf(30.0 - seq.times[-1])
        assert proc.loglik(seq) == pytest.approx(expected, rel=1e-12)

    def test_simulated_gaps_are_lognormal(self) -> None:
        ds = PRESETS["renewal-lognormal"].simulate(10, n_events=100, seed=18)
        gaps = np.concatenate([np.diff(s.times, prepend=0.0) for s in ds])
        assert stats.kstest(gaps, stats.lognorm(1.0, scale=math.exp(-0.5)).cdf).pvalue > 0.01


class TestPoisson:
    def test_loglik_by_hand(self) -> None:
        # types (1, 0, 1) with rates (1, 3) on [0.5, 4]: log 3 + log 1 + log 3 − (1 + 3)(4 − 0.5)
        proc = PoissonProcess([1.0, 3.0])
        seq = EventSequence([1.0, 2.0, 2.5], [1, 0, 1], t_start=0.5, t_end=4.0)
        assert proc.loglik(seq) == pytest.approx(2 * math.log(3.0) - 14.0, rel=1e-14)
        empty = EventSequence(np.empty(0), np.empty(0, dtype=np.int64), t_end=2.0)
        assert proc.loglik(empty) == pytest.approx(-8.0, rel=1e-14)

    def test_n_events_window_has_no_survival_term(self) -> None:
        proc = PoissonProcess(2.0)
        seq = proc.simulate(1, n_events=5, seed=19).seqs[0]
        assert len(seq) == 5
        assert seq.t_end == seq.times[-1]
        assert proc.loglik(seq) == pytest.approx(5 * math.log(2.0) - 2.0 * seq.times[-1], rel=1e-13)


class TestTimeDependentMarks:
    def test_oracle_accuracy_by_hand(self) -> None:
        # after type 0 (rate 2): P(τ < 1) = 1 − e^{−2}; after type 1 (rate 0.5): 1 − e^{−0.5}
        proc = PRESETS["time-marks"]
        assert isinstance(proc, TimeDependentMarks)
        a0, a1 = 1 - math.exp(-2.0), 1 - math.exp(-0.5)
        p00, p10 = 0.9 * a0 + 0.1 * (1 - a0), 0.9 * a1 + 0.1 * (1 - a1)  # P(next type 0 | last type l)
        np.testing.assert_allclose(proc.transition_matrix(), [[p00, 1 - p00], [p10, 1 - p10]], rtol=1e-14)
        pi0 = p10 / (p10 + 1 - p00)  # stationary law of the two-state chain
        by_hand = pi0 * max(p00, 1 - p00) + (1 - pi0) * max(p10, 1 - p10)
        assert proc.oracle_accuracy() == pytest.approx(by_hand, rel=1e-12)
        assert 0.7 < by_hand < 0.75
        assert proc.conditional_accuracy() == pytest.approx(0.9, rel=1e-12)

    def test_empirical_accuracy_of_oracle_predictions(self) -> None:
        proc = PRESETS["time-marks"]
        ds = proc.simulate(60, t_end=50.0, seed=20)
        hits_marginal, hits_given_tau, n = 0, 0, 0
        for seq in ds:
            for j in range(len(seq) - 1):
                hits_marginal += int(np.argmax(proc.next_type_probs(seq, j)) == seq.types[j + 1])
                at = proc.next_type_probs_at(seq, j, seq.times[j + 1] - seq.times[j])
                hits_given_tau += int(np.argmax(at) == seq.types[j + 1])
                n += 1
        assert isinstance(proc, TimeDependentMarks)
        for hits, acc in ((hits_marginal, proc.oracle_accuracy()), (hits_given_tau, proc.conditional_accuracy())):
            assert abs(hits / n - acc) < 4 * math.sqrt(acc * (1 - acc) / n)

    def test_type_probs_at_switch(self) -> None:
        proc, seq = PRESETS["time-marks"], EventSequence([0.5], [1], t_end=1.0)
        np.testing.assert_array_equal(proc.next_type_probs_at(seq, 0, [0.999, 1.0]), [[0.9, 0.1], [0.1, 0.9]])


# -- serialisation, validation, determinism ---------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(ALL_PROCESSES))
def test_to_dict_round_trip(name: str) -> None:
    proc = ALL_PROCESSES[name]
    back = process_from_dict(json.loads(json.dumps(proc.to_dict())))
    assert type(back) is type(proc)
    assert back == proc
    assert back.to_dict() == proc.to_dict()
    assert type(proc).from_dict(proc.to_dict()) == proc
    seq = proc.simulate(1, t_end=10.0, seed=21).seqs[0]
    assert back.loglik(seq) == proc.loglik(seq)


def test_matrix_beta_round_trip_and_registry() -> None:
    proc = HawkesExp((0.3, 0.2), [[0.5, 0.2], [0.3, 0.4]], [[1.0, 4.0], [0.5, 2.0]])
    assert process_from_dict(proc.to_dict()) == proc
    assert set(PROCESSES) == {
        "hawkes-exp",
        "hawkes-sumexp",
        "self-correcting",
        "renewal-lognormal",
        "poisson",
        "time-marks",
    }


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: HawkesExp((-0.1, 0.2), [[0.1, 0], [0, 0.1]], 1.0), "mu"),
        (lambda: HawkesExp((0.1, 0.2), [[0.9, 0.5], [0.5, 0.9]], 1.0), "alpha is not stationary"),
        (lambda: HawkesExp(MU3, [[0.1, 0], [0, 0.1]], 1.0), "alpha must have shape (3, 3)"),
        (lambda: HawkesExp(MU3, ALPHA3, 0.0), "beta"),
        (lambda: HawkesExp(MU3, ALPHA3, np.ones((2, 2))), "beta must have shape"),
        (lambda: HawkesExp(0.0, 0.5, 1.0), "mu must have a positive sum"),
        (lambda: HawkesSumExp(0.2, (0.6, 0.6), (1.0, 20.0)), "alpha is not stationary"),
        (lambda: HawkesSumExp(0.2, (0.4, 0.4, 0.1), (1.0, 20.0)), "alphas"),
        (lambda: HawkesSumExp(0.2, (0.4, 0.4), (1.0, -20.0)), "betas"),
        (lambda: SelfCorrecting(mu=0.0, alpha=1.0), "mu"),
        (lambda: SelfCorrecting(mu=1.0, alpha=-1.0), "alpha"),
        (lambda: SelfCorrecting(mu=math.nan, alpha=1.0), "mu"),
        (lambda: RenewalLogNormal(mu=0.0, s=0.0), "s must be > 0"),
        (lambda: PoissonProcess([0.0, 1.0]), "rate"),
        (lambda: TimeDependentMarks((1.0, 1.0), (0.5, 0.6), (0.5, 0.5)), "p_early must sum to 1"),
        (lambda: TimeDependentMarks((1.0, 1.0), (0.5, 0.5), (0.2, 0.3, 0.5)), "p_late must have shape (2,)"),
        (lambda: TimeDependentMarks((1.0, -1.0), (0.5, 0.5), (0.5, 0.5)), "rates"),
        (lambda: TimeDependentMarks((1.0, 1.0), (0.5, 0.5), (0.5, 0.5), switch=0.0), "switch"),
        (lambda: process_from_dict({"process": "nope"}), "d['process']"),
        (lambda: process_from_dict({"process": "poisson", "rates": [1.0]}), "bad arguments for process 'poisson'"),
    ],
)
def test_bad_parameters_raise_naming_the_argument(build: Any, argument: str) -> None:
    with pytest.raises(ValueError, match=re.escape(argument)):
        build()


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"n_seqs": 0, "t_end": 1.0}, "n_seqs"),
        ({"n_seqs": 1.5, "t_end": 1.0}, "n_seqs"),
        ({"n_seqs": 1}, "exactly one of t_end and n_events"),
        ({"n_seqs": 1, "t_end": 1.0, "n_events": 3}, "exactly one of t_end and n_events"),
        ({"n_seqs": 1, "t_end": -1.0}, "t_end"),
        ({"n_seqs": 1, "n_events": 0}, "n_events"),
    ],
)
def test_bad_simulate_arguments_raise(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        PRESETS["hawkes1"].simulate(**kwargs)


def test_bad_oracle_arguments_raise() -> None:
    proc, seq = PRESETS["hawkes3"], EventSequence([0.5, 1.0], [0, 2], t_end=2.0)
    for j in (2, -2, 0.5, True):
        with pytest.raises(ValueError, match="j must be an int"):
            proc.next_cdf(seq, j, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="q must lie in"):
        proc.next_quantile(seq, 0, [0.5, 1.5])
    with pytest.raises(ValueError, match="tau must not contain NaN"):
        proc.next_cdf(seq, 0, [math.nan])
    with pytest.raises(ValueError, match="tau must be >= 0"):
        proc.next_intensity(seq, 0, -1.0)
    with pytest.raises(ValueError, match="n must be an int"):
        proc.next_sample(seq, 0, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"seq.types must lie in \[0, 1\)"):
        PRESETS["hawkes1"].loglik(seq)


def test_next_cdf_edges() -> None:
    proc, seq = PRESETS["hawkes3"], EventSequence([0.5, 1.0], [0, 2], t_end=2.0)
    np.testing.assert_array_equal(proc.next_cdf(seq, 1, [-1.0, 0.0, math.inf]), [0.0, 0.0, 1.0])
    assert proc.next_cdf(seq, 1, np.ones((2, 3))).shape == (2, 3)
    assert proc.next_intensity(seq, 1, np.ones((2, 3))).shape == (2, 3, 3)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_simulate_is_deterministic_by_seed(name: str) -> None:
    proc = PRESETS[name]
    a, b = proc.simulate(3, t_end=20.0, seed=22), proc.simulate(3, t_end=20.0, seed=22)
    c = proc.simulate(3, t_end=20.0, seed=np.random.default_rng(23))
    assert a.num_types == proc.num_types
    for sa, sb in zip(a, b, strict=True):
        np.testing.assert_array_equal(sa.times, sb.times)
        np.testing.assert_array_equal(sa.types, sb.types)
        assert sa.times.dtype == np.float64
        assert sa.types.dtype == np.int64
        assert sa.t_start == 0.0
        assert sa.t_end == 20.0
        assert np.all(sa.times <= 20.0)
        assert np.all(np.diff(sa.times) >= 0)
    assert any(not np.array_equal(sa.times, sc.times) for sa, sc in zip(a, c, strict=True))
    fixed = proc.simulate(2, n_events=7, seed=24)
    assert all(len(s) == 7 and s.t_end == s.times[-1] for s in fixed)


def test_presets_are_immutable() -> None:
    proc = PRESETS["hawkes3"]
    assert isinstance(proc, HawkesExp)
    with pytest.raises(ValueError, match="read-only"):
        proc.alpha[0, 0] = 0.9


def test_base_class_is_abstract() -> None:
    with pytest.raises(TypeError):
        TemporalPointProcess()  # type: ignore[abstract]


@pytest.mark.parametrize(
    "module", ["smurf_thp.simulate", "smurf_thp._process", "smurf_thp._hawkes", "smurf_thp._renewal"]
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0
    assert result.attempted > 0
