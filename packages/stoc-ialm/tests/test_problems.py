"""Tests of stoc_ialm.problems: closed-form oracles against autograd, the torch-model path, unbiasedness, counting."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from stoc_ialm.datasets import Dataset, load, synthetic
from stoc_ialm.problem import Problem
from stoc_ialm.problems import Constraint, FairnessDP, NeymanPearson, TorchModelProblem, margin_loss
from stoc_ialm.prox import L1, Sum, Zero

F64 = torch.float64


def _small(n: int = 40, d: int = 4, seed: int = 0) -> Dataset:
    return synthetic(n=n, d=d, seed=seed)


def _random_x(dim: int, seed: int, scale: float = 1.0) -> Tensor:
    return scale * torch.randn(dim, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _random_idx(n: int, size: int, seed: int) -> Tensor:
    return torch.randint(0, n, (size,), generator=torch.Generator().manual_seed(seed))  # with repeats


def _autograd(fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    xr = x.clone().requires_grad_(True)
    value = fn(xr)
    (g,) = torch.autograd.grad(value, xr)
    return value.detach(), g


def _sigmoid_loss(z: Tensor, y: int) -> Tensor:  # written from the definition, independent of margin_loss
    return torch.sigmoid(-z) if y == 1 else torch.sigmoid(z)


def _logistic_loss(z: Tensor, y: int) -> Tensor:
    return torch.log1p(torch.exp(-z)) if y == 1 else torch.log1p(torch.exp(z))


class TestMarginLoss:
    def test_margin_loss_hand_values_at_zero(self) -> None:
        # σ(0) = 1/2, σ'(0) = 1/4; log(1 + e^0) = log 2, derivative −1/2 (label 1) or +1/2 (label 0).
        z = torch.zeros(1, dtype=F64)
        assert [float(v) for v in margin_loss(z, 1.0, "sigmoid")] == [0.5, -0.25]
        assert [float(v) for v in margin_loss(z, -1.0, "sigmoid")] == [0.5, 0.25]
        value, slope = margin_loss(z, -1.0, "logistic")
        assert math.isclose(float(value), math.log(2.0), rel_tol=1e-15)
        assert float(slope) == 0.5

    @pytest.mark.parametrize("loss", ["sigmoid", "logistic"])
    @pytest.mark.parametrize("y", [0, 1])
    def test_margin_loss_slope_equals_autograd(self, loss: str, y: int) -> None:
        z = torch.linspace(-30, 30, 61, dtype=F64).requires_grad_(True)
        ref = (_sigmoid_loss if loss == "sigmoid" else _logistic_loss)(z, y)
        (g,) = torch.autograd.grad(ref.sum(), z)
        value, slope = margin_loss(z.detach(), 1.0 if y == 1 else -1.0, loss)  # type: ignore[arg-type]
        torch.testing.assert_close(value, ref.detach(), rtol=1e-12, atol=1e-300)
        # atol: autograd of σ(z) forms σ(1 − σ), whose tail (z ≫ 0) loses digits; the closed form σ(z)σ(−z) does not
        torch.testing.assert_close(slope, g, rtol=1e-12, atol=1e-15)


class TestNeymanPearson:
    @pytest.mark.parametrize("loss", ["sigmoid", "logistic"])
    def test_np_oracles_equal_autograd(self, loss: str) -> None:
        # Autograd of the loss written from its definition on the positives / negatives, random x and batches.
        data = _small()
        prob = NeymanPearson(data, alpha=0.3, loss=loss)  # type: ignore[arg-type]
        pos, neg = data.X[data.y == 1], data.X[data.y == 0]
        ell = _sigmoid_loss if loss == "sigmoid" else _logistic_loss
        for seed in range(3):
            x = _random_x(prob.dim, seed)
            for idx_f, idx_c in [(None, None), (_random_idx(prob.n_f, 7, seed), _random_idx(prob.n_c[0], 5, seed + 9))]:
                a_f = pos if idx_f is None else pos[idx_f]
                a_c = neg if idx_c is None else neg[idx_c]
                ref_f = _autograd(lambda v, a=a_f: ell(a @ v, 1).mean(), x)
                ref_c = _autograd(lambda v, a=a_c: ell(a @ v, 0).mean() - 0.3, x)
                for got, ref in ((prob._f(x, idx_f, True), ref_f), (prob._c(0, x, idx_c, True), ref_c)):
                    torch.testing.assert_close(got[0], ref[0], rtol=1e-13, atol=1e-15)
                    torch.testing.assert_close(got[1], ref[1], rtol=1e-12, atol=1e-15)

    def test_np_gradient_matches_finite_differences(self) -> None:
        # Central differences with step 1e-6 along a random direction (error O(h^2) ~ 1e-12, round-off ~1e-10).
        prob = NeymanPearson(load("wine"), alpha=0.2)
        x, v = _random_x(prob.dim, 1, 0.3), _random_x(prob.dim, 2)
        h = 1e-6
        for fn in (lambda u: prob.full_f(u, True), lambda u: prob._c(0, u, None, True)):
            g = fn(x)[1]
            assert g is not None
            fd = (fn(x + h * v)[0] - fn(x - h * v)[0]) / (2 * h)
            assert abs(float(fd - g @ v)) < 1e-8

    @pytest.mark.parametrize("loss", ["sigmoid", "logistic"])
    def test_np_equals_torch_model_problem_with_linear(self, loss: str) -> None:
        data = _small()
        prob = NeymanPearson(data, alpha=0.2, loss=loss)  # type: ignore[arg-type]
        model = nn.Linear(data.d, 1, bias=False).double()
        ell = _sigmoid_loss if loss == "sigmoid" else _logistic_loss
        generic = TorchModelProblem(
            model,
            lambda m, a: ell(m(a)[:, 0], 1),
            data.X[data.y == 1],
            [lambda m, a: ell(m(a)[:, 0], 0) - 0.2],
            ["ineq"],
            constraint_data=[data.X[data.y == 0]],
            regularizer=L1(1e-3),
        )
        assert (generic.dim, generic.n_f, generic.n_c) == (prob.dim, prob.n_f, prob.n_c)
        for seed in range(3):
            x = _random_x(prob.dim, seed)
            idx_f, idx_c = _random_idx(prob.n_f, 6, seed), _random_idx(prob.n_c[0], 6, seed + 1)
            for a, b in [
                (prob.f_grad(x, idx_f), generic.f_grad(x, idx_f)),
                (prob.c_jacobian(x, [idx_c]), generic.c_jacobian(x, [idx_c])),
                (prob.full_f(x, True), generic.full_f(x, True)),
                (prob.full_c(x, True), generic.full_c(x, True)),
            ]:
                torch.testing.assert_close(a[0], b[0], rtol=1e-13, atol=1e-15)
                torch.testing.assert_close(a[1], b[1], rtol=1e-12, atol=1e-15)
            assert prob.objective(x) == pytest.approx(generic.objective(x), rel=1e-13)
        assert prob.counter.state() == generic.counter.state()

    def test_np_regularizer_and_bias(self) -> None:
        data = load("wine")
        x = _random_x(data.d, 0)
        with_bias = NeymanPearson(data, l1=0.01)
        without = NeymanPearson(data, l1=0.01, penalize_bias=False)
        assert isinstance(with_bias.regularizer, L1)
        assert isinstance(without.regularizer, Sum)
        assert with_bias.regularizer.value(x) == pytest.approx(0.01 * float(x.abs().sum()), rel=1e-14)
        assert without.regularizer.value(x) == pytest.approx(0.01 * float(x[:-1].abs().sum()), rel=1e-14)
        assert isinstance(NeymanPearson(data, l1=0.0).regularizer, Zero)

    def test_np_metrics_hand_case(self) -> None:
        # Scores z = x0 on four samples: positives at 2, -1 and negatives at 1, -3 -> fpr 1/2, fnr 1/2.
        X = torch.tensor([[2.0, 1], [-1, 1], [1, 1], [-3, 1]], dtype=F64)
        prob = NeymanPearson(Dataset("hand", X, torch.tensor([1, 1, 0, 0])), alpha=0.5)
        assert prob.metrics(torch.tensor([1.0, 0.0], dtype=F64)) == {"fpr": 0.5, "fnr": 0.5}
        assert prob.objective(torch.zeros(2, dtype=F64)) == 0.5  # σ(0) on every positive, |x|_1 = 0


class TestFairnessDP:
    def test_fairness_full_constraints_are_the_dp_gap(self) -> None:
        # The importance-weighted mean equals the gap of group means computed directly.
        data = synthetic(n=301, d=5, seed=2)
        assert data.group is not None
        prob = FairnessDP(data, kappa=0.07)
        x = _random_x(prob.dim, 4)
        s = torch.sigmoid(data.X @ x)
        gap = s[data.group == 1].mean() - s[data.group == 0].mean()
        torch.testing.assert_close(prob.full_c(x)[0], torch.stack([gap - 0.07, -gap - 0.07]), rtol=0, atol=1e-14)
        assert prob.metrics(x)["dp_gap_score"] == pytest.approx(float(gap), abs=1e-14)

    @pytest.mark.parametrize("loss", ["logistic", "sigmoid"])
    def test_fairness_oracles_equal_autograd(self, loss: str) -> None:
        data = _small(n=30)
        assert data.group is not None
        prob = FairnessDP(data, kappa=0.1, loss=loss)  # type: ignore[arg-type]
        ell = _sigmoid_loss if loss == "sigmoid" else _logistic_loss
        n1 = int(data.group.sum())
        w = torch.where(data.group == 1, torch.tensor(30 / n1, dtype=F64), torch.tensor(-30 / (30 - n1), dtype=F64))
        for seed in range(3):
            x = _random_x(prob.dim, seed)
            idx = _random_idx(30, 9, seed)
            a, yb, wb = data.X[idx], data.y[idx], w[idx]
            refs = [
                _autograd(lambda v, a=a, yb=yb: torch.where(yb == 1, ell(a @ v, 1), ell(a @ v, 0)).mean(), x),
                _autograd(lambda v, a=a, wb=wb: (wb * torch.sigmoid(a @ v)).mean() - 0.1, x),
                _autograd(lambda v, a=a, wb=wb: (-wb * torch.sigmoid(a @ v)).mean() - 0.1, x),
            ]
            gots = [prob._f(x, idx, True), prob._c(0, x, idx, True), prob._c(1, x, idx, True)]
            for got, ref in zip(gots, refs, strict=True):
                torch.testing.assert_close(got[0], ref[0], rtol=1e-13, atol=1e-15)
                torch.testing.assert_close(got[1], ref[1], rtol=1e-12, atol=1e-15)

    def test_fairness_at_zero_has_no_gap(self) -> None:
        prob = FairnessDP(_small(), kappa=0.05)
        c = prob.full_c(prob.initial_point())[0]
        torch.testing.assert_close(c, torch.tensor([-0.05, -0.05], dtype=F64), rtol=0, atol=1e-15)
        assert prob.objective(prob.initial_point()) == pytest.approx(math.log(2.0), rel=1e-15)


class TestUnbiased:
    @pytest.mark.parametrize("kind", ["np", "fairness"])
    def test_minibatch_means_over_all_singletons_equal_full(self, kind: str) -> None:
        # Averaging the size-1 estimates over every sample is the uniform expectation: it equals the full value.
        data = _small(n=24, d=3, seed=5)
        prob: NeymanPearson | FairnessDP = NeymanPearson(data) if kind == "np" else FairnessDP(data)
        x = _random_x(prob.dim, 7)
        sums = [(prob.n_f, lambda idx: prob._f(x, idx, True))]
        sums += [(prob.n_c[i], lambda idx, i=i: prob._c(i, x, idx, True)) for i in range(prob.m)]
        fulls = [prob.full_f(x, True)] + [prob._c(i, x, None, True) for i in range(prob.m)]
        for (n, fn), full in zip(sums, fulls, strict=True):
            parts = [fn(torch.tensor([j])) for j in range(n)]
            torch.testing.assert_close(torch.stack([p[0] for p in parts]).mean(), full[0], rtol=1e-13, atol=1e-15)
            torch.testing.assert_close(torch.stack([p[1] for p in parts]).mean(0), full[1], rtol=1e-12, atol=1e-15)


class TestCounting:
    @pytest.mark.parametrize("kind", ["np", "fairness", "torch"])
    def test_oracle_counters_add_len_idx(self, kind: str) -> None:
        data = _small()
        prob: Problem
        if kind == "np":
            prob = NeymanPearson(data)
        elif kind == "fairness":
            prob = FairnessDP(data)
        else:
            prob = TorchModelProblem(
                nn.Linear(data.d, 1).double(), lambda m, a: m(a)[:, 0] ** 2, data.X, [lambda m, a: m(a)[:, 0]], ["eq"]
            )
        x = torch.zeros(prob.dim, dtype=F64)
        idxs = [_random_idx(prob.n_c[i], 3 + i, i) for i in range(prob.m)]
        prob.f_grad(x, _random_idx(prob.n_f, 5, 0))
        prob.f_grad(x, _random_idx(prob.n_f, 2, 1))
        prob.c_values(x, idxs)
        prob.c_jacobian(x, idxs)
        prob.c_jacobian(x, idxs)
        sizes = [3 + i for i in range(prob.m)]
        expected = {"f_grad": 7, "c_grad": [2 * s for s in sizes], "c_value": sizes}
        assert prob.counter.state() == expected
        prob.full_f(x, True)
        prob.full_c(x, True)
        prob.objective(x)
        prob.violation(x)
        if isinstance(prob, (NeymanPearson, FairnessDP)):
            prob.metrics(x)
        assert prob.counter.state() == expected  # full-data evaluations are free


class TestTorchModelProblem:
    def _mlp_problem(self) -> tuple[TorchModelProblem, nn.Module]:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1)).double()
        X = torch.randn(20, 3, dtype=F64)
        y = (X[:, 0] > 0).double()

        def loss(m: nn.Module, a: Tensor, t: Tensor) -> Tensor:
            return nn.functional.binary_cross_entropy_with_logits(m(a)[:, 0], t, reduction="none")

        def mean_score(m: nn.Module, a: Tensor, t: Tensor) -> Tensor:
            return torch.sigmoid(m(a)[:, 0]) - 0.4

        return TorchModelProblem(model, loss, (X, y), [mean_score], ["ineq"], names=["rate"]), model

    def test_mlp_gradient_matches_finite_differences(self) -> None:
        prob, model = self._mlp_problem()
        assert prob.dim == sum(p.numel() for p in model.parameters()) == 26
        x, v = prob.initial_point(), _random_x(prob.dim, 3)
        h = 1e-6
        idx = _random_idx(prob.n_f, 8, 0)
        for fn in (lambda u: prob._f(u, idx, True), lambda u: prob._c(0, u, idx, True)):
            g = fn(x)[1]
            assert g is not None
            fd = (fn(x + h * v)[0] - fn(x - h * v)[0]) / (2 * h)
            assert abs(float(fd - g @ v)) < 1e-8

    def test_to_model_and_initial_point(self) -> None:
        prob, model = self._mlp_problem()
        x0 = prob.initial_point()
        torch.testing.assert_close(x0, nn.utils.parameters_to_vector(model.parameters()).detach())
        x = _random_x(prob.dim, 1)
        prob.to_model(x)
        assert torch.equal(nn.utils.parameters_to_vector(model.parameters()).detach(), x)
        x[0] = 123.0  # no aliasing: the model keeps its copy
        assert float(next(model.parameters()).detach().flatten()[0]) != 123.0

    def test_unused_parameter_gets_zero_gradient(self) -> None:
        class TwoHeads(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.used = nn.Linear(2, 1, bias=False)
                self.unused = nn.Linear(2, 1, bias=False)

            def forward(self, a: Tensor) -> Tensor:
                return self.used(a)[:, 0]  # type: ignore[no-any-return]

        model = TwoHeads().double()
        X = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=F64)
        prob = TorchModelProblem(model, lambda m, a: m(a), X)
        _, g = prob.full_f(torch.zeros(4, dtype=F64), True)
        # d/dw mean(a^T w) = mean(a) = [2, 3]; the unused head gets zeros.
        assert g is not None
        assert g.tolist() == [2.0, 3.0, 0.0, 0.0]


class TestBadArguments:
    @pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5, float("nan")])
    def test_np_alpha(self, alpha: float) -> None:
        with pytest.raises(ValueError, match="alpha"):
            NeymanPearson(_small(), alpha=alpha)

    def test_np_loss_l1_and_one_class(self) -> None:
        with pytest.raises(ValueError, match="loss"):
            NeymanPearson(_small(), loss="hinge")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="l1"):
            NeymanPearson(_small(), l1=-1.0)
        one_class = Dataset("one", torch.ones(3, 2, dtype=F64), torch.ones(3, dtype=torch.int64))
        with pytest.raises(ValueError, match="data must hold both classes"):
            NeymanPearson(one_class)

    @pytest.mark.parametrize("kappa", [-0.01, float("nan")])
    def test_fairness_kappa(self, kappa: float) -> None:
        with pytest.raises(ValueError, match="kappa"):
            FairnessDP(_small(), kappa=kappa)

    def test_fairness_group(self) -> None:
        with pytest.raises(ValueError, match=r"data\.group is None"):
            FairnessDP(load("wine"))
        X = torch.ones(4, 2, dtype=F64)
        y = torch.tensor([0, 1, 0, 1])
        with pytest.raises(ValueError, match="group must have samples in both groups"):
            FairnessDP(Dataset("g", X, y, group=torch.ones(4, dtype=torch.int64)))

    def test_empty_idx(self) -> None:
        prob = NeymanPearson(_small())
        with pytest.raises(ValueError, match="idx"):
            prob.f_grad(torch.zeros(prob.dim, dtype=F64), torch.zeros(0, dtype=torch.int64))

    def test_torch_model_problem_arguments(self) -> None:
        X = torch.ones(4, 2, dtype=F64)
        good = nn.Linear(2, 1).double()

        def fn(m: nn.Module, a: Tensor) -> Tensor:
            return m(a)[:, 0]  # type: ignore[no-any-return]

        with pytest.raises(ValueError, match="float64"):
            TorchModelProblem(nn.Linear(2, 1), fn, X)
        with pytest.raises(ValueError, match="kinds"):
            TorchModelProblem(good, fn, X, [fn], [])
        with pytest.raises(ValueError, match="objective_data"):
            TorchModelProblem(good, fn, (X, torch.ones(3)))
        with pytest.raises(ValueError, match="constraint_data"):
            TorchModelProblem(good, fn, X, [fn], ["eq"], constraint_data=[])
        with pytest.raises(ValueError, match="objective_fn must be callable"):
            TorchModelProblem(good, 3.0, X)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="trainable"):
            TorchModelProblem(nn.Identity(), fn, X)
        prob = TorchModelProblem(good, lambda m, a: m(a), X, [lambda m, a: 1.0], ["eq"])
        with pytest.raises(ValueError, match=r"objective_fn must return per-sample values of shape \(4,\)"):
            prob.full_f(torch.zeros(3, dtype=F64))
        with pytest.raises(ValueError, match=r"constraint_fns\[0\] must return a tensor"):
            prob.full_c(torch.zeros(3, dtype=F64))


class TestConstraintRecords:
    """``TorchModelProblem(constraints=[Constraint(...)])`` is the parallel-list form, field for field."""

    def _parts(self) -> tuple[nn.Module, Tensor, Tensor, Callable[..., Tensor], Callable[..., Tensor]]:
        torch.manual_seed(0)
        model = nn.Linear(3, 1).double()
        X, Z = torch.randn(12, 3, dtype=F64), torch.randn(7, 3, dtype=F64)

        def obj(m: nn.Module, a: Tensor) -> Tensor:
            return torch.sigmoid(-m(a)[:, 0])

        def rate(m: nn.Module, a: Tensor) -> Tensor:
            return torch.sigmoid(m(a)[:, 0]) - 0.3

        return model, X, Z, obj, rate

    def test_records_equal_the_parallel_lists(self) -> None:
        model, X, Z, obj, rate = self._parts()
        lists = TorchModelProblem(model, obj, X, [rate, rate], ["ineq", "eq"], constraint_data=[Z, X],
                                  names=["fpr", "c1"])  # fmt: skip
        records = TorchModelProblem(model, obj, X, constraints=[Constraint(rate, Z, "ineq", "fpr"),
                                                                Constraint(rate, kind="eq")])  # fmt: skip
        assert (
            (records.kinds, records.names, records.n_c)
            == (lists.kinds, lists.names, lists.n_c)
            == (("ineq", "eq"), ("fpr", "c1"), (7, 12))
        )
        x = _random_x(records.dim, 1)
        for a, b in [
            (lists.full_c(x, True), records.full_c(x, True)),
            (lists.full_f(x, True), records.full_f(x, True)),
        ]:
            torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
            torch.testing.assert_close(a[1], b[1], rtol=0, atol=0)

    def test_bad_records(self) -> None:
        model, X, _, obj, rate = self._parts()
        with pytest.raises(ValueError, match="Constraint fn must be callable"):
            Constraint(3)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="Constraint kind must be 'eq' or 'ineq'"):
            Constraint(rate, kind="le")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="not both"):
            TorchModelProblem(model, obj, X, [rate], ["ineq"], constraints=[Constraint(rate)])
        with pytest.raises(ValueError, match=r"constraints\[0\] must be a Constraint"):
            TorchModelProblem(model, obj, X, constraints=[rate])  # type: ignore[list-item]
