"""Tests for marladona.ppo: GAE, the masked rollout storage and the PPO update."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from marladona.models import ActOutput, GEEActorCritic
from marladona.ppo import PPO, PPOConfig, RolloutStorage, compute_gae

SMALL = {"enc_hidden": (32,), "enc_dim": 8, "actor_hidden": (64,), "critic_hidden": (64,)}
"""A narrow GEE (same obs contract) that keeps the update tests fast on a loaded 2-core machine."""


def _net(seed: int = 0, **kw: object) -> GEEActorCritic:
    torch.manual_seed(seed)  # test-only: reproducible init
    return GEEActorCritic(**{**SMALL, **kw})  # type: ignore[arg-type]


def _obs(n: int, g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    return torch.randn(n, 18, generator=g), torch.randn(n, 5, 8, generator=g), torch.rand(n, 5, generator=g) < 0.7


def _bandit_rollout(ppo: PPO, n: int, g: torch.Generator, reward: Callable[[Tensor], Tensor]) -> RolloutStorage:
    """One-step episodes (done every step), so the return of a sample is its reward."""
    storage = ppo.make_storage(n)
    ones, zeros = torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
    for _ in range(ppo.cfg.num_steps_per_env):
        ego, ent, mask = _obs(n, g)
        out = ppo.model.act(ego, ent, mask, generator=g)
        storage.add(
            ego=ego,
            entities=ent,
            entity_mask=mask,
            policy=out,
            reward=reward(out.actions),
            done=ones,
            time_out=zeros,
            active=ones,
        )
    ppo.compute_returns(storage, ego, ent, mask)
    return storage


def _flat_params(net: torch.nn.Module) -> Tensor:
    return torch.cat([p.detach().flatten() for p in net.parameters()])


class TestPPOConfig:
    def test_defaults_are_the_authors(self) -> None:
        c = PPOConfig()
        assert (c.num_steps_per_env, c.num_learning_epochs, c.num_mini_batches) == (48, 5, 4)
        assert (c.clip_param, c.value_loss_coef, c.use_clipped_value_loss, c.entropy_coef) == (0.2, 1.0, True, 0.003)
        assert (c.learning_rate, c.schedule, c.desired_kl, c.lr_factor) == (1e-3, "adaptive", 0.01, 1.5)
        assert (c.min_learning_rate, c.max_learning_rate, c.gamma, c.lam, c.max_grad_norm) == (
            1e-5,
            1e-2,
            0.99,
            0.95,
            1.0,
        )
        assert c.normalize_advantages
        assert c.symmetry

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("num_steps_per_env", 0),
            ("num_mini_batches", 2.0),
            ("clip_param", 0.0),
            ("entropy_coef", -0.1),
            ("gamma", 1.5),
            ("lam", -0.1),
            ("schedule", "cosine"),
            ("lr_factor", 1.0),
            ("max_learning_rate", 1e-6),
            ("learning_rate", float("nan")),
        ],
    )
    def test_bad_field_raises_naming_it(self, field: str, value: object) -> None:
        with pytest.raises(ValueError, match=field):
            PPOConfig(**{field: value})  # type: ignore[arg-type]


class TestGAE:
    def test_hand_computed_with_terminal_and_time_out(self) -> None:
        # γ = λ = 0.5, V = [2, 4, 2, 4], r = [1, 0, 2, 1]; step 1 terminal, step 3 time-out (V_last ignored):
        # t=3: r' = 1 + .5·4 = 3, A = 3 − 4 = −1;  t=2: δ = 2 + .5·4 − 2 = 2, A = 2 + .25·(−1) = 1.75
        # t=1: A = 0 − 4 = −4;  t=0: δ = 1 + .5·4 − 2 = 1, A = 1 + .25·(−4) = 0;  R = A + V = [2, 0, 3.75, 3]
        col = lambda *v: torch.tensor(v).unsqueeze(1)  # noqa: E731
        adv, ret = compute_gae(
            col(1.0, 0.0, 2.0, 1.0),
            col(2.0, 4.0, 2.0, 4.0),
            col(False, True, False, True),
            col(False, False, False, True),
            torch.tensor([10.0]),
            0.5,
            0.5,
        )
        assert adv.flatten().tolist() == [0.0, -4.0, 1.75, -1.0]
        assert ret.flatten().tolist() == [2.0, 0.0, 3.75, 3.0]

    def test_matches_naive_loop(self) -> None:
        # Reference: the textbook recursion over Python floats, one row at a time.
        g = torch.Generator().manual_seed(0)
        t_len, n, gamma, lam = 9, 6, 0.9, 0.8
        r, v = (
            torch.randn(t_len, n, generator=g, dtype=torch.float64),
            torch.randn(t_len, n, generator=g, dtype=torch.float64),
        )
        done = torch.rand(t_len, n, generator=g) < 0.3
        tout = done & (torch.rand(t_len, n, generator=g) < 0.5)
        last = torch.randn(n, generator=g, dtype=torch.float64)
        adv, ret = compute_gae(r, v, done, tout, last, gamma, lam)
        for j in range(n):
            a_next, v_next = 0.0, float(last[j])
            for t in reversed(range(t_len)):
                rew = float(r[t, j]) + (gamma * float(v[t, j]) if tout[t, j] else 0.0)
                nonterminal = 0.0 if done[t, j] else 1.0
                a = rew + gamma * nonterminal * v_next - float(v[t, j]) + gamma * lam * nonterminal * a_next
                assert adv[t, j].item() == pytest.approx(a, abs=1e-12)
                assert ret[t, j].item() == pytest.approx(a + float(v[t, j]), abs=1e-12)
                a_next, v_next = a, float(v[t, j])

    def test_inactive_rows_are_zero_and_do_not_leak(self) -> None:
        # Columns 1 and 3 inactive and NaN: the other columns equal the GAE of the reduced problem, bit for bit.
        g = torch.Generator().manual_seed(1)
        r, v = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
        done = torch.rand(5, 4, generator=g) < 0.3
        last = torch.randn(4, generator=g)
        active = torch.tensor([True, False, True, False]).expand(5, 4)
        r_bad, v_bad, last_bad = r.clone(), v.clone(), last.clone()
        r_bad[:, 1::2], v_bad[:, 1::2], last_bad[1::2] = float("nan"), float("nan"), float("nan")
        adv, ret = compute_gae(r_bad, v_bad, done, done & False, last_bad, 0.99, 0.95, active)
        ref_adv, ref_ret = compute_gae(r[:, ::2], v[:, ::2], done[:, ::2], done[:, ::2] & False, last[::2], 0.99, 0.95)
        assert torch.equal(adv[:, ::2], ref_adv)
        assert torch.equal(ret[:, ::2], ref_ret)
        assert torch.equal(adv[:, 1::2], torch.zeros(5, 2))
        assert torch.equal(ret[:, 1::2], torch.zeros(5, 2))

    def test_bad_inputs_raise(self) -> None:
        z, b = torch.zeros(3, 2), torch.zeros(3, 2, dtype=torch.bool)
        with pytest.raises(ValueError, match="values"):
            compute_gae(z, torch.zeros(3, 3), b, b, torch.zeros(2), 0.9, 0.9)
        with pytest.raises(ValueError, match="last_values"):
            compute_gae(z, z, b, b, torch.zeros(3), 0.9, 0.9)
        with pytest.raises(ValueError, match="time_outs must imply dones"):
            compute_gae(z, z, b, ~b, torch.zeros(2), 0.9, 0.9)
        with pytest.raises(ValueError, match="lam"):
            compute_gae(z, z, b, b, torch.zeros(2), 0.9, 1.1)


class TestStorage:
    def test_normalisation_uses_active_samples_only(self) -> None:
        ppo = PPO(_net(), PPOConfig(num_steps_per_env=4))
        g = torch.Generator().manual_seed(0)
        storage = ppo.make_storage(6)
        active = torch.tensor([True, True, False, True, True, False])
        for _ in range(4):
            ego, ent, mask = _obs(6, g)
            out = ppo.model.act(ego, ent, mask, generator=g)
            reward = torch.where(active, torch.randn(6, generator=g), torch.full((6,), 1e6))
            storage.add(
                ego=ego,
                entities=ent,
                entity_mask=mask,
                policy=out,
                reward=reward,
                done=~active,
                time_out=~active & False,
                active=active,
            )
        ppo.compute_returns(storage, ego, ent, mask)
        sel = storage.advantages[storage.active]
        assert abs(sel.mean().item()) < 1e-6
        assert sel.std().item() == pytest.approx(1.0, abs=1e-5)
        assert torch.equal(storage.advantages[~storage.active], torch.zeros(8))
        assert storage.num_active == 16

    def test_misuse_raises(self) -> None:
        storage = RolloutStorage(1, 2)
        with pytest.raises(ValueError, match="fill it"):
            storage.compute_returns(torch.zeros(2), 0.9, 0.9)
        out = ActOutput(torch.zeros(2, 5), torch.zeros(2), torch.zeros(2), torch.ones(2, 5), torch.ones(2, 5))
        kw = {
            "ego": torch.zeros(2, 18),
            "entities": torch.zeros(2, 5, 8),
            "entity_mask": torch.ones(2, 5, dtype=torch.bool),
            "policy": out,
        }
        tail = {"done": torch.zeros(2), "time_out": torch.zeros(2), "active": torch.ones(2)}
        with pytest.raises(ValueError, match="reward"):
            storage.add(**kw, reward=torch.zeros(3), **tail)  # type: ignore[arg-type]
        storage.add(**kw, reward=torch.zeros(2), **tail)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="full"):
            storage.add(**kw, reward=torch.zeros(2), **tail)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="num_mini_batches"):
            next(storage.mini_batches(4, 1))  # only 2 active samples
        with pytest.raises(ValueError, match="num_rows"):
            RolloutStorage(4, 0)


class TestPPOUpdate:
    def test_bandit_moves_mean_and_value_the_right_way(self) -> None:
        # Known optimum: reward = a_0 + 1 is maximised at a_0 = 1 (dim 0 is not mirrored, so symmetry is exact).
        ppo = PPO(_net(), PPOConfig(num_steps_per_env=8))
        g = torch.Generator().manual_seed(0)
        ego, ent, mask = _obs(256, torch.Generator().manual_seed(123))
        reward = lambda a: a[:, 0] + 1.0  # noqa: E731
        mean0 = ppo.model.act_deterministic(ego, ent, mask)[:, 0].mean().item()
        first = _bandit_rollout(ppo, 64, g, reward)
        mse0 = (first.values - first.returns).pow(2).mean().item()
        ppo.update(first, g)
        for _ in range(2):
            storage = _bandit_rollout(ppo, 64, g, reward)
            stats = ppo.update(storage, g)
        mean1 = ppo.model.act_deterministic(ego, ent, mask)[:, 0].mean().item()
        mse1 = (storage.values - storage.returns).pow(2).mean().item()
        assert mean1 > mean0 + 0.2, (mean0, mean1)  # measured +0.36 to +0.38 over seeds 0-2
        assert mse1 < 0.5 * mse0, (mse0, mse1)  # measured 0.23-0.29x
        assert set(stats) == {
            "value_loss",
            "surrogate_loss",
            "entropy",
            "kl",
            "clip_fraction",
            "learning_rate",
            "num_samples",
        }
        assert stats["num_samples"] == 512.0

    def test_symmetry_cancels_a_mirrored_dim(self) -> None:
        # Reward a_1 (vy, mirrored): with augmentation each sample has a twin with −a_1 and the same advantage,
        # so the known optimum of the symmetric problem is E[a_1] = 0; without it a_1 grows.
        ego, ent, mask = _obs(256, torch.Generator().manual_seed(7))
        moved = {}
        for sym in (True, False):
            ppo = PPO(_net(), PPOConfig(num_steps_per_env=8, symmetry=sym))
            g = torch.Generator().manual_seed(0)
            before = ppo.model.act_deterministic(ego, ent, mask)[:, 1].mean().item()
            for _ in range(3):
                ppo.update(_bandit_rollout(ppo, 64, g, lambda a: a[:, 1]), g)
            moved[sym] = ppo.model.act_deterministic(ego, ent, mask)[:, 1].mean().item() - before
        assert moved[False] > 0.15, moved  # measured 0.30-0.33 over seeds 0-2
        assert abs(moved[True]) < 0.25 * moved[False], moved  # measured 0.002-0.02

    def test_inactive_rows_do_not_affect_update(self) -> None:
        # Reference: the same rollout with the inactive rows removed; same generator seed -> same mini-batches.
        cfg = PPOConfig(num_steps_per_env=6)
        keep = [0, 2, 3, 5]
        ppo_full, ppo_red = PPO(_net(), cfg), PPO(_net(), cfg)
        full, red = ppo_full.make_storage(6), ppo_red.make_storage(4)
        g = torch.Generator().manual_seed(0)
        active = torch.zeros(6, dtype=torch.bool)
        active[keep] = True
        nan = float("nan")
        for _ in range(6):
            ego, ent, mask = _obs(4, g)
            out = ppo_red.model.act(ego, ent, mask, generator=g)
            reward, done = torch.randn(4, generator=g), torch.rand(4, generator=g) < 0.3
            tout = done & (torch.rand(4, generator=g) < 0.5)
            red.add(
                ego=ego,
                entities=ent,
                entity_mask=mask,
                policy=out,
                reward=reward,
                done=done,
                time_out=tout,
                active=torch.ones(4),
            )

            def widen(x: Tensor, fill: float = nan) -> Tensor:
                y = torch.full((6, *x.shape[1:]), fill, dtype=x.dtype)
                y[keep] = x
                return y

            out_full = ActOutput(*(widen(x) for x in out))
            full.add(
                ego=widen(ego), entities=widen(ent), entity_mask=widen(mask, True), policy=out_full,
                reward=widen(reward), done=widen(done, True), time_out=widen(tout, False), active=active,
            )  # fmt: skip
        last_ego, last_ent, last_mask = _obs(4, g)
        ppo_red.compute_returns(red, last_ego, last_ent, last_mask)
        last_v = torch.full((6,), nan)
        last_v[keep] = ppo_red.model(last_ego, last_ent, last_mask)[2]
        full.compute_returns(last_v, cfg.gamma, cfg.lam)
        assert torch.equal(full.advantages[:, keep], red.advantages)
        s_full = ppo_full.update(full, torch.Generator().manual_seed(3))
        s_red = ppo_red.update(red, torch.Generator().manual_seed(3))
        assert torch.equal(_flat_params(ppo_full.model), _flat_params(ppo_red.model))
        assert s_full == s_red

    def test_adaptive_learning_rate_hits_its_bounds(self) -> None:
        g = torch.Generator().manual_seed(0)
        quick = {"num_steps_per_env": 4, "num_learning_epochs": 1, "lr_factor": 10.0}  # 4 steps reach either bound
        for desired, expected in ((1e-7, 1e-5), (1e3, 1e-2)):
            ppo = PPO(_net(), PPOConfig(desired_kl=desired, **quick))  # type: ignore[arg-type]
            stats = ppo.update(_bandit_rollout(ppo, 32, g, lambda a: a[:, 0]), g)
            assert stats["learning_rate"] == pytest.approx(expected)
            assert ppo.optimizer.param_groups[0]["lr"] == pytest.approx(expected)
        fixed = PPO(_net(), PPOConfig(schedule="fixed", **quick))  # type: ignore[arg-type]
        assert fixed.update(_bandit_rollout(fixed, 32, g, lambda a: a[:, 0]), g)["learning_rate"] == 1e-3

    def test_state_dict_round_trip_continues_bit_identically(self) -> None:
        cfg = PPOConfig(num_steps_per_env=4)
        ppo = PPO(_net(), cfg)
        g = torch.Generator().manual_seed(0)
        ppo.update(_bandit_rollout(ppo, 32, g, lambda a: a[:, 0]), g)  # moves Adam state and the lr
        saved = copy.deepcopy(ppo.state_dict())
        storage = _bandit_rollout(ppo, 32, g, lambda a: a[:, 0])
        stats = ppo.update(storage, torch.Generator().manual_seed(9))
        resumed = PPO(_net(seed=99, **saved["model_config"]), PPOConfig(**saved["ppo_config"]))
        resumed.load_state_dict(saved)
        stats2 = resumed.update(storage, torch.Generator().manual_seed(9))
        assert torch.equal(_flat_params(ppo.model), _flat_params(resumed.model))
        assert stats == stats2
        with pytest.raises(ValueError, match="optimizer"):
            resumed.load_state_dict({"model": saved["model"], "learning_rate": 1e-3})

    def test_separate_critic_ego_equal_to_ego_gives_the_same_update(self) -> None:
        # Reference: the single-pass path (critic_ego=None); the stacked critic path must agree to rounding.
        cfg = PPOConfig(num_steps_per_env=2, num_learning_epochs=2, num_mini_batches=2)
        params = []
        for with_critic in (False, True):
            ppo, g = PPO(_net(), cfg), torch.Generator().manual_seed(0)
            storage = ppo.make_storage(8)
            ones = torch.ones(8, dtype=torch.bool)
            for _ in range(2):
                ego, ent, mask = _obs(8, g)
                out = ppo.model.act(ego, ent, mask, generator=g)
                critic = ego.clone() if with_critic else None
                kw = {"reward": torch.randn(8, generator=g), "done": ones, "time_out": ~ones, "active": ones}
                storage.add(ego=ego, entities=ent, entity_mask=mask, policy=out, critic_ego=critic, **kw)
            assert storage.has_critic_ego is with_critic
            ppo.compute_returns(storage, ego, ent, mask)
            ppo.update(storage, torch.Generator().manual_seed(1))
            params.append(_flat_params(ppo.model))
        torch.testing.assert_close(params[0], params[1], rtol=1e-5, atol=1e-6)

    def test_symmetry_needs_the_mirror_dims(self) -> None:
        with pytest.raises(ValueError, match="ego_dim"):
            PPO(_net(ego_dim=10))
        PPO(_net(ego_dim=10), PPOConfig(symmetry=False))  # fine without the mirror
