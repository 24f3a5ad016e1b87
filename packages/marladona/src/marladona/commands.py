"""The work behind each ``marladona`` command (the parser lives in :mod:`marladona.cli`)."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import torch

DEMO_POLICY = "demo_1v1.pt"
"""The shipped 1v1 policy (package data), trained by this package's own ``train``."""


def cmd_train(args: argparse.Namespace) -> int:
    from marladona.train import make_train_config, resume_or_start

    if args.minutes is None and args.iterations is None:
        raise ValueError("give --minutes or --iterations (or both)")
    overrides: dict[str, Any] = {"seed": args.seed, "checkpoint_every": args.checkpoint_every, "device": args.device}
    if args.keep_checkpoints:
        overrides["keep_checkpoints"] = True
    if args.num_envs:
        overrides["num_envs"] = args.num_envs
    _check_device(args.device)
    cfg = make_train_config(args.preset, **overrides)
    trainer = resume_or_start(cfg, args.out, args.resume, compile=args.compile)
    row = trainer.learn(iterations=args.iterations, minutes=args.minutes)
    print(
        f"iterations {trainer.iteration}  env steps {trainer.env_steps}  time {trainer.elapsed:.0f} s  "
        f"opponent {trainer.opponent.name}  train win rate {row.get('win_rate', float('nan')):.3f}  "
        f"checkpoint {trainer.checkpoint_path}"
    )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from marladona.evaluate import evaluate, format_table
    from marladona.players import make_player

    _check_device(args.device)
    policy = make_player(args.checkpoint, args.device, what="checkpoint")
    result = evaluate(
        policy, args.opponent, team_sizes=args.team_sizes, episodes=args.episodes, level=args.level, seed=args.seed,
        cfg=_eval_config(args.team_sizes, args.device), progress=True,
    )  # fmt: skip
    result.update(checkpoint=str(args.checkpoint), opponent=str(args.opponent))
    print(f"{args.checkpoint} (blue) vs {args.opponent} (red), level {args.level}, {args.episodes} games per size")
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from marladona.players import make_player

    if len(args.team_sizes) != 1:
        raise ValueError(f"--team-sizes must be one pair such as 2v2 for a replay, got {len(args.team_sizes)}")
    blue, red = make_player(args.blue, what="blue"), make_player(args.red, what="red")
    frames = _record(blue, red, args.team_sizes[0], args.level, args.steps, args.seed)
    from marladona.render import save_animation

    save_animation(frames, args.out)
    print(f"wrote {args.out} ({len(frames)} frames)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from marladona.config import SoccerConfig
    from marladona.env import SoccerEnv

    _check_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    t = args.team_size
    env = SoccerEnv(SoccerConfig(num_envs=args.num_envs, max_team_size=t, team_size_range=(t, t), device=args.device))
    env.reset(seed=0)
    g = torch.Generator(device=env.device).manual_seed(1)
    shape = (args.num_envs, 2 * t, 5)
    for _ in range(5):
        env.step(torch.rand(shape, generator=g, device=env.device) * 2 - 1)
    _sync(env.device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        env.step(torch.rand(shape, generator=g, device=env.device) * 2 - 1)
    _sync(env.device)
    dt = time.perf_counter() - t0
    env_steps = args.num_envs * args.steps / dt
    print(
        f"{t}v{t}, {args.num_envs} games, {args.device}, {torch.get_num_threads()} threads: "
        f"{env_steps:,.0f} env-steps/s = {env_steps * 2 * t:,.0f} agent-steps/s (random actions, {args.steps} steps)"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from marladona.evaluate import evaluate, format_table
    from marladona.players import PolicyPlayer

    if args.train:
        from marladona.train import make_train_config, resume_or_start

        out = Path(tempfile.mkdtemp(prefix="marladona-demo-"))
        print(f"training a 1v1 policy against an idle team for {args.minutes} min into {out}")
        trainer = resume_or_start(make_train_config("cpu-idle"), out, resume=False)
        trainer.learn(minutes=args.minutes)
        policy_path: Any = trainer.checkpoint_path
        meta: dict[str, Any] = {"command": f"marladona demo --train --minutes {args.minutes}"}
    else:
        policy_path = resources.files("marladona").joinpath("data").joinpath(DEMO_POLICY)
        meta = _demo_meta()
        print(f"shipped 1v1 policy, trained by: {meta.get('command', '?')}")
    from marladona.checkpoint import load_policy

    with resources.as_file(policy_path) as p:
        player = PolicyPlayer(load_policy(p))
    for opponent in ("idle", "heuristic"):
        result = evaluate(player, opponent, team_sizes=((1, 1),), episodes=args.episodes, level=0, seed=0,
                          cfg=_eval_config(((1, 1),), "cpu"))  # fmt: skip
        print(f"\nagainst {opponent} ({args.episodes} games, level 0):")
        print(format_table(result))
    from marladona.render import save_animation

    frames = _record(player, "heuristic", (1, 1), 0, 375, 0)
    save_animation(frames, args.out)
    print(f"\nwrote {args.out} ({len(frames)} frames): the policy (blue) against the heuristic (red)")
    return 0


def _demo_meta() -> dict[str, Any]:
    text = resources.files("marladona").joinpath("data").joinpath("demo_1v1.json").read_text(encoding="utf-8")
    meta: dict[str, Any] = json.loads(text)
    return meta


def _record(blue: Any, red: Any, sizes: tuple[int, int], level: int, steps: int, seed: int) -> list[Any]:
    from marladona.config import SoccerConfig
    from marladona.env import SoccerEnv
    from marladona.players import act_team, make_player
    from marladona.render import render_frame

    t = max(sizes)
    cfg = SoccerConfig(
        num_envs=1, max_team_size=t, team_size_range=(1, t), field_curriculum=False, seed=seed, obs_noise=False
    )
    env = SoccerEnv(cfg, final_obs=False, final_state=True)
    env.reset(seed=seed)
    env.set_team_sizes(sizes[0], sizes[1])
    obs = env.set_field_level(level)
    bp, rp = make_player(blue), make_player(red)
    frames = [render_frame(env.state, cfg)]
    for _ in range(steps):
        actions = torch.cat((act_team(bp, env.state, cfg, 0, obs), act_team(rp, env.state, cfg, 1, obs)), dim=1)
        obs, _, term, trunc, info = env.step(actions)
        if bool((term | trunc).any()):
            # the env has already reset: draw the game's end (the ball in the goal), then stop
            frames.append(render_frame(info["final_state"], cfg))
            break
        frames.append(render_frame(env.state, cfg))
    return frames


def _eval_config(team_sizes: tuple[tuple[int, int], ...], device: str) -> Any:
    from marladona.config import SoccerConfig

    t = max(max(s) for s in team_sizes)
    return SoccerConfig(max_team_size=t, team_size_range=(1, t), device=device)


def _check_device(device: str) -> None:
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device must be a torch device such as cpu or cuda, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available in this torch build or on this machine")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
