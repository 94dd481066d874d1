"""Who started this process, and where is rank 0: launch discovery from the launcher's environment.

One process of a data-parallel job learns its ``rank``, ``world_size``, ``local_rank`` (its index on this node, which
picks the GPU) and the rendezvous address of rank 0 from the variables its launcher sets:

- ``torchrun``: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT (torchrun, or set by hand);
- ``horovodrun``: HOROVOD_RANK, HOROVOD_SIZE, HOROVOD_LOCAL_RANK, HOROVOD_LOCAL_SIZE (``horovodrun --gloo``);
- ``openmpi``: OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE (Open MPI's mpirun/prterun);
- ``pmi``: PMI_RANK/PMI_SIZE, or PMIX_RANK, or MV2_COMM_WORLD_*; MPI_LOCALRANKID/MPI_LOCALNRANKS (MPICH and Intel MPI
  hydra, MVAPICH2, ``srun --mpi=pmi2|pmix``, where the size and placement come from the Slurm step);
- ``slurm``: SLURM_PROCID, SLURM_STEP_NUM_TASKS (or SLURM_NTASKS), SLURM_LOCALID, SLURM_STEP_TASKS_PER_NODE
  (``srun --mpi=none``);
- ``single``: none of the above (a plain ``python`` or ``hpcgen``).

**Priority** when several families are present is the order of this list. They do overlap in practice: ``mpirun``
inside a Slurm allocation starts its daemons with ``srun``, so every MPI rank also carries that daemon step's
``SLURM_PROCID``/``SLURM_STEP_NUM_TASKS`` (one task per *node*, not per rank) — the MPI variables are the truth; and
``torchrun`` run by ``srun`` gives each worker the srun task's Slurm variables while torchrun's own describe the worker.

**Slurm steps only.** A batch script (``sbatch``) runs with ``SLURM_PROCID=0``, ``SLURM_NTASKS=<job tasks>`` and either
no ``SLURM_STEP_ID`` or the batch step's reserved id (4294967291), depending on the Slurm version; it is *one*
process, not rank 0 of ``SLURM_NTASKS`` (an salloc shell is the same). So a process counts as a Slurm task only
when ``SLURM_STEP_ID`` holds a real step number (not one of Slurm's reserved ids for the batch, extern and
interactive steps, >= 0xFFFFFFF0), and ``SLURM_STEP_NUM_TASKS`` (set by srun only) is preferred over ``SLURM_NTASKS``.

**Rank 0's address.** ``MASTER_ADDR`` when set. Else 127.0.0.1 when the launcher says all ranks share this host
(local size = world size: no look-up, no hostname resolution). Else, for an MPI launch, rank 0's hostname broadcast
over MPI (``resolve_master_addr``, a collective: every rank must call it) — exact whatever the rank mapping, so it is
preferred to the Slurm node list also when mpirun runs inside an allocation. Else, for a Slurm step, the first host of
``scontrol show hostnames $SLURM_STEP_NODELIST`` (where srun places task 0 with its default block and cyclic
distributions). **Port**: ``MASTER_PORT``, else ``29500 + SLURM_JOB_ID % 1000`` so that two jobs sharing a node do not
collide, else 29500.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from hpcgen.errors import UserError

LAUNCHERS = ("torchrun", "horovodrun", "openmpi", "pmi", "slurm", "single")
MPI_LAUNCHERS = ("openmpi", "pmi")
DEFAULT_PORT = 29500
# Slurm's reserved step ids (SLURM_PENDING_STEP, SLURM_EXTERN_CONT, SLURM_BATCH_SCRIPT, SLURM_INTERACTIVE_STEP, ...)
# start at 0xFFFFFFF0; some versions print them as negative int32.
_SLURM_SPECIAL_STEP = 0xFFFFFFF0


class ProcessRanks(NamedTuple):
    """What the launcher says about this process; no network look-ups."""

    launcher: str
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int


@dataclass(frozen=True)
class LaunchInfo:
    """This process's place in the job.

    ``master_addr`` is None only for an MPI launch over several hosts without ``MASTER_ADDR``: rank 0's hostname then
    comes from ``resolve_master_addr`` (a collective).
    """

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    launcher: str
    master_addr: str | None
    master_port: int


def _int(environ: Mapping[str, str], var: str, default: int | None = None) -> int:
    raw = environ.get(var)
    if raw is None:
        if default is None:
            raise UserError(f"{var} is not set but the launcher's other variables are; cannot place this process")
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise UserError(f"{var}={raw!r} is not an integer") from None


def _first(environ: Mapping[str, str], *names: str) -> str | None:
    return next((n for n in names if n in environ), None)


def slurm_step_running(environ: Mapping[str, str] = os.environ) -> bool:
    """True inside a task of a Slurm job step (srun), False in the batch script, an salloc shell or outside Slurm."""
    raw = environ.get("SLURM_STEP_ID")
    if raw is None or "SLURM_PROCID" not in environ:
        return False
    try:
        step = int(raw)
    except ValueError:
        return False
    return 0 <= step < _SLURM_SPECIAL_STEP


def _slurm_tasks_on_node(spec: str, node_id: int) -> int:
    """Tasks on node ``node_id`` from Slurm's compressed per-node list, e.g. ``"2(x3),1"`` → 2, 2, 2, 1."""
    counts: list[int] = []
    for part in spec.split(","):
        n, _, rep = part.partition("(x")
        counts += [int(n)] * (int(rep.rstrip(")")) if rep else 1)
    return counts[node_id]


def process_ranks(environ: Mapping[str, str] = os.environ) -> ProcessRanks:
    """Identify the launcher (priority as in the module docstring) and read rank/size/local rank/local size.

    Raises UserError naming the variable when a value is not an integer or contradicts another (rank >= size, ...).
    """
    env = environ
    if "RANK" in env and "WORLD_SIZE" in env:
        launcher, rank_v, size_v = "torchrun", "RANK", "WORLD_SIZE"
        rank, size = _int(env, rank_v), _int(env, size_v)
        lrank_v, lsize_v = "LOCAL_RANK", "LOCAL_WORLD_SIZE"
        # RANK/WORLD_SIZE set by hand (one host, env:// rendezvous) often come without the local pair.
        lrank, lsize = _int(env, lrank_v, rank), _int(env, lsize_v, size)
    elif "HOROVOD_RANK" in env and "HOROVOD_SIZE" in env:
        launcher, rank_v, size_v = "horovodrun", "HOROVOD_RANK", "HOROVOD_SIZE"
        rank, size = _int(env, rank_v), _int(env, size_v)
        lrank_v, lsize_v = "HOROVOD_LOCAL_RANK", "HOROVOD_LOCAL_SIZE"
        lrank, lsize = _int(env, lrank_v, 0), _int(env, lsize_v, 1)
    elif "OMPI_COMM_WORLD_RANK" in env:
        launcher, rank_v, size_v = "openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"
        rank, size = _int(env, rank_v), _int(env, size_v)
        lrank_v, lsize_v = "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"
        lrank, lsize = _int(env, lrank_v, 0), _int(env, lsize_v, 1)
    elif (rank_v := _first(env, "PMI_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK")) is not None:
        launcher = "pmi"
        rank = _int(env, rank_v)
        # PMIx exports no size variable: under srun the step's task count is the size.
        size_v = _first(env, "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS") or "PMI_SIZE"
        size = _int(env, size_v)
        lrank_v = _first(env, "MPI_LOCALRANKID", "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID")
        lsize_v = _first(env, "MPI_LOCALNRANKS", "MV2_COMM_WORLD_LOCAL_SIZE")
        if lrank_v is None:  # no local placement exported: treat as one rank per node (GPU 0 for each)
            lrank_v, lrank, lsize_v, lsize = "MPI_LOCALRANKID", 0, "MPI_LOCALNRANKS", 1
        else:
            lrank = _int(env, lrank_v)
            if lsize_v is None:  # srun --mpi=pmix: the local size comes from Slurm's per-node task list
                lsize_v, lsize = _slurm_local_size(env, size)
            else:
                lsize = _int(env, lsize_v)
    elif slurm_step_running(env):
        launcher, rank_v = "slurm", "SLURM_PROCID"
        size_v = "SLURM_STEP_NUM_TASKS" if "SLURM_STEP_NUM_TASKS" in env else "SLURM_NTASKS"
        rank, size = _int(env, rank_v), _int(env, size_v)
        lrank_v = "SLURM_LOCALID"
        lrank = _int(env, lrank_v, 0)
        lsize_v, lsize = _slurm_local_size(env, size)
    else:
        return ProcessRanks("single", 0, 1, 0, 1)

    if size < 1:
        raise UserError(f"{size_v}={size}: a job has at least 1 process")
    if not 0 <= rank < size:
        raise UserError(f"{rank_v}={rank} is outside 0..{size - 1} ({size_v}={size})")
    if not 1 <= lsize <= size:
        raise UserError(f"{lsize_v}={lsize} is outside 1..{size} ({size_v}={size})")
    if not 0 <= lrank < lsize:
        raise UserError(f"{lrank_v}={lrank} is outside 0..{lsize - 1} ({lsize_v}={lsize})")
    return ProcessRanks(launcher, rank, size, lrank, lsize)


def _slurm_local_size(env: Mapping[str, str], size: int) -> tuple[str, int]:
    var = _first(env, "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE")
    if var is None:
        nodes_v = _first(env, "SLURM_STEP_NUM_NODES", "SLURM_NNODES") or "SLURM_STEP_NUM_NODES"
        return nodes_v, max(1, size // _int(env, nodes_v, 1))
    node_id = _int(env, "SLURM_NODEID", 0)
    try:
        return var, _slurm_tasks_on_node(env[var], node_id)
    except (ValueError, IndexError):
        raise UserError(f"{var}={env[var]!r} does not list the tasks of node SLURM_NODEID={node_id}") from None


def scontrol_hostnames(nodelist: str) -> list[str]:
    """Expand a Slurm hostlist (``node[01-04],gpu7``) with ``scontrol show hostnames``, in Slurm's order."""
    try:
        res = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                             timeout=60, check=False)
    except FileNotFoundError:
        raise UserError(f"cannot expand the Slurm node list {nodelist!r}: scontrol is not on PATH; "
                        "set MASTER_ADDR to the host of rank 0") from None
    if res.returncode != 0:
        why = (res.stderr.strip().splitlines() or [f"exit code {res.returncode}"])[0]
        raise UserError(f"scontrol show hostnames {nodelist!r} failed ({why}); set MASTER_ADDR to the host of rank 0")
    return res.stdout.split()


def _master_port(env: Mapping[str, str]) -> int:
    if "MASTER_PORT" in env:
        port = _int(env, "MASTER_PORT")
        if not 1 <= port <= 65535:
            raise UserError(f"MASTER_PORT={port} is outside 1..65535")
        return port
    if "SLURM_JOB_ID" in env:
        return DEFAULT_PORT + _int(env, "SLURM_JOB_ID") % 1000
    return DEFAULT_PORT


def discover(environ: Mapping[str, str] = os.environ, *,
             hostnames: Callable[[str], list[str]] = scontrol_hostnames) -> LaunchInfo:
    """This process's rank, sizes, launcher and rendezvous address, from the environment (see module docstring).

    ``hostnames`` expands a Slurm node list (default: ``scontrol show hostnames``); tests inject a fake.
    """
    ranks = process_ranks(environ)
    port = _master_port(environ)
    addr: str | None
    if environ.get("MASTER_ADDR"):
        addr = environ["MASTER_ADDR"]
    elif ranks.world_size == 1 or (ranks.local_world_size == ranks.world_size and ranks.launcher != "torchrun"):
        addr = "127.0.0.1"  # every rank on this host (a torchrun-style local size may be a default, not a fact)
    elif ranks.launcher in MPI_LAUNCHERS:
        addr = None  # rank 0's hostname, by resolve_master_addr
    elif ranks.launcher == "slurm":
        var = _first(environ, "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST")
        if var is None:
            raise UserError("a Slurm step without SLURM_STEP_NODELIST or SLURM_JOB_NODELIST; set MASTER_ADDR")
        hosts = hostnames(environ[var])
        if not hosts:
            raise UserError(f"{var}={environ[var]!r} expands to no host; set MASTER_ADDR")
        addr = hosts[0]
    else:
        # torchrun always exports MASTER_ADDR; hand-set RANK/WORLD_SIZE or multi-host horovodrun --gloo do not.
        raise UserError(f"{ranks.world_size} processes started by {ranks.launcher} but MASTER_ADDR is not set; "
                        "set it to the host of rank 0")
    return LaunchInfo(ranks.rank, ranks.world_size, ranks.local_rank, ranks.local_world_size, ranks.launcher,
                      addr, port)


def resolve_master_addr(info: LaunchInfo, comm: Any = None) -> str:
    """Rank 0's address: ``info.master_addr`` when known, else rank 0's hostname broadcast over MPI.

    A collective for a multi-rank MPI launch without MASTER_ADDR: every rank must call it. ``comm`` is an mpi4py
    communicator spanning the job (default ``MPI.COMM_WORLD``).
    """
    if info.master_addr is not None:
        return info.master_addr
    if comm is None:
        try:
            from mpi4py import MPI
        except ImportError:
            raise UserError(f"launched by {info.launcher} as {info.world_size} ranks but mpi4py is not importable "
                            "to find rank 0's host; install mpi4py or set MASTER_ADDR") from None
        comm = MPI.COMM_WORLD
    if comm.Get_size() != info.world_size or comm.Get_rank() != info.rank:
        raise UserError(f"the launcher placed this process as rank {info.rank} of {info.world_size} but MPI sees rank "
                        f"{comm.Get_rank()} of {comm.Get_size()}: mpi4py is built against another MPI than the "
                        "launcher's (under srun use --mpi=pmix with a matching MPI, or set MASTER_ADDR)")
    return comm.bcast(socket.gethostname() if info.rank == 0 else None, root=0)


def select_device(local_rank: int, prefer: str = "auto"):
    """The torch device for this process: ``cuda:{local_rank % device_count}`` when CUDA is used, else cpu.

    ``prefer``: "auto" (CUDA when available), "cpu", or "cuda" (an error without a usable GPU).
    """
    import torch

    if prefer not in ("auto", "cpu", "cuda"):
        raise UserError(f"--device {prefer!r}: expected auto, cpu or cuda")
    if prefer == "cpu" or (prefer == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserError(f"--device cuda: no usable GPU (torch {torch.__version__}, "
                        f"CUDA build {torch.version.cuda or 'none'})")
    return torch.device("cuda", local_rank % torch.cuda.device_count())
