"""Who am I in this job: rank and size from MPI when MPI launched us, else a single process.

``world()`` is the edge where MPI enters: library functions receive the returned ``World`` (never reach for
``MPI.COMM_WORLD`` themselves). It detects an MPI launch from the launcher's environment (Open MPI, MPICH/Intel
MPI/PMI, PMIx, Slurm's srun; ``hpcgen.dist.launch.process_ranks``) before importing mpi4py, so a plain ``hpcgen ...``
never initialises MPI.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from hpcgen.dist.launch import MPI_LAUNCHERS, process_ranks
from hpcgen.errors import UserError


def launched_by_mpi(environ=os.environ) -> bool:
    """True when an MPI launcher (mpirun, MPICH/Intel hydra, srun --mpi=pmi2/pmix) started this process."""
    return process_ranks(environ).launcher in MPI_LAUNCHERS


def launcher_world_size(environ=os.environ) -> int:
    """The number of processes the launcher says it started (1 when none); see ``hpcgen.dist.launch``."""
    return process_ranks(environ).world_size


@dataclass
class World:
    """rank/size plus the few collectives the jobs need; ``comm`` is an mpi4py communicator or None."""

    rank: int = 0
    size: int = 1
    comm: Any = None

    @property
    def library(self) -> str:
        if self.comm is None:
            return "none (single process)"
        from mpi4py import MPI

        return MPI.Get_library_version().splitlines()[0].strip()

    def allreduce_sum(self, values: list[float]) -> list[float]:
        if self.comm is None:
            return list(values)
        import numpy as np
        from mpi4py import MPI

        buf = np.asarray(values, dtype=np.float64)
        out = np.empty_like(buf)
        self.comm.Allreduce(buf, out, op=MPI.SUM)
        return out.tolist()

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return obj if self.comm is None else self.comm.bcast(obj, root=root)

    def barrier(self) -> None:
        if self.comm is not None:
            self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        if self.comm is not None and self.size > 1:
            self.comm.Abort(code)
        sys.exit(code)


def world() -> World:
    """The MPI world if launched by MPI (or by srun with MPI support), else a 1-process world."""
    if not launched_by_mpi():
        if launcher_world_size() > 1:
            raise UserError(
                f"the launcher started {launcher_world_size()} processes without MPI (srun --mpi=none or torchrun); "
                "this verb needs MPI ranks: use mpirun -n N, or srun --mpi=pmix/pmi2 with an MPI built for it")
        return World()
    try:
        from mpi4py import MPI
    except ImportError:
        if launcher_world_size() > 1:
            raise UserError("launched as several processes but mpi4py is not importable; install mpi4py "
                            "built against this MPI (pip install mpi4py)") from None
        return World()
    comm = MPI.COMM_WORLD
    expected = launcher_world_size()
    if comm.Get_size() == 1 and expected > 1:
        raise UserError(
            f"the launcher started {expected} processes but MPI sees 1 in each; under srun use "
            "--mpi=pmix (or pmi2) with an MPI built for it, or launch with mpirun inside the allocation")
    return World(rank=comm.Get_rank(), size=comm.Get_size(), comm=comm)
