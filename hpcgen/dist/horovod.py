"""The Horovod engine: ring all-reduce inside the optimizer, over MPI (``mpirun``) or Gloo (``horovodrun --gloo``).

Rank, size and local rank come from Horovod itself (``hvd.init()`` reads its launcher). ``wrap_model`` broadcasts
rank 0's parameters and buffers once and returns the model unchanged, so ``unwrap`` is the identity; gradients are
averaged by ``hvd.DistributedOptimizer`` (``op=hvd.Average``), whose hooks start an all-reduce as each gradient is
accumulated and whose ``step()`` waits for them. ``wrap_optimizer`` keeps a state loaded before wrapping (Horovod's
wrapper alone starts from an empty one) and broadcasts rank 0's only when some rank has state.

With two optimizers (G and D) Horovod needs each backward to touch only the parameters of the optimizer that steps
next (horovod#2559): the GAN step of ``hpcgen.dist.engine`` guarantees it by detaching the fake batch in the D step
and freezing D (``requires_grad_(False)``) in the G step, so no hook of the other optimizer fires.

Horovod 0.28.1 (its last release) must be built from source against torch >= 2.1: ``make horovod``
(scripts/build-horovod.sh).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hpcgen.dist.launch import process_ranks, select_device
from hpcgen.errors import UserError

NOT_INSTALLED = ("--engine horovod: Horovod is not installed in this environment; build it with `make horovod` "
                 "(scripts/build-horovod.sh)")


def _import_hvd():
    try:
        import horovod.torch as hvd
    except ImportError:
        raise UserError(NOT_INSTALLED) from None
    return hvd


class HorovodEngine:
    """``Engine`` over ``horovod.torch`` (see ``hpcgen.dist.engine.Engine`` for the contract)."""

    name = "horovod"

    def __init__(self, device: str = "auto"):
        self._hvd = hvd = _import_hvd()
        hvd.init()
        self.rank, self.world_size, self.local_rank = hvd.rank(), hvd.size(), hvd.local_rank()
        self.launcher = process_ranks().launcher
        self.device = select_device(self.local_rank, device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)

    def wrap_model(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        self._hvd.broadcast_parameters(model.state_dict(), root_rank=0)
        return model

    def unwrap(self, model: nn.Module) -> nn.Module:
        return model

    def wrap_optimizer(self, opt: torch.optim.Optimizer, model: nn.Module) -> torch.optim.Optimizer:
        hvd = self._hvd
        state = opt.state_dict()
        opt = hvd.DistributedOptimizer(opt, named_parameters=list(model.named_parameters()), op=hvd.Average)
        # DistributedOptimizer builds a new optimizer over the same param_groups with an empty state: keep the state
        # (a resumed run loaded it before wrapping, as it does with DDP).
        opt.load_state_dict(state)
        # A fresh optimizer is identical everywhere (empty state); a resumed one may not be. Horovod fills an empty
        # state by a zero-gradient step() before broadcasting, which is not a no-op (AdamW's decoupled weight decay
        # shrinks the weights, the step count advances): only broadcast when some rank has state. The decision is
        # collective, so every rank takes the same branch.
        if self.allreduce_sum(torch.tensor([float(len(opt.state) > 0)])).item() > 0:
            hvd.broadcast_optimizer_state(opt, root_rank=0)
            # a rank that had no state took that zero-gradient step: give it rank 0's parameters again
            hvd.broadcast_parameters(model.state_dict(), root_rank=0)
        return opt

    def broadcast_buffers(self, model: nn.Module, root: int = 0) -> None:
        self._hvd.broadcast_parameters(list(model.named_buffers()), root_rank=root)

    def allreduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        return self._hvd.allreduce(t.detach().to(self.device), op=self._hvd.Sum).to(t.device)

    def allreduce_mean(self, t: torch.Tensor) -> torch.Tensor:
        return self._hvd.allreduce(t.detach().to(self.device), op=self._hvd.Average).to(t.device)

    def broadcast_object(self, obj: Any, root: int = 0) -> Any:
        return self._hvd.broadcast_object(obj, root_rank=root)

    def allgather_object(self, obj: Any) -> list:
        return self._hvd.allgather_object(obj)

    def barrier(self) -> None:
        self._hvd.barrier()

    def close(self) -> None:
        self._hvd.shutdown()

    def __enter__(self) -> HorovodEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
