"""The torch DistributedDataParallel engine: gloo on CPU, NCCL on CUDA, rendezvous from the launcher's environment.

Rank, size and local rank come from ``hpcgen.dist.launch.discover`` (mpirun, srun, torchrun, hand-set RANK/WORLD_SIZE),
rank 0's address from ``resolve_master_addr``; the rendezvous is a ``TCPStore`` that rank 0 hosts on
``master_port``. A world of one process needs no launcher and no process group: models are returned bare and the
collectives are identities.

The GAN step (see ``hpcgen.dist.engine``) calls the wrapped D twice (real, then fake) before one backward. DDP accepts
that with its defaults (``find_unused_parameters=False``, no ``static_graph``): each forward re-arms the reducer, each
parameter's gradient is accumulated once per backward, so each bucket is all-reduced once (tests/test_engines.py
checks the result against one process on the whole batch). Forward buffer sync (``broadcast_buffers=True``) makes the
second forward re-broadcast rank 0's BatchNorm buffers in place; DDP writes them under
``torch.autograd._unsafe_preserve_version_counter``, so autograd raises no in-place error although eval-mode
BatchNorm saved them for backward (checked in torch 2.13, train and eval mode). The G step calls ``unwrap(D)``:
calling the wrapped, frozen D works too, but re-broadcasts D's buffers for nothing, and the bare call is what Horovod
does.

A missing or unreachable peer fails the rendezvous after ``timeout_s`` with a ``UserError`` (one line, naming the
address, the rank and the launcher); a peer that dies later fails the next collective (gloo: "Connection closed by
peer") and the launcher (mpirun, srun, torchrun) then ends the job.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from hpcgen.dist.launch import discover, resolve_master_addr, select_device
from hpcgen.errors import UserError


# torch 2.13 renamed DDP's ``broadcast_buffers`` to ``forward_sync_buffers`` (the old name warns); same meaning.
_SYNC_BUFFERS_KW = next(kw for kw in ("forward_sync_buffers", "broadcast_buffers")
                        if kw in inspect.signature(DistributedDataParallel).parameters)


class DDPEngine:
    """``Engine`` over ``torch.distributed`` (see ``hpcgen.dist.engine.Engine`` for the contract)."""

    name = "ddp"

    def __init__(self, device: str = "auto", timeout_s: float = 120.0, environ: Mapping[str, str] = os.environ):
        info = discover(environ)
        self.launcher = info.launcher
        self.rank, self.world_size = info.rank, info.world_size
        self.local_rank = info.local_rank
        self.device = select_device(info.local_rank, device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if self.world_size > 1:
            self._init_process_group(resolve_master_addr(info), info.master_port, timeout_s)

    def _init_process_group(self, addr: str, port: int, timeout_s: float) -> None:
        timeout = timedelta(seconds=timeout_s)
        backend = "nccl" if self.device.type == "cuda" else "gloo"
        try:
            # Rank 0 hosts the store and waits for all ranks to connect; the others retry connecting. Both give up
            # after ``timeout``, so a missing peer fails here instead of hanging in the first collective.
            store = dist.TCPStore(addr, port, self.world_size, is_master=self.rank == 0, timeout=timeout,
                                  wait_for_workers=True)
            self._store = store
            dist.init_process_group(backend, store=store, rank=self.rank, world_size=self.world_size,
                                    timeout=timeout)
        except (RuntimeError, OSError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"DDP rendezvous of rank {self.rank} of {self.world_size} at {addr}:{port} failed within "
                f"{timeout_s:g} s ({detail}); check that all {self.world_size} processes were started "
                f"(launcher: {self.launcher}) and reach that address (MASTER_ADDR, MASTER_PORT)") from None

    @property
    def _distributed(self) -> bool:
        return self.world_size > 1

    def wrap_model(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        if not self._distributed:
            return model
        # DDP's constructor broadcasts rank 0's parameters and buffers; broadcast_buffers=True repeats the buffer
        # broadcast before every forward, so BatchNorm's running statistics follow rank 0 during training.
        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                                       **{_SYNC_BUFFERS_KW: True})

    def unwrap(self, model: nn.Module) -> nn.Module:
        return model.module if isinstance(model, DistributedDataParallel) else model

    def wrap_optimizer(self, opt: torch.optim.Optimizer, model: nn.Module) -> torch.optim.Optimizer:
        return opt  # DDP's reducer has already averaged the gradients when backward() returns

    def broadcast_buffers(self, model: nn.Module, root: int = 0) -> None:
        if not self._distributed:
            return
        with torch.no_grad():
            for buf in self.unwrap(model).buffers():
                dist.broadcast(buf, src=root)

    def allreduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        out = t.detach().to(self.device, copy=True)
        if self._distributed:
            dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out.to(t.device)

    def allreduce_mean(self, t: torch.Tensor) -> torch.Tensor:
        return self.allreduce_sum(t) / self.world_size

    def broadcast_object(self, obj: Any, root: int = 0) -> Any:
        if not self._distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=root)
        return box[0]

    def allgather_object(self, obj: Any) -> list:
        if not self._distributed:
            return [obj]
        out: list = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self._distributed:
            dist.barrier(device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def close(self) -> None:
        """Leave in order: nobody destroys the process group while a peer still uses it, and rank 0's store is
        torn down here rather than during interpreter exit, where its server thread made C++ call
        std::terminate ("terminate called without an active exception", SIGABRT) in about 1 of 6 runs."""
        if dist.is_initialized():
            try:
                dist.barrier()
            finally:
                dist.destroy_process_group()
        store, self._store = getattr(self, "_store", None), None
        del store
        import gc

        gc.collect()

    def __enter__(self) -> DDPEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
