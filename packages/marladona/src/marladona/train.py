"""The training loop: PPO with the GEE actor-critic on the batched env, an opponent curriculum and
self-play, CSV/JSONL logs of every reward term, atomic checkpoints and ``--resume``.

One iteration (spec 1.12): ``num_steps_per_env`` (48) steps of every game with Beta-sampled blue
actions and the current opponent's red actions, GAE (gamma 0.99, lambda 0.95, the time-out bootstrap),
5 epochs x 4 mini-batches of PPO (doubled by the y-mirror), then the promotion rule of the opponent
curriculum. The learner plays blue in every game; all blue slots are rows of a fixed-size buffer with
an ``active`` mask, so games of different team sizes share one batch.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from marladona.checkpoint import load_checkpoint, save_atomic
from marladona.config import SoccerConfig, preset
from marladona.env import SoccerEnv
from marladona.models import GEEActorCritic
from marladona.observations import Obs
from marladona.players import team_rows
from marladona.ppo import PPO, PPOConfig
from marladona.rewards import TERMS
from marladona.selfplay import CurriculumConfig, OpponentCurriculum

logger = logging.getLogger(__name__)

EVAL_KEYS = ("eval/win_rate", "eval/draw_rate", "eval/loss_rate", "eval/goal_diff")
"""Log columns of the periodic evaluation (``TrainConfig.eval_every``)."""

TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "cpu-small": {
        "env": {"preset": "cpu-1v1", "num_envs": 512},
        "ppo": {"num_learning_epochs": 3, "num_mini_batches": 2},
        "curriculum": {"stages": ("idle", "heuristic:0.25", "heuristic:0.5"), "min_iters": 20},
    },
    "cpu-idle": {
        "env": {"preset": "cpu-1v1", "num_envs": 512},
        "ppo": {"num_learning_epochs": 3, "num_mini_batches": 2},
        "curriculum": {"stages": ("idle",)},
    },
    "cpu-3v3": {
        "env": {"preset": "cpu-3v3", "num_envs": 256},
        "ppo": {"num_learning_epochs": 3, "num_mini_batches": 2},
        "curriculum": {"stages": ("idle",)},
    },
    "paper": {
        "env": {"preset": "paper-3v3"},
        "ppo": {},
        "curriculum": {"stages": ("selfplay",)},
        "eval_every": 50,
    },
}
"""Training presets. ``paper``: the authors' settings (1024 games, team sizes 1-3 drawn per game, the
field curriculum, 5 x 4 PPO with symmetry, self-play). ``cpu-small``: 1v1 on the smallest field
against a staged opponent (idle, then the heuristic at strength 0.25 and 0.5), 3 x 2 PPO epochs to fit
a 2-core CPU, and a promotion after 20 iterations at least (the code's 100 suits its 20k-iteration runs). ``cpu-idle``: 1v1
against an idle team. ``cpu-3v3``: 3v3 against an idle team. ``paper`` also evaluates against the heuristic
every 50 iterations. The CPU presets train on field level 0 first; the field curriculum moves each game's
level with its goals."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved in the checkpoint."""

    env: SoccerConfig = field(default_factory=SoccerConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    model: dict[str, Any] = field(default_factory=dict)
    """Extra GEEActorCritic arguments (the slot counts come from the env)."""
    seed: int = 0
    """Seed of the model initialisation, the action sampling and the mini-batches."""
    checkpoint_every: int = 10
    """Iterations between checkpoints (one is also written at the end; an interrupted run resumes from
    the last one)."""
    eval_every: int = 0
    """Iterations between evaluations of the deterministic policy (0: none). The authors keep 15 % of the
    games as evaluation games against their bots; here separate games are played instead."""
    eval_opponent: str = "heuristic"
    """Opponent of those evaluations (a player name, see :func:`marladona.players.make_player`)."""
    eval_episodes: int = 256
    """Games per evaluation (each game's first episode; the learner's max team size a side, level 0)."""
    keep_checkpoints: bool = False
    """Also keep ``model_<iteration>.pt`` snapshots (earlier checkpoints to evaluate against)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def make_train_config(name: str, **overrides: Any) -> TrainConfig:
    """The TrainConfig of preset ``name`` with top-level ``overrides`` (``num_envs``, ``device``,
    ``seed`` go to the env too)."""
    if name not in TRAIN_PRESETS:
        raise ValueError(f"preset must be one of {sorted(TRAIN_PRESETS)}, got {name!r}")
    p = TRAIN_PRESETS[name]
    env_kw = dict(p["env"])
    env_name = env_kw.pop("preset")
    for key in ("num_envs", "device"):
        if key in overrides:
            env_kw[key] = overrides.pop(key)
    if "seed" in overrides:
        env_kw["seed"] = overrides["seed"]
    extra = {k: v for k, v in p.items() if k not in ("env", "ppo", "curriculum")}
    return TrainConfig(
        env=preset(env_name, **env_kw),
        ppo=PPOConfig(**p["ppo"]),
        curriculum=CurriculumConfig(**p["curriculum"]),
        **{**extra, **overrides},
    )


def config_from_dict(d: dict[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig saved with ``to_dict`` (tuples restored)."""
    from marladona.config import AgentParams, BallParams, RewardWeights

    env = dict(d["env"])
    env["agent"] = AgentParams(**env["agent"])
    ball: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in env["ball"].items()}
    env["ball"] = BallParams(**ball)
    env["rewards"] = RewardWeights(**env["rewards"])
    for k in ("team_size_range", "red_team_size_range", "init_level_range"):
        if env.get(k) is not None:
            env[k] = tuple(env[k])
    env["field_levels"] = tuple(tuple(x) for x in env["field_levels"])
    cur = dict(d["curriculum"])
    cur["stages"] = tuple(cur["stages"])
    rest = {k: v for k, v in d.items() if k not in ("env", "ppo", "curriculum")}
    return TrainConfig(env=SoccerConfig(**env), ppo=PPOConfig(**d["ppo"]), curriculum=CurriculumConfig(**cur), **rest)


class Trainer:
    """PPO + GEE self-play trainer (the authors' ``OnPolicyRunner`` as a small, resumable loop).

    Args:
        cfg: the run's configuration (saved in the checkpoint).
        log_dir: folder of ``log.csv``, ``log.jsonl`` and the checkpoints.
        progress: tqdm bars (None: when stderr is a terminal).
        compile: simulate with ``SoccerEnv(compile=True)`` (torch.compile'd physics: the same dynamics
            up to float rounding, so a run diverges from an eager one and a resume is bit-identical
            only with the same choice). A run-time choice, not saved in the checkpoint. On an H100 the
            eager simulator was launch-bound at training sizes (3v3, 4096 games: 1.4e6 agent-steps/s
            eager, 5.4e6 compiled); the first steps compile for tens of seconds, counted in the
            training time.

    Example:
        >>> cfg = make_train_config("cpu-idle", num_envs=8, checkpoint_every=1000)
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     stats = Trainer(cfg, d, progress=False).learn(iterations=1)
        >>> stats["iteration"]
        1
    """

    def __init__(
        self, cfg: TrainConfig, log_dir: str | Path, progress: bool | None = None, compile: bool = False
    ) -> None:
        self.cfg = cfg
        self.log_dir = Path(log_dir)
        self.progress = progress
        self.device = torch.device(cfg.env.device)
        self.env = SoccerEnv(cfg.env, final_obs=False, compile=compile)
        t = cfg.env.max_team_size
        with torch.random.fork_rng(devices=[]):  # seed the initialisation without touching the caller's RNG
            torch.manual_seed(cfg.seed)
            self.model = GEEActorCritic(max_teammates=t - 1, max_opponents=t, **cfg.model).to(self.device)
        self.ppo = PPO(self.model, cfg.ppo, self.device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(cfg.seed)
        self.opponent = OpponentCurriculum(cfg.curriculum, self.model, self.device, self.generator)
        self.storage = self.ppo.make_storage(cfg.env.num_envs * t)
        self.iteration = 0
        self.env_steps = 0
        self.elapsed = 0.0
        self.history: list[dict[str, Any]] = []
        self.obs: Obs = self.env.reset()
        self.env.stagger_episode_clocks(self.generator)  # time-outs spread over the rollouts
        self.opponent.reset(torch.ones(cfg.env.num_envs, dtype=torch.bool, device=self.device))

    @property
    def checkpoint_path(self) -> Path:
        return self.log_dir / "checkpoint.pt"

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": "marladona-train-1",
            "config": self.cfg.to_dict(),
            "ppo": self.ppo.state_dict(),
            "opponent": self.opponent.state_dict(),
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "elapsed": self.elapsed,
            "history": self.history,
            "env_state": {k: v.clone() for k, v in self.env.state.tensors().items()},
            "env_episode_return": self.env.episode_return.clone(),
            "obs": [x.clone() for x in self.obs],
            "env_generator": self.env.generator.get_state(),
            "generator": self.generator.get_state(),
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Write the checkpoint atomically (``log_dir/checkpoint.pt`` by default)."""
        path = Path(path) if path else self.checkpoint_path
        save_atomic(self.state_dict(), path)
        return path

    def load(self, path: str | Path) -> None:
        """Restore a checkpoint of the same configuration; training continues where it stopped.

        Raises:
            ValueError: when the checkpoint's configuration differs from this trainer's (both listed).
        """
        ckpt = load_checkpoint(path, "cpu")  # generator states must stay CPU byte tensors; the rest is copied over
        saved, mine = ckpt.get("config", {}), self.cfg.to_dict()
        diff = {k: (saved.get(k), mine[k]) for k in mine if k != "checkpoint_every" and saved.get(k) != mine[k]}
        if diff:
            raise ValueError(f"checkpoint {str(path)!r} was written with another configuration: {diff} (saved, given)")
        self.ppo.load_state_dict(ckpt["ppo"])
        self.opponent.load_state_dict(ckpt["opponent"])
        self.iteration, self.env_steps = int(ckpt["iteration"]), int(ckpt["env_steps"])
        self.elapsed = float(ckpt["elapsed"])
        self.history = list(ckpt["history"])
        for k, v in ckpt["env_state"].items():
            getattr(self.env.state, k).copy_(v)
        self.env.episode_return.copy_(ckpt["env_episode_return"])
        self.env.generator.set_state(ckpt["env_generator"])
        self.generator.set_state(ckpt["generator"])
        self.obs = Obs(*(x.to(self.device) for x in ckpt["obs"]))
        self.env._obs = self.obs

    # ------------------------------------------------------------------ loop
    @torch.no_grad()
    def _rollout(self) -> dict[str, Any]:
        env, cfg = self.env, self.cfg.env
        t = cfg.max_team_size
        e = cfg.num_envs
        self.storage.clear()
        self.model.eval()
        term_sums = {k: torch.zeros((), device=self.device) for k in TERMS}
        active_steps = torch.zeros((), device=self.device)
        outcomes: list[torch.Tensor] = []
        lengths: list[torch.Tensor] = []
        obs = self.obs
        for _ in range(self.cfg.ppo.num_steps_per_env):
            ego, critic_ego, ent, mask, active = team_rows(obs, 0)
            out = self.model.act(ego, ent, mask, critic_ego, generator=self.generator)
            red = self.opponent.act(env.state, cfg, 1, obs)
            actions = torch.cat((out.actions.reshape(e, t, 5), red), dim=1)
            obs, reward, term, trunc, info = env.step(actions)
            done = term | trunc
            self.storage.add(
                ego=ego,
                entities=ent,
                entity_mask=mask,
                critic_ego=critic_ego,
                policy=out,
                reward=reward[:, :t].reshape(e * t),
                done=done[:, None].expand(e, t).reshape(e * t),
                time_out=trunc[:, None].expand(e, t).reshape(e * t),
                active=active,
            )
            for k in TERMS:
                term_sums[k] += (info["terms"][k][:, :t] * active.reshape(e, t)).sum()
            active_steps += active.sum()
            outcomes.append(info["goal"][done])
            lengths.append(info["episode_length"][done])
            self.opponent.reset(done)
        self.obs = obs
        ego, critic_ego, ent, mask, _ = team_rows(obs, 0)
        self.ppo.compute_returns(self.storage, ego, ent, mask, critic_ego)
        goals = torch.cat(outcomes)
        self.opponent.record(goals)
        n = int(goals.numel())
        denom = active_steps.clamp_min(1)
        return {
            "episodes": n,
            "win_rate": float((goals == 1).float().mean()) if n else float("nan"),
            "loss_rate": float((goals == -1).float().mean()) if n else float("nan"),
            "episode_length": float(torch.cat(lengths).float().mean()) if n else float("nan"),
            **{f"reward/{k}": float(term_sums[k] / denom) for k in TERMS},
        }

    def learn(self, iterations: int | None = None, minutes: float | None = None) -> dict[str, Any]:
        """Train until ``iterations`` in total (counting resumed ones) or ``minutes`` of training time in
        total have passed (at least one of them); checkpoint every ``checkpoint_every`` iterations and at
        the end. Returns the last log row."""
        if iterations is None and minutes is None:
            raise ValueError("give iterations or minutes (or both)")
        if iterations is not None and iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {iterations}")
        if minutes is not None and minutes <= 0:
            raise ValueError(f"minutes must be > 0, got {minutes}")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        budget = minutes * 60 if minutes is not None else float("inf")
        target = iterations if iterations is not None else None
        total = target - self.iteration if target is not None else None
        bar = tqdm(total=total, desc="train", disable=self.progress is False or None, unit="it")
        row: dict[str, Any] = self.history[-1] if self.history else {}
        try:
            while (target is None or self.iteration < target) and self.elapsed < budget:
                t0 = time.perf_counter()
                stats = self._rollout()
                t1 = time.perf_counter()
                self.model.train()
                losses = self.ppo.update(self.storage, self.generator)
                t2 = time.perf_counter()
                self.iteration += 1
                self.env_steps += self.cfg.env.num_envs * self.cfg.ppo.num_steps_per_env
                self.elapsed += t2 - t0
                promoted = self.opponent.maybe_promote(self.iteration)
                row = {
                    "iteration": self.iteration,
                    "env_steps": self.env_steps,
                    "learner_samples": int(losses["num_samples"]),
                    "elapsed_s": round(self.elapsed, 3),
                    "rollout_s": round(t1 - t0, 3),
                    "learn_s": round(t2 - t1, 3),
                    "opponent": self.opponent.name,
                    "score_diff": self.opponent.score_diff,
                    "promoted": promoted,
                    **stats,
                    **{k: v for k, v in losses.items() if k != "num_samples"},
                }
                if self.cfg.eval_every:  # the columns are always there (NaN between evaluations)
                    due = self.iteration % self.cfg.eval_every == 0
                    row.update(self._evaluate() if due else dict.fromkeys(EVAL_KEYS, float("nan")))
                self.history.append(row)
                self._log(row)
                bar.update(1)
                bar.set_postfix(win=f"{stats['win_rate']:.2f}", opp=self.opponent.name, refresh=False)
                if self.iteration % self.cfg.checkpoint_every == 0:
                    self._checkpoint()
        finally:
            bar.close()
        # only a finished loop is saved here: after an interruption or an error mid-iteration the
        # state is half-updated, and the last periodic checkpoint stands
        self._checkpoint()
        return row

    def _evaluate(self) -> dict[str, Any]:
        from marladona.evaluate import play_episodes
        from marladona.players import PolicyPlayer

        t = self.cfg.env.max_team_size
        r = play_episodes(PolicyPlayer(self.model), self.cfg.eval_opponent, self.cfg.env, self.cfg.eval_episodes,
                          t, t, level=0, seed=self.iteration)  # fmt: skip
        self.model.train()
        return {key: r[key.split("/", 1)[1]] for key in EVAL_KEYS}

    def _checkpoint(self) -> None:
        self.save()
        if self.cfg.keep_checkpoints:
            self.save(self.log_dir / f"model_{self.iteration}.pt")

    def _log(self, row: dict[str, Any]) -> None:
        with open(self.log_dir / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        path = self.log_dir / "log.csv"
        new = not path.exists()
        with open(path, "a", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)


def resume_or_start(
    cfg: TrainConfig, log_dir: str | Path, resume: bool, progress: bool | None = None, compile: bool = False
) -> Trainer:
    """A Trainer in ``log_dir``; with ``resume`` it continues from ``log_dir/checkpoint.pt`` (its saved
    configuration wins), else refuses to overwrite an existing run. ``compile``: see :class:`Trainer`."""
    log_dir = Path(log_dir)
    ckpt = log_dir / "checkpoint.pt"
    if resume:
        if not ckpt.exists():
            raise ValueError(f"--resume: no checkpoint at {str(ckpt)!r}")
        saved = load_checkpoint(ckpt)
        trainer = Trainer(config_from_dict(saved["config"]), log_dir, progress, compile=compile)
        trainer.load(ckpt)
        return trainer
    if ckpt.exists():
        raise ValueError(f"{str(log_dir)!r} already holds a run (checkpoint.pt): pass --resume or another --out")
    return Trainer(cfg, log_dir, progress, compile=compile)
