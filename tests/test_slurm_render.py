"""Job-script rendering: profiles, golden examples, quoting, and one-line errors before anything is submitted.

No Slurm needed: rendering is a pure function (hpcgen.slurm.render). The scripts are also checked by ``bash -n`` and
by running their step line through bash with the launcher replaced, so quoting is proven by the shell, not by eye.
"""

from __future__ import annotations

import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hpcgen.cli import main
from hpcgen.errors import UserError
from hpcgen.slurm import JobRequest, load_profile, profile_names, render_job_script, resolve
from hpcgen.slurm.profile import parse_profile
from hpcgen.slurm.render import EXIT_PREEMPTED

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ("train", "calo", "--data", "data.h5", "--out", "run", "--steps", "10")
SITE = {"perlmutter": {"account": "m0000_g"}, "frontier": {"account": "abc123"}, "alps": {"account": "a-g00"},
        "juwels-booster": {"account": "proj"}, "generic": {"partition": "batch"}, "local": {}}


def test_the_six_systems_ship_and_load():
    assert profile_names() == ["alps", "frontier", "generic", "juwels-booster", "local", "perlmutter"]
    for name in profile_names():
        p = load_profile(name)
        assert p.name == name and p.engines and p.mpi_launch and p.ddp_launch


def test_golden_examples_match_the_renderer():
    """jobscripts/<system>/*.sbatch are what `hpcgen jobscript` renders today (regenerate: render_examples.py)."""
    mod = runpy.run_path(str(ROOT / "jobscripts" / "render_examples.py"))
    assert mod["main"](["--check"]) == 0
    systems = {path.split("/")[0] for path, _ in mod["EXAMPLES"]}
    assert systems == set(profile_names())


def test_a_stale_golden_file_is_reported(tmp_path, capsys):
    copy = tmp_path / "jobscripts"
    shutil.copytree(ROOT / "jobscripts", copy)
    stale = copy / "frontier" / "train-ddp.sbatch"
    stale.write_text(stale.read_text().replace("--nodes=8", "--nodes=4"))
    mod = runpy.run_path(str(copy / "render_examples.py"))
    assert mod["main"](["--check"]) == 1
    assert "stale: jobscripts/frontier/train-ddp.sbatch" in capsys.readouterr().err


@pytest.mark.parametrize("system", ["local", "generic", "perlmutter", "frontier", "alps", "juwels-booster"])
def test_every_profile_renders_valid_bash(system, tmp_path):
    for command, extra in [(TRAIN, {}), (("simulate", "calo", "--generator", "gflash", "--n", "10", "--out", "x.h5"),
                                         {}), (("simulate", "calo", "--generator", "gflash", "--n", "10", "--out",
                                                "x.h5"), {"array": 4}), (("merge", "x.h5", "--shards", "4"), {})]:
        text = render_job_script(load_profile(system), JobRequest(command=command, **SITE[system], **extra))
        f = tmp_path / "job.sbatch"
        f.write_text(text)
        assert subprocess.run(["bash", "-n", str(f)], capture_output=True).returncode == 0, text


def _step_argv(text: str, tmp_path: Path) -> list[str]:
    """Run the script's `step=(...)` line in bash and print the words it holds, one per line (NUL-separated)."""
    start = text.index("\nstep=(") + 1
    line = text[start:text.index('\nlog "job', start)]  # a quoted word may span lines
    script = tmp_path / "step.sh"
    script.write_text("SLURM_NTASKS=2\nSLURM_ARRAY_TASK_ID=3\nSLURM_CPUS_PER_TASK=1\n" + line
                      + "\nprintf '%s\\0' \"${step[@]}\"\n")
    out = subprocess.run(["bash", str(script)], capture_output=True, check=True).stdout
    return out.decode().split("\0")[:-1]


def test_user_strings_reach_hpcgen_as_one_word_each(tmp_path):
    hostile = ["data dir/it's $(touch pwned) `id` ; rm -rf ~.h5", "run\nnewline", "--steps", "10", "*"]
    cmd = ("train", "calo", "--data", hostile[0], "--out", hostile[1], "--steps", "10", "--note-glob", "*")
    text = render_job_script(load_profile("local"), JobRequest(command=cmd))
    argv = _step_argv(text, tmp_path)
    assert argv[:1] == ["srun"]
    assert argv[1:] == ["hpcgen", *cmd, "--engine", "ddp", "--resume", "auto"]
    assert not (tmp_path / "pwned").exists()


def test_array_tasks_get_their_own_shard_and_mpi_verbs_use_the_profile_launcher(tmp_path):
    sim = ("simulate", "calo", "--generator", "gflash", "--n", "10", "--out", "x.h5")
    arr = render_job_script(load_profile("local"), JobRequest(command=sim, array=4))
    assert "#SBATCH --array=0-3" in arr and "#SBATCH --signal" not in arr and "#SBATCH --requeue" in arr
    assert _step_argv(arr, tmp_path) == ["hpcgen", *sim, "--shard", "3/4"]
    mpi = render_job_script(load_profile("local"), JobRequest(command=sim))
    assert _step_argv(mpi, tmp_path) == ["mpirun", "-n", "2", "hpcgen", *sim]
    front = render_job_script(load_profile("frontier"), JobRequest(command=sim, account="x"))
    assert _step_argv(front, tmp_path)[:3] == ["srun", "--gpus-per-task=1", "--gpu-bind=closest"]


def test_engines_pick_their_launch_and_rendezvous():
    local = load_profile("local")
    ddp = render_job_script(local, JobRequest(command=TRAIN))
    hvd = render_job_script(local, JobRequest(command=TRAIN, engine="horovod"))
    assert "step=(srun hpcgen train" in ddp and "export MASTER_ADDR" in ddp
    assert 'step=(mpirun -n "${SLURM_NTASKS}" hpcgen train' in hvd and "MASTER_ADDR" not in hvd
    assert "--engine horovod" in hvd
    jw = render_job_script(load_profile("juwels-booster"), JobRequest(command=TRAIN, account="p"))
    assert 'MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"i' in jw
    assert "#SBATCH --gres=gpu:4" in jw
    fr = render_job_script(load_profile("frontier"), JobRequest(command=TRAIN, account="p", nodes=2))
    assert "export MASTER_ADDR" not in fr and "#SBATCH --gpus-per-task=1" in fr and "--ntasks-per-node=8" in fr
    pm = render_job_script(load_profile("perlmutter"), JobRequest(command=TRAIN, account="m0_g", nodes=2))
    for line in ("#SBATCH --constraint=gpu", "#SBATCH --qos=regular", "#SBATCH --gpus-per-node=4",
                 "#SBATCH --ntasks-per-node=4", "export SLURM_CPU_BIND=cores",
                 'export SRUN_CPUS_PER_TASK="${SLURM_CPUS_PER_TASK}"', "export HDF5_USE_FILE_LOCKING=FALSE"):
        assert line in pm


def test_preemption_block_only_for_training_and_configurable():
    local = load_profile("local")
    text = render_job_script(local, JobRequest(command=TRAIN, grace_s=90, max_requeues=3))
    assert "#SBATCH --signal=B:USR1@90" in text and "#SBATCH --requeue" in text
    assert f'if [ "$rc" -eq {EXIT_PREEMPTED} ]' in text and 'scontrol requeue "$SLURM_JOB_ID"' in text
    assert '-lt 3 ]' in text
    off = render_job_script(local, JobRequest(command=TRAIN, requeue=False))
    assert "#SBATCH --signal" not in off and "scontrol requeue" not in off
    resumed = resolve(local, JobRequest(command=(*TRAIN, "--resume"))).command
    assert resumed.count("--resume") == 1 and "auto" not in resumed


def test_the_requeue_exit_code_is_the_trainers():
    from hpcgen.train.loop import EXIT_PREEMPTED as trainer

    assert EXIT_PREEMPTED == trainer == 75


@pytest.mark.parametrize("system,req,message", [
    ("local", dict(nodes=0), "--nodes: expected >= 1, got 0"),
    ("local", dict(nodes=2), "--nodes: local has 1 node, asked for 2"),
    ("local", dict(time="90"), "--time: expected HH:MM:SS or D-HH:MM:SS"),
    ("local", dict(time="00:61:00"), "--time: expected HH:MM:SS"),
    ("perlmutter", dict(), "--account: perlmutter jobs need an account"),
    ("frontier", dict(account="a", engine="horovod"), "--engine: frontier cannot launch horovod"),
    ("alps", dict(account="a", engine="horovod"), "--engine: alps cannot launch horovod"),
    ("perlmutter", dict(account="a", gpus_per_node=8), "--gpus-per-node: perlmutter nodes have 4 GPUs"),
    ("local", dict(gpus_per_node=1), "--gpus-per-node: local has no GPUs"),
    ("frontier", dict(account="a", ntasks_per_node=4), "--ntasks-per-node: frontier binds one GPU per task"),
    ("perlmutter", dict(account="a", cpus_per_task=64), "exceed the 128 CPUs"),
    ("local", dict(array=3), "--array: only `simulate` runs as an array job"),
    ("local", dict(account="a b"), "--account: 'a b' has characters"),
    ("local", dict(output="logs/my job.out"), "--output: 'logs/my job.out' has characters"),
    ("generic", dict(), "--partition: generic jobs need a partition"),
])
def test_bad_requests_fail_with_one_line(system, req, message):
    with pytest.raises(UserError) as exc:
        render_job_script(load_profile(system), JobRequest(command=TRAIN, **req))
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_one_process_verbs_refuse_many_nodes_and_engines():
    with pytest.raises(UserError, match="runs as one process"):
        render_job_script(load_profile("local"), JobRequest(command=("merge", "x.h5", "--shards", "2"), nodes=1,
                                                            ntasks_per_node=2))
    with pytest.raises(UserError, match="--engine: only applies to train"):
        render_job_script(load_profile("local"), JobRequest(command=("info",), engine="ddp"))
    with pytest.raises(UserError, match="contradicts the command's --engine ddp"):
        render_job_script(load_profile("local"), JobRequest(command=(*TRAIN, "--engine", "ddp"), engine="horovod"))


def test_profiles_are_loaded_strictly(tmp_path):
    good = load_profile("local").source.read_text()
    bad = tmp_path / "local.toml"
    bad.write_text(good.replace("[node]\n", "[node]\ngpu = 3\n"))
    with pytest.raises(UserError, match=r"\[node\]: unknown key 'gpu'"):
        parse_profile(bad)
    bad.write_text(good.replace('OMP_NUM_THREADS = "${SLURM_CPUS_PER_TASK:-1}"', 'OMP_NUM_THREADS = "$(reboot)"'))
    with pytest.raises(UserError, match="OMP_NUM_THREADS"):
        parse_profile(bad)
    bad.write_text(good.replace('engines = ["ddp", "horovod"]', 'engines = ["mpi"]'))
    with pytest.raises(UserError, match="engines must be"):
        parse_profile(bad)


def test_rendering_imports_no_torch():
    code = ("import sys; from hpcgen.slurm import load_profile, render_job_script, JobRequest; "
            "render_job_script(load_profile('perlmutter'), JobRequest(command=('train','calo','--data','x','--out','r',"
            "'--steps','1'), account='a')); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the CLI -----------------------------------------------------------------------------------------------------


def test_cli_jobscript_prints_or_writes(tmp_path, capsys):
    assert main(["jobscript", "local", "--no-venv", "--", *TRAIN]) == 0
    out = capsys.readouterr().out
    assert out.startswith("#!/bin/bash\n") and "source " not in out
    assert main(["jobscript", "local", "--venv", "/opt/v", "--out", str(tmp_path / "j.sbatch"), "--", *TRAIN]) == 0
    assert "source /opt/v/bin/activate" in (tmp_path / "j.sbatch").read_text()
    assert main(["jobscript", "pipeline", "local", "--workdir", str(tmp_path / "p"), "--out", str(tmp_path / "p")]) == 0
    assert sorted(f.name for f in (tmp_path / "p").iterdir()) == ["bench.sbatch", "simulate.sbatch", "train.sbatch"]


@pytest.mark.parametrize("argv,message", [
    (["jobscript", "nowhere", "--", "info"], "unknown system 'nowhere'; known: alps, frontier"),
    (["jobscript", "local"], "the hpcgen command is missing"),
    (["jobscript", "local", "--", "train", "calo", "--data", "x"], "the command after --: hpcgen train:"),
    (["jobscript", "local", "--", "fly"], "the command after --: hpcgen: argument verb: invalid choice: 'fly'"),
    (["jobscript", "local", "--", "submit", "local"], "it cannot be submit"),
    (["jobscript", "pipeline"], "name the system"),
    (["jobscript", "pipeline", "local", "--domain", "weather"], "--domain: expected calo or cosmo"),
    (["jobscript", "pipeline", "local", "--shards", "0"], "--shards: expected 1 <= shards"),
    (["jobscript", "pipeline", "local", "--generator", "pm"], "--generator: calo offers cascade, gflash"),
])
def test_cli_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err



def test_pipeline_flags_are_refused_outside_a_pipeline(capsys):
    assert main(["jobscript", "local", "--steps", "5", "--", *TRAIN]) == 2
    assert "--steps: only applies to `jobscript pipeline`" in capsys.readouterr().err


def test_cli_pipeline_defaults_are_the_specs(capsys):
    """The CLI's pipeline defaults (shown by --help, filled in when a flag is absent) are PipelineSpec's own."""
    import dataclasses

    from hpcgen.cli import _pipeline_defaults
    from hpcgen.slurm.pipeline import PipelineSpec

    spec = {f.name: f.default for f in dataclasses.fields(PipelineSpec) if f.name != "workdir"}
    assert spec == _pipeline_defaults()
    with pytest.raises(SystemExit):
        main(["submit", "--help"])
    assert "(default 1000)" in " ".join(capsys.readouterr().out.split())
