"""Top-down pictures of a game: RGB frames drawn with plain numpy, GIF/MP4 animations, replays.

:func:`render_frame` draws one game of a batch (field, lines, goals, posts, walls, players with a
heading tick, the ball) into an ``(H, W, 3)`` uint8 array without any plotting library, fast enough
for PettingZoo's ``render_mode="rgb_array"``. :func:`save_animation` writes frames to a GIF (Pillow)
or an MP4 (imageio with imageio-ffmpeg); :func:`record_game` plays a game and collects its frames.

The picture shows the world frame: +x to the right, +y up. Blue defends the right-hand goal (+x) and
attacks the left-hand one; the goal mouths are tinted in the colour of the team that defends them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from marladona.config import SoccerConfig
from marladona.sim import SoccerState

__all__ = [
    "BALL_COLOR",
    "BLUE_COLOR",
    "FIELD_COLOR",
    "RED_COLOR",
    "record_game",
    "render_frame",
    "save_animation",
    "world_to_pixel",
]

FIELD_COLOR = (34, 120, 50)
"""Grass inside the walls."""
OUTSIDE_COLOR = (60, 60, 60)
"""Beyond the walls."""
LINE_COLOR = (235, 235, 235)
"""Field lines and posts."""
WALL_COLOR = (150, 110, 70)
"""The border box."""
BLUE_COLOR = (40, 90, 235)
"""Blue players (slots 0..T-1)."""
RED_COLOR = (225, 40, 40)
"""Red players (slots T..2T-1)."""
BALL_COLOR = (255, 190, 0)
"""The ball."""
TICK_COLOR = (255, 255, 255)
"""The heading tick on each player."""
_BLUE_GOAL = (120, 150, 240)
_RED_GOAL = (240, 130, 130)
_MARGIN = 0.08  # m of outside shown around the walls


def _view(length: float, cfg: SoccerConfig, size: tuple[int, int]) -> tuple[float, float, float]:
    """Scale (px per m) and pixel centre ``(cx, cy)`` that fit the walls of a field of ``length``."""
    w, h = size
    hx = length / 9 * 10.4 / 2 + _MARGIN
    hy = cfg.wall_half_width + _MARGIN
    scale = min(w / (2 * hx), h / (2 * hy))
    return scale, (w - 1) / 2, (h - 1) / 2


def world_to_pixel(
    x: float, y: float, length: float, cfg: SoccerConfig, size: tuple[int, int] = (560, 400)
) -> tuple[int, int]:
    """The ``(row, col)`` pixel of the world point ``(x, y)`` in a frame of ``size = (W, H)``.

    Example:
        >>> world_to_pixel(0.0, 0.0, 5.4, SoccerConfig(), size=(101, 51))
        (25, 50)
    """
    scale, cx, cy = _view(length, cfg, size)
    return round(cy - y * scale), round(cx + x * scale)


class _Canvas:
    """An ``(H, W, 3)`` uint8 image with world-coordinate drawing primitives."""

    def __init__(self, size: tuple[int, int], scale: float, cx: float, cy: float) -> None:
        w, h = size
        self.img = np.empty((h, w, 3), dtype=np.uint8)
        self.scale, self.cx, self.cy = scale, cx, cy
        self.cols = np.arange(w, dtype=np.float64)
        self.rows = np.arange(h, dtype=np.float64)

    def px(self, x: float, y: float) -> tuple[float, float]:
        return self.cx + x * self.scale, self.cy - y * self.scale

    def rect(self, x0: float, y0: float, x1: float, y1: float, color: tuple[int, int, int]) -> None:
        """Fill the world rectangle [x0, x1] x [y0, y1]."""
        c0, r1 = self.px(min(x0, x1), min(y0, y1))
        c1, r0 = self.px(max(x0, x1), max(y0, y1))
        h, w = self.img.shape[:2]
        rs, re = max((math.floor(r0 + 0.5)), 0), min((math.floor(r1 + 0.5)) + 1, h)
        cs, ce = max((math.floor(c0 + 0.5)), 0), min((math.floor(c1 + 0.5)) + 1, w)
        if rs < re and cs < ce:
            self.img[rs:re, cs:ce] = color

    def disc(self, x: float, y: float, radius: float, color: tuple[int, int, int], min_px: float = 1.5) -> None:
        """Fill a disc of world ``radius`` (at least ``min_px`` pixels)."""
        c, r = self.px(x, y)
        rad = max(radius * self.scale, min_px)
        h, w = self.img.shape[:2]
        r0, r1 = max(int(r - rad) - 1, 0), min(int(r + rad) + 2, h)
        c0, c1 = max(int(c - rad) - 1, 0), min(int(c + rad) + 2, w)
        if r0 >= r1 or c0 >= c1:
            return
        rr = self.rows[r0:r1, None] - r
        cc = self.cols[None, c0:c1] - c
        mask = rr * rr + cc * cc <= rad * rad
        self.img[r0:r1, c0:c1][mask] = color

    def ring(self, x: float, y: float, radius: float, width_px: float, color: tuple[int, int, int]) -> None:
        """Draw a circle of world ``radius`` with a line ``width_px`` wide."""
        c, r = self.px(x, y)
        rad = radius * self.scale
        h, w = self.img.shape[:2]
        ext = rad + width_px
        r0, r1 = max(int(r - ext) - 1, 0), min(int(r + ext) + 2, h)
        c0, c1 = max(int(c - ext) - 1, 0), min(int(c + ext) + 2, w)
        if r0 >= r1 or c0 >= c1:
            return
        rr = self.rows[r0:r1, None] - r
        cc = self.cols[None, c0:c1] - c
        d = np.sqrt(rr * rr + cc * cc)
        self.img[r0:r1, c0:c1][np.abs(d - rad) <= width_px / 2] = color

    def segment(self, x0: float, y0: float, x1: float, y1: float, width_px: float, color: tuple[int, int, int]) -> None:
        """Draw the world segment (x0, y0)-(x1, y1) with a line ``width_px`` wide."""
        c0, r0 = self.px(x0, y0)
        c1, r1 = self.px(x1, y1)
        h, w = self.img.shape[:2]
        half = width_px / 2
        rs, re = max(int(min(r0, r1) - half) - 1, 0), min(int(max(r0, r1) + half) + 2, h)
        cs, ce = max(int(min(c0, c1) - half) - 1, 0), min(int(max(c0, c1) + half) + 2, w)
        if rs >= re or cs >= ce:
            return
        rr = self.rows[rs:re, None]
        cc = self.cols[None, cs:ce]
        dr, dc = r1 - r0, c1 - c0
        n2 = dr * dr + dc * dc
        s = np.clip(((rr - r0) * dr + (cc - c0) * dc) / n2, 0.0, 1.0) if n2 > 0 else np.zeros_like(rr * cc)
        dist2 = (rr - r0 - s * dr) ** 2 + (cc - c0 - s * dc) ** 2
        self.img[rs:re, cs:ce][dist2 <= half * half] = color


def render_frame(
    state: SoccerState, cfg: SoccerConfig, env_index: int = 0, size: tuple[int, int] = (560, 400)
) -> np.ndarray:
    """A top-down RGB picture of game ``env_index``.

    Drawn, in order: the outside, the grass inside the walls, the walls, the touch, goal and centre
    lines and the centre circle, the goal mouths (tinted by the defending team), the four posts, the
    present players (discs of the agent radius in their team colour, a white heading tick from 0.35 r
    to 1.4 r, so the pixel at a player's centre keeps its colour) and the ball (drawn last, on top).
    Absent players are not drawn.

    Args:
        state: a batch of games (any device; the one game is copied to the host).
        cfg: their configuration (field width, walls, radii).
        env_index: which game, in ``[0, E)``.
        size: ``(W, H)`` in pixels, each >= 16; the field keeps its aspect ratio, centred.

    Returns:
        ``(H, W, 3)`` uint8.

    Raises:
        ValueError: ``env_index`` or ``size`` out of range.

    Example:
        >>> from marladona.sim import empty_state
        >>> render_frame(empty_state(1, 2), SoccerConfig(), size=(64, 48)).shape
        (48, 64, 3)
    """
    e = state.num_envs
    if isinstance(env_index, bool) or not isinstance(env_index, int) or not 0 <= env_index < e:
        raise ValueError(f"env_index must be an integer in [0, {e - 1}], got {env_index!r}")
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 16 for s in size):
        raise ValueError(f"size must be (W, H) with integers >= 16, got {size!r}")
    i = env_index
    length = float(state.length[i])
    hl, hw, hg = length / 2, cfg.field_width / 2, float(state.goal_width[i]) / 2
    pos = state.pos[i].detach().to("cpu", torch.float64).numpy()
    yaw = state.yaw[i].detach().to("cpu", torch.float64).numpy()
    active = state.active[i].detach().cpu().numpy()
    ball = state.ball_pos[i].detach().to("cpu", torch.float64).numpy()
    t = pos.shape[0] // 2

    scale, cx, cy = _view(length, cfg, size)
    cv = _Canvas(size, scale, cx, cy)
    lw = max(1.0, 0.03 * scale)
    wx, wy = length / 9 * 10.4 / 2, cfg.wall_half_width
    cv.img[:] = OUTSIDE_COLOR
    cv.rect(-wx, -wy, wx, wy, WALL_COLOR)
    inner = 0.04
    cv.rect(-wx + inner, -wy + inner, wx - inner, wy - inner, FIELD_COLOR)
    # goal mouths behind the goal lines: +x defended by blue, -x by red
    depth = min(0.3, wx - hl)
    cv.rect(hl, -hg, hl + depth, hg, _BLUE_GOAL)
    cv.rect(-hl - depth, -hg, -hl, hg, _RED_GOAL)
    # lines
    for x0, y0, x1, y1 in (
        (-hl, hw, hl, hw),
        (-hl, -hw, hl, -hw),
        (-hl, -hw, -hl, hw),
        (hl, -hw, hl, hw),
        (0.0, -hw, 0.0, hw),
    ):
        cv.segment(x0, y0, x1, y1, lw, LINE_COLOR)
    cv.ring(0.0, 0.0, min(0.45, hw / 2), lw, LINE_COLOR)
    for px_ in (hl, -hl):
        for py_ in (hg, -hg):
            cv.disc(px_, py_, cfg.post_radius, LINE_COLOR)
    # players
    r = cfg.agent.radius
    for j in np.flatnonzero(active):
        color = BLUE_COLOR if j < t else RED_COLOR
        x, y, c, s = pos[j, 0], pos[j, 1], math.cos(yaw[j]), math.sin(yaw[j])
        cv.disc(x, y, r, color)
        cv.segment(
            x + 0.35 * r * c, y + 0.35 * r * s, x + 1.4 * r * c, y + 1.4 * r * s, max(1.0, 0.25 * r * scale), TICK_COLOR
        )
    cv.disc(ball[0], ball[1], cfg.ball.radius, BALL_COLOR, min_px=2.0)
    return cv.img


def save_animation(frames: Sequence[np.ndarray], path: str | Path, fps: float = 12.5) -> Path:
    """Write ``frames`` to a GIF (Pillow) or an MP4 (imageio with imageio-ffmpeg), by the suffix of ``path``.

    Args:
        frames: ``(H, W, 3)`` uint8 arrays of one size (at least one).
        path: ``*.gif`` or ``*.mp4``; parent folders are created.
        fps: frames per second, > 0 (12.5 = the policy rate, real time).

    Returns:
        The path written.

    Raises:
        ValueError: no frames, frames of different shapes, a bad ``fps`` or an unknown suffix.
        ImportError: Pillow (GIF) or imageio-ffmpeg (MP4) is missing; the message says what to install.

    Note:
        GIF stores frame durations in hundredths of a second (80 ms at 12.5 fps is exact), and
        Pillow merges consecutive identical frames into one longer frame. An MP4 is H.264 in yuv420p
        (lossy, chroma at half resolution), whose sides must be even: a frame of an odd side gets its
        last row or column repeated.
    """
    path = Path(path)
    if not frames:
        raise ValueError("frames must hold at least one (H, W, 3) uint8 array, got none")
    arrs = [np.asarray(f) for f in frames]
    shape = arrs[0].shape
    if len(shape) != 3 or shape[2] != 3 or any(a.shape != shape for a in arrs):
        raise ValueError(f"frames must all be (H, W, 3) arrays of one shape, got {sorted({a.shape for a in arrs})}")
    arrs = [a.astype(np.uint8, copy=False) for a in arrs]
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a finite number > 0, got {fps!r}")
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"path must end in .gif or .mp4, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        try:
            from PIL import Image
        except ImportError as exc:
            raise ImportError("writing a GIF needs Pillow: pip install marladona[render]") from exc
        images = [Image.fromarray(a) for a in arrs]
        images[0].save(
            path, save_all=True, append_images=images[1:], duration=round(1000.0 / fps), loop=0, optimize=False
        )
        return path
    import importlib
    import importlib.util

    if importlib.util.find_spec("imageio") is None or importlib.util.find_spec("imageio_ffmpeg") is None:
        raise ImportError(
            "writing an MP4 needs imageio and imageio-ffmpeg: pip install marladona[mp4] "
            "(or save a .gif, which needs only Pillow: pip install marladona[render])"
        )
    imageio: Any = importlib.import_module("imageio.v2")
    h, w = shape[0], shape[1]
    if h % 2 or w % 2:  # H.264 in yuv420p needs even sides: repeat the last row / column
        arrs = [np.pad(a, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") for a in arrs]
    imageio.mimwrite(path, arrs, fps=fps, codec="libx264", macro_block_size=1)
    return path


Policy = Callable[[Any], torch.Tensor]
"""A team controller for :func:`record_game`: ``policy(env) -> (E, T, 5)`` actions of its team."""


def record_game(
    env: Any,
    blue_policy: Policy | Any | None,
    red_policy: Policy | Any | None,
    steps: int,
    env_index: int = 0,
    size: tuple[int, int] = (560, 400),
    reset: bool = True,
) -> list[np.ndarray]:
    """Play ``steps`` policy steps and return the frames of game ``env_index`` (``steps + 1`` frames).

    Args:
        env: a :class:`~marladona.env.SoccerEnv`, or a callable with no arguments that makes one.
        blue_policy, red_policy: each a callable ``(env) -> (E, T, 5)`` (actions of its team's slots),
            an :class:`~marladona.heuristic.Opponent` (``act(state, cfg, team)`` and ``reset(mask)``; its
            ``reset`` is called for the games that ended), or None for a standing team (zero actions).
        steps: policy steps to play, >= 0.
        env_index: the game to draw.
        size: ``(W, H)`` of the frames.
        reset: reset the environment first (always done for an environment made by a factory).

    Returns:
        The frame after the reset (or the current one) followed by one frame per step. A game that
        ends is reset by the environment inside ``step``, so the frame after a goal shows the new
        kick-off, not the ball in the net.

    Raises:
        ValueError: ``steps`` < 0, or a policy's actions of the wrong shape.
    """
    from marladona.env import SoccerEnv

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    made = not isinstance(env, SoccerEnv)
    if made:
        env = env()
        if not isinstance(env, SoccerEnv):
            raise ValueError(f"env must be a SoccerEnv or a factory of one, got {type(env).__name__}")
    if reset or made:
        env.reset()
    cfg = env.cfg
    e, t = env.num_envs, cfg.max_team_size

    def team_actions(policy: Any, team: int) -> torch.Tensor:
        if policy is None:
            return torch.zeros(e, t, 5, device=env.device)
        out: torch.Tensor = policy.act(env.state, cfg, team) if hasattr(policy, "act") else policy(env)
        if tuple(out.shape) != (e, t, 5):
            raise ValueError(f"a policy must return actions of shape (E, T, 5) = {(e, t, 5)}, got {tuple(out.shape)}")
        return out.to(device=env.device, dtype=torch.float32)

    frames = [render_frame(env.state, cfg, env_index, size)]
    with torch.no_grad():
        for _ in range(steps):
            actions = torch.cat((team_actions(blue_policy, 0), team_actions(red_policy, 1)), dim=1)
            _, _, term, trunc, _ = env.step(actions)
            done = term | trunc
            for policy in (blue_policy, red_policy):
                if policy is not None and hasattr(policy, "reset") and hasattr(policy, "act"):
                    policy.reset(done)
            frames.append(render_frame(env.state, cfg, env_index, size))
    return frames
