"""Submission with a fake ``sbatch`` on PATH: the arguments hpcgen passes, the job ids it parses, the dependency
chain of a pipeline, and that bad input submits nothing. The real Slurm is exercised in test_slurm_cluster.py."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hpcgen.cli import main
from hpcgen.errors import UserError
from hpcgen.slurm import JobRequest, load_profile
from hpcgen.slurm.pipeline import PipelineSpec
from hpcgen.slurm.submit import check_dependency, parse_parsable, sbatch, submit_pipeline

FAKE = r"""#!/bin/bash
# fake sbatch: log the arguments (one per line, then ---), keep the script, answer like --parsable
log="$FAKE_SBATCH_DIR/calls"
n=$(( $(grep -c '^---$' "$log" 2>/dev/null || echo 0) + 1 ))
printf '%s\n' "$@" >> "$log"; echo --- >> "$log"
cp "${@: -1}" "$FAKE_SBATCH_DIR/script.$n"
if [ -n "${FAKE_SBATCH_FAIL:-}" ]; then echo "sbatch: error: Batch job submission failed: Invalid account" >&2; exit 1; fi
echo "$((1000 + n));cluster"
"""


@pytest.fixture
def fake_sbatch(tmp_path, monkeypatch):
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    exe = bindir / "sbatch"
    exe.write_text(FAKE)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "sbatch-log"
    log.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SBATCH_DIR", str(log))
    return log


def calls(log: Path) -> list[list[str]]:
    f = log / "calls"
    if not f.exists():
        return []
    text = f.read_text().strip()
    return [block.strip("\n").split("\n") for block in text.split("---") if block.strip()]


def test_parsable_output_and_dependencies():
    assert parse_parsable("4242\n") == "4242"
    assert parse_parsable("4242;perlmutter\n") == "4242"
    with pytest.raises(UserError, match="expected a job id"):
        parse_parsable("Submitted batch job 12\n")
    assert check_dependency("afterok:12:13,afterany:14_2") == "afterok:12:13,afterany:14_2"
    for bad in ("afterok", "afterok:x", "after ok:1", "afterok:1;rm -rf /"):
        with pytest.raises(UserError, match="--dependency"):
            check_dependency(bad)


def test_sbatch_passes_parsable_and_dependency(fake_sbatch, tmp_path):
    script = tmp_path / "j.sbatch"
    script.write_text("#!/bin/bash\n")
    assert sbatch(script, "afterok:7") == "1001"
    assert calls(fake_sbatch) == [["--parsable", "--dependency=afterok:7", str(script)]]


def test_sbatch_errors_are_one_line(fake_sbatch, tmp_path, monkeypatch):
    script = tmp_path / "j.sbatch"
    script.write_text("#!/bin/bash\n")
    monkeypatch.setenv("FAKE_SBATCH_FAIL", "1")
    with pytest.raises(UserError, match=r"sbatch .*j.sbatch: sbatch: error: Batch job submission failed: Invalid acc"):
        sbatch(script)
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="sbatch: not found on PATH"):
        sbatch(script)


def test_cli_submit_renders_writes_and_prints_the_job_id(fake_sbatch, tmp_path, capsys):
    code = main(["submit", "local", "--no-venv", "--script-dir", str(tmp_path / "jobs"), "--dependency", "afterok:5",
                 "--", "train", "calo", "--data", "d.h5", "--out", "run", "--steps", "3"])
    assert code == 0
    out, err = capsys.readouterr()
    assert out == "1001\n" and "submitted job 1001 to local" in err
    (argv,) = calls(fake_sbatch)
    assert argv[:2] == ["--parsable", "--dependency=afterok:5"]
    kept = Path(argv[2])
    assert kept.parent == tmp_path / "jobs" and kept.read_text() == (fake_sbatch / "script.1").read_text()
    assert "--resume auto" in kept.read_text()


@pytest.mark.parametrize("argv", [
    ["submit", "perlmutter", "--", "train", "calo", "--data", "d.h5", "--out", "r", "--steps", "1"],  # no account
    ["submit", "local", "--nodes", "0", "--", "info"],
    ["submit", "local", "--time", "2h", "--", "info"],
    ["submit", "frontier", "--account", "a", "--engine", "horovod", "--", "train", "calo", "--data", "d", "--out",
     "r", "--steps", "1"],
    ["submit", "nowhere", "--", "info"],
    ["submit", "local", "--dependency", "afterok", "--", "info"],
    ["submit", "pipeline", "local", "--shards", "9", "--n", "4"],
    ["submit", "pipeline", "perlmutter"],  # no account: nothing of the chain may be submitted
])
def test_bad_input_submits_nothing(argv, fake_sbatch, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("hpcgen: error: ") and err.count("\n") == 1, err
    assert calls(fake_sbatch) == []
    assert not (tmp_path / "hpcgen-jobs").exists() and not (tmp_path / "hpcgen-pipeline").exists()


def test_pipeline_chains_array_train_bench(fake_sbatch, tmp_path):
    spec = PipelineSpec(workdir=tmp_path / "p", n=40, shards=4, steps=5, fidelity_n=10)
    jobs = submit_pipeline(load_profile("local"), spec, JobRequest(command=(), venv="/opt/v"), dependency="afterok:9")
    assert [(j.name, j.job_id, j.dependency) for j in jobs] == [
        ("simulate", "1001", "afterok:9"), ("train", "1002", "afterok:1001"), ("bench", "1003", "afterok:1002")]
    argvs = calls(fake_sbatch)
    assert [a[:2] for a in argvs] == [["--parsable", "--dependency=afterok:9"],
                                      ["--parsable", "--dependency=afterok:1001"],
                                      ["--parsable", "--dependency=afterok:1002"]]
    sim, train, bench = (Path(a[2]).read_text() for a in argvs)
    assert "#SBATCH --array=0-3" in sim and '--shard "${SLURM_ARRAY_TASK_ID}/4"' in sim
    assert f"#SBATCH --chdir={tmp_path / 'p'}" in sim
    assert "hpcgen merge data/calo_gflash.h5 --shards 4 --overwrite" in train
    assert "--data data/calo_gflash.h5" in train and "#SBATCH --requeue" in train
    assert "bench throughput --domain calo --checkpoint run" in bench and "hpcgen report" in bench
    assert {d.name for d in (tmp_path / "p").iterdir()} >= {"data", "logs", "jobs", "bench"}


def test_cli_pipeline_prints_each_job(fake_sbatch, tmp_path, capsys):
    assert main(["submit", "pipeline", "local", "--no-venv", "--workdir", str(tmp_path / "w"), "--domain", "cosmo",
                 "--n", "8", "--shards", "2", "--steps", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("submitted simulate: job 1001;") and "(after afterok:1001)" in out[1]
    assert out[2].startswith("submitted bench: job 1003 (after afterok:1002)")
    assert "simulate cosmo --generator lognormal" in (tmp_path / "w" / "jobs" / "simulate.sbatch").read_text()
