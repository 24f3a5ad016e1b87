"""Trajectory segments from real control environments, scored by the environment's own reward.

The paper's control experiments (Hong et al., 2024, §4.1 and App. C) learn a reward model from
preferences between pieces of trajectory whose ground-truth score is the environment reward. This
module produces the raw material: a pool of segments ``σ = ((s_t, a_t))_{t<T}`` with their return
``R*(σ) = Σ_t r(s_t, a_t)``. Pairing and labelling the pool is left to the caller (for instance
``adapref.synthetic.pair_segments``), so that every teacher sees the same segments.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from adapref.synthetic import _real

__all__ = ["SegmentPool", "collect_segments"]

logger = logging.getLogger(__name__)

Policy = Literal["random", "noisy-sine"]

_PROGRESS_MIN_SEGMENTS = 1000
"""Show a progress bar from this many segments on (tqdm still hides it when stderr is no TTY)."""

_MAX_BARREN_EPISODES = 1000
"""Give up after this many episodes in a row end before one full segment fits into them."""

_MUJOCO_ENTRY_POINT = "gymnasium.envs.mujoco"


@dataclass
class SegmentPool:
    """Segments of consecutive environment steps and their ground-truth returns.

    Attributes:
        features: ``(n, seg_len, obs_dim + act_dim)`` float32, row ``t`` of a segment is the
            concatenation ``[s_t; a_t]`` of the observation before step ``t`` and the action taken.
        returns: ``(n,)`` float32, ``R*(σ) = Σ_t r_t``, the undiscounted sum of the environment's
            rewards over the segment's steps (summed in float64, then cast).
        env_id: The gymnasium id the segments come from.
        seg_len: Steps per segment ``T``.
        act_dim: How many trailing feature columns are the action (0 when unknown).
    """

    features: torch.Tensor
    returns: torch.Tensor
    env_id: str
    seg_len: int
    act_dim: int = 0

    def __post_init__(self) -> None:
        if self.features.ndim != 3:
            raise ValueError(f"features must have shape (n, seg_len, dim), got {tuple(self.features.shape)}")
        if self.returns.shape != self.features.shape[:1]:
            raise ValueError(
                f"returns must have shape ({self.features.shape[0]},) to match features, got {tuple(self.returns.shape)}"
            )
        if self.features.shape[1] != self.seg_len:
            raise ValueError(f"features hold segments of {self.features.shape[1]} steps, but seg_len={self.seg_len}")
        if not 0 <= self.act_dim <= self.features.shape[2]:
            raise ValueError(f"act_dim must be in [0, {self.features.shape[2]}], got {self.act_dim}")

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def obs_dim(self) -> int:
        """Leading feature columns that are the observation."""
        return int(self.features.shape[2]) - self.act_dim


def collect_segments(
    env_id: str = "HalfCheetah-v5",
    *,
    n_segments: int,
    seg_len: int = 25,
    policy: Policy = "random",
    noise: float = 0.3,
    seed: int = 0,
    max_episode_steps: int | None = None,
) -> SegmentPool:
    """Roll out a scripted policy and cut its episodes into segments scored by the env reward.

    One environment is stepped; each episode is cut into consecutive, non-overlapping windows of
    ``seg_len`` steps, the window that an episode end (termination or time limit) cuts short is
    dropped, and collection stops once ``n_segments`` windows are filled. A segment's return is

    .. math::

        R^*(σ) = \\sum_{t=0}^{T-1} r(s_t, a_t),

    the ground truth that the paper's synthetic teachers compare (§4.1, App. C with ``T = 25``).

    Policies (both open-loop, redrawn at every episode start):

    * ``"random"``: ``a_t ~ U(low, high)`` independently per step.
    * ``"noisy-sine"``: per action dimension ``j``,
      ``a_tj = m_j + h_j · clip(A_j sin(2π f_j t + φ_j) + noise · ε_tj, -1, 1)`` with centre ``m``,
      half-range ``h`` of the action box, ``A_j ~ U(0, 1)``, ``f_j ~ U(0.02, 0.2)`` cycles per step,
      ``φ_j ~ U(0, 2π)`` and ``ε ~ N(0, 1)``. The random amplitudes give a spread of returns.

    Args:
        env_id: A gymnasium id with a bounded continuous (``Box``) action space and a ``Box``
            observation (flattened into the features when it has more than one dimension): classic
            control ``Pendulum-v1``, ``MountainCarContinuous-v0`` or MuJoCo
            ``HalfCheetah-v5``, ``Hopper-v5``, ``Walker2d-v5``, ``Ant-v5``...
        n_segments: Segments to collect, ``>= 1``.
        seg_len: Steps per segment ``T``, ``>= 1`` and at most the episode time limit. The official
            code compares single transitions (``T = 1``); App. C uses ``T = 25``.
        policy: ``"random"`` or ``"noisy-sine"``.
        noise: Std of the Gaussian noise of ``"noisy-sine"``, in units of the action half-range,
            ``>= 0``. Ignored by ``"random"``.
        seed: An int ``>= 0``; seeds the first ``env.reset`` and the policy's ``np.random.Generator``;
            equal seeds give identical pools.
        max_episode_steps: Overrides the registered time limit when given, ``>= 1``.

    Returns:
        A :class:`SegmentPool` with ``features`` ``(n_segments, seg_len, obs_dim + act_dim)`` and
        ``returns`` ``(n_segments,)``, in collection order.

    Raises:
        ImportError: gymnasium is missing (``pip install "adapref[gym]"``), or mujoco is missing
            for a MuJoCo env (``pip install "adapref[mujoco]"``).
        ValueError: An unknown ``env_id``, a discrete or unbounded action space, a non-``Box``
            observation space, or a bad ``n_segments``, ``seg_len``, ``policy``, ``noise``, ``seed`` or
            ``max_episode_steps``.
        ValueError: also when episodes keep ending before ``seg_len`` steps (e.g. Hopper's early
            termination with a long ``seg_len``).

    Example:
        >>> pool = collect_segments("Pendulum-v1", n_segments=4, seg_len=5, seed=0)
        >>> tuple(pool.features.shape), tuple(pool.returns.shape)
        ((4, 5, 4), (4,))

    References:
        Hong et al., "Adaptive Preference Scaling for Reinforcement Learning with Human Feedback",
        NeurIPS 2024, arXiv:2406.02764, §4.1 and App. C.

    Note:
        The paper collects its pairs online from PPO rollouts on PyBullet envs; here the segments
        come offline from scripted policies on gymnasium's MuJoCo v5 envs (PyBullet's envs need the
        old gym API). mujoco 4.0's harmless ``settotalmass`` deprecation message (which its default
        handler prints to stderr and appends to ``./MUJOCO_LOG.TXT``) is dropped while the
        environment is built; other MuJoCo warnings go to this module's logger.
    """
    if isinstance(n_segments, bool) or not isinstance(n_segments, int) or n_segments < 1:
        raise ValueError(f"n_segments must be an int >= 1, got {n_segments!r}")
    if isinstance(seg_len, bool) or not isinstance(seg_len, int) or seg_len < 1:
        raise ValueError(f"seg_len must be an int >= 1, got {seg_len!r}")
    if policy not in ("random", "noisy-sine"):
        raise ValueError(f"policy must be 'random' or 'noisy-sine', got {policy!r}")
    noise_level = _real(noise)  # the teachers' check: a finite real, not a bool, a string or None
    if noise_level is None or noise_level < 0:
        raise ValueError(f"noise must be a finite float >= 0, got {noise!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:  # None would give a new pool each call
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if max_episode_steps is not None and (
        isinstance(max_episode_steps, bool) or not isinstance(max_episode_steps, int) or max_episode_steps < 1
    ):
        raise ValueError(f"max_episode_steps must be None or an int >= 1, got {max_episode_steps!r}")

    env, limit = _make_env(env_id, max_episode_steps)
    try:
        if limit is not None and seg_len > limit:
            raise ValueError(f"seg_len must be <= the episode limit of {env_id} ({limit} steps), got {seg_len}")
        return _collect(env, env_id, n_segments, seg_len, policy, noise, seed)
    finally:
        env.close()


def _make_env(env_id: str, max_episode_steps: int | None) -> tuple[Any, int | None]:
    """``gym.make`` with install hints, a known-id check and the mujoco warning silenced.

    Returns:
        The environment and its episode time limit (None when it has none).
    """
    try:
        import gymnasium as gym
    except ImportError as exc:
        raise ImportError(
            f'collect_segments({env_id!r}) needs gymnasium: pip install "adapref[gym]" '
            '(or "adapref[mujoco]" for MuJoCo envs)'
        ) from exc

    spec = gym.envs.registry.get(env_id)
    needs_mujoco = spec is not None and str(spec.entry_point).startswith(_MUJOCO_ENTRY_POINT)
    if needs_mujoco:
        try:
            importlib.import_module("mujoco")
        except ImportError as exc:
            raise ImportError(f'collect_segments({env_id!r}) needs mujoco: pip install "adapref[mujoco]"') from exc

    kwargs: dict[str, Any] = {"disable_env_checker": True}
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = max_episode_steps
    try:
        with _quiet_mujoco(needs_mujoco):
            env = gym.make(env_id, **kwargs)
    except gym.error.DependencyNotInstalled as exc:
        extra = "mujoco" if needs_mujoco else "gym"
        raise ImportError(
            f'collect_segments({env_id!r}) misses a dependency: pip install "adapref[{extra}]" ({exc})'
        ) from exc
    except gym.error.Error as exc:
        raise ValueError(f"env_id {env_id!r} is not a registered gymnasium environment: {exc}") from exc

    action_space = env.action_space
    if not isinstance(action_space, gym.spaces.Box):
        env.close()
        raise ValueError(
            f"env_id {env_id!r} has a {type(action_space).__name__} action space; collect_segments needs a "
            "continuous Box action space (e.g. Pendulum-v1, HalfCheetah-v5)"
        )
    if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
        env.close()
        raise ValueError(f"env_id {env_id!r} has an unbounded action space; collect_segments needs finite bounds")
    if not isinstance(env.observation_space, gym.spaces.Box):
        env.close()
        raise ValueError(
            f"env_id {env_id!r} has a {type(env.observation_space).__name__} observation space; "
            "collect_segments needs a Box observation"
        )
    limit = env.spec.max_episode_steps if env.spec is not None else None
    return env, None if limit is None else int(limit)


@contextlib.contextmanager
def _quiet_mujoco(active: bool) -> Iterator[None]:
    """Route MuJoCo's C-level warnings to the logger, dropping the ``settotalmass`` deprecation.

    mujoco 4.0 reports it through ``mju_user_warning`` (printed to stderr), not Python's
    ``warnings``; a Python-level filter is added too in case a later release moves it there.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*settotalmass.*")
        if not active:
            yield
            return
        mujoco = importlib.import_module("mujoco")  # untyped; imported by name to keep mypy --strict quiet

        def handler(message: str) -> None:
            if "settotalmass" not in message:
                logger.warning("mujoco: %s", message)

        previous = mujoco.get_mju_user_warning()
        mujoco.set_mju_user_warning(handler)
        try:
            yield
        finally:
            mujoco.set_mju_user_warning(previous)


def _progress(n_segments: int, env_id: str) -> Any:
    """A tqdm bar over segments for large pools (imported only then), else a no-op context."""
    if n_segments < _PROGRESS_MIN_SEGMENTS:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=n_segments, desc=f"segments {env_id}", unit="seg", disable=None)


class _NoBar(contextlib.nullcontext[None]):
    """Stands in for a tqdm bar when none is shown."""

    def update(self, n: int = 1) -> None:
        """Ignore progress."""


def _collect(
    env: Any, env_id: str, n_segments: int, seg_len: int, policy: Policy, noise: float, seed: int
) -> SegmentPool:
    """The rollout loop of :func:`collect_segments` (arguments already validated)."""
    low = np.asarray(env.action_space.low, dtype=np.float64)
    high = np.asarray(env.action_space.high, dtype=np.float64)
    centre, half = (high + low) / 2.0, (high - low) / 2.0
    act_dim = low.size
    obs_dim = int(np.prod(env.observation_space.shape))
    rng = np.random.default_rng(seed)

    features = np.empty((n_segments, seg_len, obs_dim + act_dim), dtype=np.float32)
    returns = np.zeros(n_segments, dtype=np.float64)
    filled, steps, episodes, barren = 0, 0, 0, 0
    bar = _progress(n_segments, env_id)
    obs, _ = env.reset(seed=seed)
    with bar:
        while filled < n_segments:
            episodes += 1
            amp = rng.uniform(0.0, 1.0, act_dim)
            freq = rng.uniform(0.02, 0.2, act_dim)
            phase = rng.uniform(0.0, 2.0 * np.pi, act_dim)
            t, pos, got_one = 0, 0, False
            while filled < n_segments:
                if policy == "random":
                    action = rng.uniform(low, high)
                else:
                    wave = amp * np.sin(2.0 * np.pi * freq * t + phase) + noise * rng.standard_normal(act_dim)
                    action = centre + half * np.clip(wave, -1.0, 1.0)
                action = np.clip(action, low, high).astype(env.action_space.dtype, copy=False)
                features[filled, pos, :obs_dim] = np.asarray(obs, dtype=np.float32).reshape(-1)
                features[filled, pos, obs_dim:] = action
                obs, reward, terminated, truncated, _ = env.step(action)
                returns[filled] += float(reward)
                t, pos, steps = t + 1, pos + 1, steps + 1
                if pos == seg_len:  # window complete: keep it, even if the episode ends right here
                    filled, pos, got_one = filled + 1, 0, True
                    bar.update(1)
                if terminated or truncated:
                    if pos:  # drop the partial window the episode end cut short
                        returns[filled] = 0.0
                    obs, _ = env.reset()
                    break
            barren = 0 if got_one else barren + 1
            if barren >= _MAX_BARREN_EPISODES:
                raise ValueError(
                    f"seg_len must fit in the episodes of {env_id}: {barren} episodes in a row ended before "
                    f"{seg_len} steps; lower seg_len or pick another policy"
                )
    logger.info(
        "collected %d segments of %d steps from %s: %d steps, %d episodes", filled, seg_len, env_id, steps, episodes
    )
    return SegmentPool(
        features=torch.from_numpy(features),
        returns=torch.from_numpy(returns.astype(np.float32)),
        env_id=env_id,
        seg_len=seg_len,
        act_dim=act_dim,
    )
