"""Tests of the top-down frames, the animation writer and the replay helper."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from marladona.config import SoccerConfig
from marladona.env import SoccerEnv
from marladona.heuristic import RandomBot, RoleBot
from marladona.render import (
    BALL_COLOR,
    BLUE_COLOR,
    FIELD_COLOR,
    RED_COLOR,
    record_game,
    render_frame,
    save_animation,
    world_to_pixel,
)
from marladona.sim import SoccerState, empty_state

SIZE = (280, 200)


def _state(cfg: SoccerConfig) -> SoccerState:
    """One 2v2 game on the 5.4 m field: blue 0 at (1, 0.5), blue 1 absent at (-1, -1), red 0 at
    (-1.5, 0.8), red 1 at (0.5, -1.2), the ball at (-0.4, -0.3)."""
    st = empty_state(1, 2)
    st.length.fill_(5.4)
    st.goal_width.fill_(1.44)
    st.pos[0] = torch.tensor([[1.0, 0.5], [-1.0, -1.0], [-1.5, 0.8], [0.5, -1.2]])
    st.yaw[0] = torch.tensor([0.0, 0.0, math.pi / 2, -math.pi / 3])
    st.active[0] = torch.tensor([True, False, True, True])
    st.ball_pos[0] = torch.tensor([-0.4, -0.3])
    return st


def _pixel(img: np.ndarray, x: float, y: float, cfg: SoccerConfig) -> tuple[int, ...]:
    r, c = world_to_pixel(x, y, 5.4, cfg, SIZE)
    return tuple(int(v) for v in img[r, c])


class TestRenderFrame:
    def test_frame_shape_and_dtype(self) -> None:
        cfg = SoccerConfig(max_team_size=2, team_size_range=(2, 2))
        img = render_frame(_state(cfg), cfg, size=SIZE)
        assert img.shape == (200, 280, 3)
        assert img.dtype == np.uint8

    def test_pixel_mapping_by_hand(self) -> None:
        # walls of the 5.4 m field: half-length 5.4 / 9 * 10.4 / 2 = 3.12, half-width 2.22, plus the
        # 0.08 m margin -> 3.2 x 2.3; in a 321 x 231 frame the scale is min(321 / 6.4, 231 / 4.6) = 50.16
        # (width) -> the point (1, 1) lands at column 160 + 50.16 = 210.2 and row 115 - 50.16 = 64.8
        cfg = SoccerConfig()
        assert world_to_pixel(1.0, 1.0, 5.4, cfg, (321, 231)) == (65, 210)

    def test_ball_colour_at_the_ball(self) -> None:
        cfg = SoccerConfig(max_team_size=2, team_size_range=(2, 2))
        img = render_frame(_state(cfg), cfg, size=SIZE)
        assert _pixel(img, -0.4, -0.3, cfg) == BALL_COLOR

    def test_players_in_their_colours(self) -> None:
        cfg = SoccerConfig(max_team_size=2, team_size_range=(2, 2))
        img = render_frame(_state(cfg), cfg, size=SIZE)
        assert _pixel(img, 1.0, 0.5, cfg) == BLUE_COLOR
        assert _pixel(img, -1.5, 0.8, cfg) == RED_COLOR
        assert _pixel(img, 0.5, -1.2, cfg) == RED_COLOR
        # a point 0.07 m behind a player (inside its 0.1 m disc, away from the heading tick)
        assert _pixel(img, 1.0 - 0.07, 0.5, cfg) == BLUE_COLOR

    def test_absent_players_not_drawn(self) -> None:
        cfg = SoccerConfig(max_team_size=2, team_size_range=(2, 2))
        st = _state(cfg)
        img = render_frame(st, cfg, size=SIZE)
        assert _pixel(img, -1.0, -1.0, cfg) == FIELD_COLOR
        blue_px = int(np.all(img == BLUE_COLOR, axis=-1).sum())
        st.active[0, 0] = False
        img2 = render_frame(st, cfg, size=SIZE)
        assert blue_px > 0
        assert int(np.all(img2 == BLUE_COLOR, axis=-1).sum()) == 0

    def test_other_game_of_the_batch(self) -> None:
        cfg = SoccerConfig(max_team_size=2, team_size_range=(2, 2))
        st = _state(cfg)
        two = SoccerState(**{k: torch.cat((v, v)) for k, v in st.tensors().items()})
        two.ball_pos[1] = torch.tensor([0.6, 0.9])
        img = render_frame(two, cfg, env_index=1, size=SIZE)
        assert _pixel(img, 0.6, 0.9, cfg) == BALL_COLOR
        assert _pixel(img, -0.4, -0.3, cfg) != BALL_COLOR

    @pytest.mark.parametrize(("kwargs", "name"), [({"env_index": 1}, "env_index"), ({"size": (8, 200)}, "size")])
    def test_bad_arguments_raise(self, kwargs: dict[str, object], name: str) -> None:
        cfg = SoccerConfig(max_team_size=2, team_size_range=(2, 2))
        with pytest.raises(ValueError, match=name):
            render_frame(_state(cfg), cfg, **kwargs)  # type: ignore[arg-type]


class TestAnimation:
    def test_gif_round_trip(self, tmp_path: Path) -> None:
        pil = pytest.importorskip("PIL.Image")
        cfg = SoccerConfig(num_envs=2, max_team_size=2, team_size_range=(2, 2), init_level_range=(0, 0))
        frames = record_game(
            lambda: SoccerEnv(cfg), RoleBot(), RandomBot(torch.Generator().manual_seed(0)), steps=6, size=(96, 64)
        )
        assert len(frames) == 7
        path = save_animation(frames, tmp_path / "sub" / "game.gif", fps=12.5)
        with pil.open(path) as im:
            assert im.n_frames == 7  # consecutive frames differ: the players move
            assert im.size == (96, 64)
            assert im.info["duration"] == 80

    def test_bad_inputs_raise(self, tmp_path: Path) -> None:
        frame = np.zeros((20, 30, 3), np.uint8)
        with pytest.raises(ValueError, match="frames"):
            save_animation([], tmp_path / "a.gif")
        with pytest.raises(ValueError, match="frames"):
            save_animation([frame, np.zeros((21, 30, 3), np.uint8)], tmp_path / "a.gif")
        with pytest.raises(ValueError, match="path"):
            save_animation([frame], tmp_path / "a.avi")
        with pytest.raises(ValueError, match="fps"):
            save_animation([frame], tmp_path / "a.gif", fps=0)

    @pytest.mark.parametrize("size", [(48, 64), (21, 31)])  # (H, W); odd sides are padded to even
    def test_mp4_round_trip(self, tmp_path: Path, size: tuple[int, int]) -> None:
        pytest.importorskip("imageio_ffmpeg", reason="MP4 writing needs imageio-ffmpeg ([mp4] extra)")
        imageio = pytest.importorskip("imageio.v2")
        h, w = size
        colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40), (128, 128, 128)]
        frames = [np.full((h, w, 3), c, np.uint8) for c in colours]
        path = save_animation(frames, tmp_path / "game.mp4", fps=12.5)
        reader = imageio.get_reader(path)
        try:
            assert reader.get_meta_data()["fps"] == pytest.approx(12.5)
            back = [np.asarray(f) for f in reader]
        finally:
            reader.close()
        assert len(back) == len(frames)
        assert {f.shape for f in back} == {(h + h % 2, w + w % 2, 3)}
        for f, c in zip(back, colours, strict=True):  # lossy, but a flat colour stays within a few levels
            assert np.abs(f.reshape(-1, 3).mean(0) - np.array(c)).max() < 8

    @pytest.mark.skipif(importlib.util.find_spec("imageio_ffmpeg") is not None, reason="imageio-ffmpeg is installed")
    def test_mp4_without_ffmpeg_suggests_gif(self, tmp_path: Path) -> None:
        with pytest.raises(ImportError, match=r"\.gif"):
            save_animation([np.zeros((20, 30, 3), np.uint8)], tmp_path / "a.mp4")


class TestRecordGame:
    def test_callable_policies_and_frame_count(self) -> None:
        cfg = SoccerConfig(num_envs=3, max_team_size=1, team_size_range=(1, 1))
        env = SoccerEnv(cfg)
        calls = []

        def blue(e: SoccerEnv) -> torch.Tensor:
            calls.append(e.num_envs)
            return torch.zeros(3, 1, 5)

        frames = record_game(env, blue, None, steps=4, env_index=2, size=(64, 48))
        assert len(frames) == 5
        assert calls == [3, 3, 3, 3]
        assert all(f.shape == (48, 64, 3) for f in frames)
        # nobody moves the ball: it stays where the reset put it in game 2
        r, c = world_to_pixel(*env.state.ball_pos[2].tolist(), float(env.state.length[2]), cfg, (64, 48))
        assert tuple(frames[-1][r, c]) == BALL_COLOR

    def test_bad_arguments_raise(self) -> None:
        cfg = SoccerConfig(num_envs=2, max_team_size=1, team_size_range=(1, 1))
        with pytest.raises(ValueError, match="steps"):
            record_game(SoccerEnv(cfg), None, None, steps=-1)
        with pytest.raises(ValueError, match="shape"):
            record_game(SoccerEnv(cfg), lambda e: torch.zeros(2, 2, 5), None, steps=1)
