"""Simulated labellers (B-Pref "teachers") and the paper's corruption models.

A teacher compares two segments by their ground truth and says which it prefers. R³M §5.1 corrupts
the control preferences with three of B-Pref's irrational teachers (Lee et al. 2021) and the NLG
ones with random flips (spec §1 "Corruption models used"):

* :class:`Oracle`: the clean label ``1[R*(a) > R*(b)]``.
* :class:`Stochastic` ``(temperature)``: Bradley-Terry, ``P(a ≻ b) = σ((R*(a) − R*(b)) / τ)``
  (B-Pref ``teacher_beta = 1/τ``), ``τ ∈ {1, 2, 3}`` in the paper.
* :class:`Myopic` ``(gamma)``: compares ``Σ_t γ^{T−t} r*(x_t)`` (B-Pref ``teacher_gamma``), so
  the last steps weigh most, ``γ ∈ {0.3, 0.5, 0.7}``.
* :class:`Irrational` ``(p, batch_size=64)``: flips the ``round(B^p)`` pairs with the largest
  true gap in each block of ``B`` consecutive pairs, ``p ∈ {1/3, 1/2, 2/3}``.
* :class:`Flip` / :class:`Mistake` ``(eps)``: the oracle label flipped with probability ``eps``
  (B-Pref ``teacher_eps_mistake``; the paper's NLG random flips).

Interface. Every teacher has ``label(rewards_a, rewards_b, generator) -> (N,) bool``, True where
``a`` is preferred. ``rewards_a`` and ``rewards_b`` share a shape: per-step true rewards
``(N, T)`` or returns ``(N,)``. Teachers that compare returns sum ``(N, T)`` inputs over ``T`` in
float64 (:func:`as_returns`); :class:`Myopic` needs the ``(N, T)`` form and raises a
``ValueError`` on returns. :func:`r3m.synthetic.pair_segments` passes on whichever form it is
given; :func:`r3m.synthetic.make_preference_data` always gives per-step rewards.

Ties: equal compared values are broken by a fair coin drawn from the generator (always drawn, so
the random stream does not depend on the data). A pair counts as *corrupted* when its label
contradicts the undiscounted return order, ``R*(chosen) < R*(rejected)``; tied returns never do.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Protocol

import torch

__all__ = ["Flip", "Irrational", "Mistake", "Myopic", "Oracle", "Stochastic", "Teacher", "as_returns"]


class Teacher(Protocol):
    """A simulated labeller.

    ``label(rewards_a, rewards_b, generator)`` returns a ``(N,)`` bool tensor, True where segment
    ``a`` is preferred. ``rewards_a`` and ``rewards_b`` share a shape: ``(N, T)`` per-step true
    rewards ``r*(x_t)``, or ``(N,)`` returns ``R*`` (enough for every teacher but :class:`Myopic`).
    """

    def label(self, rewards_a: torch.Tensor, rewards_b: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...


def _check_rewards(rewards_a: torch.Tensor, rewards_b: torch.Tensor) -> None:
    for name, value in (("rewards_a", rewards_a), ("rewards_b", rewards_b)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise ValueError(f"{name} must be a floating tensor, got {getattr(value, 'dtype', type(value).__name__)}")
        if value.ndim not in (1, 2):
            raise ValueError(f"{name} must be (N,) returns or (N, T) per-step rewards, got shape {tuple(value.shape)}")
    if rewards_a.shape != rewards_b.shape:
        raise ValueError(
            f"rewards_a and rewards_b must have the same shape, got {tuple(rewards_a.shape)} and {tuple(rewards_b.shape)}"
        )


def as_returns(rewards: torch.Tensor) -> torch.Tensor:
    """Float64 returns ``R*``: the sum over ``T`` of ``(N, T)`` per-step rewards, or ``(N,)`` returns as given.

    Args:
        rewards: ``(N, T)`` or ``(N,)`` floating tensor.

    Returns:
        ``(N,)`` float64 tensor on the device of ``rewards``.

    Example:
        >>> as_returns(torch.tensor([[1.0, 2.0], [0.5, 0.5]])).tolist()
        [3.0, 1.0]
    """
    return rewards.double().sum(dim=-1) if rewards.ndim == 2 else rewards.double()


def _uniform(shape: torch.Size, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """``U(0, 1)`` float64 draws from ``generator`` (on its device), moved to ``device``."""
    return torch.rand(shape, generator=generator, dtype=torch.float64, device=generator.device).to(device)


def _real(value: object) -> float | None:
    """``value`` as a float when it is a finite real number (numpy scalars included, bools not), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True)
class Oracle:
    """The clean teacher: ``a`` is preferred iff ``R*(a) > R*(b)``; exact ties are broken by a fair coin.

    Example:
        >>> Oracle().label(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), torch.Generator()).tolist()
        [True, False]
    """

    def label(self, rewards_a: torch.Tensor, rewards_b: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Labels, ``(N,)`` bool, True where ``R*(a) > R*(b)``.

        Args:
            rewards_a: ``(N, T)`` per-step rewards (summed over ``T``) or ``(N,)`` returns of ``a``.
            rewards_b: the same for ``b``.
            generator: the source of the tie-breaking coin (drawn for every pair, so the stream
                it consumes does not depend on the data).

        Raises:
            ValueError: if the inputs are not floating tensors of one shape ``(N,)`` or ``(N, T)``.
        """
        _check_rewards(rewards_a, rewards_b)
        ra, rb = as_returns(rewards_a), as_returns(rewards_b)
        coin = _uniform(ra.shape, generator, ra.device) < 0.5
        return torch.where(ra == rb, coin, ra > rb)


@dataclass(frozen=True)
class Stochastic:
    """Bradley-Terry teacher (B-Pref ``teacher_beta = 1/temperature``; R³M's "stochastic" noise).

    ``P(a ≻ b) = σ((R*(a) − R*(b)) / temperature)``; as ``temperature → 0`` it becomes
    :class:`Oracle`. The paper uses ``temperature ∈ {1, 2, 3}``.

    Args:
        temperature: ``τ > 0``, in units of the return.

    Raises:
        ValueError: if ``temperature`` is not a finite positive number.

    Example:
        >>> Stochastic(1e-9).label(torch.tensor([2.0]), torch.tensor([1.0]), torch.Generator()).tolist()
        [True]
    """

    temperature: float = 1.0

    def __post_init__(self) -> None:
        temperature = _real(self.temperature)
        if temperature is None or not temperature > 0:
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature!r}")
        object.__setattr__(self, "temperature", temperature)  # a float, also from an int or numpy scalar

    def label(self, rewards_a: torch.Tensor, rewards_b: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Labels, ``(N,)`` bool, True with probability ``σ((R*(a) − R*(b)) / temperature)``.

        Raises:
            ValueError: if the inputs are not floating tensors of one shape ``(N,)`` or ``(N, T)``.
        """
        _check_rewards(rewards_a, rewards_b)
        ra, rb = as_returns(rewards_a), as_returns(rewards_b)
        p = torch.sigmoid((ra - rb) / self.temperature)  # float64: no early saturation
        return _uniform(ra.shape, generator, ra.device) < p


@dataclass(frozen=True)
class Flip:
    """The oracle label, flipped independently with probability ``eps`` (the paper's NLG random flips).

    Args:
        eps: flip probability in ``[0, 1)``.

    Raises:
        ValueError: if ``eps`` is outside ``[0, 1)``.

    Example:
        >>> Flip(0.0).label(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), torch.Generator()).tolist()
        [True, False]
    """

    eps: float = 0.1

    def __post_init__(self) -> None:
        eps = _real(self.eps)
        if eps is None or not 0.0 <= eps < 1.0:
            raise ValueError(f"eps must be in [0, 1), got {self.eps!r}")
        object.__setattr__(self, "eps", eps)  # a float, also from an int or numpy scalar

    def label(self, rewards_a: torch.Tensor, rewards_b: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Labels, ``(N,)`` bool: :class:`Oracle`'s, each flipped with probability ``eps``.

        Raises:
            ValueError: if the inputs are not floating tensors of one shape ``(N,)`` or ``(N, T)``.
        """
        oracle = Oracle().label(rewards_a, rewards_b, generator)
        return oracle ^ (_uniform(oracle.shape, generator, oracle.device) < self.eps)


@dataclass(frozen=True)
class Mistake(Flip):
    """B-Pref's "mistake" teacher (``teacher_eps_mistake``): :class:`Flip` under its B-Pref name.

    Args:
        eps: flip probability in ``[0, 1)``.

    Raises:
        ValueError: if ``eps`` is outside ``[0, 1)``.
    """


@dataclass(frozen=True)
class Myopic:
    """B-Pref's myopic teacher (``teacher_gamma``): recent steps weigh more.

    The teacher compares the end-weighted sums

    .. math::

        \\tilde R(z) = \\sum_{t=1}^{T} γ^{T-t}\\, r^*(s_t, a_t),

    so the last step has weight 1 and the first ``γ^{T−1}``; ties are broken by a fair coin. The
    paper uses ``γ ∈ {0.3, 0.5, 0.7}``; ``γ = 1`` is :class:`Oracle`.

    Args:
        gamma: ``γ ∈ (0, 1]``.

    Raises:
        ValueError: if ``gamma`` is outside ``(0, 1]``.

    Example:
        >>> a, b = torch.tensor([[4.0, 0.0]]), torch.tensor([[0.0, 3.0]])  # R*: 4 > 3; myopic: 2 < 3
        >>> Myopic(0.5).label(a, b, torch.Generator()).tolist()
        [False]

    Note:
        This is not the discount ``γ^t`` of the paper's eq. 3.1 (which weighs early steps more);
        the two must not be confused (spec §7).
    """

    gamma: float = 0.5

    def __post_init__(self) -> None:
        gamma = _real(self.gamma)
        if gamma is None or not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma!r}")
        object.__setattr__(self, "gamma", gamma)  # a float, also from an int or numpy scalar

    def label(self, rewards_a: torch.Tensor, rewards_b: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Labels, ``(N,)`` bool, True where ``Σ_t γ^{T−t} r*_t(a) > Σ_t γ^{T−t} r*_t(b)``.

        Args:
            rewards_a: ``(N, T)`` per-step true rewards of ``a``.
            rewards_b: ``(N, T)`` per-step true rewards of ``b``.
            generator: the source of the tie-breaking coin.

        Raises:
            ValueError: if the inputs are ``(N,)`` returns (the teacher needs per-step rewards), or
                not floating tensors of one shape.
        """
        _check_rewards(rewards_a, rewards_b)
        if rewards_a.ndim != 2:
            raise ValueError(
                f"Myopic needs per-step rewards of shape (N, T), got returns of shape {tuple(rewards_a.shape)}; "
                "pass the (M, T) per-step rewards to pair_segments (e.g. TrueReward(segments) or "
                "SegmentPool.step_rewards)"
            )
        steps = rewards_a.shape[1]
        weights = self.gamma ** torch.arange(steps - 1, -1, -1, dtype=torch.float64, device=rewards_a.device)  # (T,)
        return Oracle().label(rewards_a.double() @ weights, rewards_b.double() @ weights, generator)


@dataclass(frozen=True)
class Irrational:
    """R³M's "irrational" teacher: the largest true gaps are the ones labelled wrongly.

    The pairs are taken in blocks of ``batch_size = B`` consecutive pairs (the paper's minibatch);
    in each block the ``k = round(B^p)`` pairs with the largest ``|R*(a) − R*(b)|`` get the flipped
    oracle label, the others the oracle label. With ``B = 64``: ``p = 1/3`` flips 4 pairs (6.25%),
    ``p = 1/2`` flips 8 (12.5%) and ``p = 2/3`` flips 16 (25%), the paper's rates.

    Args:
        p: exponent ``p ∈ (0, 1]``; the paper uses ``{1/3, 1/2, 2/3}``.
        batch_size: ``B ≥ 1`` (64 reproduces the paper's 6.25% at ``p = 1/3``).

    Raises:
        ValueError: if ``p`` is outside ``(0, 1]`` or ``batch_size`` is not an int ``≥ 1``.

    Example:
        >>> Irrational(1 / 3).flips_per_batch, Irrational(2 / 3).flips_per_batch
        (4, 16)

    Note:
        The corruption rate ``round(B^p)/B`` depends on ``B``: the same ``p`` at ``B = 512`` flips
        8 of 512 (1.6%). Rounding is to the nearest integer, halves up. A trailing block of
        ``b < B`` pairs flips ``round(b·k/B)`` of its largest-gap pairs, so the overall rate stays
        ``k/B`` (``round(b^p)`` would flip a lone last pair for sure). Equal gaps are ranked by
        position, earlier pairs first. The paper does not say which order the minibatches are
        drawn in; here it is the order of the pairs given to :meth:`label`.
    """

    p: float = 1.0 / 3.0
    batch_size: int = 64

    def __post_init__(self) -> None:
        p = _real(self.p)
        if p is None or not 0.0 < p <= 1.0:
            raise ValueError(f"p must be in (0, 1], got {self.p!r}")
        object.__setattr__(self, "p", p)  # a float, also from an int or numpy scalar
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {self.batch_size!r}")

    @property
    def flips_per_batch(self) -> int:
        """``k = round(B^p)``, the pairs flipped in each full block."""
        return min(self.batch_size, math.floor(math.pow(self.batch_size, self.p) + 0.5))

    def label(self, rewards_a: torch.Tensor, rewards_b: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Labels, ``(N,)`` bool: :class:`Oracle`'s, flipped on the top-``k`` true gaps of each block.

        Args:
            rewards_a: ``(N, T)`` per-step rewards (summed over ``T``) or ``(N,)`` returns of ``a``.
            rewards_b: the same for ``b``.
            generator: the source of :class:`Oracle`'s tie-breaking coin.

        Raises:
            ValueError: if the inputs are not floating tensors of one shape ``(N,)`` or ``(N, T)``.
        """
        labels = Oracle().label(rewards_a, rewards_b, generator)
        gap = (as_returns(rewards_a) - as_returns(rewards_b)).abs()
        flip = torch.zeros_like(labels)
        k_full, b_full = self.flips_per_batch, self.batch_size
        for start in range(0, gap.shape[0], b_full):
            block = gap[start : start + b_full]
            size = block.shape[0]
            k = k_full if size == b_full else math.floor(size * k_full / b_full + 0.5)
            top = torch.argsort(block, descending=True, stable=True)[:k]
            flip[start + top] = True
        return labels ^ flip
