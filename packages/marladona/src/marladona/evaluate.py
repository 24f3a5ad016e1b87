"""Win / draw / loss rates of one team against another, with Wilson 95 % intervals.

Note: the ball spawns in blue's half (the code's level-0 spawn), so the evaluated policy (blue) starts
closer to the ball; for policy-against-policy comparisons pass a ``cfg`` with
``ball_spawn="random_half"``.

One episode ends at the first goal or after 30 s, so a *win* is "blue scored first within 30 s", a
*loss* "red scored first", a *draw* a time-out (spec section 7). Every game of the batch counts its
first episode only (counting every finished episode would favour short ones), with fixed team sizes,
a fixed field level and the curriculum off.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from tqdm.auto import tqdm

from marladona.config import SoccerConfig
from marladona.env import SoccerEnv
from marladona.players import act_team, make_player


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion.

    .. math:: \\frac{\\hat p + z^2/2n \\pm z\\sqrt{\\hat p(1-\\hat p)/n + z^2/4n^2}}{1 + z^2/n}

    Example:
        >>> [round(v, 4) for v in wilson_interval(8, 10)]
        [0.4902, 0.9433]
    """
    if n <= 0:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n={n}], got {successes}")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@torch.no_grad()
def play_episodes(
    blue: Any,
    red: Any,
    cfg: SoccerConfig,
    episodes: int,
    blue_size: int,
    red_size: int,
    level: int,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Play ``episodes`` games (one batch) of ``blue`` against ``red`` and count the outcomes.

    Returns:
        ``wins``, ``draws``, ``losses`` (counts), ``episodes``, ``win_rate`` etc. with ``*_ci`` Wilson
        intervals, ``goal_diff`` (mean of +1/0/-1), ``mean_steps_to_goal`` (over decided games, NaN when none).
    """
    env_cfg = cfg.replace(
        num_envs=episodes,
        max_team_size=max(cfg.max_team_size, blue_size, red_size),
        team_size_range=(blue_size, blue_size),
        red_team_size_range=(red_size, red_size),
        field_curriculum=False,
        seed=seed,
    )
    env = SoccerEnv(env_cfg, final_obs=False)
    env.reset(seed=seed)
    env.set_team_sizes(blue_size, red_size)
    obs = env.set_field_level(level)
    g = torch.Generator(device=env.device).manual_seed(seed + 1)  # random players draw from it, not the global RNG
    bp, rp = make_player(blue, env.device, g, what="policy"), make_player(red, env.device, g)
    all_games = torch.ones(episodes, dtype=torch.bool, device=env.device)
    bp.reset(all_games)
    rp.reset(all_games)
    outcome = torch.zeros(episodes, dtype=torch.long, device=env.device)
    length = torch.zeros(episodes, dtype=torch.long, device=env.device)
    finished = torch.zeros(episodes, dtype=torch.bool, device=env.device)
    for _ in tqdm(range(env_cfg.max_episode_steps), desc="eval", disable=not progress, leave=False):
        actions = torch.cat((act_team(bp, env.state, env_cfg, 0, obs), act_team(rp, env.state, env_cfg, 1, obs)), dim=1)
        obs, _, term, trunc, info = env.step(actions)
        done = term | trunc
        new = done & ~finished
        outcome = torch.where(new, info["goal"], outcome)
        length = torch.where(new, info["episode_length"], length)
        finished |= done
        bp.reset(done)
        rp.reset(done)
        if bool(finished.all()):
            break
    wins = int((outcome == 1).sum())
    losses = int((outcome == -1).sum())
    draws = episodes - wins - losses
    decided = outcome != 0
    out: dict[str, Any] = {"episodes": episodes, "wins": wins, "draws": draws, "losses": losses}
    for key, count in (("win", wins), ("draw", draws), ("loss", losses)):
        out[f"{key}_rate"] = count / episodes
        out[f"{key}_ci"] = list(wilson_interval(count, episodes))
    out["goal_diff"] = (wins - losses) / episodes
    out["mean_steps_to_goal"] = float(length[decided].float().mean()) if bool(decided.any()) else float("nan")
    return out


def evaluate(
    policy: Any,
    opponent: Any,
    team_sizes: tuple[tuple[int, int], ...] = ((1, 1), (2, 2), (3, 3)),
    episodes: int = 1000,
    level: int = 0,
    seed: int = 0,
    cfg: SoccerConfig | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """W/D/L of ``policy`` (blue) against ``opponent`` (red) per team size, with Wilson 95 % intervals.

    Args:
        policy, opponent: players (see :func:`marladona.players.make_player`: a name, a checkpoint path,
            or an object with ``act``/``reset``).
        team_sizes: (blue, red) sizes to play.
        episodes: games per team size (each game counts its first episode).
        level: field level (0 = the shortest field with the widest goal, where the CPU presets train; 3 =
            the smallest goal, the code's hardest).
        seed: seed of the starts.
        cfg: the environment's configuration (sizes, curriculum and seed are overridden).

    Returns:
        ``{"per_size": {"1v1": {...}, ...}, "episodes": ..., "level": ..., "seed": ...}`` with the keys of
        :func:`play_episodes` per size.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if not team_sizes:
        raise ValueError("team_sizes must name at least one (blue, red) pair")
    t = max(max(s) for s in team_sizes)
    cfg = cfg or SoccerConfig(max_team_size=t, team_size_range=(1, t))
    n_levels = len(cfg.field_levels)
    if not 0 <= level < n_levels:
        raise ValueError(f"level must be in [0, {n_levels - 1}], got {level}")
    per: dict[str, Any] = {}
    for b, r in team_sizes:
        if min(b, r) < 1:
            raise ValueError(f"team_sizes entries must be >= 1, got {(b, r)}")
        per[f"{b}v{r}"] = play_episodes(policy, opponent, cfg, episodes, b, r, level, seed, progress)
    return {"per_size": per, "episodes": episodes, "level": level, "seed": seed}


def format_table(result: dict[str, Any]) -> str:
    """A Markdown table of :func:`evaluate`'s result."""
    rows = ["| sizes | win | draw | loss | goal diff | steps to goal |", "| --- | --- | --- | --- | --- | --- |"]
    for key, r in result["per_size"].items():
        cells = [key]
        for k in ("win", "draw", "loss"):
            lo, hi = r[f"{k}_ci"]
            cells.append(f"{r[f'{k}_rate']:.1%} [{lo:.1%}, {hi:.1%}]")
        cells.append(f"{r['goal_diff']:+.3f}")
        cells.append(f"{r['mean_steps_to_goal']:.0f}" if r["mean_steps_to_goal"] == r["mean_steps_to_goal"] else "-")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
