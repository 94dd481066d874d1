"""GAN training end to end: data-parallel runs on both engines, exact resume, preemption, generation, bad input."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hpcgen.data.calo_file import open_calo
from hpcgen.data.cosmo_file import open_cosmo
from hpcgen.train.loop import EXIT_PREEMPTED

from conftest import hpcgen_cmd, mpirun_cmd, require_horovod, run_cli, write_small_calo, write_small_cosmo


@pytest.fixture
def calo_data(tmp_path: Path) -> Path:
    return write_small_calo(tmp_path / "calo.h5", n=16)


@pytest.fixture
def cosmo_data(tmp_path: Path) -> Path:
    return write_small_cosmo(tmp_path / "cosmo.h5", n=16, size=32)


def _run(cmd, timeout=300, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", HPCGEN_NO_PROGRESS="1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, **kw)


def _train_args(domain: str, data: Path, out: Path, engine: str, steps: int, *extra: str) -> list[str]:
    return ["train", domain, "--data", str(data), "--engine", engine, "--batch-size", "2", "--steps", str(steps),
            "--out", str(out), "--checkpoint-every", "2", "--seed", "3", *extra]


@pytest.mark.mpi
@pytest.mark.parametrize("engine", ["ddp", "horovod"])
@pytest.mark.parametrize("domain", ["calo", "cosmo"])
def test_two_rank_training_keeps_parameters_identical_on_both_ranks(tmp_path, calo_data, cosmo_data, engine, domain):
    if engine == "horovod":
        require_horovod()
    data = calo_data if domain == "calo" else cosmo_data
    res = _run(mpirun_cmd(2, *_train_args(domain, data, tmp_path / "run", engine, 3)))
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    digests = summary["param_sha256_per_rank"]
    assert len(digests) == 2 and digests[0] == digests[1] and summary["params_identical_across_ranks"]
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2, 3]
    assert all(m["world_size"] == 2 and m["engine"] == engine for m in lines)
    assert all(torch.isfinite(torch.tensor([m["loss_D"], m["loss_G"]])).all() for m in lines)
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] == 3 and len(ckpt["rng"]) == 2  # RNG states of both ranks


def _final_state(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", weights_only=False)["state"]


def _assert_same_state(a: dict, b: dict) -> None:
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs"
    assert a["opt_G"]["state"].keys() == b["opt_G"]["state"].keys()


@pytest.mark.mpi
@pytest.mark.parametrize("engine", ["ddp", "horovod"])
def test_two_rank_cosmogan_with_the_spectral_loss_trains_and_stays_in_sync(tmp_path, cosmo_data, engine):
    if engine == "horovod":
        require_horovod()
    res = _run(mpirun_cmd(2, *_train_args("cosmo", cosmo_data, tmp_path / "run", engine, 2, "--spectral-loss")))
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["params_identical_across_ranks"] and math.isfinite(summary["spectral_G"])


@pytest.mark.mpi
def test_resumed_two_rank_run_ends_bit_identical_to_an_uninterrupted_one(tmp_path, calo_data):
    full = _run(mpirun_cmd(2, *_train_args("calo", calo_data, tmp_path / "full", "ddp", 4)))
    assert full.returncode == 0, full.stderr[-3000:]
    part = _run(mpirun_cmd(2, *_train_args("calo", calo_data, tmp_path / "part", "ddp", 2)))
    assert part.returncode == 0, part.stderr[-3000:]
    rest = _run(mpirun_cmd(2, *_train_args("calo", calo_data, tmp_path / "part", "ddp", 4, "--resume")))
    assert rest.returncode == 0, rest.stderr[-3000:]
    _assert_same_state(_final_state(tmp_path / "full"), _final_state(tmp_path / "part"))


def test_sigusr1_checkpoints_and_exits_with_the_preemption_code_then_resume_matches(tmp_path, calo_data):
    args = _train_args("calo", calo_data, tmp_path / "sig", "ddp", 40)
    env = dict(os.environ, OMP_NUM_THREADS="1", HPCGEN_NO_PROGRESS="1")
    proc = subprocess.Popen(hpcgen_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    metrics = tmp_path / "sig" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 1):
        time.sleep(0.2)
    proc.send_signal(signal.SIGUSR1)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_PREEMPTED, err[-2000:]
    stopped_at = torch.load(tmp_path / "sig" / "checkpoint.pt", weights_only=False)["step"]
    assert 1 <= stopped_at < 40
    total = stopped_at + 2
    res = run_cli(*_train_args("calo", calo_data, tmp_path / "sig", "ddp", total, "--resume"))
    assert res.returncode == 0, res.stderr[-2000:]
    ref = run_cli(*_train_args("calo", calo_data, tmp_path / "ref", "ddp", total))
    assert ref.returncode == 0, ref.stderr[-2000:]
    _assert_same_state(_final_state(tmp_path / "ref"), _final_state(tmp_path / "sig"))


@pytest.mark.mpi
@pytest.mark.parametrize("domain", ["calo", "cosmo"])
def test_generate_writes_the_monte_carlo_schema_under_mpirun(tmp_path, calo_data, cosmo_data, domain):
    data = calo_data if domain == "calo" else cosmo_data
    assert run_cli(*_train_args(domain, data, tmp_path / "run", "ddp", 1)).returncode == 0
    extra = ["--energy-gev", "20,60"] if domain == "calo" else ["--sigma8", "0.8"]
    res = _run(mpirun_cmd(2, "generate", "--checkpoint", str(tmp_path / "run"), "--n", "5", "--batch-size", "2",
                          "--out", str(tmp_path / "gen.h5"), *extra))
    assert res.returncode == 0, res.stderr[-3000:]
    opener = open_calo if domain == "calo" else open_cosmo
    with opener(tmp_path / "gen.h5") as f:
        assert len(f) == 5 and f.attrs["generator"] == "gan:run@1"
        if domain == "calo":
            assert f.ecal.shape == (5, 8, 8, 8) and sorted(set(f.energy_gev.tolist())) == [20.0, 60.0]
        else:
            assert f.kappa.shape == (5, 32, 32) and (f.kappa[...] > -0.06).all()


@pytest.mark.parametrize("make_args, words", [
    (lambda d: ["train", "calo", "--data", str(d / "missing.h5"), "--steps", "1", "--out", str(d / "r")], "no such file"),
    (lambda d: ["train", "calo", "--data", str(d / "cosmo.h5"), "--steps", "1", "--out", str(d / "r")],
     "schema is 'hpcgen.cosmo/1', expected 'hpcgen.calo/1'"),
    (lambda d: ["train", "calo", "--data", str(d / "calo.h5"), "--steps", "1", "--batch-size", "0", "--out", str(d / "r")],
     "--batch-size: expected >= 1"),
    (lambda d: ["train", "calo", "--data", str(d / "calo.h5"), "--steps", "1", "--engine", "mpi", "--out", str(d / "r")],
     "--engine: expected one of ddp, horovod"),
    (lambda d: ["train", "calo", "--data", str(d / "calo.h5"), "--out", str(d / "r")], "give exactly one"),
    (lambda d: ["train", "calo", "--data", str(d / "calo.h5"), "--steps", "1", "--batch-size", "64", "--out", str(d / "r")],
     "no full batch of 64"),
    (lambda d: ["train", "calo", "--data", str(d / "calo.h5"), "--steps", "1", "--spectral-loss", "--out", str(d / "r")],
     "--spectral-loss: only applies to `train cosmo`"),
    (lambda d: ["train", "calo", "--data", str(d / "calo.h5"), "--steps", "1", "--ops-impl", "gpu", "--out", str(d / "r")],
     "--ops-impl: expected one of auto, ref, cpu, cuda"),
    (lambda d: ["generate", "--checkpoint", str(d / "nothing"), "--n", "2", "--out", str(d / "g.h5")], "holds no checkpoint.pt"),
    (lambda d: ["train", "cosmo", "--data", str(d / "cosmo.h5"), "--steps", "1", "--cosmo-width", "0", "--out",
                str(d / "r")], "--cosmo-width: expected a channel multiplier in (0, 4]"),
    (lambda d: ["train", "calo", "--data", str(d / "calo.h5"), "--steps", "1", "--cosmo-width", "0.5", "--out",
                str(d / "r")], "--cosmo-width: only applies to `train cosmo`"),
])
def test_bad_training_input_is_one_line_exit_2(tmp_path, calo_data, cosmo_data, make_args, words):
    res = run_cli(*make_args(tmp_path))
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], res.stderr


def test_horovod_requested_but_not_installed_says_how_to_build_it(tmp_path, calo_data):
    # hide an installed Horovod from this one process: the error a user without it sees
    code = ("import sys; sys.modules['horovod'] = None; sys.modules['horovod.torch'] = None; "
            "from hpcgen.cli import main; sys.exit(main(sys.argv[1:]))")
    res = _run([sys.executable, "-c", code, *_train_args("calo", calo_data, tmp_path / "r", "horovod", 1)])
    assert res.returncode == 2 and "make horovod" in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_existing_run_is_not_overwritten_and_resume_needs_a_checkpoint(tmp_path, calo_data):
    assert run_cli(*_train_args("calo", calo_data, tmp_path / "r", "ddp", 1)).returncode == 0
    again = run_cli(*_train_args("calo", calo_data, tmp_path / "r", "ddp", 1))
    assert again.returncode == 2 and "--resume" in again.stderr
    fresh = run_cli(*_train_args("calo", calo_data, tmp_path / "new", "ddp", 1, "--resume"))
    assert fresh.returncode == 2 and "no checkpoint.pt to resume from" in fresh.stderr


def test_resume_auto_starts_fresh_then_continues(tmp_path, calo_data):
    """`--resume auto` (what job scripts pass): no checkpoint → a new run; a checkpoint → continue it."""
    first = run_cli(*_train_args("calo", calo_data, tmp_path / "r", "ddp", 1, "--resume", "auto"))
    assert first.returncode == 0 and "trained calo to step 1" in first.stdout, first.stderr
    more = run_cli(*_train_args("calo", calo_data, tmp_path / "r", "ddp", 2, "--resume", "auto"))
    assert more.returncode == 0 and "trained calo to step 2" in more.stdout, more.stderr
    steps = [json.loads(line)["step"] for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]
    done = run_cli(*_train_args("calo", calo_data, tmp_path / "r", "ddp", 2, "--resume", "auto"))
    assert done.returncode == 0 and "nothing to train" in done.stdout
    bad = run_cli(*_train_args("calo", calo_data, tmp_path / "r", "ddp", 2, "--resume", "maybe"))
    assert bad.returncode == 2 and "--resume" in bad.stderr


@pytest.mark.mpi
def test_trainer_runs_under_torchrun_and_horovodrun(tmp_path, calo_data):
    """The same verb under the two launchers that are not mpirun: rank/size come from their own variables."""
    bin_dir = Path(sys.executable).parent
    torchrun = [str(bin_dir / "torchrun"), "--nproc-per-node", "2", "--master-port", "29631", "-m", "hpcgen.cli"]
    res = _run(torchrun + _train_args("calo", calo_data, tmp_path / "tr", "ddp", 2))
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((tmp_path / "tr" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["params_identical_across_ranks"]
    require_horovod()
    hvdrun = [str(bin_dir / "horovodrun"), "-np", "2", "--gloo", "-H", "localhost:2", sys.executable, "-m", "hpcgen.cli"]
    res = _run(hvdrun + _train_args("calo", calo_data, tmp_path / "hv", "horovod", 2))
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((tmp_path / "hv" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["engine"] == "horovod" and summary["params_identical_across_ranks"]
