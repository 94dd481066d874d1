"""Launch discovery: each launcher's environment gives the right rank, sizes and rendezvous address; overlapping
environments resolve by priority (torchrun > horovodrun > MPI > Slurm step); bad values are one-line user errors."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hpcgen.dist import world as world_mod
from hpcgen.dist.launch import LaunchInfo, discover, resolve_master_addr, scontrol_hostnames, select_device
from hpcgen.errors import UserError

from conftest import VENV_BIN

WORKER = Path(__file__).parent / "mpi_workers" / "engine_worker.py"


def no_scontrol(nodelist: str) -> list[str]:
    raise AssertionError(f"scontrol must not be asked (got {nodelist!r})")


class FakeScontrol:
    def __init__(self, hosts: list[str]):
        self.hosts, self.asked = hosts, []

    def __call__(self, nodelist: str) -> list[str]:
        self.asked.append(nodelist)
        return self.hosts


# What srun sets in task 5 of an 8-task step on node[07-08] of a 16-task job (step 0 of job 123456).
SLURM_STEP = {"SLURM_JOB_ID": "123456", "SLURM_JOB_NODELIST": "node[01-08]", "SLURM_NTASKS": "16",
              "SLURM_STEP_ID": "0", "SLURM_STEPID": "0", "SLURM_PROCID": "5", "SLURM_STEP_NUM_TASKS": "8",
              "SLURM_LOCALID": "1", "SLURM_NODEID": "1", "SLURM_STEP_TASKS_PER_NODE": "4(x2)",
              "SLURM_STEP_NODELIST": "node[07-08]", "SLURM_STEP_NUM_NODES": "2"}
# What a batch script sees: the job's task count, but it is a single process.
SLURM_BATCH = {"SLURM_JOB_ID": "123456", "SLURM_JOB_NODELIST": "node[01-04]", "SLURM_NTASKS": "16",
               "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_TASKS_PER_NODE": "4(x4)"}
OPEN_MPI = {"OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
            "OMPI_COMM_WORLD_LOCAL_SIZE": "2", "PMIX_RANK": "3"}  # Open MPI 5 also exports PMIX_RANK


def test_torchrun_environment_gives_ranks_and_rendezvous():
    env = {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4", "MASTER_ADDR": "10.0.0.7",
           "MASTER_PORT": "29400", "TORCHELASTIC_RUN_ID": "x"}
    assert discover(env, hostnames=no_scontrol) == LaunchInfo(5, 8, 1, 4, "torchrun", "10.0.0.7", 29400)


def test_hand_set_rank_and_world_size_default_to_one_host():
    info = discover({"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1"}, hostnames=no_scontrol)
    assert (info.local_rank, info.local_world_size, info.master_port) == (1, 2, 29500)


def test_open_mpi_environment_leaves_the_master_to_a_collective():
    info = discover(OPEN_MPI, hostnames=no_scontrol)
    assert info == LaunchInfo(3, 4, 1, 2, "openmpi", None, 29500)


def test_mpich_and_intel_mpi_hydra_environment():
    env = {"PMI_RANK": "2", "PMI_SIZE": "3", "MPI_LOCALRANKID": "0", "MPI_LOCALNRANKS": "1"}
    assert discover(env, hostnames=no_scontrol) == LaunchInfo(2, 3, 0, 1, "pmi", None, 29500)


def test_pmix_under_srun_takes_size_and_placement_from_the_slurm_step():
    env = {**SLURM_STEP, "PMIX_RANK": "5"}
    info = discover(env, hostnames=no_scontrol)  # MPI launch: rank 0's host comes from MPI, not scontrol
    assert info == LaunchInfo(5, 8, 1, 4, "pmi", None, 29956)


def test_slurm_step_without_mpi_uses_the_step_and_the_first_host_of_its_node_list():
    fake = FakeScontrol(["node07", "node08"])
    info = discover(SLURM_STEP, hostnames=fake)
    assert info == LaunchInfo(5, 8, 1, 4, "slurm", "node07", 29500 + 123456 % 1000)
    assert fake.asked == ["node[07-08]"]  # the step's nodes, not the job's


def test_all_ranks_on_one_host_rendezvous_on_localhost_without_a_lookup():
    one_host_mpi = {**OPEN_MPI, "OMPI_COMM_WORLD_LOCAL_SIZE": "4"}
    assert discover(one_host_mpi, hostnames=no_scontrol).master_addr == "127.0.0.1"
    one_node_step = {**SLURM_STEP, "SLURM_STEP_TASKS_PER_NODE": "8", "SLURM_NODEID": "0", "SLURM_STEP_NUM_NODES": "1"}
    assert discover(one_node_step, hostnames=no_scontrol).master_addr == "127.0.0.1"


def test_slurm_tasks_per_node_list_gives_the_local_size_of_an_uneven_step():
    env = {**SLURM_STEP, "SLURM_STEP_TASKS_PER_NODE": "3,2(x2)", "SLURM_NODEID": "2", "SLURM_PROCID": "6",
           "SLURM_STEP_NUM_TASKS": "7", "SLURM_LOCALID": "1"}
    assert discover(env, hostnames=FakeScontrol(["a"])).local_world_size == 2


@pytest.mark.parametrize("step_id", [None, "4294967291", "4294967292", "-5"],
                         ids=["no step id", "batch sentinel", "extern sentinel", "negative int32"])
def test_a_batch_script_is_one_process_not_rank_0_of_the_job(step_id):
    env = dict(SLURM_BATCH) if step_id is None else {**SLURM_BATCH, "SLURM_STEP_ID": step_id}
    assert discover(env, hostnames=no_scontrol) == LaunchInfo(0, 1, 0, 1, "single", "127.0.0.1", 29956)


def test_mpirun_inside_a_slurm_allocation_is_an_open_mpi_launch():
    # mpirun starts one prted per node with srun: the ranks inherit that daemon step's variables (2 tasks = 2 nodes)
    env = {**SLURM_STEP, "SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_TASKS_PER_NODE": "1(x2)",
           "SLURM_LOCALID": "0", **OPEN_MPI}
    assert discover(env, hostnames=no_scontrol) == LaunchInfo(3, 4, 1, 2, "openmpi", None, 29956)


def test_torchrun_under_srun_is_a_torchrun_launch():
    env = {**SLURM_STEP, "RANK": "3", "WORLD_SIZE": "16", "LOCAL_RANK": "3", "LOCAL_WORLD_SIZE": "8",
           "MASTER_ADDR": "node07", "MASTER_PORT": "29501"}
    assert discover(env, hostnames=no_scontrol) == LaunchInfo(3, 16, 3, 8, "torchrun", "node07", 29501)


def test_horovodrun_gloo_on_one_host():
    env = {"HOROVOD_RANK": "1", "HOROVOD_SIZE": "2", "HOROVOD_LOCAL_RANK": "1", "HOROVOD_LOCAL_SIZE": "2",
           "HOROVOD_CROSS_SIZE": "1", "HOROVOD_CONTROLLER": "gloo"}
    assert discover(env, hostnames=no_scontrol) == LaunchInfo(1, 2, 1, 2, "horovodrun", "127.0.0.1", 29500)


def test_plain_process_is_a_single_rank_on_localhost():
    assert discover({}, hostnames=no_scontrol) == LaunchInfo(0, 1, 0, 1, "single", "127.0.0.1", 29500)


def test_master_addr_from_the_environment_wins_over_slurm():
    info = discover({**SLURM_STEP, "MASTER_ADDR": "ib-node07", "MASTER_PORT": "12345"}, hostnames=no_scontrol)
    assert (info.master_addr, info.master_port) == ("ib-node07", 12345)


def test_the_default_scontrol_runner_expands_the_node_list(tmp_path, monkeypatch):
    fake = tmp_path / "scontrol"
    fake.write_text('#!/bin/sh\n[ "$1 $2" = "show hostnames" ] || exit 3\necho "gpu03"; echo "gpu04"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert scontrol_hostnames("gpu[03-04]") == ["gpu03", "gpu04"]
    assert discover(SLURM_STEP).master_addr == "gpu03"


def test_a_missing_scontrol_is_a_user_error_asking_for_master_addr(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match="scontrol is not on PATH; set MASTER_ADDR"):
        discover(SLURM_STEP)


@pytest.mark.parametrize(("env", "var"), [
    ({"OMPI_COMM_WORLD_RANK": "two", "OMPI_COMM_WORLD_SIZE": "4"}, "OMPI_COMM_WORLD_RANK='two' is not an integer"),
    ({"RANK": "4", "WORLD_SIZE": "4", "MASTER_ADDR": "h"}, "RANK=4 is outside 0..3 (WORLD_SIZE=4)"),
    ({"PMI_RANK": "0", "PMI_SIZE": "0"}, "PMI_SIZE=0"),
    ({**SLURM_STEP, "SLURM_PROCID": "9"}, "SLURM_PROCID=9 is outside 0..7 (SLURM_STEP_NUM_TASKS=8)"),
    ({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "2"}, "LOCAL_RANK=2 is outside 0..1"),
    ({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "3"}, "LOCAL_WORLD_SIZE=3 is outside 1..2"),
    ({"OMPI_COMM_WORLD_RANK": "0"}, "OMPI_COMM_WORLD_SIZE is not set"),
    ({**SLURM_STEP, "SLURM_STEP_TASKS_PER_NODE": "4(x1)"}, "SLURM_STEP_TASKS_PER_NODE='4(x1)'"),
    ({"MASTER_PORT": "70000"}, "MASTER_PORT=70000 is outside 1..65535"),
    ({"MASTER_PORT": "http"}, "MASTER_PORT='http' is not an integer"),
    ({"RANK": "0", "WORLD_SIZE": "2"}, "MASTER_ADDR is not set"),
], ids=lambda v: v.split(" ")[0] if isinstance(v, str) else "")
def test_bad_or_contradictory_values_are_one_line_errors_naming_the_variable(env, var):
    with pytest.raises(UserError) as err:
        discover(env, hostnames=FakeScontrol(["a"]))
    assert var in str(err.value) and "\n" not in str(err.value)


def test_a_node_list_that_expands_to_nothing_is_a_user_error():
    with pytest.raises(UserError, match="SLURM_STEP_NODELIST='node\\[07-08\\]' expands to no host"):
        discover(SLURM_STEP, hostnames=FakeScontrol([]))


class FakeComm:
    def __init__(self, rank: int, size: int):
        self.rank, self.size, self.bcasts = rank, size, []

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.size

    def bcast(self, obj, root=0):
        self.bcasts.append((obj, root))
        return "host-of-rank-0"


def test_resolve_master_addr_broadcasts_rank_0s_hostname_only_when_unknown():
    mpi = discover(OPEN_MPI, hostnames=no_scontrol)
    comm = FakeComm(3, 4)
    assert resolve_master_addr(mpi, comm) == "host-of-rank-0" and comm.bcasts == [(None, 0)]
    root = FakeComm(0, 4)
    resolve_master_addr(LaunchInfo(0, 4, 0, 2, "openmpi", None, 29500), root)
    assert root.bcasts == [(socket.gethostname(), 0)]
    known = FakeComm(3, 4)
    assert resolve_master_addr(discover({**OPEN_MPI, "MASTER_ADDR": "m"}), known) == "m" and known.bcasts == []


def test_resolve_master_addr_rejects_an_mpi_that_disagrees_with_the_launcher():
    # e.g. srun --mpi=pmi2 with a PyPI Open MPI: every process is a singleton MPI world
    with pytest.raises(UserError, match="rank 3 of 4 but MPI sees rank 0 of 1"):
        resolve_master_addr(discover(OPEN_MPI, hostnames=no_scontrol), FakeComm(0, 1))


def test_select_device(monkeypatch):
    assert select_device(3, "cpu") == torch.device("cpu")
    with pytest.raises(UserError, match="--device 'tpu'"):
        select_device(0, "tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device(3, "auto") == torch.device("cpu")
    with pytest.raises(UserError, match="--device cuda: no usable GPU"):
        select_device(0, "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert [select_device(r, "auto") for r in range(4)] == [torch.device("cuda", i) for i in (0, 1, 0, 1)]


def test_world_reuses_discovery():
    assert world_mod.launched_by_mpi(OPEN_MPI) and world_mod.launcher_world_size(OPEN_MPI) == 4
    assert world_mod.launched_by_mpi({**SLURM_STEP, "PMI_RANK": "5", "PMI_SIZE": "8"})
    assert not world_mod.launched_by_mpi(SLURM_STEP) and world_mod.launcher_world_size(SLURM_STEP) == 8
    assert not world_mod.launched_by_mpi(SLURM_BATCH) and world_mod.launcher_world_size(SLURM_BATCH) == 1


@pytest.mark.mpi
def test_two_mpirun_ranks_discover_themselves_and_agree_on_the_master():
    mpirun = str(VENV_BIN / "mpirun") if (VENV_BIN / "mpirun").exists() else "mpirun"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MASTER_", "SLURM_", "RANK", "WORLD_SIZE"))}
    res = subprocess.run([mpirun, "-n", "2", "--oversubscribe", "--allow-run-as-root", "-x", "OMP_NUM_THREADS=1",
                          sys.executable, str(WORKER), "discover"], capture_output=True, text=True, timeout=120,
                         env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    found = sorted((json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")),
                   key=lambda d: d["info"]["rank"])
    assert [(d["info"]["rank"], d["info"]["local_rank"]) for d in found] == [(0, 0), (1, 1)]
    for d in found:
        assert {k: v for k, v in d["info"].items() if k not in ("rank", "local_rank")} == {
            "world_size": 2, "local_world_size": 2, "launcher": "openmpi", "master_addr": "127.0.0.1",
            "master_port": 29500}
        assert d["master"] == "127.0.0.1"  # one host: no collective needed
        assert d["rank0_host"] == socket.gethostname()  # the multi-host path: rank 0's name, broadcast over MPI
