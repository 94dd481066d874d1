"""Both data-parallel engines under real launchers (mpirun -n 2, horovodrun -np 2 --gloo): the GAN step keeps ranks
identical, averages gradients exactly like one process on the whole batch, and failures end the job instead of
hanging. The ranks run tests/mpi_workers/engine_worker.py, which writes its findings to JSON."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpcgen.errors import UserError

from conftest import VENV_BIN, require_horovod

WORKER = Path(__file__).parent / "mpi_workers" / "engine_worker.py"
ENGINES = ["ddp", "horovod"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mpirun_worker(*args: str) -> list[str]:
    mpirun = str(VENV_BIN / "mpirun") if (VENV_BIN / "mpirun").exists() else "mpirun"
    return [mpirun, "-n", "2", "--oversubscribe", "--allow-run-as-root", "-x", "OMP_NUM_THREADS=1",
            "-x", f"MASTER_PORT={free_port()}", sys.executable, str(WORKER), *args]


def run_checks(cmd_prefix: list[str], tmp: Path) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp / "result.json"
    res = subprocess.run([*cmd_prefix, "checks", "collectives,grad,gan,resume", str(out)], capture_output=True,
                         text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    return res, (json.loads(out.read_text()) if out.exists() else {})


@pytest.fixture(scope="module", params=ENGINES)
def engine_run(request, tmp_path_factory):
    """One 2-rank run of every check per engine (a launch costs seconds on 2 cores; the checks share it)."""
    if request.param == "horovod":
        require_horovod()
    res, results = run_checks(mpirun_worker(request.param), tmp_path_factory.mktemp(request.param))
    return request.param, res, results


def result_of(engine_run, check: str) -> dict:
    engine, res, results = engine_run
    assert check in results, f"{engine}: no '{check}' result (rc {res.returncode}):\n{res.stderr[-3000:]}"
    return results[check]


@pytest.mark.mpi
def test_collectives_mean_sum_broadcast_and_gather_across_two_ranks(engine_run):
    r = result_of(engine_run, "collectives")
    assert r["world_size"] == 2
    assert r["ok"], r["per_rank"]


@pytest.mark.mpi
def test_gan_steps_leave_parameters_and_optimizer_state_identical_on_all_ranks(engine_run):
    """Different initial weights and different data per rank; after 3 D+G steps (train-mode BatchNorm, Adam) the
    sha256 of every parameter, of the Adam moments and, after broadcast_buffers, of the whole state dict agree."""
    r = result_of(engine_run, "gan")
    assert r["finite"] and r["ranks_saw_different_data"]
    assert r["identical"] == {"params": True, "opt": True, "state": True}
    assert r["ok"]


@pytest.mark.mpi
def test_two_ranks_with_batch_b_update_like_one_rank_with_batch_2b(engine_run):
    """Gradient averaging is the mean over ranks: the SGD(lr=1) updates of one D step and one G step on 2 ranks x B
    samples equal those of one process on the 2B concatenated samples, to rtol 1e-5 / atol 1e-6 in float32.
    BatchNorm is in eval mode (fixed, non-trivial running statistics) and there is no dropout, so no layer couples the
    samples of a batch; with batch statistics the two set-ups would legitimately differ."""
    r = result_of(engine_run, "grad")
    assert (r["rtol"], r["atol"]) == (1e-5, 1e-6)
    assert r["all_updates_nonzero"]
    assert r["ok"], f"max |2 ranks - 1 rank| = {r['max_abs_err']}"


@pytest.mark.mpi
def test_an_optimizer_state_loaded_before_wrapping_survives_and_stays_identical(engine_run):
    r = result_of(engine_run, "resume")
    assert r["state_kept"] == [True, True], "wrap_optimizer dropped the resumed optimizer state"
    assert r["steps"] == [[2.0], [2.0]] and r["identical_after_a_step"]
    assert r["ok"]


@pytest.mark.mpi
def test_horovod_under_horovodrun_gloo(tmp_path):
    require_horovod()
    horovodrun = VENV_BIN / "horovodrun"
    if not horovodrun.exists():
        pytest.fail(f"Horovod is importable but {horovodrun} is missing")
    res, results = run_checks([str(horovodrun), "-np", "2", "--gloo", "-H", "localhost:2", sys.executable,
                               str(WORKER), "horovod"], tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert set(results) == {"collectives", "grad", "gan", "resume"}
    assert all(r["ok"] for r in results.values()), results


@pytest.mark.mpi
def test_a_killed_rank_ends_the_ddp_job_instead_of_hanging(tmp_path):
    pid_file = tmp_path / "rank1.pid"
    proc = subprocess.Popen(mpirun_worker("ddp", "loop", "90", str(pid_file)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists():
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "rank 1 never started its all-reduce loop"
            time.sleep(0.2)
        time.sleep(1.0)  # well inside the loop of all-reduces
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        killed = time.monotonic()
        _, err = proc.communicate(timeout=120)
        elapsed = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0
    assert elapsed < 60, f"the job took {elapsed:.0f} s to end after rank 1 was killed"


def test_a_missing_peer_fails_the_ddp_rendezvous_within_the_timeout():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMI", "SLURM_", "HOROVOD_"))}
    env.update(RANK="0", WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), OMP_NUM_THREADS="1")
    code = "from hpcgen.dist.engine import make_engine; make_engine('ddp', device='cpu', timeout_s=5)"
    start = time.monotonic()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    elapsed = time.monotonic() - start
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("hpcgen.errors.UserError: DDP rendezvous of rank 0 of 2 at 127.0.0.1:"), last
    assert "within 5 s" in last and "all 2 processes" in last
    assert elapsed < 15, f"took {elapsed:.0f} s"


def test_an_unknown_engine_is_a_user_error_listing_the_engines():
    from hpcgen.dist.engine import make_engine

    with pytest.raises(UserError, match="'mpi'.*ddp, horovod"):
        make_engine("mpi")


def test_a_one_process_ddp_engine_needs_no_launcher():
    import torch

    from hpcgen.dist.ddp import DDPEngine

    engine = DDPEngine(device="cpu", environ={})
    model = torch.nn.Linear(2, 2)
    assert (engine.rank, engine.world_size, engine.launcher) == (0, 1, "single")
    assert engine.wrap_model(model) is model and engine.unwrap(model) is model
    t = torch.tensor([1.0, 2.0])
    assert torch.equal(engine.allreduce_mean(t), t) and engine.allreduce_sum(t) is not t
    assert engine.allgather_object("x") == ["x"] and engine.broadcast_object({"a": 1}) == {"a": 1}
    engine.barrier()
    engine.close()


ONE_PROCESS_HOROVOD = """
import torch
from hpcgen.dist.engine import make_engine
engine = make_engine("horovod", device="cpu")
assert (engine.rank, engine.world_size, engine.launcher) == (0, 1, "single")
model = torch.nn.Linear(2, 2)
assert engine.wrap_model(model) is model and engine.unwrap(model) is model
assert torch.equal(engine.allreduce_sum(torch.tensor([1.0, 2.0])), torch.tensor([1.0, 2.0]))
assert engine.allgather_object("x") == ["x"] and engine.broadcast_object({"a": 1}) == {"a": 1}
engine.close()
"""


def test_a_one_process_horovod_engine_needs_no_launcher():
    require_horovod()
    # in a child: hvd.init()/shutdown() would initialise and finalise MPI inside the pytest process
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMI", "SLURM_", "HOROVOD_"))}
    res = subprocess.run([sys.executable, "-c", ONE_PROCESS_HOROVOD], capture_output=True, text=True, timeout=120,
                         env=dict(env, OMP_NUM_THREADS="1"))
    assert res.returncode == 0, res.stderr[-3000:]
