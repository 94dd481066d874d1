"""The one small interface the GAN loop uses for data parallelism, and the factory for its two real engines.

An engine owns the process group (or Horovod's runtime) of one job. The loop never asks which engine it has; it
writes the two-optimizer GAN step once::

    D, G = engine.wrap_model(D), engine.wrap_model(G)
    opt_D, opt_G = engine.wrap_optimizer(opt_D, D), engine.wrap_optimizer(opt_G, G)
    # D step: two forwards of the *wrapped* D, so BatchNorm never mixes real and fake batches
    fake = G(z)
    opt_D.zero_grad(); (loss(D(real), 1) + loss(D(fake.detach()), 0)).backward(); opt_D.step()
    # G step: D frozen and called bare, so no DDP reducer / Horovod hook of D fires (cf. horovod#2559)
    for p in D.parameters(): p.requires_grad_(False)
    opt_G.zero_grad(); loss(engine.unwrap(D)(G(z)), 1).backward(); opt_G.step()
    for p in D.parameters(): p.requires_grad_(True)

(Reusing ``fake`` instead of a second ``G(z)`` in the G step also works on both engines.)

Both engines average gradients over ranks (the *mean*, so the learning rate means the same at any world size).
Parameters stay identical on all ranks; BatchNorm running statistics do not (each rank updates them from its own
batch: DDP re-broadcasts rank 0's before every forward of a wrapped model, Horovod never) — call
``broadcast_buffers`` before evaluating or checkpointing.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from hpcgen.config import ENGINES
from hpcgen.errors import UserError


@runtime_checkable
class Engine(Protocol):
    name: str  # "ddp" | "horovod"
    launcher: str  # who started the process: hpcgen.dist.launch.LAUNCHERS
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    def wrap_model(self, model: nn.Module) -> nn.Module:
        """Move ``model`` to ``device``, give every rank rank 0's parameters and buffers; return what to call."""

    def unwrap(self, model: nn.Module) -> nn.Module:
        """The bare module behind ``wrap_model``'s result (forward without gradient synchronisation)."""

    def wrap_optimizer(self, opt: torch.optim.Optimizer, model: nn.Module) -> torch.optim.Optimizer:
        """An optimizer whose ``step`` applies the rank-mean of the gradients of ``model``'s parameters."""

    def broadcast_buffers(self, model: nn.Module, root: int = 0) -> None:
        """Copy ``root``'s buffers (BatchNorm running statistics) into every rank's ``model``, in place."""

    def allreduce_mean(self, t: torch.Tensor) -> torch.Tensor:
        """A new tensor: the element-wise mean of ``t`` over ranks (floating point)."""

    def allreduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        """A new tensor: the element-wise sum of ``t`` over ranks."""

    def broadcast_object(self, obj: Any, root: int = 0) -> Any:
        """``root``'s picklable ``obj`` on every rank."""

    def allgather_object(self, obj: Any) -> list:
        """Every rank's picklable ``obj``, in rank order."""

    def barrier(self) -> None: ...

    def close(self) -> None: ...


def make_engine(name: str, device: str = "auto", timeout_s: float = 120.0) -> Engine:
    """Start the data-parallel engine ``name`` ("ddp" or "horovod") for this process.

    ``device``: "auto" (the local GPU when CUDA is available, else CPU), "cpu" or "cuda". ``timeout_s`` bounds the
    DDP rendezvous and each collective (Horovod has its own stall checks).
    """
    if name == "ddp":
        from hpcgen.dist.ddp import DDPEngine

        return DDPEngine(device=device, timeout_s=timeout_s)
    if name == "horovod":
        from hpcgen.dist.horovod import HorovodEngine

        return HorovodEngine(device=device)
    raise UserError(f"--engine {name!r}: expected one of {', '.join(ENGINES)}")


def state_sha256(module: nn.Module, buffers: bool = True) -> str:
    """A digest of ``module``'s parameters (and buffers): equal on two ranks iff their tensors are bit-identical."""
    h = hashlib.sha256()
    items = module.state_dict().items() if buffers else module.named_parameters()
    for key, t in items:
        h.update(key.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
