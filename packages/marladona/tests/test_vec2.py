"""marladona.vec2: the fast CPU helpers equal the plain torch formulas they replace."""

from __future__ import annotations

import doctest

import pytest
import torch

from marladona import vec2
from marladona.config import preset
from marladona.env import SoccerEnv
from marladona.sim import pair_differences, pairs_per_agent


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["f32", "f64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return request.param  # type: ignore[no-any-return]


def test_docstring_examples() -> None:
    assert doctest.testmod(vec2).failed == 0


def test_stack2_equals_torch_stack(dtype: torch.dtype) -> None:
    x, y = torch.randn(2, 7, 3, generator=_g(), dtype=dtype)
    assert torch.equal(vec2.stack2(x, y), torch.stack((x, y), -1))
    # strided inputs and an expanded (stride-0) input of the same shape
    assert torch.equal(vec2.stack2(x[:, ::2], y[:, ::2]), torch.stack((x[:, ::2], y[:, ::2]), -1))
    col = torch.randn(7, 1, generator=_g(1), dtype=dtype)
    assert torch.equal(vec2.stack2(col.expand(7, 3), y), torch.stack((col.expand(7, 3), y), -1))
    # shapes that differ take torch.stack, which refuses them as before
    with pytest.raises(RuntimeError):
        vec2.stack2(col, y)


def test_rotations_equal_the_real_formulas(dtype: torch.dtype) -> None:
    v = torch.randn(5, 4, 2, generator=_g(), dtype=dtype) * 10
    yaw = torch.rand(5, 4, generator=_g(1), dtype=dtype) * 6.3 - 3.15
    c, s = torch.cos(yaw), torch.sin(yaw)
    ref = torch.stack((c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]), -1)
    ref_inv = torch.stack((c * v[..., 0] + s * v[..., 1], -s * v[..., 0] + c * v[..., 1]), -1)
    # the same products and sums; the scalar tail of torch's complex kernel may round the last bit
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert torch.allclose(vec2.rot(v, c, s), ref, rtol=0, atol=tol)
    assert torch.allclose(vec2.rot_inv(v, c, s), ref_inv, rtol=0, atol=tol)
    # bit for bit in the vectorised kernel (a batch the size of the simulator's)
    vb = torch.randn(4096, 6, 2, generator=_g(5), dtype=dtype)
    yb = torch.rand(4096, 6, generator=_g(6), dtype=dtype) * 6.3 - 3.15
    cb6, sb6 = torch.cos(yb), torch.sin(yb)
    refb = torch.stack((cb6 * vb[..., 0] - sb6 * vb[..., 1], sb6 * vb[..., 0] + cb6 * vb[..., 1]), -1)
    assert torch.equal(vec2.rot(vb, cb6, sb6), refb)
    # a broadcast angle: equal up to rounding (the broadcasting kernel may fuse differently)
    cb, sb = c[:, :1], s[:, :1]
    ref_b = torch.stack((cb * v[..., 0] - sb * v[..., 1], sb * v[..., 0] + cb * v[..., 1]), -1)
    assert torch.allclose(vec2.rot(v, cb, sb), ref_b, rtol=0, atol=1e-12 if dtype == torch.float64 else 1e-5)
    # a rotation and its inverse compose to the identity, also for non-contiguous v and broadcast angles
    vt = torch.randn(4, 5, 2, generator=_g(2), dtype=dtype).transpose(0, 1)
    back = vec2.rot_inv(vec2.rot(vt, c[:, :1], s[:, :1]), c[:, :1], s[:, :1])
    assert torch.allclose(back, vt, atol=1e-12 if dtype == torch.float64 else 1e-5)


def test_dot_norm_sum_and_select(dtype: torch.dtype) -> None:
    a = torch.randn(6, 3, 2, generator=_g(), dtype=dtype)
    b = torch.randn(6, 1, 2, generator=_g(1), dtype=dtype)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert torch.allclose(vec2.dot2(a, b), (a * b).sum(-1), atol=tol)
    bb = b.expand_as(a).contiguous()
    assert torch.allclose(vec2.dot2(a, bb), a[..., 0] * bb[..., 0] + a[..., 1] * bb[..., 1], rtol=0, atol=tol)
    assert torch.allclose(vec2.norm2(a), torch.linalg.vector_norm(a, dim=-1), atol=tol)
    assert vec2.norm2(a, keepdim=True).shape == (6, 3, 1)
    assert torch.allclose(vec2.sum2(a, 1), a.sum(1), atol=tol)
    assert torch.allclose(vec2.sum2(a, -3), a.sum(0), atol=tol)
    with pytest.raises(ValueError, match="dim must name a dimension before the last"):
        vec2.sum2(a, -1)
    m = torch.rand(6, 3, generator=_g(2)) > 0.5
    x, y = torch.randn(2, 6, 3, generator=_g(3), dtype=dtype)
    assert torch.equal(vec2.select(m, x, y), torch.where(m, x, y))
    assert torch.equal(vec2.select(m[..., None], x[..., None], a), torch.where(m[..., None], x[..., None], a))


def test_other_dtypes_take_the_plain_formulas() -> None:
    x, y = torch.randn(2, 4, 3, generator=_g()).to(torch.bfloat16)
    assert torch.equal(vec2.stack2(x, y), torch.stack((x, y), -1))
    m = x > 0
    assert torch.equal(vec2.select(m, x, y), torch.where(m, x, y))


def test_pair_helpers_match_a_loop_over_pairs() -> None:
    pos = torch.randn(3, 5, 2, generator=_g())
    d = pair_differences(pos)
    pairs = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    for p, (i, j) in enumerate(pairs):
        assert torch.equal(d[:, :, p], pos[:, i] - pos[:, j])  # exact: products by 0 and +-1
    flags = torch.zeros(3, len(pairs), dtype=torch.bool)
    flags[0, pairs.index((1, 3))] = True
    flags[2, pairs.index((0, 4))] = True
    hit = pairs_per_agent(flags, 5)
    expected = torch.zeros(3, 5, dtype=torch.bool)
    expected[0, [1, 3]] = True
    expected[2, [0, 4]] = True
    assert torch.equal(hit, expected)
    with pytest.raises(ValueError, match="pair columns"):
        pairs_per_agent(flags, 4)
    # one agent a side of nothing: no pairs, nobody flagged
    assert pair_differences(torch.randn(3, 1, 2)).shape == (3, 2, 0)
    assert not pairs_per_agent(torch.zeros(3, 0, dtype=torch.bool), 1).any()


def test_the_env_follows_the_plain_formulas(monkeypatch: pytest.MonkeyPatch) -> None:
    """60 steps of 3v3 games against the same run with the vec2 helpers on their torch.stack/where path
    (the complex and blend routes off; norm2 and the pair products are the same code in both runs and
    are checked above against torch's norm and a loop over pairs)."""
    cfg = preset("cpu-3v3", num_envs=64, seed=3)

    def run() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        env = SoccerEnv(cfg)
        env.reset(seed=3)
        g = torch.Generator().manual_seed(4)
        total = torch.zeros(cfg.num_envs, 2 * cfg.max_team_size)
        for _ in range(60):
            actions = torch.rand(cfg.num_envs, 2 * cfg.max_team_size, 5, generator=g) * 2 - 1
            _, reward, _, _, _ = env.step(actions)
            total += reward
        return env.state.pos.clone(), env.state.ball_pos.clone(), total

    fast = run()
    monkeypatch.setattr(vec2, "_complex_ok", lambda x: False)
    plain = run()
    for got, want in zip(fast, plain, strict=True):
        assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()


def test_constant_cache_shares_one_copy_in_eager_calls() -> None:
    calls: list[int] = []

    @vec2.constant_cache
    def ramp(n: int) -> torch.Tensor:
        calls.append(n)
        return torch.arange(n)

    first = ramp(3)
    assert ramp(3) is first
    assert torch.equal(ramp(4), torch.arange(4))
    assert calls == [3, 4]
    assert ramp.__name__ == "ramp"
