"""COSMOS under real ``torch.distributed`` (gloo, 2 CPU processes): DDP and FSDP2 ``fully_shard``.

Each worker trains the same model on its half of a global batch; the test then compares the
ranks with each other (bitwise) and with one process that trains on the whole global batch.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from cosmos_optim import COSMOS, cosmos_param_groups

WORLD = 2
STEPS = 5


def _model() -> nn.Module:
    torch.manual_seed(0)
    # float64, so that the comparison with one process is tight: COSMOS's eigen/NS pipeline amplifies
    # float32 summation-order differences (5e-5 absolute after 5 steps) but not float64 ones.
    return nn.Sequential(nn.Linear(8, 12), nn.Tanh(), nn.Linear(12, 6), nn.LayerNorm(6), nn.Linear(6, 1)).double()


def _global_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1000 + step)
    return torch.randn(8, 8, generator=gen, dtype=torch.float64), torch.randn(8, 1, generator=gen, dtype=torch.float64)


def _optimizer(model: nn.Module) -> COSMOS:
    # Route the output layer (out_features 1) through COSMOS too, so every kind of weight is covered.
    return COSMOS(cosmos_param_groups(model, lr=3e-2, rank=3), lr_ratio=0.5, gamma=0.5, ns_dtype=torch.float64)


def _train(model: nn.Module, opt: torch.optim.Optimizer, rank: int, world: int) -> None:
    for step in range(STEPS):
        x, y = _global_batch(step)
        rows = slice(rank * 8 // world, (rank + 1) * 8 // world)
        opt.zero_grad(set_to_none=True)
        nn.functional.mse_loss(model(x[rows]), y[rows]).backward()
        opt.step()


def _worker(rank: int, port: int, mode: str, out: str) -> None:
    _work(rank, port, mode, out)
    # Leave without the interpreter's teardown: gloo's background threads can abort the process from
    # static destructors at exit ("terminate called without an active exception"), after the work and
    # its result file are done. An exception in _work still propagates and fails the test.
    os._exit(0)


def _work(rank: int, port: int, mode: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        model = _model()
        if mode == "fsdp2-nan":
            from torch.distributed.fsdp import fully_shard

            for layer in (model[0], model[2]):
                fully_shard(layer)
            fully_shard(model)
            opt = _optimizer(model)
            x, y = _global_batch(0)
            nn.functional.mse_loss(model(x[rank * 4 : rank * 4 + 4]), y[rank * 4 : rank * 4 + 4]).backward()
            if rank == 0:
                model[0].weight.grad.to_local()[0, 0] = float("nan")  # only rank 0's shard is bad
            try:
                opt.step()
                outcome = "stepped"
            except FloatingPointError as exc:
                outcome = str(exc)
            (Path(out) / f"{mode}-{rank}.txt").write_text(outcome)
            torch.distributed.barrier()
            return
        if mode == "fsdp1":  # FSDP1 flattens into 1-D shards, with or without use_orig_params: refused
            from torch.distributed.fsdp import FullyShardedDataParallel

            outcomes = []
            for orig in (False, True):
                wrapped = FullyShardedDataParallel(_model(), use_orig_params=orig, device_id=torch.device("cpu"))
                try:
                    COSMOS(wrapped.parameters(), lr=1e-2)
                    outcomes.append("accepted")
                except ValueError as exc:
                    outcomes.append(str(exc))
            (Path(out) / f"{mode}-{rank}.txt").write_text("\n".join(outcomes))
            torch.distributed.barrier()
            return
        if mode == "ddp":
            ddp = nn.parallel.DistributedDataParallel(model)
            _train(ddp, _optimizer(model), rank, WORLD)
            params = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            from torch.distributed.fsdp import fully_shard

            for layer in (model[0], model[2]):
                fully_shard(layer)
            fully_shard(model)
            opt = _optimizer(model)
            _train(model, opt, rank, WORLD)
            params = {k: v.full_tensor().detach().clone() for k, v in model.state_dict().items()}
            state_sizes = {
                k: tuple(v.shape) for k, v in opt.state[model[0].weight].items() if isinstance(v, torch.Tensor)
            }
            params["_local_rows"] = torch.tensor(model[0].weight.to_local().shape[0])
            params["_U_shape"] = torch.tensor(state_sizes["U"])
        torch.save(params, Path(out) / f"{mode}-{rank}.pt")
        # Both ranks leave together: tearing gloo down while the peer still talks aborts the process.
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _single_process() -> dict[str, torch.Tensor]:
    model = _model()
    _train(model, _optimizer(model), 0, 1)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["ddp", "fsdp2"])
def test_two_gloo_ranks_match_each_other_and_one_process(mode: str, tmp_path: Path) -> None:
    mp.start_processes(_worker, args=(_free_port(), mode, str(tmp_path)), nprocs=WORLD, start_method="spawn")
    ranks = [torch.load(tmp_path / f"{mode}-{r}.pt", weights_only=True) for r in range(WORLD)]
    reference = _single_process()
    for key, value in reference.items():
        assert torch.equal(ranks[0][key], ranks[1][key]), f"{key} differs between ranks"
        # Same global batch, gradients averaged by DDP / reduce-scattered by FSDP: equal up to summation order.
        torch.testing.assert_close(
            ranks[0][key], value, atol=1e-10, rtol=0, msg=lambda m, key=key: f"{key} vs one process: {m}"
        )
    if mode == "fsdp2":
        assert int(ranks[0]["_local_rows"]) == 6  # the 12x8 weight is sharded by rows: 6 per rank
        assert ranks[0]["_U_shape"].tolist() == [8, 3]  # the subspace lives on the full input side


@pytest.mark.slow
def test_fsdp2_non_finite_shard_stops_every_rank(tmp_path: Path) -> None:
    # A NaN in rank 0's rows only: every rank must refuse the step (a rank that went on would hang in
    # the gathers of the update); rank 0 names the parameter, rank 1 says it came from another rank.
    mp.start_processes(_worker, args=(_free_port(), "fsdp2-nan", str(tmp_path)), nprocs=WORLD, start_method="spawn")
    outcomes = [(tmp_path / f"fsdp2-nan-{r}.txt").read_text() for r in range(WORLD)]
    assert "non-finite gradient in param group 0 param 0 (0.weight)" in outcomes[0]
    assert "non-finite gradient on another rank" in outcomes[1]


@pytest.mark.slow
def test_fsdp1_parameters_are_refused_with_a_pointer_to_fsdp2(tmp_path: Path) -> None:
    # review finding: FSDP1's flattened 1-D shards went to AdamW without a word
    mp.start_processes(_worker, args=(_free_port(), "fsdp1", str(tmp_path)), nprocs=WORLD, start_method="spawn")
    for r in range(WORLD):
        outcomes = (tmp_path / f"fsdp1-{r}.txt").read_text().splitlines()
        assert len(outcomes) == 2  # use_orig_params False, True
        for outcome in outcomes:
            assert "param group 0 param 0" in outcome
            assert "belongs to an FSDP1 (FullyShardedDataParallel) module" in outcome
            assert "fully_shard" in outcome
