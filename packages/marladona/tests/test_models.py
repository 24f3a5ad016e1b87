"""Tests for marladona.models: the GEE actor-critic, the Beta math and the y-mirror."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from marladona.models import (
    GEEActorCritic,
    actions_to_samples,
    beta_entropy,
    beta_kl,
    beta_log_prob,
    mirror_actions,
    mirror_beta_sample,
    mirror_ego,
    mirror_obs,
    scaled_beta_log_prob,
)


def _obs(n: int, k: int = 5, seed: int = 0, p_active: float = 0.6) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    ego = torch.randn(n, 18, generator=g)
    ent = torch.randn(n, k, 8, generator=g)
    mask = torch.rand(n, k, generator=g) < p_active
    return ego, ent, mask


def _net(seed: int = 0, **kw: object) -> GEEActorCritic:
    torch.manual_seed(seed)  # test-only: reproducible init
    return GEEActorCritic(**kw)  # type: ignore[arg-type]


class TestGEE:
    def test_parameter_count_matches_authors_checkpoint(self) -> None:
        # 2·(26·64+64 + 64·32+32 + 32·16+16) + (50·128+128 + 2·(128·128+128) + 128·10+10) + (… + 128+1) = 89,195
        assert sum(p.numel() for p in GEEActorCritic().parameters()) == 89_195

    def test_output_equals_naive_per_agent_loop(self) -> None:
        # Reference: the formula of spec 1.9 evaluated agent by agent, entity by entity, with torch.cat + Sequential.
        net, offset = _net(seed=1, beta_offset=1.0), 1.0
        ego, ent, mask = _obs(7, seed=1)
        mask[0, :2] = False  # empty teammate set
        mask[1] = False  # nobody at all
        critic_ego = ego + 0.01 * torch.randn(7, 18)
        alpha, beta, value = net(ego, ent, mask, critic_ego)
        for i in range(7):
            zs = []
            for o in (ego[i], critic_ego[i]):
                z = []
                for enc, slots in ((net.teammate_encoder, range(2)), (net.opponent_encoder, range(2, 5))):
                    hs = [enc(torch.cat([ent[i, j], o])) for j in slots if mask[i, j]]
                    z.append(torch.stack(hs).max(0).values if hs else torch.full((16,), -2.0))
                zs.append(torch.cat([o, *z]))
            params = F.softplus(net.actor(zs[0])) + offset
            torch.testing.assert_close(alpha[i], params[:5], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(beta[i], params[5:], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(value[i], net.critic(zs[1])[0], rtol=1e-5, atol=1e-5)

    def test_permutation_invariance_within_each_group(self) -> None:
        # Exact invariant: max-pooling ignores slot order inside a group.
        net = _net()
        ego, ent, mask = _obs(16, seed=2)
        perm = torch.tensor([1, 0, 4, 2, 3])  # swap teammates, rotate opponents
        ref = net(ego, ent, mask)
        out = net(ego, ent[:, perm], mask[:, perm])
        for a, b in zip(ref, out, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
        cross = net(ego, ent[:, torch.tensor([2, 1, 0, 3, 4])], mask[:, torch.tensor([2, 1, 0, 3, 4])])
        assert not torch.allclose(cross[0], ref[0])  # a teammate is not an opponent

    def test_garbage_in_masked_slots_changes_nothing(self) -> None:
        # Exact invariant: masked slots are zeroed before the encoder, so outputs and gradients are bit-identical.
        net = _net()
        ego, ent, mask = _obs(16, seed=3)
        bad = ent.clone()
        bad[~mask] = float("nan")
        bad[0, ~mask[0]] = 1e30
        outs, grads = [], []
        for e in (torch.where(mask[..., None], ent, torch.zeros(())), bad):
            net.zero_grad()
            a, b, v = net(ego, e, mask)
            (a.sum() + b.sum() + v.sum()).backward()
            outs.append((a, b, v))
            grads.append(torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None]))
        for x, y in zip(outs[0], outs[1], strict=True):
            assert torch.equal(x, y)
        assert torch.isfinite(grads[1]).all()
        assert torch.equal(grads[0], grads[1])

    def test_empty_teammate_set_gives_fill(self) -> None:
        net = _net(empty_fill=-2.0)
        ego, ent, mask = _obs(4, seed=4)
        mask[:, :2] = False
        x = net.encode(ego, ent, mask)
        assert torch.equal(x[:, 18:34], torch.full((4, 16), -2.0))
        assert torch.isfinite(x).all()

    def test_one_v_one_has_no_teammate_slots(self) -> None:
        net = _net(max_teammates=0, max_opponents=1)
        assert net.num_entities == 1
        ego, ent, mask = _obs(3, k=1, seed=5, p_active=1.0)
        x = net.encode(ego, ent, mask)
        assert torch.equal(x[:, 18:34], torch.full((3, 16), -2.0))
        assert sum(p.numel() for p in net.parameters()) == 89_195  # same parameter set for any team size

    def test_critic_ego_none_equals_critic_ego_same(self) -> None:
        net = _net()
        ego, ent, mask = _obs(8, seed=6)
        a = net(ego, ent, mask)
        b = net(ego, ent, mask, ego.clone())  # stacked (2, N, K) path
        for x, y in zip(a, b, strict=True):
            torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-6)

    def test_beta_offset_bounds_concentrations(self) -> None:
        ego, ent, mask = _obs(64, seed=7)
        alpha, beta, _ = _net(beta_offset=1.0)(ego, ent, mask)
        assert (alpha > 1).all()
        assert (beta > 1).all()
        alpha0, _, _ = _net(beta_offset=0.0)(ego, ent, mask)
        torch.testing.assert_close(alpha0 + 1.0, alpha)  # same init seed: offset is the only difference

    def test_config_rebuilds_model(self) -> None:
        net = _net(max_teammates=1, max_opponents=2, actor_hidden=(32,), critic_hidden=[16, 16])
        clone = GEEActorCritic(**net.config)
        clone.load_state_dict(net.state_dict())
        ego, ent, mask = _obs(5, k=3, seed=8)
        assert torch.equal(net(ego, ent, mask)[0], clone(ego, ent, mask)[0])

    def test_act_log_prob_matches_evaluate_and_torch(self) -> None:
        net = _net()
        ego, ent, mask = _obs(32, seed=9)
        out = net.act(ego, ent, mask, generator=torch.Generator().manual_seed(0))
        assert ((out.actions >= -1) & (out.actions <= 1)).all()
        ev = net.evaluate(ego, ent, mask, out.actions)
        torch.testing.assert_close(ev.log_prob, out.log_prob)
        s = (out.actions + 1) / 2  # torch's Beta on s, an independent density
        ref = torch.distributions.Beta(out.alpha, out.beta).log_prob(s).sum(-1)
        torch.testing.assert_close(out.log_prob, ref, rtol=1e-4, atol=1e-4)
        again = net.act(ego, ent, mask, generator=torch.Generator().manual_seed(0))
        assert torch.equal(again.actions, out.actions)  # the generator alone fixes the sample

    def test_act_sample_mean_matches_deterministic(self) -> None:
        # Law of large numbers: the mean of 20k samples of a = 2s − 1 is the deterministic 2α/(α+β) − 1.
        net = _net()
        ego, ent, mask = _obs(1, seed=10)
        rep = (20_000, 1)
        out = net.act(
            ego.repeat(rep), ent.repeat(20_000, 1, 1), mask.repeat(rep), generator=torch.Generator().manual_seed(1)
        )
        det = net.act_deterministic(ego, ent, mask)
        torch.testing.assert_close(out.actions.mean(0), det[0], atol=0.02, rtol=0)

    @pytest.mark.parametrize(
        ("args", "match"),
        [
            ((torch.zeros(4, 17), torch.zeros(4, 5, 8), torch.ones(4, 5, dtype=torch.bool)), "ego"),
            ((torch.zeros(4, 18), torch.zeros(4, 4, 8), torch.ones(4, 4, dtype=torch.bool)), "entities"),
            ((torch.zeros(4, 18), torch.zeros(4, 5, 8), torch.ones(4, 5)), "entity_mask"),
            (
                (torch.zeros(4, 18), torch.zeros(4, 5, 8), torch.ones(4, 5, dtype=torch.bool), torch.zeros(3, 18)),
                "critic_ego",
            ),
        ],
    )
    def test_bad_inputs_raise(self, args: tuple[Tensor, ...], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            GEEActorCritic()(*args)

    def test_bad_actions_and_config_raise(self) -> None:
        net = GEEActorCritic()
        ego, ent, mask = _obs(4)
        with pytest.raises(ValueError, match="actions"):
            net.evaluate(ego, ent, mask, torch.zeros(4, 4))
        with pytest.raises(ValueError, match="activation"):
            GEEActorCritic(activation="gelu?")
        with pytest.raises(ValueError, match="beta_offset"):
            GEEActorCritic(beta_offset=-1.0)
        with pytest.raises(ValueError, match="max_teammates"):
            GEEActorCritic(max_teammates=-1)
        with pytest.raises(ValueError, match="enc_hidden"):
            GEEActorCritic(enc_hidden=(64, 0))


class TestBetaMath:
    def _params(self) -> tuple[Tensor, Tensor]:
        g = torch.Generator().manual_seed(0)
        return 0.3 + 4 * torch.rand(200, dtype=torch.float64, generator=g), 0.3 + 4 * torch.rand(
            200, dtype=torch.float64, generator=g
        )

    def test_scaled_log_prob_is_change_of_variables(self) -> None:
        # By hand: p_a(a) = p_s((a+1)/2)·|ds/da| = p_s((a+1)/2)/2, with p_s from torch.distributions.Beta.
        alpha, beta = self._params()
        a = torch.linspace(-0.999, 0.999, 200, dtype=torch.float64)
        ref = torch.distributions.Beta(alpha, beta).log_prob((a + 1) / 2) + math.log(0.5)
        torch.testing.assert_close(scaled_beta_log_prob(alpha, beta, a), ref)
        # and it integrates to 1 over [−1, 1] (trapezoid on a fine grid, α, β ≥ 1 so no endpoint spike)
        grid = torch.linspace(-1, 1, 20_001, dtype=torch.float64)
        dens = scaled_beta_log_prob(
            torch.tensor(2.5, dtype=torch.float64), torch.tensor(1.5, dtype=torch.float64), grid
        )
        assert abs(torch.trapezoid(dens.exp(), grid).item() - 1.0) < 1e-4

    def test_log_prob_clamps_bounds(self) -> None:
        alpha = torch.tensor([0.5, 3.0])
        lp = beta_log_prob(alpha, alpha, torch.tensor([0.0, 1.0]))
        ref = torch.distributions.Beta(alpha, alpha).log_prob(torch.tensor([1e-6, 1 - 1e-6]))
        assert torch.isfinite(lp).all()
        torch.testing.assert_close(lp, ref, rtol=1e-4, atol=1e-4)

    def test_kl_equals_torch(self) -> None:
        a1, b1 = self._params()
        a2, b2 = a1.flip(0), b1.roll(3)
        ref = torch.distributions.kl_divergence(torch.distributions.Beta(a1, b1), torch.distributions.Beta(a2, b2))
        torch.testing.assert_close(beta_kl(a1, b1, a2, b2), ref)
        assert torch.equal(beta_kl(a1, b1, a1, b1), torch.zeros_like(a1))

    def test_entropy_equals_torch(self) -> None:
        alpha, beta = self._params()
        torch.testing.assert_close(beta_entropy(alpha, beta), torch.distributions.Beta(alpha, beta).entropy())


class TestMirror:
    def test_mirror_twice_is_identity(self) -> None:
        ego, ent, _ = _obs(10)
        ego2, ent2 = mirror_obs(*mirror_obs(ego, ent))
        assert torch.equal(ego2, ego)
        assert torch.equal(ent2, ent)
        a = torch.rand(10, 5) * 2 - 1
        assert torch.equal(mirror_actions(mirror_actions(a)), a)

    def test_mirror_indices(self) -> None:
        ego2, ent2 = mirror_obs(torch.ones(18), torch.ones(2, 8))
        assert torch.nonzero(ego2 < 0).flatten().tolist() == [1, 2, 4, 5, 8, 10]
        assert torch.nonzero(ent2[0] < 0).flatten().tolist() == [2, 3, 4, 5]
        assert torch.equal(mirror_ego(torch.ones(3, 18)), mirror_obs(torch.ones(3, 18), torch.ones(3, 1, 8))[0])
        assert mirror_actions(torch.ones(5)).tolist() == [1, -1, -1, 1, -1]

    def test_beta_sample_mirror_matches_action_mirror(self) -> None:
        # s -> 1 − s on dims 1, 2, 4 is a -> −a under a = 2s − 1.
        s = torch.rand(100, 5, dtype=torch.float64).clamp(1e-6, 1 - 1e-6)
        via_actions = actions_to_samples(mirror_actions(2 * s - 1))
        torch.testing.assert_close(mirror_beta_sample(s), via_actions)
        assert torch.equal(mirror_beta_sample(s)[:, [0, 3]], s[:, [0, 3]])
        edge = mirror_beta_sample(torch.zeros(1, 5))
        assert edge[0, 1].item() == pytest.approx(1 - 1e-6)  # the authors' clip

    def test_bad_mirror_shapes_raise(self) -> None:
        with pytest.raises(ValueError, match="ego"):
            mirror_obs(torch.zeros(17), torch.zeros(1, 8))
        with pytest.raises(ValueError, match="entities"):
            mirror_obs(torch.zeros(18), torch.zeros(1, 7))
        with pytest.raises(ValueError, match="actions"):
            mirror_actions(torch.zeros(4))
