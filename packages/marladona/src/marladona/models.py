"""The MARLadona actor-critic: a global entity encoder (GEE) with a Beta policy head.

Paper symbols -> arguments: the ego observation o is ``ego`` (N, 18), the entities e_j are the rows of
``entities`` (N, K, 8) with ``entity_mask`` (N, K) marking active players, the Beta concentrations
(α, β) are ``alpha``/``beta`` (N, 5), a Beta sample s ∈ [0, 1] is sent to the environment as the action
a = 2s − 1 ∈ [−1, 1].

References:
    Li, Bjelonic, Klemm, Hutter, "MARLadona: Towards Cooperative Team Play Using Multi-Agent Reinforcement
    Learning", ICRA 2025, arXiv:2409.20326; code ``leggedrobotics/marladona-isaac-lab`` at 7ad20ab,
    ``rsl_marl/modules/{neighbor_net,actor_critic_beta}.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTION_DIM = 5
"""Actions per agent: (vx, vy, ω, kick x, kick y), each in [−1, 1]."""
SAMPLE_EPS = 1e-6
"""Beta samples are clamped to [SAMPLE_EPS, 1 − SAMPLE_EPS] (spec 7; the authors' mirror clip)."""
EGO_MIRROR_INDEX = (1, 2, 4, 5, 8, 10)
"""Ego dims negated by the y-mirror: vy, ω, y, sin ψ, ball vy, ball y."""
ENTITY_MIRROR_INDEX = (2, 3, 4, 5)
"""Entity dims negated by the y-mirror: y_t, y_{t−1}, sin_t, sin_{t−1}."""
ACTION_MIRROR_INDEX = (1, 2, 4)
"""Action dims negated by the y-mirror (vy, ω, kick y); s -> 1 − s in Beta space."""

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "elu": nn.ELU,
    "relu": nn.ReLU,
    "selu": nn.SELU,
    "lrelu": nn.LeakyReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


# ----------------------------------------------------------------------------------------------- Beta math
def beta_log_prob(alpha: Tensor, beta: Tensor, samples: Tensor) -> Tensor:
    """Elementwise Beta log-density at samples s ∈ [0, 1], clamped to [1e−6, 1 − 1e−6].

    .. math::
        \\log p(s) = (α − 1)\\log s + (β − 1)\\log(1 − s) − \\log B(α, β)

    Args:
        alpha, beta: concentrations > 0, broadcastable with ``samples``.
        samples: Beta samples; values outside [1e−6, 1 − 1e−6] are clamped first (with α or β < 1 the
            density is infinite at the bounds, D3).

    Returns:
        Log-densities, the broadcast shape (not summed over action dims).
    """
    s = samples.clamp(SAMPLE_EPS, 1.0 - SAMPLE_EPS)
    log_norm = torch.lgamma(alpha) + torch.lgamma(beta) - torch.lgamma(alpha + beta)
    return (alpha - 1.0) * torch.log(s) + (beta - 1.0) * torch.log1p(-s) - log_norm


def scaled_beta_log_prob(alpha: Tensor, beta: Tensor, actions: Tensor) -> Tensor:
    """Elementwise log-density of the rescaled action a = 2s − 1 ∈ [−1, 1].

    By change of variables s = (a + 1)/2, ds/da = 1/2:

    .. math::
        \\log p_a(a) = \\log p_s\\big((a + 1)/2\\big) − \\log 2

    Note:
        The policy itself (``act``, ``evaluate``) reports the log-prob of s, as the authors do: the
        −log 2 per dim is a constant that cancels in every PPO ratio.
    """
    return beta_log_prob(alpha, beta, actions_to_samples(actions)) - math.log(2.0)


def beta_entropy(alpha: Tensor, beta: Tensor) -> Tensor:
    """Elementwise differential entropy of Beta(α, β) on [0, 1].

    .. math::
        H = \\log B(α, β) − (α − 1)ψ(α) − (β − 1)ψ(β) + (α + β − 2)ψ(α + β)
    """
    log_norm = torch.lgamma(alpha) + torch.lgamma(beta) - torch.lgamma(alpha + beta)
    return (
        log_norm
        - (alpha - 1.0) * torch.digamma(alpha)
        - (beta - 1.0) * torch.digamma(beta)
        + (alpha + beta - 2.0) * torch.digamma(alpha + beta)
    )


def beta_kl(alpha_p: Tensor, beta_p: Tensor, alpha_q: Tensor, beta_q: Tensor) -> Tensor:
    """Elementwise closed-form KL(Beta(α_p, β_p) || Beta(α_q, β_q)).

    .. math::
        \\mathrm{KL} = \\log\\frac{B(α_q, β_q)}{B(α_p, β_p)} + (α_p − α_q)ψ(α_p) + (β_p − β_q)ψ(β_p)
                       + (α_q − α_p + β_q − β_p)ψ(α_p + β_p)

    PPO's adaptive learning rate uses p = the rollout (old) policy, q = the current one, as the authors do.
    """
    log_b_p = torch.lgamma(alpha_p) + torch.lgamma(beta_p) - torch.lgamma(alpha_p + beta_p)
    log_b_q = torch.lgamma(alpha_q) + torch.lgamma(beta_q) - torch.lgamma(alpha_q + beta_q)
    dig_sum = torch.digamma(alpha_p + beta_p)
    return (
        log_b_q
        - log_b_p
        + (alpha_p - alpha_q) * (torch.digamma(alpha_p) - dig_sum)
        + (beta_p - beta_q) * (torch.digamma(beta_p) - dig_sum)
    )


def actions_to_samples(actions: Tensor) -> Tensor:
    """Map actions a ∈ [−1, 1] to Beta samples s = (a + 1)/2, clamped to [1e−6, 1 − 1e−6]."""
    return ((actions + 1.0) * 0.5).clamp(SAMPLE_EPS, 1.0 - SAMPLE_EPS)


# ----------------------------------------------------------------------------------------------- symmetry
def _signs(dim: int, index: Sequence[int], like: Tensor) -> Tensor:
    sign = torch.ones(dim, dtype=like.dtype, device=like.device)
    sign[list(index)] = -1.0
    return sign


def mirror_ego(ego: Tensor) -> Tensor:
    """Mirror ego (or critic ego) observations (..., 18) about the x axis: dims 1, 2, 4, 5, 8, 10 negated."""
    if ego.shape[-1] != 18:
        raise ValueError(f"ego must have 18 features in its last dim, got shape {tuple(ego.shape)}")
    return ego * _signs(18, EGO_MIRROR_INDEX, ego)


def mirror_obs(ego: Tensor, entities: Tensor) -> tuple[Tensor, Tensor]:
    """Mirror observations about the field's x axis (y -> −y), spec 1.10.

    Ego dims 1, 2, 4, 5, 8, 10 (vy, ω, y, sin ψ, ball vy, ball y) and entity dims 2-5 (y and sin ψ, both
    history steps) are negated; field info and x-quantities are unchanged. Works for ``critic_ego`` too.

    Args:
        ego: (..., 18) ego observations.
        entities: (..., K, 8) entity observations.

    Returns:
        ``(ego', entities')`` with the input shapes; applying it twice gives the input back exactly.

    Raises:
        ValueError: if the last dims are not 18 and 8.
    """
    if entities.dim() < 2 or entities.shape[-1] != 8:
        raise ValueError(f"entities must have shape (..., K, 8), got {tuple(entities.shape)}")
    return mirror_ego(ego), entities * _signs(8, ENTITY_MIRROR_INDEX, entities)


def mirror_actions(actions: Tensor) -> Tensor:
    """Mirror actions a ∈ [−1, 1] (..., 5): dims 1, 2, 4 (vy, ω, kick y) negated."""
    if actions.shape[-1] != ACTION_DIM:
        raise ValueError(f"actions must have {ACTION_DIM} features in its last dim, got {tuple(actions.shape)}")
    return actions * _signs(ACTION_DIM, ACTION_MIRROR_INDEX, actions)


def mirror_beta_sample(samples: Tensor) -> Tensor:
    """Mirror Beta samples s ∈ [0, 1] (..., 5): dims 1, 2, 4 map to 1 − s, clipped to [1e−6, 1 − 1e−6].

    This is ``mirror_actions`` in Beta space (a = 2s − 1 -> −a  ⇔  s -> 1 − s); the clip is the authors'.
    """
    if samples.shape[-1] != ACTION_DIM:
        raise ValueError(f"samples must have {ACTION_DIM} features in its last dim, got {tuple(samples.shape)}")
    flip = torch.zeros(ACTION_DIM, dtype=torch.bool, device=samples.device)
    flip[list(ACTION_MIRROR_INDEX)] = True
    return torch.where(flip, (1.0 - samples).clamp(SAMPLE_EPS, 1.0 - SAMPLE_EPS), samples)


# ----------------------------------------------------------------------------------------------- network
class ActOutput(NamedTuple):
    """What ``GEEActorCritic.act`` returns for N agent rows."""

    actions: Tensor
    """(N, 5) actions a = 2s − 1 ∈ [−1, 1] for the environment."""
    log_prob: Tensor
    """(N,) Σ_d log p(s_d), the log-prob of the Beta sample s (no rescaling Jacobian)."""
    value: Tensor
    """(N,) critic value V(o)."""
    alpha: Tensor
    """(N, 5) Beta α."""
    beta: Tensor
    """(N, 5) Beta β."""


class EvaluateOutput(NamedTuple):
    """What ``GEEActorCritic.evaluate`` returns for N agent rows."""

    log_prob: Tensor
    """(N,) Σ_d log p(s_d) of the given actions (s = (a + 1)/2)."""
    entropy: Tensor
    """(N,) Σ_d H(Beta(α_d, β_d)) on [0, 1]."""
    value: Tensor
    """(N,) critic value."""
    alpha: Tensor
    """(N, 5) Beta α."""
    beta: Tensor
    """(N, 5) Beta β."""


def _mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def _sizes(name: str, value: Sequence[int]) -> tuple[int, ...]:
    sizes = tuple(int(v) for v in value)
    if any(v <= 0 for v in sizes):
        raise ValueError(f"{name} must hold positive layer widths, got {tuple(value)}")
    return sizes


class GEEActorCritic(nn.Module):
    """Shared-parameter actor-critic with the modified global entity encoder (spec 1.9).

    For each group g ∈ {teammates, opponents} a separate MLP embeds every entity together with the ego
    observation; a masked max pools the group; actor and critic MLPs read the concatenation:

    .. math::
        h_j = \\mathrm{MLP}_g([e_j, o]), \\quad z_g = \\max_{j \\in g,\\ \\mathrm{active}} h_j
              \\ (z_g = \\text{empty\\_fill if none}), \\quad x = [o, z_{tm}, z_{op}]

    .. math::
        (α, β) = \\mathrm{softplus}(\\mathrm{MLP}_π(x)) + \\text{beta\\_offset}, \\quad V = \\mathrm{MLP}_V(x_c)

    where x_c is x built from ``critic_ego`` (the noise-free ego obs, D8) when it is given. The 3v3 default
    has 89,195 parameters, as the authors' checkpoint.

    Args:
        ego_dim: ego observation size (18).
        entity_dim: per-entity size (8 = 4 features × history 2).
        max_teammates: teammate slots, Tmax − 1 (0 for 1v1: the group is always empty).
        max_opponents: opponent slots, Tmax.
        enc_hidden: hidden widths of each group encoder (64, 32).
        enc_dim: encoder output width per group (16).
        actor_hidden, critic_hidden: hidden widths of the heads (128, 128, 128).
        activation: one of elu, relu, selu, lrelu, tanh, sigmoid.
        beta_offset: added to the softplus (≥ 0); 1.0 = rsl_rl 5.x, 0.0 = the authors' code.
        empty_fill: z of a group with no active entity (−2, the authors' value).

    Raises:
        ValueError: for a non-positive size, negative slot count, unknown activation, negative
            ``beta_offset`` or non-finite ``empty_fill``.

    Note:
        Departures from the authors' ``ActorCriticBeta``/``NeighborNet``, all output-preserving except the
        first: (1) ``beta_offset=1`` by default (D3: with plain softplus α, β < 1 gives U-shaped Betas and
        infinite log-probs at the bounds); (2) the pool is a masked max with a finite sentinel and masked
        inputs zeroed, so garbage or NaN in inactive slots changes neither outputs nor gradients (theirs
        marks inactive slots with NaN and pools with −inf; the −2 fill applies to both groups here); (3) the
        encoder runs once per call for both heads (they run it twice), and its first layer is split as
        W[e; o] = W_e e + W_o o so the ego term is computed once per agent, not once per entity. With
        ``critic_ego`` the later encoder layers run on a stacked (2, N, K) batch: the faithful choice, since
        the authors' critic re-encodes its own noise-free obs. Pass ``critic_ego=None`` when it equals ego.
        Their checkpoint loads with ``beta_offset=0`` after stripping the ``preprocess_net.`` key prefix.

    Example:
        >>> net = GEEActorCritic()
        >>> sum(p.numel() for p in net.parameters())
        89195
        >>> ego, ent, mask = torch.zeros(4, 18), torch.zeros(4, 5, 8), torch.ones(4, 5, dtype=torch.bool)
        >>> alpha, beta, value = net(ego, ent, mask)
        >>> alpha.shape, value.shape
        (torch.Size([4, 5]), torch.Size([4]))
    """

    def __init__(
        self,
        ego_dim: int = 18,
        entity_dim: int = 8,
        max_teammates: int = 2,
        max_opponents: int = 3,
        enc_hidden: Sequence[int] = (64, 32),
        enc_dim: int = 16,
        actor_hidden: Sequence[int] = (128, 128, 128),
        critic_hidden: Sequence[int] = (128, 128, 128),
        activation: str = "elu",
        beta_offset: float = 1.0,
        empty_fill: float = -2.0,
    ) -> None:
        super().__init__()
        for name, value in (("ego_dim", ego_dim), ("entity_dim", entity_dim), ("enc_dim", enc_dim)):
            if int(value) <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        for name, value in (("max_teammates", max_teammates), ("max_opponents", max_opponents)):
            if int(value) < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if not beta_offset >= 0.0:
            raise ValueError(f"beta_offset must be >= 0, got {beta_offset}")
        if not math.isfinite(empty_fill):
            raise ValueError(f"empty_fill must be finite, got {empty_fill}")
        enc = _sizes("enc_hidden", enc_hidden)
        act_h, crit_h = _sizes("actor_hidden", actor_hidden), _sizes("critic_hidden", critic_hidden)
        self.config: dict[str, Any] = {
            "ego_dim": int(ego_dim),
            "entity_dim": int(entity_dim),
            "max_teammates": int(max_teammates),
            "max_opponents": int(max_opponents),
            "enc_hidden": enc,
            "enc_dim": int(enc_dim),
            "actor_hidden": act_h,
            "critic_hidden": crit_h,
            "activation": activation,
            "beta_offset": float(beta_offset),
            "empty_fill": float(empty_fill),
        }
        self.ego_dim, self.entity_dim = int(ego_dim), int(entity_dim)
        self.max_teammates, self.max_opponents = int(max_teammates), int(max_opponents)
        self.enc_dim, self.beta_offset, self.empty_fill = int(enc_dim), float(beta_offset), float(empty_fill)
        # The teammate encoder exists even for max_teammates=0, so one parameter set serves every team size.
        enc_sizes = (self.entity_dim + self.ego_dim, *enc, self.enc_dim)
        self.teammate_encoder = _mlp(enc_sizes, activation)
        self.opponent_encoder = _mlp(enc_sizes, activation)
        head_in = self.ego_dim + 2 * self.enc_dim
        self.actor = _mlp((head_in, *act_h, 2 * ACTION_DIM), activation)
        self.critic = _mlp((head_in, *crit_h, 1), activation)

    @property
    def num_entities(self) -> int:
        """K = max_teammates + max_opponents, the entity slots per agent row."""
        return self.max_teammates + self.max_opponents

    # ------------------------------------------------------------------------------------ validation
    def _check(self, ego: Tensor, entities: Tensor, entity_mask: Tensor, critic_ego: Tensor | None) -> None:
        if ego.dim() != 2 or ego.shape[1] != self.ego_dim:
            raise ValueError(f"ego must have shape (N, {self.ego_dim}), got {tuple(ego.shape)}")
        n, k = ego.shape[0], self.num_entities
        if tuple(entities.shape) != (n, k, self.entity_dim):
            raise ValueError(f"entities must have shape ({n}, {k}, {self.entity_dim}), got {tuple(entities.shape)}")
        if tuple(entity_mask.shape) != (n, k) or entity_mask.dtype != torch.bool:
            raise ValueError(
                f"entity_mask must be a bool tensor of shape ({n}, {k}), "
                f"got {entity_mask.dtype} {tuple(entity_mask.shape)}"
            )
        if critic_ego is not None and tuple(critic_ego.shape) != (n, self.ego_dim):
            raise ValueError(f"critic_ego must have shape ({n}, {self.ego_dim}), got {tuple(critic_ego.shape)}")

    # ------------------------------------------------------------------------------------ encoder
    def _pool(self, encoder: nn.Sequential, ent: Tensor, mask: Tensor, egos: Sequence[Tensor]) -> Tensor:
        """z for one group: (V, N, enc_dim), one row block per ego variant in ``egos``."""
        n, k = ent.shape[0], ent.shape[1]
        if k == 0:
            return egos[0].new_full((len(egos), n, self.enc_dim), self.empty_fill)
        first = encoder[0]
        assert isinstance(first, nn.Linear)
        w_e, w_o = first.weight[:, : self.entity_dim], first.weight[:, self.entity_dim :]
        ent = torch.where(mask.unsqueeze(-1), ent, torch.zeros((), dtype=ent.dtype, device=ent.device))
        ent_term = F.linear(ent, w_e)  # (N, k, H1)
        ego_terms = torch.stack([F.linear(o, w_o, first.bias) for o in egos])  # (V, N, H1)
        h = encoder[1:](ent_term.unsqueeze(0) + ego_terms.unsqueeze(2))  # (V, N, k, enc_dim)
        h = h.masked_fill(~mask[None, :, :, None], torch.finfo(h.dtype).min)
        z = h.amax(dim=2)  # (V, N, enc_dim)
        return torch.where(mask.any(dim=1)[None, :, None], z, torch.full_like(z, self.empty_fill))

    def _features(
        self, ego: Tensor, entities: Tensor, entity_mask: Tensor, critic_ego: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        egos = [ego] if critic_ego is None or critic_ego is ego else [ego, critic_ego]
        t = self.max_teammates
        z_tm = self._pool(self.teammate_encoder, entities[:, :t], entity_mask[:, :t], egos)
        z_op = self._pool(self.opponent_encoder, entities[:, t:], entity_mask[:, t:], egos)
        x_actor = torch.cat([ego, z_tm[0], z_op[0]], dim=-1)
        x_critic = x_actor if len(egos) == 1 else torch.cat([egos[1], z_tm[1], z_op[1]], dim=-1)
        return x_actor, x_critic

    def encode(self, ego: Tensor, entities: Tensor, entity_mask: Tensor) -> Tensor:
        """The actor input x = [o, z_tm, z_op], shape (N, ego_dim + 2·enc_dim)."""
        self._check(ego, entities, entity_mask, None)
        return self._features(ego, entities, entity_mask, None)[0]

    def _concentrations(self, x: Tensor) -> tuple[Tensor, Tensor]:
        params = F.softplus(self.actor(x)) + self.beta_offset  # (N, 2·5): α then β, the authors' order
        return params[:, :ACTION_DIM], params[:, ACTION_DIM:]

    # ------------------------------------------------------------------------------------ public API
    def forward(
        self, ego: Tensor, entities: Tensor, entity_mask: Tensor, critic_ego: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Beta concentrations and value for N agent rows.

        Args:
            ego: (N, ego_dim) policy observations.
            entities: (N, K, entity_dim), teammates first then opponents; masked slots may hold anything.
            entity_mask: (N, K) bool, True = active player.
            critic_ego: (N, ego_dim) noise-free ego obs for the critic; None = use ``ego``.

        Returns:
            ``(alpha, beta, value)`` with shapes (N, 5), (N, 5), (N,).

        Raises:
            ValueError: naming the argument whose shape or dtype is wrong.
        """
        self._check(ego, entities, entity_mask, critic_ego)
        x_actor, x_critic = self._features(ego, entities, entity_mask, critic_ego)
        alpha, beta = self._concentrations(x_actor)
        return alpha, beta, self.critic(x_critic).squeeze(-1)

    @torch.no_grad()
    def act(
        self,
        ego: Tensor,
        entities: Tensor,
        entity_mask: Tensor,
        critic_ego: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> ActOutput:
        """Sample training actions (no gradients): s ~ Beta(α, β) clamped to [1e−6, 1 − 1e−6], a = 2s − 1.

        Args:
            ego, entities, entity_mask, critic_ego: as in ``forward``.
            generator: a ``torch.Generator`` on the model's device; None = torch's default generator.

        Returns:
            ``ActOutput(actions, log_prob, value, alpha, beta)``; ``log_prob`` is that of s, computed from
            the returned actions exactly as ``evaluate`` does, so PPO ratios start at 1.

        Note:
            The authors never clip sampled actions (D3); we clamp s so log-probs stay finite.
        """
        alpha, beta, value = self.forward(ego, entities, entity_mask, critic_ego)
        if generator is not None and generator.device.type != alpha.device.type:
            raise ValueError(f"generator must be on {alpha.device}, got one on {generator.device}")
        conc = torch.stack([alpha, beta], dim=-1)  # (N, 5, 2): Beta = 2-component Dirichlet
        s = torch._sample_dirichlet(conc, generator=generator)[..., 0]
        actions = 2.0 * s.clamp(SAMPLE_EPS, 1.0 - SAMPLE_EPS) - 1.0
        log_prob = beta_log_prob(alpha, beta, actions_to_samples(actions)).sum(-1)
        return ActOutput(actions, log_prob, value, alpha, beta)

    @torch.no_grad()
    def act_deterministic(self, ego: Tensor, entities: Tensor, entity_mask: Tensor) -> Tensor:
        """Inference actions: the Beta mean rescaled, a = 2α/(α + β) − 1, shape (N, 5); no critic pass."""
        self._check(ego, entities, entity_mask, None)
        alpha, beta = self._concentrations(self._features(ego, entities, entity_mask, None)[0])
        return 2.0 * alpha / (alpha + beta) - 1.0

    def evaluate(
        self,
        ego: Tensor,
        entities: Tensor,
        entity_mask: Tensor,
        actions: Tensor,
        critic_ego: Tensor | None = None,
    ) -> EvaluateOutput:
        """Log-prob, entropy and value of given actions a ∈ [−1, 1] (with gradients, for the PPO loss).

        Returns:
            ``EvaluateOutput`` with log-prob of s = (a + 1)/2 (clamped), entropy on [0, 1] (both summed
            over the 5 dims, shape (N,)), value (N,), α and β (N, 5).

        Raises:
            ValueError: naming the argument whose shape is wrong (``actions`` must be (N, 5)).
        """
        if tuple(actions.shape) != (ego.shape[0], ACTION_DIM):
            raise ValueError(f"actions must have shape ({ego.shape[0]}, {ACTION_DIM}), got {tuple(actions.shape)}")
        alpha, beta, value = self.forward(ego, entities, entity_mask, critic_ego)
        log_prob = beta_log_prob(alpha, beta, actions_to_samples(actions)).sum(-1)
        return EvaluateOutput(log_prob, beta_entropy(alpha, beta).sum(-1), value, alpha, beta)
