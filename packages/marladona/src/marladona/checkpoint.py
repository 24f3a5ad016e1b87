"""Checkpoints: atomic writes, and loading a policy for play or evaluation."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from marladona.models import GEEActorCritic


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same directory, then rename it over ``path``
    (an interrupted write never leaves a truncated checkpoint)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a checkpoint is a normal file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :class:`marladona.train.Trainer` (or :func:`save_policy`).

    Raises:
        ValueError: the path is missing, a directory, or not a marladona checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist or is not a file")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)  # no arbitrary pickled code
    except Exception as exc:  # corrupt or foreign file
        raise ValueError(f"checkpoint {str(path)!r} could not be read: {exc}") from exc
    if not isinstance(ckpt, dict) or "ppo" not in ckpt or "model_config" not in ckpt["ppo"]:
        raise ValueError(f"checkpoint {str(path)!r} is not a marladona checkpoint (no 'ppo' model state)")
    return ckpt


def load_policy(
    path: str | Path, device: torch.device | str = "cpu", max_team_size: int | None = None
) -> GEEActorCritic:
    """The policy of a checkpoint, in evaluation mode on ``device``.

    ``max_team_size`` rebuilds it for games of another size: the entity encoders pool over any number
    of entities and no weight depends on the slot counts, so a policy trained with up to 3 a side can
    play 5v5 (the README of the authors' code plays 5v5 with a policy trained on 1-3).
    """
    ckpt = load_checkpoint(path, device)
    config = dict(ckpt["ppo"]["model_config"])
    if max_team_size is not None:
        if max_team_size < 1:
            raise ValueError(f"max_team_size must be >= 1, got {max_team_size}")
        config.update(max_teammates=max_team_size - 1, max_opponents=max_team_size)
    model = GEEActorCritic(**config)
    model.load_state_dict(ckpt["ppo"]["model"])
    return model.to(device).eval()


def save_policy(model: GEEActorCritic, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write only the policy (weights, architecture and ``meta``, e.g. the command that trained it):
    small enough to ship, and readable by :func:`load_policy` and every ``CKPT`` argument of the CLI."""
    path = Path(path)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    policy = {"model": state, "model_config": dict(model.config)}
    save_atomic({"format": "marladona-policy-1", "ppo": policy, "meta": meta or {}}, path)
    return path
