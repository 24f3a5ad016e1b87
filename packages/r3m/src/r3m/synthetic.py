"""Synthetic preference data with a known ground-truth reward (spec §6 B1).

Segments ``z = (x_1, …, x_T)`` of per-step features ``x_t ∈ R^D`` are drawn i.i.d. standard
normal; a random true reward ``r*`` scores each step and a segment's return is
``R*(z) = Σ_t r*(x_t)``. A teacher (:mod:`r3m.teachers`, re-exported here) labels pairs of them;
:func:`pair_segments` turns a pool of scored segments, synthetic or from a gymnasium environment
(:mod:`r3m.envs`), into :class:`~r3m.data.PreferenceData` with the true strength
``|R*(z_i) − R*(z_j)|`` and the corruption flag ``R*(chosen) < R*(rejected)`` (ties are not
corrupted). All randomness comes from an explicit ``torch.Generator``.
"""

from __future__ import annotations

import itertools
import logging
import math
from typing import Any, Literal

import torch

from r3m.data import PreferenceData
from r3m.teachers import Flip, Irrational, Mistake, Myopic, Oracle, Stochastic, Teacher, as_returns

logger = logging.getLogger(__name__)

__all__ = [
    "REWARD_KINDS",
    "Flip",
    "Irrational",
    "Mistake",
    "Myopic",
    "Oracle",
    "Stochastic",
    "Teacher",
    "TrueReward",
    "make_preference_data",
    "pair_segments",
    "sample_segments",
]

RewardKind = Literal["linear", "mlp", "smooth-mlp"]
REWARD_KINDS: tuple[RewardKind, ...] = ("linear", "mlp", "smooth-mlp")
"""The kinds of :class:`TrueReward`."""
_MLP_HIDDEN = 32
_SMOOTH_PROBE = 4096  # standard-normal draws that set the smooth MLP's output scale
_TANH_GAIN = 5.0 / 3.0  # torch.nn.init.calculate_gain("tanh")


class TrueReward:
    """A random per-step ground-truth reward ``r*(x)``, ``x ∈ R^D``.

    Three kinds, all with the same layout (the MLPs are ``D → 32 → 32 → 1`` with tanh hidden units
    and no output bias: a constant per-step offset cancels in every comparison):

    - ``"linear"``: ``r*(x) = x·w`` with ``w ~ N(0, I/D)``. For standard-normal ``x``,
      ``Var r*(x) = |w|²``, a χ²_D/D draw: 1 on average over draws of ``w``, not for each (0.45 to
      1.65 over the generator seeds 0–4 and 1000–1004 at D = 8). A teacher's temperature therefore
      means a seed-dependent noise level on this kind, part of the seed-to-seed spread of results.
    - ``"mlp"``, *saturated*: hidden weights ``N(0, (5/3)²/fan_in)`` (torch's tanh gain), hidden
      biases ``N(0, 0.5²)``, output weights ``N(0, 1/32)``. The pre-activations have standard
      deviation ≈ 1.7, so the tanh units saturate and ``r*`` is strongly nonlinear: the spec's 2×64
      reward model ranks only ≈ 0.89 of clean test pairs right with 4500 clean pairs.
    - ``"smooth-mlp"``: hidden weights and biases ``U(−1/√fan_in, 1/√fan_in)``, the default
      initialisation of ``torch.nn.Linear``; pre-activations of standard deviation ≈ 0.3-0.6 keep
      the tanh units mostly in their linear range, so ``r*`` is mildly nonlinear. Output weights
      ``N(0, 1/32)``, then divided by the standard deviation of ``r*`` on 4096 standard-normal
      draws (taken from ``generator`` after the weights), so ``Var r*(x) ≈ 1`` for every draw
      (the linear kind's is 1 on average only) and the temperatures of the noisy teachers mean the same. This is the difficulty of the
      r3m spec's B1 prototype (Bradley-Terry ≈ 0.95 clean-test accuracy without flips, ≈ 0.92 at
      20 % flips), so the B1 benchmark uses it for its main table.

    Args:
        dim: the feature size ``D ≥ 1``.
        kind: ``"linear"``, ``"mlp"`` or ``"smooth-mlp"``.
        generator: the source of the weights (required).

    Raises:
        ValueError: if ``dim < 1``, ``kind`` is unknown or ``generator`` is missing.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> r = TrueReward(8, "mlp", g)
        >>> r(torch.zeros(5, 8)).shape, r.returns(torch.zeros(3, 10, 8)).shape
        (torch.Size([5]), torch.Size([3]))
        >>> smooth = TrueReward(8, "smooth-mlp", g)
        >>> round(float(smooth(torch.randn(100_000, 8, generator=g)).std()), 1)
        1.0
    """

    def __init__(self, dim: int, kind: RewardKind = "linear", generator: torch.Generator | None = None) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be an int >= 1, got {dim!r}")
        if kind not in REWARD_KINDS:
            raise ValueError(f"kind must be one of {REWARD_KINDS}, got {kind!r}")
        if generator is None:
            raise ValueError("generator is required, e.g. torch.Generator().manual_seed(0)")
        self.dim = dim
        self.kind: RewardKind = kind
        self.params: dict[str, torch.Tensor] = {}
        if kind == "linear":
            self.params["w"] = torch.randn(dim, generator=generator) / math.sqrt(dim)
            return
        sizes = (dim, _MLP_HIDDEN, _MLP_HIDDEN)
        for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            if kind == "mlp":
                self.params[f"w{layer}"] = torch.randn(fan_in, fan_out, generator=generator) * (
                    _TANH_GAIN / math.sqrt(fan_in)
                )
                self.params[f"b{layer}"] = 0.5 * torch.randn(fan_out, generator=generator)
            else:  # torch.nn.Linear's default: kaiming_uniform_(a=√5) and a bias of the same bound
                bound = 1.0 / math.sqrt(fan_in)
                self.params[f"w{layer}"] = (2 * torch.rand(fan_in, fan_out, generator=generator) - 1) * bound
                self.params[f"b{layer}"] = (2 * torch.rand(fan_out, generator=generator) - 1) * bound
        self.params["w_out"] = torch.randn(_MLP_HIDDEN, generator=generator) / math.sqrt(_MLP_HIDDEN)
        if kind == "smooth-mlp":
            probe = torch.randn(_SMOOTH_PROBE, dim, generator=generator)
            self.params["w_out"] /= self(probe).std()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step reward ``r*(x)``.

        Args:
            x: ``(..., D)`` floating tensor.

        Returns:
            ``(...)`` tensor in the dtype and on the device of ``x``.

        Raises:
            ValueError: if ``x`` is not a floating tensor with last dimension ``D``.
        """
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 1 or x.shape[-1] != self.dim:
            shown = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a floating tensor of shape (..., D={self.dim}), got {shown}")
        p = {name: value.to(x) for name, value in self.params.items()}
        if self.kind == "linear":
            return x @ p["w"]
        h = torch.tanh(x @ p["w0"] + p["b0"])  # (..., 32)
        h = torch.tanh(h @ p["w1"] + p["b1"])  # (..., 32)
        return h @ p["w_out"]

    def returns(self, segments: torch.Tensor) -> torch.Tensor:
        """Segment returns ``R*(z) = Σ_t r*(x_t)``.

        Args:
            segments: ``(N, T, D)`` floating tensor.

        Returns:
            ``(N,)`` tensor.

        Raises:
            ValueError: if ``segments`` is not a floating ``(N, T, D)`` tensor.
        """
        if (
            not isinstance(segments, torch.Tensor)
            or not segments.is_floating_point()
            or segments.ndim != 3
            or segments.shape[-1] != self.dim
        ):
            shown = (
                f"{tuple(segments.shape)} {segments.dtype}"
                if isinstance(segments, torch.Tensor)
                else type(segments).__name__
            )
            raise ValueError(f"segments must be a floating tensor of shape (N, T, D={self.dim}), got {shown}")
        return self(segments).sum(dim=-1)

    def state_dict(self) -> dict[str, Any]:
        """A dict of plain values and CPU tensors, for ``torch.save`` beside a dataset."""
        return {"dim": self.dim, "kind": self.kind, "params": {k: v.clone() for k, v in self.params.items()}}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> TrueReward:
        """Rebuild a reward saved with :meth:`state_dict`.

        Raises:
            ValueError: if ``state`` lacks a key or its parameters do not match ``dim`` and ``kind``.
        """
        for key in ("dim", "kind", "params"):
            if key not in state:
                raise ValueError(f"state is missing key {key!r}")
        template = cls(int(state["dim"]), state["kind"], torch.Generator().manual_seed(0))
        params = state["params"]
        if set(params) != set(template.params):
            raise ValueError(f"state['params'] must have keys {sorted(template.params)}, got {sorted(params)}")
        for name, value in template.params.items():
            given = params[name]
            if not isinstance(given, torch.Tensor) or given.shape != value.shape:
                shown = tuple(given.shape) if isinstance(given, torch.Tensor) else type(given).__name__
                raise ValueError(f"state['params'][{name!r}] must have shape {tuple(value.shape)}, got {shown}")
            template.params[name] = given.detach().to("cpu", torch.float32).clone()
        return template

    def __repr__(self) -> str:
        return f"TrueReward(dim={self.dim}, kind={self.kind!r})"


def sample_segments(n: int, T: int, D: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` segments of ``T`` standard-normal steps in ``R^D``.

    Args:
        n: number of segments, ``≥ 1``.
        T: steps per segment, ``≥ 1``.
        D: features per step, ``≥ 1``.
        generator: the source of the draws.

    Returns:
        ``(n, T, D)`` float32 tensor.

    Raises:
        ValueError: naming the first size that is not a positive int.
    """
    for name, value in (("n", n), ("T", T), ("D", D)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return torch.randn(n, T, D, generator=generator)


def pair_segments(
    segments: torch.Tensor,
    rewards: torch.Tensor,
    n_pairs: int,
    teacher: Teacher,
    generator: torch.Generator,
) -> PreferenceData:
    """Draw random pairs from a pool of scored segments and label them with a teacher.

    Each pair ``(i, j)``, ``i ≠ j``, is drawn uniformly (with replacement across pairs); the teacher
    labels all pairs in one call, in draw order (which fixes :class:`Irrational`'s blocks), from the
    pool's rows of ``rewards``, and each pair is oriented so that ``chosen`` is the segment it
    prefers. Pair ``k`` gets the id ``"pair{k:06d}-{chosen index}-{rejected index}"``.

    Args:
        segments: ``(M, T, D)`` floating tensor, ``M ≥ 2``.
        rewards: the ground truth of the segments, finite: ``(M, T)`` per-step rewards ``r*(x_t)``
            (any teacher), or ``(M,)`` returns ``R*`` (every teacher but :class:`Myopic`), e.g. a
            gymnasium :class:`~r3m.envs.SegmentPool`'s ``step_rewards`` or ``returns``.
        n_pairs: number of pairs, ``≥ 1``.
        teacher: :class:`Oracle`, :class:`Stochastic`, :class:`Myopic`, :class:`Irrational`,
            :class:`Flip`/:class:`Mistake`, or any object with the :class:`Teacher` method.
        generator: the source of the pairing and of the teacher's randomness.

    Returns:
        :class:`PreferenceData` with ``strength = |R_i − R_j|`` (float32, from the float64 sums) and
        ``corrupted = R*(chosen) < R*(rejected)`` (undiscounted returns; ties are not corrupted).

    Raises:
        ValueError: if ``segments`` is not ``(M, T, D)`` with ``M ≥ 2``, ``rewards`` is not ``(M,)``
            or ``(M, T)`` and finite, ``n_pairs < 1``, the teacher rejects the rewards (``Myopic``
            given returns) or returns anything but a ``(n_pairs,)`` bool tensor.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> segs = torch.randn(20, 5, 3, generator=g)
        >>> data = pair_segments(segs, segs.sum(-1), 8, Myopic(0.5), g)  # (M, T) per-step rewards
        >>> tuple(data.chosen.shape), data.corrupted.dtype
        ((8, 5, 3), torch.bool)
    """
    if not isinstance(segments, torch.Tensor) or segments.ndim != 3 or not segments.is_floating_point():
        shown = tuple(segments.shape) if isinstance(segments, torch.Tensor) else type(segments).__name__
        raise ValueError(f"segments must be a floating tensor of shape (M, T, D), got {shown}")
    m, steps = segments.shape[0], segments.shape[1]
    if m < 2:
        raise ValueError(f"segments must hold M >= 2 segments to form pairs, got M={m}")
    if (
        not isinstance(rewards, torch.Tensor)
        or rewards.shape not in ((m,), (m, steps))
        or not rewards.is_floating_point()
    ):
        shown = tuple(rewards.shape) if isinstance(rewards, torch.Tensor) else type(rewards).__name__
        raise ValueError(
            f"rewards must be a floating tensor of shape (M,)=({m},) (returns) or (M, T)=({m}, {steps}) "
            f"(per-step rewards), got {shown}"
        )
    if not bool(torch.isfinite(rewards).all()):
        raise ValueError("rewards contains NaN or infinite values")
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, int) or n_pairs < 1:
        raise ValueError(f"n_pairs must be an int >= 1, got {n_pairs!r}")
    i = torch.randint(m, (n_pairs,), generator=generator)
    j = torch.randint(m - 1, (n_pairs,), generator=generator)
    j = j + (j >= i).long()  # uniform over the M − 1 indices other than i
    rw = rewards.detach().cpu()
    rw_i, rw_j = rw[i], rw[j]
    if not callable(getattr(teacher, "label", None)):  # a name such as "flip" is the CLI's, not the API's
        raise ValueError(f"teacher must be a teacher object such as Flip(0.2) or Stochastic(1.0), got {teacher!r}")
    prefer_i = teacher.label(rw_i, rw_j, generator)
    if not isinstance(prefer_i, torch.Tensor) or prefer_i.dtype != torch.bool or prefer_i.shape != (n_pairs,):
        got = f"{prefer_i.dtype} {tuple(prefer_i.shape)}" if isinstance(prefer_i, torch.Tensor) else type(prefer_i)
        raise ValueError(f"teacher must return a bool tensor of shape ({n_pairs},), got {got}")
    prefer_i = prefer_i.cpu()
    r_i, r_j = as_returns(rw_i), as_returns(rw_j)  # the same float64 sums the return-based teachers compare
    chosen_idx = torch.where(prefer_i, i, j)
    rejected_idx = torch.where(prefer_i, j, i)
    ids = [
        f"pair{k:06d}-{c}-{q}" for k, (c, q) in enumerate(zip(chosen_idx.tolist(), rejected_idx.tolist(), strict=True))
    ]
    device = segments.device
    corrupted = torch.where(prefer_i, r_i < r_j, r_j < r_i)
    logger.debug("paired %d segments into %d pairs, %.1f%% corrupted", m, n_pairs, 100 * corrupted.float().mean())
    return PreferenceData(
        chosen=segments[chosen_idx.to(device)],
        rejected=segments[rejected_idx.to(device)],
        ids=ids,
        strength=(r_i - r_j).abs().float(),
        corrupted=corrupted,
    )


def make_preference_data(
    n_pairs: int,
    *,
    T: int = 10,
    D: int = 8,
    reward: RewardKind = "linear",
    teacher: Teacher | None = None,
    pool_size: int | None = None,
    generator: torch.Generator,
) -> tuple[PreferenceData, TrueReward]:
    """Synthetic preference pairs over a random true reward (spec §6 B1 sizes).

    Draws, in this order from ``generator``: the :class:`TrueReward`, a pool of ``pool_size``
    standard-normal segments, then the pairs and labels (:func:`pair_segments`, given the pool's
    ``(pool_size, T)`` per-step rewards, so every teacher, :class:`Myopic` included, applies).

    Args:
        n_pairs: number of pairs, ``≥ 1``.
        T: steps per segment (B1: 10).
        D: features per step (B1: 8).
        reward: ``"linear"``, ``"mlp"`` or ``"smooth-mlp"`` true reward (:class:`TrueReward`).
        teacher: the labeller; default :class:`Oracle` (clean labels; corruption is what the other
            teachers add).
        pool_size: number of distinct segments pairs are drawn from, ``≥ 2``; default ``2·n_pairs``.
        generator: the source of all randomness.

    Returns:
        ``(data, true_reward)``: the pairs, with ``strength`` and ``corrupted``, and the reward.

    Raises:
        ValueError: on any invalid size, reward kind or pool size.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> data, truth = make_preference_data(128, teacher=Irrational(1 / 3), generator=g)
        >>> tuple(data.chosen.shape), truth.kind, int(data.corrupted.sum())
        ((128, 10, 8), 'linear', 8)
    """
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, int) or n_pairs < 1:
        raise ValueError(f"n_pairs must be an int >= 1, got {n_pairs!r}")
    pool = 2 * n_pairs if pool_size is None else pool_size
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 2:
        raise ValueError(f"pool_size must be an int >= 2, got {pool_size!r}")
    if isinstance(D, bool) or not isinstance(D, int) or D < 1:  # named here, not as TrueReward's dim / kind
        raise ValueError(f"D must be an int >= 1, got {D!r}")
    if reward not in REWARD_KINDS:
        raise ValueError(f"reward must be one of {REWARD_KINDS}, got {reward!r}")
    truth = TrueReward(D, reward, generator)
    segments = sample_segments(pool, T, D, generator)
    data = pair_segments(segments, truth(segments), n_pairs, teacher or Oracle(), generator)
    return data, truth
