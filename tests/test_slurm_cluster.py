"""Against a real Slurm (scripts/local-slurm.sh start): jobs rendered for the `local` profile, submitted with
`hpcgen submit`, run by slurmd, checked through `scontrol show job` and their outputs.

Skipped when no controller answers, unless HPCGEN_REQUIRE_SLURM=1 (CI), which turns the skip into a failure. Every
wait is bounded; a timeout or a failed job fails the test with the job's record and the tail of its log.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

import h5py
import pytest

from tests.conftest import require_horovod, run_cli, skip_or_fail, write_small_calo

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL",
            "DEADLINE"}


@pytest.fixture(scope="module", autouse=True)
def slurm():
    problem = None
    if not shutil.which("sbatch") or not shutil.which("scontrol"):
        problem = "sbatch/scontrol not on PATH"
    else:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
        if "UP" not in ping.stdout:
            problem = f"no Slurm controller answers (scontrol ping: {ping.stdout.strip() or ping.stderr.strip()})"
    if problem:
        skip_or_fail("HPCGEN_REQUIRE_SLURM", f"{problem}; start one with scripts/local-slurm.sh start")


def submit(*args: str, cwd: Path) -> str:
    proc = run_cli("submit", "local", *args, cwd=cwd, timeout=60)
    assert proc.returncode == 0, proc.stderr
    job = proc.stdout.strip()
    assert job.isdigit(), proc.stdout
    return job


def records(job: str) -> list[dict]:
    """`scontrol show job -o` records (one per array task) as dicts."""
    out = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True, timeout=30).stdout
    recs = []
    for line in out.splitlines():
        rec = {}
        for m in re.finditer(r"(\w+)=(\S*)", line):
            rec.setdefault(m.group(1), m.group(2))
        recs.append(rec)
    return recs


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def wait_done(job: str, workdir: Path, timeout_s: float = 300) -> list[dict]:
    """Wait until every record of ``job`` is terminal; fail with details when one did not complete."""
    deadline = time.monotonic() + timeout_s
    while True:
        recs = records(job)
        states = [r.get("JobState") for r in recs]
        if recs and all(s in TERMINAL for s in states):
            break
        if any(r.get("Reason") == "DependencyNeverSatisfied" for r in recs):
            pytest.fail(f"job {job} can never start (a dependency failed): {recs}\n{_logs(workdir)}")
        if time.monotonic() > deadline:
            pytest.fail(f"job {job} not finished after {timeout_s:.0f} s (states {states})\n{_logs(workdir)}")
        time.sleep(1)
    bad = [r for r in recs if r["JobState"] != "COMPLETED" or r.get("ExitCode") != "0:0"]
    if bad:
        pytest.fail(f"job {job} did not complete: {[(r['JobId'], r['JobState'], r.get('ExitCode')) for r in bad]}\n"
                    f"{_logs(workdir)}")
    return recs


def _logs(workdir: Path) -> str:
    return "\n".join(f"--- {f.name}:\n" + "\n".join(f.read_text(errors="replace").splitlines()[-25:])
                     for f in sorted(workdir.rglob("*.out")))


def test_two_task_jobs_simulate_then_train_after_it(tmp_path):
    """A 2-task MPI simulate job, then 2-rank DDP and Horovod trainings that depend on it (afterok)."""
    sim = submit("--workdir", str(tmp_path), "--", "simulate", "calo", "--generator", "gflash", "--n", "24",
                 "--seed", "1", "--out", "showers.h5", cwd=tmp_path)
    ddp = submit("--workdir", str(tmp_path), "--dependency", f"afterok:{sim}", "--", "train", "calo",
                 "--data", "showers.h5", "--out", "run-ddp", "--steps", "3", "--batch-size", "2", cwd=tmp_path)
    (sim_rec,) = wait_done(sim, tmp_path, 180)
    (ddp_rec,) = wait_done(ddp, tmp_path, 300)
    assert sim_rec["NumTasks"] == "2" and ddp_rec["NumTasks"] == "2"
    with h5py.File(tmp_path / "showers.h5") as h5:  # written by 2 MPI ranks under mpirun in the allocation
        assert h5["ECAL"].shape == (24, 25, 25, 25) and int(h5.attrs["world_size"]) == 2
    assert (tmp_path / "showers.r1.h5").is_file()
    assert _when(ddp_rec["StartTime"]) >= _when(sim_rec["EndTime"])
    log = (tmp_path / f"hpcgen-train-{ddp}.out").read_text()
    assert "trained calo to step 3 on 2 ranks (ddp)" in log
    assert (tmp_path / "run-ddp" / "checkpoint.pt").is_file()

    require_horovod()
    hvd = submit("--workdir", str(tmp_path), "--engine", "horovod", "--", "train", "calo", "--data", "showers.h5",
                 "--out", "run-hvd", "--steps", "2", "--batch-size", "2", cwd=tmp_path)
    wait_done(hvd, tmp_path, 300)
    assert "trained calo to step 2 on 2 ranks (horovod)" in (tmp_path / f"hpcgen-train-{hvd}.out").read_text()


def test_pipeline_runs_array_merge_train_bench_in_order(tmp_path):
    work = tmp_path / "pipe"
    proc = run_cli("submit", "pipeline", "local", "--workdir", str(work), "--n", "16", "--shards", "2",
                   "--steps", "2", "--batch-size", "2", "--fidelity-n", "10", "--bench-seconds", "0.2",
                   "--bench-energies-gev", "100", cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    ids = re.findall(r"submitted (\w+): job (\d+)", proc.stdout)
    assert [name for name, _ in ids] == ["simulate", "train", "bench"], proc.stdout
    (sim, _), (train, _), (bench, _) = ((j, n) for n, j in ids)
    sim_recs = wait_done(sim, work, 240)
    (train_rec,) = wait_done(train, work, 300)
    (bench_rec,) = wait_done(bench, work, 400)
    assert len(sim_recs) == 2  # one record per array task
    assert _when(train_rec["StartTime"]) >= max(_when(r["EndTime"]) for r in sim_recs)
    assert _when(bench_rec["StartTime"]) >= _when(train_rec["EndTime"])
    with h5py.File(work / "data" / "calo_gflash.h5") as h5:  # the training job merged the two array shards
        assert h5["ECAL"].shape[0] == 16 and list(h5.attrs["shards"]) == ["calo_gflash.r0.h5", "calo_gflash.r1.h5"]
    result = json.loads((work / "bench" / "throughput_calo.json").read_text())
    assert result["schema"] == "hpcgen.bench/1"
    assert (work / "report" / "report.md").is_file()


def test_preempted_training_requeues_and_ends_like_an_uninterrupted_run(tmp_path):
    """USR1 to the batch shell (what --signal=B:USR1@grace sends before the time limit) → checkpoint, exit 75,
    scontrol requeue → the restarted job resumes; its final weights equal an uninterrupted twin's bit for bit."""
    torch = pytest.importorskip("torch")
    write_small_calo(tmp_path / "showers.h5", n=32)
    common = ("--", "train", "calo", "--data", "showers.h5", "--steps", "16", "--batch-size", "2",
              "--checkpoint-every", "1000", "--seed", "3")
    victim = submit("--workdir", str(tmp_path), "--grace-s", "30", *common, "--out", "run-a",
                    cwd=tmp_path)
    twin = submit("--workdir", str(tmp_path), *common, "--out", "run-b", cwd=tmp_path)
    metrics = tmp_path / "run-a" / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 3):
        if time.monotonic() > deadline or records(victim)[0]["JobState"] in TERMINAL:
            pytest.fail(f"job {victim} never reached step 3 while running\n{_logs(tmp_path)}")
        time.sleep(0.5)
    subprocess.run(["scancel", "--signal=USR1", "--batch", victim], check=True, timeout=30)
    (rec,) = wait_done(victim, tmp_path, 400)
    wait_done(twin, tmp_path, 400)
    log = (tmp_path / f"hpcgen-train-{victim}.out").read_text()
    stopped = re.search(r"stopped by signal at step (\d+); checkpoint in run-a/checkpoint.pt; exit 75", log)
    assert stopped and 3 <= int(stopped.group(1)) < 16, log
    assert rec["Restarts"] == "1" and "(restart 1)" in log and "requeueing job" in log
    assert "trained calo to step 16 on 2 ranks (ddp)" in log
    a = torch.load(tmp_path / "run-a" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "run-b" / "checkpoint.pt", weights_only=False)
    assert a["step"] == b["step"] == 16

    def tensors(obj, path=""):
        if isinstance(obj, dict):
            for k, v in obj.items():
                yield from tensors(v, f"{path}/{k}")
        elif torch.is_tensor(obj):
            yield path, obj

    ta, tb = dict(tensors(a["state"])), dict(tensors(b["state"]))
    assert ta.keys() == tb.keys() and len(ta) > 10
    assert [k for k in ta if not torch.equal(ta[k], tb[k])] == []


def test_a_requeued_array_task_rewrites_its_shard(tmp_path):
    """Requeue a running array task (what preemption or a node failure does): it reruns, and the merged data are
    bit for bit those of an uninterrupted run."""
    sim = ("simulate", "calo", "--generator", "cascade", "--n", "240", "--energy-gev", "100", "--seed", "4",
           "--chunk", "4", "--out", "s.h5", "--overwrite")
    job = submit("--workdir", str(tmp_path), "--array", "2", "--", *sim, cwd=tmp_path)
    partial = tmp_path / "s.r0.h5.tmp"
    deadline = time.monotonic() + 120
    while not partial.exists():  # task 0 is running and has started its shard
        if time.monotonic() > deadline or (tmp_path / "s.r0.h5").exists():
            pytest.fail(f"array task {job}_0 was not caught mid-run\n{_logs(tmp_path)}")
        time.sleep(0.2)
    subprocess.run(["scontrol", "requeue", f"{job}_0"], check=True, timeout=30)
    recs = wait_done(job, tmp_path, 300)
    assert sorted((r["ArrayTaskId"], r["Restarts"]) for r in recs) == [("0", "1"), ("1", "0")]
    assert "(restart 1)" in (tmp_path / f"hpcgen-simulate-{job}_0.out").read_text()
    merged = run_cli("merge", "s.h5", "--shards", "2", cwd=tmp_path)
    assert merged.returncode == 0, merged.stderr
    ref = tmp_path / "ref"
    ref.mkdir()
    for k in (0, 1):
        assert run_cli(*sim, "--shard", f"{k}/2", cwd=ref).returncode == 0
    assert run_cli("merge", "s.h5", "--shards", "2", cwd=ref).returncode == 0
    with h5py.File(tmp_path / "s.h5") as a, h5py.File(ref / "s.h5") as b:
        assert a["ECAL"].shape == (240, 25, 25, 25)
        assert (a["ECAL"][:] == b["ECAL"][:]).all() and (a["energy"][:] == b["energy"][:]).all()
