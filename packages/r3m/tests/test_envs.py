"""Tests for r3m.envs: segments from gymnasium control envs, scored by the env reward."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from r3m.envs import SegmentPool, collect_segments
from r3m.synthetic import Myopic, Oracle, pair_segments

gym = pytest.importorskip("gymnasium")


def _replay(env_id: str, pool: SegmentPool, seed: int, per_episode: int, **make_kwargs: Any) -> tuple[Any, ...]:
    """Re-run the env from ``seed`` with the pool's actions: (observations, returns, component sums).

    ``per_episode`` windows are kept per episode; the env is reset (unseeded) after them, which
    reproduces the collector's episode starts because reset noise does not depend on the actions.
    """
    if "mujoco" in str(gym.envs.registry[env_id].entry_point):
        mujoco = pytest.importorskip("mujoco")
        mujoco.set_mju_user_warning(lambda message: None)  # the settotalmass deprecation, printed and logged to cwd
        try:
            env = gym.make(env_id, **make_kwargs)
        finally:
            mujoco.set_mju_user_warning(None)
    else:
        env = gym.make(env_id, **make_kwargs)
    obs_dim = pool.obs_dim
    observations, returns, components = [], [], []
    for i in range(len(pool)):
        if i % per_episode == 0:
            obs, _ = env.reset(seed=seed) if i == 0 else env.reset()
        total, parts = 0.0, 0.0
        for t in range(pool.seg_len):
            observations.append(np.asarray(obs, dtype=np.float32))
            action = pool.features[i, t, obs_dim:].numpy()
            obs, reward, _, _, info = env.step(action)
            total += float(reward)
            parts += float(info.get("reward_forward", 0.0)) + float(info.get("reward_ctrl", 0.0))
        returns.append(total)
        components.append(parts)
    env.close()
    return np.stack(observations), np.asarray(returns), np.asarray(components)


class TestPendulum:
    def test_collect_segments_shapes_and_dtypes(self) -> None:
        pool = collect_segments("Pendulum-v1", n_segments=10, seg_len=7, seed=0)
        # Pendulum: obs (cos θ, sin θ, θ̇) + 1 torque = 4 feature columns.
        assert pool.features.shape == (10, 7, 4)
        assert pool.returns.shape == (10,)
        assert pool.features.dtype == torch.float32
        assert pool.returns.dtype == torch.float32
        assert (pool.env_id, pool.seg_len, pool.act_dim, pool.obs_dim, len(pool)) == ("Pendulum-v1", 7, 1, 3, 10)

    @pytest.mark.parametrize("policy", ["random", "noisy-sine"])
    def test_collect_segments_returns_match_closed_form_cost(self, policy: str) -> None:
        # Pendulum's reward written out from its source: −(θ² + 0.1 θ̇² + 0.001 u²), θ = atan2(sin, cos).
        pool = collect_segments("Pendulum-v1", n_segments=12, seg_len=25, policy=policy, seed=3)  # type: ignore[arg-type]
        f = pool.features.double()
        theta = torch.atan2(f[..., 1], f[..., 0])
        cost = theta**2 + 0.1 * f[..., 2] ** 2 + 0.001 * f[..., 3] ** 2
        torch.testing.assert_close(pool.returns.double(), -cost.sum(-1), rtol=1e-5, atol=1e-4)

    def test_step_rewards_match_closed_form_cost_and_sum_to_returns(self) -> None:
        # Per step: r_t = −(θ² + 0.1 θ̇² + 0.001 u²) from the features; Σ_t r_t = the stored return.
        pool = collect_segments("Pendulum-v1", n_segments=6, seg_len=20, seed=4)
        assert pool.step_rewards is not None
        assert pool.step_rewards.shape == (6, 20)
        f = pool.features.double()
        theta = torch.atan2(f[..., 1], f[..., 0])
        cost = theta**2 + 0.1 * f[..., 2] ** 2 + 0.001 * f[..., 3] ** 2
        torch.testing.assert_close(pool.step_rewards, -cost, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(pool.step_rewards.sum(-1).float(), pool.returns)

    def test_pairing_a_pool_with_the_myopic_teacher(self) -> None:
        # Per-step env rewards let Myopic label gym segments: each chosen segment has the larger
        # end-weighted sum Σ_t γ^{T−1−t} r_t (a Python loop); returns alone raise.
        pool = collect_segments("Pendulum-v1", n_segments=30, seg_len=8, policy="noisy-sine", seed=2)
        assert pool.step_rewards is not None
        data = pair_segments(pool.features, pool.step_rewards, 60, Myopic(0.5), torch.Generator().manual_seed(0))
        for pair_id in data.ids:
            c, r = (int(s) for s in pair_id.split("-")[1:])
            score = [sum(0.5 ** (7 - t) * float(pool.step_rewards[i, t]) for t in range(8)) for i in (c, r)]
            assert score[0] > score[1]
        with pytest.raises(ValueError, match="Myopic needs per-step rewards"):
            pair_segments(pool.features, pool.returns, 60, Myopic(0.5), torch.Generator())
        oracle = pair_segments(pool.features, pool.returns, 60, Oracle(), torch.Generator())
        assert oracle.corrupted is not None
        assert not bool(oracle.corrupted.any())

    def test_collect_segments_replay_matches_env(self) -> None:
        # Plain loop: same seed, same actions; 6 windows of 30 per 200-step episode, 20 steps dropped.
        pool = collect_segments("Pendulum-v1", n_segments=14, seg_len=30, seed=5)
        observations, returns, _ = _replay("Pendulum-v1", pool, seed=5, per_episode=6)
        np.testing.assert_array_equal(pool.features[..., :3].reshape(-1, 3).numpy(), observations)
        np.testing.assert_allclose(pool.returns.numpy(), returns.astype(np.float32), rtol=1e-6)

    @pytest.mark.parametrize("policy", ["random", "noisy-sine"])
    def test_collect_segments_deterministic_per_seed(self, policy: str) -> None:
        # Same seed -> bit-identical pool; another seed -> a different one.
        a = collect_segments("Pendulum-v1", n_segments=5, seg_len=10, policy=policy, seed=1)  # type: ignore[arg-type]
        b = collect_segments("Pendulum-v1", n_segments=5, seg_len=10, policy=policy, seed=1)  # type: ignore[arg-type]
        c = collect_segments("Pendulum-v1", n_segments=5, seg_len=10, policy=policy, seed=2)  # type: ignore[arg-type]
        assert torch.equal(a.features, b.features)
        assert torch.equal(a.returns, b.returns)
        assert not torch.equal(a.features, c.features)

    def test_noisy_sine_without_noise_is_a_sinusoid(self) -> None:
        # A sampled sinusoid x_t obeys x_{t+1} + x_{t-1} = 2 cos(ω) x_t: the ratio is constant per segment.
        pool = collect_segments("Pendulum-v1", n_segments=8, seg_len=25, policy="noisy-sine", noise=0.0, seed=0)
        u = pool.features[..., 3].double()  # (n, T); Pendulum's action box is centred at 0
        ratio = (u[:, 2:] + u[:, :-2]) / u[:, 1:-1]
        ok = u[:, 1:-1].abs() > 1e-2  # stay away from zero crossings
        spread = torch.stack([(r[m].max() - r[m].min()) for r, m in zip(ratio, ok, strict=True)])
        assert spread.max() < 1e-4
        assert u.abs().max() <= 2.0

    def test_random_policy_stays_in_bounds_and_is_uniform(self) -> None:
        # U(−1, 1) actions: mean 0 and variance 1/3 within 4 standard errors (var of s² is (μ₄ − σ⁴)/n = 4/45n).
        pool = collect_segments("MountainCarContinuous-v0", n_segments=40, seg_len=50, seed=0)
        u = pool.features[..., -1].double().flatten()
        assert u.abs().max() <= 1.0  # MountainCarContinuous: actions in [−1, 1]
        n = u.numel()
        assert abs(u.mean().item()) < 4 * math.sqrt(1 / 3 / n)
        assert abs(u.var().item() - 1 / 3) < 4 * math.sqrt(4 / 45 / n)


class TestValidation:
    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"n_segments": 0}, "n_segments"),
            ({"n_segments": 2.5}, "n_segments"),
            ({"seg_len": 0}, "seg_len"),
            ({"seg_len": 201}, "seg_len"),  # beyond Pendulum's 200-step limit
            ({"policy": "greedy"}, "policy"),
            ({"noise": -0.1}, "noise"),
            ({"noise": float("nan")}, "noise"),
            ({"noise": True}, "noise"),
            ({"noise": "0.3"}, "noise"),
            ({"seed": None}, "seed"),  # a new pool on every call
            ({"seed": -1}, "seed"),
            ({"seed": 1.5}, "seed"),
            ({"max_episode_steps": 0}, "max_episode_steps"),
        ],
    )
    def test_collect_segments_bad_argument_names_it(self, kwargs: dict[str, Any], name: str) -> None:
        args: dict[str, Any] = {"n_segments": 2, "seg_len": 5, **kwargs}
        with pytest.raises(ValueError, match=rf"^{name} must"):
            collect_segments("Pendulum-v1", **args)

    def test_episodes_shorter_than_seg_len_name_it(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # Hopper terminates early when it falls: with a random policy no episode reaches 900 steps, so after
        # the barren-episode limit (lowered to 3 here) the call stops with a ValueError naming seg_len.
        pytest.importorskip("mujoco")
        import r3m.envs

        monkeypatch.setattr(r3m.envs, "_MAX_BARREN_EPISODES", 3)
        with pytest.raises(ValueError, match=r"^seg_len must fit in the episodes of Hopper-v5: 3 episodes"):
            collect_segments("Hopper-v5", n_segments=2, seg_len=900, seed=0)

    def test_collect_segments_discrete_env_raises(self) -> None:
        with pytest.raises(ValueError, match="Discrete action space"):
            collect_segments("CartPole-v1", n_segments=2, seg_len=5)

    def test_collect_segments_unknown_env_raises(self) -> None:
        with pytest.raises(ValueError, match="env_id 'NoSuchEnv-v0'"):
            collect_segments("NoSuchEnv-v0", n_segments=2, seg_len=5)

    def test_collect_segments_without_gymnasium_says_what_to_install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, "gymnasium", None)
        with pytest.raises(ImportError, match=r'pip install "r3m\[gym\]"'):
            collect_segments("Pendulum-v1", n_segments=2, seg_len=5)

    def test_collect_segments_without_mujoco_says_what_to_install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, "mujoco", None)
        with pytest.raises(ImportError, match=r'pip install "r3m\[mujoco\]"'):
            collect_segments("HalfCheetah-v5", n_segments=2, seg_len=5)

    def test_segment_pool_rejects_mismatched_shapes(self) -> None:
        with pytest.raises(ValueError, match="returns"):
            SegmentPool(torch.zeros(3, 4, 2), torch.zeros(2), "x", 4)
        with pytest.raises(ValueError, match="seg_len"):
            SegmentPool(torch.zeros(3, 4, 2), torch.zeros(3), "x", 5)
        with pytest.raises(ValueError, match=r"step_rewards must have shape \(n, seg_len\)=\(3, 4\), got \(3, 5\)"):
            SegmentPool(torch.zeros(3, 4, 2), torch.zeros(3), "x", 4, step_rewards=torch.zeros(3, 5))


class TestHalfCheetah:
    def test_collect_segments_replay_matches_env_reward(
        self, capfd: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Plain replay loop: same observations, returns = Σ env reward = Σ (reward_forward + reward_ctrl).
        mujoco = pytest.importorskip("mujoco")
        monkeypatch.chdir(tmp_path)  # MuJoCo's default warning handler appends to ./MUJOCO_LOG.TXT
        pool = collect_segments("HalfCheetah-v5", n_segments=4, seg_len=25, seed=7, max_episode_steps=60)
        assert "settotalmass" not in "".join(capfd.readouterr())
        assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
        assert mujoco.get_mju_user_warning() is None  # the scoped handler was restored
        assert pool.features.shape == (4, 25, 17 + 6)
        observations, returns, components = _replay("HalfCheetah-v5", pool, seed=7, per_episode=2, max_episode_steps=60)
        np.testing.assert_array_equal(pool.features[..., :17].reshape(-1, 17).numpy(), observations)
        np.testing.assert_allclose(pool.returns.numpy(), returns.astype(np.float32), rtol=1e-6)
        np.testing.assert_allclose(returns, components, rtol=1e-9, atol=1e-9)
        assert pool.step_rewards is not None
        np.testing.assert_allclose(pool.step_rewards.sum(-1).numpy(), returns, rtol=1e-12, atol=1e-12)
