"""Checkpoints: one file holding everything a run needs to continue exactly where it stopped.

``RUNDIR/checkpoint.pt`` (torch.save of a dict) carries G, D, both optimizers, step, epoch and batch position
(the data order is a pure function of (seed, epoch), so the position is the whole data-order state), the run
config, the training-data sampling fraction (3DGAN), and the RNG states of **all** ranks (torch's global CPU
generator, the noise generator; CUDA where used). Rank 0 writes it atomically: temporary name, fsync, rename.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

CHECKPOINT_NAME = "checkpoint.pt"


def checkpoint_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / CHECKPOINT_NAME


def rng_state(noise_gen: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "noise": noise_gen.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, noise_gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    noise_gen.set_state(state["noise"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: str | os.PathLike, payload: dict) -> Path:
    path = checkpoint_path(run_dir)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(run_dir: str | os.PathLike) -> dict:
    return torch.load(checkpoint_path(run_dir), map_location="cpu", weights_only=False)
