"""Tests for r3m.bandit: the toy DPO bandit with exact log-probs and metrics."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from r3m.bandit import (
    BanditConfig,
    BanditPolicy,
    bradley_terry_teacher,
    implicit_accuracy,
    kl_optimal_log_probs,
    make_bandit,
    normalised_reward,
    oracle_teacher,
    policy_log_probs,
    train_dpo,
    win_rate,
)
from r3m.teachers import Irrational, Myopic, Oracle

SMALL = BanditConfig(n_contexts=20, n_candidates=4, feature_dim=4, hidden=8, n_pairs=200, epochs=1)


def sigmoid_dpo(pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
    """TRL's sigmoid DPO loss at β = 0.1, written independently of the package."""
    return -F.logsigmoid(0.1 * ((pc - rc) - (pr - rr)))


class TestBanditConfig:
    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("n_contexts", 0),
            ("n_candidates", 1),
            ("feature_dim", 0),
            ("hidden", 0),
            ("n_pairs", 0),
            ("n_pairs", 2.0),
            ("epochs", -1),
            ("batch_size", 0),
            ("beta", 0.0),
            ("beta", float("inf")),
            ("lr", -1e-3),
            ("flip_rate", 1.5),
            ("seed", "0"),
        ],
    )
    def test_bad_field_raises_naming_it(self, field: str, value: Any) -> None:
        with pytest.raises(ValueError, match=f"^{field} must"):
            BanditConfig(**{field: value})

    def test_defaults_are_the_spec_values(self) -> None:
        # r3m spec B2: 400 contexts × 8 candidates, 6000 pairs, β = 0.1, 3 epochs.
        c = BanditConfig()
        assert (c.n_contexts, c.n_candidates, c.n_pairs, c.beta, c.epochs) == (400, 8, 6000, 0.1, 3)


class TestMetrics:
    def _random(self, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        return torch.randn(5, 6, generator=g, dtype=torch.float64), torch.randn(5, 6, generator=g, dtype=torch.float64)

    def test_normalised_reward_of_reference_is_zero_and_of_greedy_is_one(self) -> None:
        # Exact invariants: π = π_ref gives numerator 0; one-hot on argmax r* makes E_π r* = max r*.
        rewards, logits = self._random()
        ref = logits.softmax(-1)
        greedy = F.one_hot(rewards.argmax(-1), 6).double()
        assert normalised_reward(ref, ref, rewards).item() == 0.0
        assert normalised_reward(greedy, ref, rewards).item() == 1.0

    def test_normalised_reward_hand_case(self) -> None:
        # One context, r* = (1, 0): π_ref = (½, ½) has E = ½, π = (¾, ¼) has E = ¾ -> (¾ − ½)/(1 − ½) = ½.
        r = torch.tensor([[1.0, 0.0]])
        assert normalised_reward(torch.tensor([[0.75, 0.25]]), torch.tensor([[0.5, 0.5]]), r).item() == 0.5

    def test_win_rate_against_itself_is_one_half_with_ties(self) -> None:
        # Hand case, r* = (1, 1, 0), π_ref = (.5, .3, .2): ties = .8² + .2² = .68, strict wins = .8·.2 = .16
        # = ½ − ½·.68, and with ½ tie credit the total is exactly ½.
        r = torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64)
        ref = torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64)
        assert win_rate(ref, ref, r).item() == pytest.approx(0.5, abs=1e-15)
        assert win_rate(ref, ref, r, tie_credit=0.0).item() == pytest.approx(0.5 - 0.5 * 0.68, abs=1e-15)

    def test_win_rate_hand_case(self) -> None:
        # π = (.1, .1, .8) vs π_ref = (.5, .3, .2), r* = (1, 1, 0): wins .2·.2 = .04, ties .2·.8 + .8·.2 = .32.
        r = torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64)
        pi = torch.tensor([[0.1, 0.1, 0.8]], dtype=torch.float64)
        ref = torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64)
        assert win_rate(pi, ref, r).item() == pytest.approx(0.04 + 0.5 * 0.32, abs=1e-15)

    def test_win_rate_matches_naive_loop(self) -> None:
        # Triple loop over contexts and candidate pairs against the einsum.
        rewards, logits = self._random(1)
        rewards = rewards.round()  # create ties
        pi, ref = logits.softmax(-1), (0.5 * logits.flip(-1)).softmax(-1)
        total = 0.0
        for c in range(5):
            for a in range(6):
                for b in range(6):
                    s = 1.0 if rewards[c, a] > rewards[c, b] else 0.5 if rewards[c, a] == rewards[c, b] else 0.0
                    total += pi[c, a].item() * ref[c, b].item() * s
        assert win_rate(pi, ref, rewards).item() == pytest.approx(total / 5, abs=1e-12)

    def test_implicit_accuracy_hand_case(self) -> None:
        # r* = (3, 2, 1, 1); implicit reward (2, 0, 1, 5): (0,1) ✓, (0,2) ✓, (1,2) ✗, (0,3) ✗, (1,3) ✗,
        # (2,3) tied in r* and left out -> 2/5.
        r = torch.tensor([[3.0, 2.0, 1.0, 1.0]])
        ref = torch.log(torch.full((1, 4), 0.25))
        assert implicit_accuracy(ref + torch.tensor([[2.0, 0.0, 1.0, 5.0]]), ref, r).item() == pytest.approx(0.4)

    def test_implicit_accuracy_of_reference_is_one_half(self) -> None:
        # π = π_ref: every implicit margin is exactly 0 and counts ½.
        rewards, logits = self._random(2)
        ref = logits.log_softmax(-1)
        assert implicit_accuracy(ref, ref, rewards).item() == 0.5

    def test_kl_optimal_log_probs_closed_form(self) -> None:
        # π_ref = (½, ½), r* = (1, 0), β = 1: π*(a₀) = e/(e + 1) = σ(1).
        logp = kl_optimal_log_probs(torch.log(torch.tensor([[0.5, 0.5]])), torch.tensor([[1.0, 0.0]]), 1.0)
        assert logp.exp()[0, 0].item() == pytest.approx(1 / (1 + math.exp(-1)), rel=1e-6)


class TestMakeBandit:
    def test_shapes_and_standardised_truth(self) -> None:
        p = make_bandit(SMALL)
        assert p.contexts.shape == (20, 4)
        assert p.candidates.shape == (20, 4, 4)
        assert p.true_rewards.shape == (20, 4)
        assert p.ref_logps.shape == (20, 4)
        assert p.chosen.shape == p.rejected.shape == p.pair_contexts.shape == p.corrupted.shape == (200,)
        # Standardisation invariant: mean 0 and (unbiased) std 1 over all C·K entries.
        assert p.true_rewards.mean().item() == pytest.approx(0.0, abs=1e-6)
        assert p.true_rewards.std().item() == pytest.approx(1.0, abs=1e-6)
        assert bool((p.chosen != p.rejected).all())

    def test_reference_log_probs_normalise(self) -> None:
        # Σ_a π_ref(a|c) = 1 in probability space, and the stored ref equals a fresh log-softmax.
        p = make_bandit(SMALL)
        torch.testing.assert_close(p.ref_logps.exp().sum(-1), torch.ones(20))
        with torch.no_grad():
            logps = policy_log_probs(p.policy, p.contexts, p.candidates)
        torch.testing.assert_close(logps.exp().sum(-1), torch.ones(20))
        assert torch.equal(logps, p.ref_logps)

    def test_pairs_follow_reference_policy(self) -> None:
        # Unordered pair {a, b} without replacement: P = π_a π_b/(1 − π_a) + π_b π_a/(1 − π_b); 4σ band.
        cfg = BanditConfig(n_contexts=1, n_candidates=3, feature_dim=4, hidden=8, n_pairs=20000)
        p = make_bandit(cfg)
        pi = p.ref_logps.exp()[0].double()
        n = cfg.n_pairs
        for a, b in [(0, 1), (0, 2), (1, 2)]:
            expected = (pi[a] * pi[b] / (1 - pi[a]) + pi[b] * pi[a] / (1 - pi[b])).item()
            hits = ((p.chosen == a) & (p.rejected == b)) | ((p.chosen == b) & (p.rejected == a))
            assert abs(hits.double().mean().item() - expected) < 4 * math.sqrt(expected * (1 - expected) / n)

    def test_oracle_labels_are_clean_and_flips_corrupt_them(self) -> None:
        # Oracle: no pair against the true order; flip_rate 1: all of them; 0.3: binomial 4σ band.
        assert not make_bandit(SMALL, teacher=oracle_teacher).corrupted.any()
        assert make_bandit(dataclasses.replace(SMALL, flip_rate=1.0), teacher=oracle_teacher).corrupted.all()
        cfg = dataclasses.replace(SMALL, n_pairs=4000, flip_rate=0.3)
        rate = make_bandit(cfg, teacher=oracle_teacher).corrupted.double().mean().item()
        assert abs(rate - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 4000)

    def test_bradley_terry_corruption_rate(self) -> None:
        # BT(1) labels a pair wrongly with probability σ(−|Δr*|): the mean over the drawn pairs, 4σ band.
        cfg = dataclasses.replace(SMALL, n_pairs=5000)
        p = make_bandit(cfg)
        gap = (p.true_rewards[p.pair_contexts, p.chosen] - p.true_rewards[p.pair_contexts, p.rejected]).abs()
        q = torch.sigmoid(-gap.double())
        sd = math.sqrt((q * (1 - q)).sum().item()) / cfg.n_pairs
        assert abs(p.corrupted.double().mean().item() - q.mean().item()) < 4 * sd

    def test_deterministic_per_seed(self) -> None:
        # Same seed -> identical problem; another seed -> different features and pairs.
        a, b = make_bandit(SMALL), make_bandit(SMALL)
        c = make_bandit(dataclasses.replace(SMALL, seed=1))
        for name in ("contexts", "true_rewards", "ref_logps", "chosen", "rejected", "pair_contexts"):
            assert torch.equal(getattr(a, name), getattr(b, name))
        assert not torch.equal(a.contexts, c.contexts)

    def test_teacher_objects_are_accepted(self) -> None:
        # r3m.teachers objects label the (N,) true rewards: Oracle gives the oracle function's pairs
        # (continuous rewards, no ties); Irrational(1/2) corrupts exactly 8 of every 64 pairs.
        a = make_bandit(SMALL, teacher=oracle_teacher)
        b = make_bandit(SMALL, teacher=Oracle())
        assert torch.equal(a.chosen, b.chosen)
        assert torch.equal(a.rejected, b.rejected)
        cfg = dataclasses.replace(SMALL, n_pairs=640)
        p = make_bandit(cfg, teacher=Irrational(0.5))
        assert [int(p.corrupted[s : s + 64].sum()) for s in range(0, 640, 64)] == [8] * 10
        with pytest.raises(ValueError, match="Myopic needs per-step rewards"):
            make_bandit(SMALL, teacher=Myopic(0.5))

    def test_bad_teacher_output_raises(self) -> None:
        with pytest.raises(ValueError, match="teacher must return"):
            make_bandit(SMALL, teacher=lambda ra, rb, g: (ra - rb).float())

    def test_bad_teacher_temperature_raises(self) -> None:
        with pytest.raises(ValueError, match="temperature"):
            bradley_terry_teacher(0.0)


class TestTrainDPO:
    def test_sigmoid_dpo_on_clean_data_improves_reward(self) -> None:
        # Default config, oracle labels: DPO must recover most of the greedy gain (measured ≈0.93) in < 1 s.
        p = make_bandit(BanditConfig(), teacher=oracle_teacher)
        res = train_dpo(p, sigmoid_dpo)
        assert res.normalised_reward > 0.5
        assert res.win_rate_vs_ref > 0.6
        assert res.implicit_accuracy > 0.6
        assert len(res.loss_history) == len(res.reward_history) == 3
        assert res.loss_history[-1] < res.loss_history[0] < math.log(2)

    def test_zero_epochs_returns_reference_metrics(self) -> None:
        # No training: π = π_ref exactly, so normalised reward 0, win rate ½, implicit accuracy ½, KL 0.
        res = train_dpo(make_bandit(SMALL), sigmoid_dpo, dataclasses.replace(SMALL, epochs=0))
        assert (res.normalised_reward, res.win_rate_vs_ref, res.implicit_accuracy, res.kl_to_ref) == (
            0.0,
            0.5,
            0.5,
            0.0,
        )
        assert res.train_label_accuracy == 0.5

    def test_first_loss_is_log_two_at_tiny_lr(self) -> None:
        # π = π_ref at the start makes every sigmoid-DPO loss −log σ(0) = log 2.
        cfg = dataclasses.replace(SMALL, lr=1e-12)
        res = train_dpo(make_bandit(cfg), sigmoid_dpo, cfg)
        assert res.loss_history[0] == pytest.approx(math.log(2), abs=1e-6)

    def test_gathered_log_probs_match_naive_loop(self) -> None:
        # Per-pair log-softmax written out (logit − logsumexp over candidates) against the batched gather.
        cfg = dataclasses.replace(SMALL, n_pairs=12, batch_size=12, lr=1e-12)
        p = make_bandit(cfg)
        seen: list[torch.Tensor] = []

        def recording(pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
            seen.append(torch.stack([pc.detach(), pr.detach(), rc, rr]))
            return sigmoid_dpo(pc, pr, rc, rr)

        g = torch.Generator().manual_seed(9)
        train_dpo(p, recording, cfg, g)
        order = torch.randperm(12, generator=torch.Generator().manual_seed(9))
        for j, i in enumerate(order.tolist()):
            c = int(p.pair_contexts[i])
            with torch.no_grad():
                logits = [float(p.policy(p.contexts[c : c + 1], p.candidates[c : c + 1, k : k + 1])) for k in range(4)]
            lse = math.log(sum(math.exp(x) for x in logits))
            ch, rj = int(p.chosen[i]), int(p.rejected[i])
            expected = [logits[ch] - lse, logits[rj] - lse, logits[ch] - lse, logits[rj] - lse]
            assert seen[0][:, j].tolist() == pytest.approx(expected, abs=1e-5)

    def test_kl_to_ref_matches_torch_distributions(self) -> None:
        # KL(π ‖ π_ref) from torch.distributions.kl_divergence of two Categoricals.
        p = make_bandit(SMALL)
        res = train_dpo(p, sigmoid_dpo)
        assert res.log_probs is not None
        kl = torch.distributions.kl_divergence(
            torch.distributions.Categorical(logits=res.log_probs), torch.distributions.Categorical(logits=p.ref_logps)
        )
        assert res.kl_to_ref == pytest.approx(kl.mean().item(), rel=1e-5)

    def test_deterministic_and_leaves_problem_untouched(self) -> None:
        # Same problem and seed -> identical histories and log-probs; the problem's policy is not trained.
        p = make_bandit(SMALL)
        before = [t.clone() for t in p.policy.parameters()]
        a, b = train_dpo(p, sigmoid_dpo), train_dpo(p, sigmoid_dpo)
        assert a.loss_history == b.loss_history
        assert a.log_probs is not None
        assert b.log_probs is not None
        assert torch.equal(a.log_probs, b.log_probs)
        assert all(torch.equal(x, y) for x, y in zip(before, p.policy.parameters(), strict=True))
        assert isinstance(a.policy, BanditPolicy)
        assert a.policy is not p.policy

    def test_wrong_loss_shape_raises(self) -> None:
        with pytest.raises(ValueError, match=r"per-pair losses of shape \(64,\), got \(\)"):
            train_dpo(make_bandit(SMALL), lambda pc, pr, rc, rr: sigmoid_dpo(pc, pr, rc, rr).mean())

    def test_non_finite_loss_raises(self) -> None:
        with pytest.raises(ValueError, match="non-finite"):
            train_dpo(make_bandit(SMALL), lambda pc, pr, rc, rr: pc * float("nan"))
