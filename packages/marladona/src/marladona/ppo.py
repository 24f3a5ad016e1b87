"""PPO for the GEE actor-critic: GAE, a masked rollout buffer and the clipped update with y-mirror augmentation.

Paper symbols -> arguments: γ ``gamma``, λ ``lam``, ε ``clip_param``, c_V ``value_loss_coef``, c_H
``entropy_coef``; the defaults are the authors' runner config (spec 1.10).

References:
    Schulman et al., "Proximal Policy Optimization Algorithms", arXiv:1707.06347; "High-Dimensional
    Continuous Control Using Generalized Advantage Estimation", arXiv:1506.02438; Li et al., MARLadona,
    arXiv:2409.20326, code ``rsl_marl/algorithms/ppo.py``, ``rsl_marl/storage/rollout_storage.py``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from marladona.models import ActOutput, GEEActorCritic, beta_kl, mirror_actions, mirror_ego, mirror_obs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters; defaults from ``soccer_marl_ppo_runner_cfg.py`` (spec 1.10)."""

    num_steps_per_env: int = 48
    """Rollout length T per update."""
    num_learning_epochs: int = 5
    """Passes over the rollout per update."""
    num_mini_batches: int = 4
    """Mini-batches per epoch (each doubled by the mirror when ``symmetry``)."""
    clip_param: float = 0.2
    """ε of the clipped surrogate and of the clipped value loss."""
    value_loss_coef: float = 1.0
    """c_V, weight of the value loss."""
    use_clipped_value_loss: bool = True
    """Clip V around the rollout value, as rsl_rl."""
    entropy_coef: float = 0.003
    """c_H, weight of the entropy bonus."""
    learning_rate: float = 1e-3
    """Initial Adam learning rate."""
    schedule: str = "adaptive"
    """"adaptive" (KL-driven learning rate) or "fixed"."""
    desired_kl: float = 0.01
    """KL target: lr ÷ lr_factor above 2·desired_kl, × lr_factor below desired_kl/2."""
    lr_factor: float = 1.5
    """Multiplicative step of the adaptive learning rate."""
    min_learning_rate: float = 1e-5
    """Lower bound of the adaptive learning rate."""
    max_learning_rate: float = 1e-2
    """Upper bound of the adaptive learning rate."""
    gamma: float = 0.99
    """Discount γ."""
    lam: float = 0.95
    """GAE λ."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip."""
    normalize_advantages: bool = True
    """Normalise advantages over the active samples of each rollout."""
    symmetry: bool = True
    """Double every mini-batch with its y-mirror (spec 1.10)."""

    def __post_init__(self) -> None:
        for name in ("num_steps_per_env", "num_learning_epochs", "num_mini_batches"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        for name in ("clip_param", "learning_rate", "desired_kl", "min_learning_rate", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("value_loss_coef", "entropy_coef"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("gamma", "lam"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.schedule not in ("adaptive", "fixed"):
            raise ValueError(f"schedule must be 'adaptive' or 'fixed', got {self.schedule!r}")
        if not self.lr_factor > 1.0:
            raise ValueError(f"lr_factor must be > 1, got {self.lr_factor}")
        if not self.max_learning_rate >= self.min_learning_rate:
            raise ValueError(f"max_learning_rate must be >= min_learning_rate, got {self.max_learning_rate}")


def _check_2d(name: str, x: Tensor, shape: tuple[int, ...]) -> None:
    if tuple(x.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")


def compute_gae(
    rewards: Tensor,
    values: Tensor,
    dones: Tensor,
    time_outs: Tensor,
    last_values: Tensor,
    gamma: float,
    lam: float,
    active: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation with rsl_rl's time-out bootstrap (not normalised).

    With c_t = 1 − done_t (also 0 when row t+1 is inactive) and V_T = ``last_values``:

    .. math::
        r'_t = r_t + γ V(s_t)\\,\\mathrm{timeout}_t, \\quad
        δ_t = r'_t + γ c_t V_{t+1} − V_t, \\quad A_t = δ_t + γλ c_t A_{t+1}, \\quad R_t = A_t + V_t

    Args:
        rewards, values: (T, N) float; ``values`` = V(s_t) from the rollout.
        dones: (T, N) bool or 0/1, terminated OR truncated (the step ended an episode).
        time_outs: (T, N) bool or 0/1, truncated; must imply ``dones``.
        last_values: (N,) V(s_T) of the observation after the last step.
        gamma, lam: γ, λ in [0, 1].
        active: optional (T, N) bool; inactive entries get A = R = 0, never feed a neighbour, and may
            hold garbage (even NaN). A row may only change activity across an episode boundary.

    Returns:
        ``(advantages, returns)``, each (T, N).

    Raises:
        ValueError: for a shape mismatch (naming the argument), γ or λ outside [0, 1], or a time-out
            that is not a done.

    Example:
        >>> r, v = torch.tensor([[1.0], [1.0]]), torch.zeros(2, 1)
        >>> done, tout = torch.tensor([[False], [True]]), torch.zeros(2, 1, dtype=torch.bool)
        >>> compute_gae(r, v, done, tout, torch.zeros(1), gamma=0.5, lam=1.0)[0].flatten().tolist()
        [1.5, 1.0]

    Note:
        The time-out bootstrap is rsl_rl's: it adds γ·V(s_t), the value of the state the truncated step
        *started* from (the final observation is gone after the auto-reset), as a stand-in for V(s_{t+1}).
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must have shape (T, N), got {tuple(rewards.shape)}")
    shape = tuple(rewards.shape)
    for name, x in (("values", values), ("dones", dones), ("time_outs", time_outs)):
        _check_2d(name, x, shape)
    _check_2d("last_values", last_values, (shape[1],))
    if active is not None:
        _check_2d("active", active, shape)
    for name, value in (("gamma", gamma), ("lam", lam)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    done, timeout = dones.bool(), time_outs.bool()
    if bool((timeout & ~done).any()):
        raise ValueError("time_outs must imply dones: a truncated step also ends its episode")
    act = torch.ones_like(done) if active is None else active.bool()
    zero = torch.zeros((), dtype=values.dtype, device=values.device)
    r = torch.where(timeout, rewards + gamma * values, rewards)
    advantages = torch.zeros_like(values)
    next_adv, next_val = torch.zeros_like(last_values), last_values
    next_active = torch.ones_like(act[0])
    for t in reversed(range(shape[0])):
        cont = ~done[t] & next_active
        delta = r[t] + gamma * torch.where(cont, next_val, zero) - values[t]
        adv = torch.where(act[t], delta + gamma * lam * torch.where(cont, next_adv, zero), zero)
        advantages[t] = adv
        next_adv, next_val, next_active = adv, values[t], act[t]
    returns = torch.where(act, advantages + values, zero)
    return advantages, returns


class MiniBatch(NamedTuple):
    """M active samples for one PPO step (the unmirrored half)."""

    ego: Tensor
    entities: Tensor
    entity_mask: Tensor
    critic_ego: Tensor
    actions: Tensor
    old_log_prob: Tensor
    old_alpha: Tensor
    old_beta: Tensor
    old_values: Tensor
    advantages: Tensor
    returns: Tensor


class RolloutStorage:
    """Fixed-size (T, N) rollout buffer with an ``active`` mask over learner rows (spec 7).

    Variable team sizes change how many of the N rows hold a learner; inactive entries contribute to no
    loss, statistic or advantage normalisation and may hold garbage.

    Args:
        num_steps: T, transitions per row per rollout.
        num_rows: N, learner agent rows (an upper bound on the active ones).
        ego_dim, num_entities, entity_dim: observation sizes (18, K, 8).
        action_dim: 5.
        device: where the buffers live.

    Raises:
        ValueError: for a non-positive size.
    """

    _BATCH_FIELDS: tuple[str, ...] = ("ego", "entities", "entity_mask", "critic_ego", "actions", "log_prob")
    _BATCH_FIELDS += ("alpha", "beta", "values", "advantages", "returns")  # the order of MiniBatch

    def __init__(
        self,
        num_steps: int,
        num_rows: int,
        ego_dim: int = 18,
        num_entities: int = 5,
        entity_dim: int = 8,
        action_dim: int = 5,
        device: str | torch.device = "cpu",
    ) -> None:
        if num_entities < 0:
            raise ValueError(f"num_entities must be >= 0, got {num_entities}")
        sizes = {"num_steps": num_steps, "num_rows": num_rows, "ego_dim": ego_dim, "entity_dim": entity_dim}
        for name, value in {**sizes, "action_dim": action_dim}.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        t, n = num_steps, num_rows
        self.num_steps, self.num_rows, self.device = t, n, torch.device(device)

        def z(*shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
            return torch.zeros(t, n, *shape, dtype=dtype, device=self.device)

        self.ego, self.critic_ego = z(ego_dim), z(ego_dim)
        self.entities, self.entity_mask = z(num_entities, entity_dim), z(num_entities, dtype=torch.bool)
        self.actions, self.alpha, self.beta = z(action_dim), z(action_dim), z(action_dim)
        self.log_prob, self.values, self.rewards = z(), z(), z()
        self.dones, self.time_outs, self.active = z(dtype=torch.bool), z(dtype=torch.bool), z(dtype=torch.bool)
        self.advantages, self.returns = z(), z()
        self.step = 0
        self.has_critic_ego = False
        """Whether any step of this rollout was given a separate ``critic_ego`` (else the critic reads ego)."""

    @torch.no_grad()
    def add(
        self,
        *,
        ego: Tensor,
        entities: Tensor,
        entity_mask: Tensor,
        policy: ActOutput,
        reward: Tensor,
        done: Tensor,
        time_out: Tensor,
        active: Tensor,
        critic_ego: Tensor | None = None,
    ) -> None:
        """Record one step for all N rows: the obs the action was chosen on, ``model.act``'s output, then
        the step's reward (N,), done (N,) (terminated or truncated), time_out (N,) and active (N,) mask.

        Raises:
            ValueError: when the buffer is full or an argument has the wrong shape (naming it).
        """
        if self.step >= self.num_steps:
            raise ValueError(f"storage is full ({self.num_steps} steps); call clear() after the update")
        pairs = (
            ("ego", ego, self.ego),
            ("critic_ego", ego if critic_ego is None else critic_ego, self.critic_ego),
            ("entities", entities, self.entities),
            ("entity_mask", entity_mask, self.entity_mask),
            ("policy.actions", policy.actions, self.actions),
            ("policy.log_prob", policy.log_prob, self.log_prob),
            ("policy.value", policy.value, self.values),
            ("policy.alpha", policy.alpha, self.alpha),
            ("policy.beta", policy.beta, self.beta),
            ("reward", reward, self.rewards),
            ("done", done, self.dones),
            ("time_out", time_out, self.time_outs),
            ("active", active, self.active),
        )
        for name, x, buf in pairs:
            _check_2d(name, x, tuple(buf.shape[1:]))
        for _, x, buf in pairs:
            buf[self.step].copy_(x)  # copy_ casts 0/1 floats into the bool buffers
        self.has_critic_ego |= critic_ego is not None
        self.step += 1

    def clear(self) -> None:
        """Start a new rollout (buffers are overwritten, not zeroed)."""
        self.step, self.has_critic_ego = 0, False

    @property
    def num_active(self) -> int:
        """Active (t, row) samples in the rollout."""
        return int(self.active.sum().item())

    @torch.no_grad()
    def compute_returns(self, last_values: Tensor, gamma: float, lam: float, normalize: bool = True) -> None:
        """Fill ``advantages`` and ``returns`` by ``compute_gae``; normalise advantages over active samples.

        .. math::
            \\hat A = (A − \\mathrm{mean}(A)) / (\\mathrm{std}(A) + 10^{-8})  \\quad \\text{over active entries}

        Raises:
            ValueError: if the storage is not full or ``last_values`` is not (N,).
        """
        if self.step != self.num_steps:
            raise ValueError(f"storage holds {self.step} of {self.num_steps} steps; fill it before compute_returns")
        adv, ret = compute_gae(
            self.rewards, self.values, self.dones, self.time_outs, last_values, gamma, lam, self.active
        )
        if normalize:
            sel = adv[self.active]
            if sel.numel() > 1:
                adv = torch.where(self.active, (adv - sel.mean()) / (sel.std() + 1e-8), torch.zeros_like(adv))
        self.advantages.copy_(adv)
        self.returns.copy_(ret)

    def mini_batches(
        self, num_mini_batches: int, num_epochs: int, generator: torch.Generator | None = None
    ) -> Iterator[MiniBatch]:
        """Yield ``num_epochs × num_mini_batches`` mini-batches of active samples.

        Each epoch draws a fresh permutation of the M active samples (``torch.randperm`` with ``generator``,
        None = torch's default) and splits it into near-equal parts, so every active sample is used.

        Note:
            The authors draw one permutation for all epochs and drop the remainder of M / mini-batches.

        Raises:
            ValueError: if fewer active samples than mini-batches are stored.
        """
        flat_idx = self.active.reshape(-1).nonzero().squeeze(1)  # active (t, row) in t-major order
        m = flat_idx.numel()
        if m < num_mini_batches:
            raise ValueError(f"storage holds {m} active samples, fewer than num_mini_batches={num_mini_batches}")
        tn = self.num_steps * self.num_rows
        flat = [getattr(self, f).reshape(tn, *getattr(self, f).shape[2:]) for f in self._BATCH_FIELDS]  # (T·N, ...)
        perm_device = generator.device if generator is not None else self.device
        for _ in range(num_epochs):
            perm = torch.randperm(m, generator=generator, device=perm_device).to(self.device)
            for chunk in perm.tensor_split(num_mini_batches):
                rows = flat_idx[chunk]
                yield MiniBatch(*(x[rows] for x in flat))


class PPO:
    """Clipped PPO on a ``GEEActorCritic`` with an adaptive learning rate on the closed-form Beta KL.

    Per mini-batch (doubled by the y-mirror when ``cfg.symmetry``), with ρ = exp(log π(a|o) − log π_old):

    .. math::
        L = \\mathbb{E}[\\max(−Â ρ, −Â\\,\\mathrm{clip}(ρ, 1 ± ε))]
            + c_V \\mathbb{E}[\\max((V − R)^2, (V_{old} + \\mathrm{clip}(V − V_{old}, ±ε) − R)^2)]
            − c_H \\mathbb{E}[H]

    Before each step the mean KL(π_old || π) over the unmirrored half sets the learning rate: ÷1.5 above
    2·desired_kl, ×1.5 below desired_kl/2 (and > 0), within [1e−5, 1e−2]; Adam; grad-norm clip 1.0.

    Args:
        model: the actor-critic (moved to ``device``).
        cfg: hyperparameters; None = ``PPOConfig()``.
        device: where the model and buffers live.

    Raises:
        ValueError: if ``cfg.symmetry`` is set and the model's obs sizes are not the 18/8 the mirror knows.

    Note:
        Symmetry follows the authors: mirrored samples reuse the original old log-probs, advantages,
        returns and old values, which is exact only for a policy and critic that are already y-symmetric;
        the augmentation pulls the network towards that symmetry. The KL uses the unmirrored half.
    """

    def __init__(self, model: GEEActorCritic, cfg: PPOConfig | None = None, device: str | torch.device = "cpu") -> None:
        self.cfg = PPOConfig() if cfg is None else cfg
        if self.cfg.symmetry and (model.ego_dim != 18 or model.entity_dim != 8):
            raise ValueError(
                f"symmetry needs model ego_dim=18 and entity_dim=8, got {model.ego_dim} and {model.entity_dim}"
            )
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.learning_rate = self.cfg.learning_rate
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.learning_rate)

    def make_storage(self, num_rows: int) -> RolloutStorage:
        """A ``RolloutStorage`` of ``cfg.num_steps_per_env`` steps × ``num_rows`` rows sized for the model."""
        m = self.model
        return RolloutStorage(
            self.cfg.num_steps_per_env, num_rows, m.ego_dim, m.num_entities, m.entity_dim, device=self.device
        )

    @torch.no_grad()
    def compute_returns(
        self,
        storage: RolloutStorage,
        ego: Tensor,
        entities: Tensor,
        entity_mask: Tensor,
        critic_ego: Tensor | None = None,
    ) -> None:
        """Bootstrap with V of the observation after the last step and fill the storage's advantages."""
        last_values = self.model(ego, entities, entity_mask, critic_ego)[2]
        storage.compute_returns(last_values, self.cfg.gamma, self.cfg.lam, self.cfg.normalize_advantages)

    def _set_lr(self, kl: float) -> None:
        c = self.cfg
        if kl > 2.0 * c.desired_kl:
            self.learning_rate = max(c.min_learning_rate, self.learning_rate / c.lr_factor)
        elif 0.0 < kl < 0.5 * c.desired_kl:
            self.learning_rate = min(c.max_learning_rate, self.learning_rate * c.lr_factor)
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate

    def update(self, storage: RolloutStorage, generator: torch.Generator | None = None) -> dict[str, float]:
        """Run ``num_learning_epochs × num_mini_batches`` gradient steps on a rollout with computed returns.

        Args:
            storage: a full storage after ``compute_returns``; it is not modified (call ``clear()`` next).
            generator: draws the mini-batch permutations; None = torch's default generator.

        Returns:
            Means over the steps: ``value_loss``, ``surrogate_loss``, ``entropy`` (Σ over dims, per
            sample), ``kl``, ``clip_fraction``; the final ``learning_rate``; ``num_samples`` (active M).

        Raises:
            ValueError: from ``storage.mini_batches`` if it holds fewer active samples than mini-batches.
        """
        c, model = self.cfg, self.model
        model.train()
        totals = torch.zeros(5, device=self.device)  # value, surrogate, entropy, kl, clip fraction
        steps = 0
        for mb in storage.mini_batches(c.num_mini_batches, c.num_learning_epochs, generator):
            n = mb.ego.shape[0]
            ego, ent, mask, actions = mb.ego, mb.entities, mb.entity_mask, mb.actions
            critic_ego = mb.critic_ego if storage.has_critic_ego else None  # None: one encoder pass
            old_lp, adv, ret, old_v = mb.old_log_prob, mb.advantages, mb.returns, mb.old_values
            if c.symmetry:  # (2M, ...): originals, then their y-mirrors with copied targets
                m_ego, m_ent = mirror_obs(ego, ent)
                ego, ent = torch.cat([ego, m_ego]), torch.cat([ent, m_ent])
                if critic_ego is not None:
                    critic_ego = torch.cat([critic_ego, mirror_ego(critic_ego)])
                mask, actions = torch.cat([mask, mask]), torch.cat([actions, mirror_actions(actions)])
                old_lp, adv, ret, old_v = (x.repeat(2) for x in (old_lp, adv, ret, old_v))
            out = model.evaluate(ego, ent, mask, actions, critic_ego)
            with torch.no_grad():
                kl = beta_kl(mb.old_alpha, mb.old_beta, out.alpha[:n], out.beta[:n]).sum(-1).mean()
            if c.schedule == "adaptive":
                self._set_lr(float(kl.item()))
            ratio = torch.exp(out.log_prob - old_lp)
            surrogate = torch.max(-adv * ratio, -adv * ratio.clamp(1.0 - c.clip_param, 1.0 + c.clip_param)).mean()
            if c.use_clipped_value_loss:
                v_clip = old_v + (out.value - old_v).clamp(-c.clip_param, c.clip_param)
                value_loss = torch.max((out.value - ret).pow(2), (v_clip - ret).pow(2)).mean()
            else:
                value_loss = (out.value - ret).pow(2).mean()
            entropy = out.entropy.mean()
            loss = surrogate + c.value_loss_coef * value_loss - c.entropy_coef * entropy
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            nn.utils.clip_grad_norm_(model.parameters(), c.max_grad_norm)
            self.optimizer.step()
            with torch.no_grad():
                clip_frac = ((ratio - 1.0).abs() > c.clip_param).float().mean()
                totals += torch.stack([value_loss, surrogate, entropy, kl, clip_frac]).detach()
            steps += 1
        keys = ("value_loss", "surrogate_loss", "entropy", "kl", "clip_fraction")
        stats = dict(zip(keys, (totals / steps).tolist(), strict=True))
        stats["learning_rate"] = self.learning_rate
        stats["num_samples"] = float(storage.num_active)
        logger.debug("ppo update: %s", stats)
        return stats

    def state_dict(self) -> dict[str, Any]:
        """Model and optimizer state, the current learning rate and both configs (for a rebuild)."""
        return {
            "model": self.model.state_dict(),
            "model_config": dict(self.model.config),
            "optimizer": self.optimizer.state_dict(),
            "learning_rate": self.learning_rate,
            "ppo_config": dataclasses.asdict(self.cfg),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` saved; training then continues bit-identically.

        Raises:
            ValueError: if a key is missing.
        """
        for key in ("model", "optimizer", "learning_rate"):
            if key not in state:
                raise ValueError(f"state is missing {key!r}; expected the dict from PPO.state_dict()")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.learning_rate = float(state["learning_rate"])
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate
