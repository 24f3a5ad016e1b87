#!/usr/bin/env python3
"""CUDA correctness and step-time overhead of the R³M loss (run by ``make gpu-check``).

Three measurements, in one process, written as ``gpu_check.json`` and ``gpu_check.md`` under ``--out``:

1. agreement: δ and the per-pair loss and its gradient on CUDA (float32, and bfloat16 inputs, which
   the loss promotes to float32 before the δ-step) against a float64 CPU reference, λ = 0.5 and 0.9;
2. reward learning: a full Adam step of the paper's 2×64 MLP reward model on T=25, D=8 segments at
   batch 1024 / 4096 / 16384 pairs, R³M relative to Bradley-Terry (the issue's target: ≤ 1.05×), and
   R³M with ``check_finite=True`` (one host sync per step) to show what the default skips;
3. DPO: a full step of a randomly initialised small GPT-2 (transformers' ``GPT2LMHeadModel`` when it
   is importable, else a torch ``nn.TransformerEncoder`` causal LM of the same shape; bfloat16
   autocast) with policy and reference forward passes, R³M-DPO relative to TRL's sigmoid DPO loss
   (the spec expects 1.00×);
4. TRL's training loop: ``R3MDPOTrainer`` against ``DPOTrainer(loss_type="sigmoid")``, whole runs of
   :func:`r3m.lm_dpo.train_lm_dpo` (skipped, and said so, where TRL is not importable).

Timings: in each round every loss runs a block of back-to-back steps (synchronised at the block's
ends only, as a training loop is), in an order rotated from round to round; the ratio to the
baseline is taken within each round and its median and quartiles over the rounds are reported, so
the host's drift cancels. ``--quick --device cpu`` runs tiny sizes so the script can be tested anywhere.

Usage: python benchmarks/gpu_check.py --out DIR [--quick] [--device cuda|cpu]
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import itertools
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from r3m.baselines import bt_loss
from r3m.functional import r3m_dpo_loss, r3m_loss
from r3m.reward_model import SegmentRewardModel


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _block_s(fn: Callable[[], object], steps: int, device: str) -> float:
    """Seconds per call of ``steps`` back-to-back calls, synchronised only at the ends (as in training)."""
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / steps


def _interleaved(
    step: Callable[[Callable[..., torch.Tensor]], None],
    losses: dict[str, Callable[..., torch.Tensor]],
    rounds: int,
    steps: int,
    device: str,
) -> dict[str, dict[str, float]]:
    """Per loss: median seconds per step and its ratio to the first loss, measured round by round.

    Each round times a block of ``steps`` steps of every loss, in an order rotated from round to
    round; a loss's ratio in a round is its block time over the first loss's block time of the same
    round, so slow drift of the host (clocks, other tenants) cancels. Reported: the median step time,
    the median ratio and its quartiles over the rounds.
    """
    names = list(losses)
    for fn in losses.values():  # warm-up: allocator, cuBLAS handles, autograd graph caches
        for _ in range(3):
            step(fn)
    blocks: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            blocks[name].append(_block_s(functools.partial(step, losses[name]), steps, device))
    out = {}
    for name in names:
        ratios = [a / b for a, b in zip(blocks[name], blocks[names[0]], strict=True)]
        q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
        out[name] = {"s": statistics.median(blocks[name]), "ratio": statistics.median(ratios), "q1": q1, "q3": q3}
    return out


def _rows(times: dict[str, dict[str, float]], base: str, **extra: Any) -> list[dict[str, Any]]:
    return [{**extra, "loss": name, "step ms": 1e3 * t["s"], f"ratio to {base}": t["ratio"],
             "ratio quartiles": f"{t['q1']:.3f} – {t['q3']:.3f}"} for name, t in times.items()]  # fmt: skip


def agreement(device: str) -> list[dict[str, Any]]:
    """Max |difference| of δ, loss and d loss/d margin on ``device`` against float64 on the CPU."""
    gen = torch.Generator().manual_seed(0)
    chosen, rejected = torch.randn(4096, generator=gen) * 3, torch.randn(4096, generator=gen) * 3
    rows = []
    for lam in (0.5, 0.9):
        kw: dict[str, Any] = {"lam": lam, "reduction": "sum"}
        ref_c = chosen.double().clone().requires_grad_()
        ref = r3m_loss(ref_c, rejected.double(), **kw)
        ref.loss.backward()  # type: ignore[no-untyped-call]
        assert ref_c.grad is not None
        for dtype in (torch.float32, torch.bfloat16):
            c = chosen.to(dtype).to(device).clone().requires_grad_()
            r = rejected.to(dtype).to(device)
            out = r3m_loss(c, r, **kw)
            out.loss.backward()  # type: ignore[no-untyped-call]
            assert c.grad is not None
            # bf16 inputs are rounded before the loss sees them: compare with the reference at the rounded values
            if dtype == torch.bfloat16:
                rc = c.detach().double().cpu().requires_grad_()
                ref_b = r3m_loss(rc, r.double().cpu(), **kw)
                ref_b.loss.backward()  # type: ignore[no-untyped-call]
                assert rc.grad is not None
                delta_ref, pp_ref, g_ref = ref_b.delta, ref_b.per_pair_loss, rc.grad
            else:
                delta_ref, pp_ref, g_ref = ref.delta, ref.per_pair_loss, ref_c.grad
            same = r3m_loss(chosen.to(dtype).clone(), rejected.to(dtype), **kw)
            rows.append({
                "lam": lam, "input dtype": str(dtype).removeprefix("torch."), "delta dtype": str(out.delta.dtype),
                "max |Δδ|": float((out.delta.double().cpu() - delta_ref).abs().max()),
                "max |Δloss|": float((out.per_pair_loss.detach().double().cpu() - pp_ref.detach()).abs().max()),
                "max |Δgrad|": float((c.grad.double().cpu() - g_ref).abs().max()),
                "max |Δδ| vs CPU same dtype": float((out.delta.cpu() - same.delta).abs().max()),
            })  # fmt: skip
    return rows


def _reward_step(model: nn.Module, opt: torch.optim.Optimizer, x_c: torch.Tensor, x_r: torch.Tensor,
                 fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:  # fmt: skip
    loss = fn(model(x_c), model(x_r))
    opt.zero_grad()
    loss.backward()  # type: ignore[no-untyped-call]
    opt.step()


def reward_steps(device: str, batches: list[int], rounds: int, steps: int) -> list[dict[str, Any]]:
    rows = []
    gen = torch.Generator().manual_seed(0)
    losses: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
        "bt": lambda a, b: bt_loss(a, b).mean(),
        "r3m": lambda a, b: r3m_loss(a, b, lam=0.5).loss,
        "r3m, check_finite": lambda a, b: r3m_loss(a, b, lam=0.5, check_finite=True).loss,
    }
    for batch in batches:
        x_c = torch.randn(batch, 25, 8, generator=gen).to(device)
        x_r = torch.randn(batch, 25, 8, generator=gen).to(device)
        model = SegmentRewardModel(8, generator=gen).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        step = functools.partial(_reward_step, model, opt, x_c, x_r)
        rows += _rows(_interleaved(step, losses, rounds, steps, device), "bt", batch=batch)
    return rows


class _CausalLM(nn.Module):
    """GPT-2-shaped causal LM from torch modules (used when transformers is not importable)."""

    def __init__(self, vocab: int, d: int, layers: int, heads: int, seq: int) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(seq, d)
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True, norm_first=True,
                                           activation="gelu")  # fmt: skip
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, vocab, bias=False)
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(seq), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        n = ids.shape[1]
        h = self.tok(ids) + self.pos(torch.arange(n, device=ids.device))
        return self.head(self.body(h, mask=self.causal[:n, :n], is_causal=True))  # type: ignore[no-any-return]


def _small_lm(vocab: int, d: int, layers: int, heads: int, seq: int) -> tuple[nn.Module, str]:
    try:
        from transformers import GPT2Config, GPT2LMHeadModel

        cfg = GPT2Config(
            vocab_size=vocab, n_positions=seq, n_embd=d, n_layer=layers, n_head=heads, bos_token_id=0, eos_token_id=0
        )
        model = GPT2LMHeadModel(cfg)

        class _Logits(nn.Module):
            def __init__(self, inner: nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, ids: torch.Tensor) -> torch.Tensor:
                return self.inner(input_ids=ids).logits  # type: ignore[no-any-return]

        return _Logits(model), "transformers GPT2LMHeadModel"
    except ImportError:
        return _CausalLM(vocab, d, layers, heads, seq), "torch TransformerEncoder causal LM"


def _seq_logps(model: nn.Module, ids: torch.Tensor, prompt_len: int) -> torch.Tensor:
    logits = model(ids)[:, :-1].float()
    logp = torch.gather(F.log_softmax(logits, -1), 2, ids[:, 1:, None]).squeeze(-1)
    return logp[:, prompt_len - 1 :].sum(-1)


def dpo_steps(
    device: str, pairs: int, seq: int, size: tuple[int, int, int, int], rounds: int, steps: int
) -> dict[str, Any]:
    vocab, d, layers, heads = size
    torch.manual_seed(0)
    policy, kind = _small_lm(vocab, d, layers, heads, seq)
    reference, _ = _small_lm(vocab, d, layers, heads, seq)
    policy, reference = policy.to(device), reference.to(device).eval()
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-5)
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(vocab, (2 * pairs, seq), generator=gen).to(device)  # chosen rows, then rejected rows
    prompt_len = seq // 2
    beta = 0.1
    losses: dict[str, Callable[..., torch.Tensor]] = {
        "sigmoid": lambda pc, pr, rc, rr: -F.logsigmoid(beta * ((pc - rc) - (pr - rr))),
        "r3m": lambda pc, pr, rc, rr: r3m_dpo_loss(pc, pr, rc, rr, beta=beta, lam=0.5).losses,
        "r3m, check_finite": lambda pc, pr, rc, rr: (
            r3m_dpo_loss(pc, pr, rc, rr, beta=beta, lam=0.5, check_finite=True).losses
        ),
    }
    amp = torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)

    def step(fn: Callable[..., torch.Tensor]) -> None:
        with amp:
            with torch.no_grad():
                ref = _seq_logps(reference, ids, prompt_len)
            pol = _seq_logps(policy, ids, prompt_len)
            loss = fn(pol[:pairs], pol[pairs:], ref[:pairs], ref[pairs:]).mean()
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()

    rows = _rows(_interleaved(step, losses, rounds, steps, device), "sigmoid")
    return {"model": kind, "vocab": vocab, "d_model": d, "layers": layers, "heads": heads, "pairs": pairs,
            "seq": seq, "rounds": rounds, "steps": steps, "rows": rows}  # fmt: skip


def trainer_steps(device: str, quick: bool, repeats: int) -> dict[str, Any]:
    """TRL's own training loop: ``R3MDPOTrainer`` against ``DPOTrainer(loss_type="sigmoid")``.

    Both through :func:`r3m.lm_dpo.train_lm_dpo` on the same records, model size and seed, so they differ only
    in the trainer. The wall time of each optimizer step is read from the progress callback (TRL logs every
    step, which reads the loss back, so each interval is a synchronised step); the median over the steps after
    the first 3 is one run's step time. Runs alternate in order; the first pair is a warm-up and is dropped; the
    ratio is taken within each pair. Needs TRL (not in the device image: ``make gpu-wheels`` fetches it).
    """
    try:
        import trl

        from r3m.lm_dpo import train_lm_dpo
        from r3m.lm_text import make_text_preferences
    except ImportError as exc:
        return {"skipped": f"TRL is not importable here ({exc}); carry it with `make gpu-wheels`", "rows": []}
    import tempfile

    n_pairs, batch, layers, embd = (48, 8, 2, 32) if quick else (2048, 64, 6, 512)
    records, _ = make_text_preferences(n_pairs, flip_rate=0.2, seed=0, max_operand=9)
    per_step: dict[str, list[float]] = {"sigmoid": [], "r3m": []}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(repeats + 1):
            for loss in ("sigmoid", "r3m") if k % 2 == 0 else ("r3m", "sigmoid"):
                stamps: list[float] = []
                train_lm_dpo(records, loss=loss, out_dir=Path(tmp) / f"{loss}-{k}", epochs=1, batch_size=batch,
                             n_layer=layers, n_embd=embd, device=device, seed=0,
                             progress=lambda step, total, logs, stamps=stamps: stamps.append(time.perf_counter()))  # fmt: skip
                gaps = [b - a for a, b in itertools.pairwise(stamps[:-1])][3:]  # the last call is the summary log
                if k > 0:
                    per_step[loss].append(statistics.median(gaps))
    ratios = [r / s for r, s in zip(per_step["r3m"], per_step["sigmoid"], strict=True)]
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    rows = [{"trainer": name, "median step ms": 1e3 * statistics.median(t),
             "ratio to DPOTrainer (median)": statistics.median(r / s for r, s in zip(t, per_step["sigmoid"], strict=True)),
             "ratio quartiles": "-" if name == "sigmoid" else f"{q[0]:.3f} / {q[2]:.3f}"}
            for name, t in (("sigmoid", per_step["sigmoid"]), ("r3m", per_step["r3m"]))]  # fmt: skip
    return {"trl": trl.__version__, "pairs": n_pairs, "batch": batch, "layers": layers, "d_model": embd,
            "steps_per_run": n_pairs // batch, "repeats": repeats, "rows": rows}  # fmt: skip


def _table(rows: list[dict[str, Any]]) -> list[str]:
    keys = list(rows[0])
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    return ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)] + [
        "| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test that runs anywhere)")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: no CUDA device")
        return 2
    if args.quick:
        batches, rounds, steps, pairs, seq, size = [256], 3, 2, 2, 16, (512, 32, 2, 2)
    else:
        batches, rounds, steps, pairs, seq, size = [1024, 4096, 16384], 30, 10, 8, 256, (50257, 512, 6, 8)
    t0 = time.perf_counter()
    agree = agreement(args.device)
    reward = reward_steps(args.device, batches, rounds, steps)
    dpo = dpo_steps(args.device, pairs, seq, size, max(3, rounds // 3), max(1, steps // 3))
    trainer = trainer_steps(args.device, args.quick, 2 if args.quick else 3)
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    lines = [f"# r3m gpu_check on {device_name}", "",
             "## 1. agreement with a float64 CPU reference (4096 pairs, margins ~ N(0, 18))", "",
             *_table(agree), "",
             f"## 2. reward learning: full Adam step, 2×64 MLP, T=25, D=8 ({rounds} rounds of {steps}-step blocks, "
             "order rotated each round; medians, ratio quartiles over the rounds)", "",
             *_table(reward), "",
             f"## 3. DPO step: {dpo['model']}, d={dpo['d_model']}, {dpo['layers']} layers, vocab {dpo['vocab']}, "
             f"{dpo['pairs']} pairs × {dpo['seq']} tokens, bf16 autocast, policy + reference forward "
             f"({dpo['rounds']} rounds of {dpo['steps']}-step blocks)", "",
             *_table(dpo["rows"]), "",
             "## 4. TRL's training loop: R3MDPOTrainer against DPOTrainer(loss_type='sigmoid'), r3m.lm_dpo.train_lm_dpo, "
             + (f"TRL {trainer['trl']}, {trainer['layers']}×{trainer['d_model']} GPT-2 on the addition task, "
                f"{trainer['pairs']} pairs, batch {trainer['batch']} ({trainer['steps_per_run']} steps a run, "
                f"{trainer['repeats']} alternating pairs of runs after a warm-up pair; median step time)"
                if "skipped" not in trainer else trainer["skipped"]), "",
             *(_table(trainer["rows"]) if trainer["rows"] else []), "",
             f"Date: {stamp}  ", f"Device: {device_name}; torch {torch.__version__}; "
             f"{time.perf_counter() - t0:.0f} s", ""]  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"date": stamp, "device": device_name, "torch": torch.__version__, "rounds": rounds, "steps": steps,
              "agreement": agree,
              "reward_steps": reward, "dpo": dpo, "trainer": trainer}  # fmt: skip
    (args.out / "gpu_check.json").write_text(json.dumps(record, indent=2) + "\n")
    (args.out / "gpu_check.md").write_text("\n".join(lines))
    print("\n".join(lines))
    # float32 on the device: δ within float32 rounding of float64 and equal to the CPU's at the same dtype
    bad = [r for r in agree if r["input dtype"] == "float32" and (
        r["max |Δδ|"] > 1e-5 or r["max |Δδ| vs CPU same dtype"] > 1e-5)]  # fmt: skip
    if bad:
        print(f"gpu_check: {args.device} disagrees with the reference: {bad}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
