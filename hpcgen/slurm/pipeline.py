"""The simulate → train → benchmark chain as three job requests (pure: no files, no sbatch).

1. ``simulate`` — a Monte Carlo **array job**: task k writes shard k of ``shards`` (``--shard k/M``), bit for bit what
   rank k of an M-rank MPI run writes; a preempted task is requeued and rewrites its shard (``--overwrite``);
2. ``train`` — merges the shards into one virtual data set (``hpcgen merge``, cheap, repeated harmlessly when the job
   is requeued), then trains with the given resources, checkpointing and requeueing on preemption;
3. ``bench`` — throughput at fidelity of the trained GAN against the Monte Carlo, then ``hpcgen report``.

All paths are relative to ``workdir`` (each job runs there: ``--chdir``): ``data/``, ``run/``, ``bench/``,
``report/``, ``logs/``, ``jobs/`` (the rendered scripts).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from hpcgen.errors import UserError
from hpcgen.slurm.profile import Profile
from hpcgen.slurm.render import JobRequest, check_time, render_job_script

DOMAINS = {"calo": ("cascade", "gflash"), "cosmo": ("lognormal", "pm")}


@dataclass(frozen=True)
class PipelineSpec:
    workdir: Path  # absolute; every job runs here
    domain: str = "calo"
    generator: str = ""  # default: gflash (calo) / lognormal (cosmo)
    n: int = 1000  # Monte Carlo samples in total
    shards: int = 4  # array tasks
    seed: int = 0
    energy_gev: str = "10:500"  # calo
    pixels: int = 64  # cosmo map side
    steps: int = 100
    batch_size: int = 8
    fidelity_n: int = 100  # samples per energy for the benchmark's fidelity
    bench_seconds: float = 2.0
    bench_energies_gev: str = ""  # calo; "" = bench throughput's default list
    sim_time: str = "01:00:00"  # per array task
    bench_time: str = "00:30:00"

    def check(self) -> None:
        if self.domain not in DOMAINS:
            raise UserError(f"--domain: expected calo or cosmo, got {self.domain!r}")
        if self.generator and self.generator not in DOMAINS[self.domain]:
            raise UserError(f"--generator: {self.domain} offers {', '.join(DOMAINS[self.domain])}, "
                            f"got {self.generator!r}")
        if self.shards < 1 or self.n < self.shards:
            raise UserError(f"--shards: expected 1 <= shards <= --n ({self.n}), got {self.shards}")
        for flag, v in (("--steps", self.steps), ("--batch-size", self.batch_size), ("--fidelity-n", self.fidelity_n),
                        ("--pixels", self.pixels)):
            if v < 1:
                raise UserError(f"{flag}: expected >= 1, got {v}")
        if self.bench_seconds <= 0:
            raise UserError(f"--bench-seconds: expected > 0, got {self.bench_seconds}")
        check_time(self.sim_time)
        check_time(self.bench_time)
        if not self.workdir.is_absolute():
            raise UserError(f"--workdir: expected an absolute path, got {self.workdir}")

    @property
    def generator_name(self) -> str:
        return self.generator or {"calo": "gflash", "cosmo": "lognormal"}[self.domain]

    @property
    def data(self) -> str:
        return f"data/{self.domain}_{self.generator_name}.h5"


def pipeline_jobs(profile: Profile, spec: PipelineSpec, train: JobRequest) -> list[tuple[str, JobRequest]]:
    """``[("simulate", array job), ("train", ...), ("bench", ...)]``; ``train`` carries the training resources and
    the site fields (account, partition, ...) that all three share."""
    spec.check()
    sim = ["simulate", spec.domain, "--generator", spec.generator_name, "--n", str(spec.n), "--seed", str(spec.seed),
           "--out", spec.data, "--overwrite"]
    if spec.domain == "calo":
        sim += ["--energy-gev", spec.energy_gev]
    else:
        sim += ["--pixels", str(spec.pixels)]
    shared = dict(account=train.account, partition=train.partition, qos=train.qos, constraint=train.constraint,
                  venv=train.venv, modules=train.modules, workdir=str(spec.workdir))
    simulate = JobRequest(command=tuple(sim), array=spec.shards, time=spec.sim_time, job_name="hpcgen-simulate",
                          output="logs/%x-%A_%a.out", **shared)
    train_cmd = ("train", spec.domain, "--data", spec.data, "--out", "run", "--steps", str(spec.steps),
                 "--batch-size", str(spec.batch_size), "--seed", str(spec.seed))
    train_job = replace(train, command=train_cmd, workdir=str(spec.workdir), job_name="hpcgen-train",
                        output=train.output or "logs/%x-%j.out",
                        before=(("merge", spec.data, "--shards", str(spec.shards), "--overwrite"),))
    result = f"bench/throughput_{spec.domain}.json"
    bench_cmd = ["bench", "throughput", "--domain", spec.domain, "--checkpoint", "run", "--out", result,
                 "--fidelity-n", str(spec.fidelity_n), "--seconds", str(spec.bench_seconds), "--seed", str(spec.seed)]
    if spec.domain == "calo" and spec.bench_energies_gev:
        bench_cmd += ["--energies-gev", spec.bench_energies_gev]
    bench = JobRequest(command=tuple(bench_cmd), time=spec.bench_time, job_name="hpcgen-bench",
                       output="logs/%x-%j.out", after=(("report", result, "--out", "report"),), **shared)
    return [("simulate", simulate), ("train", train_job), ("bench", bench)]


def render_pipeline(profile: Profile, spec: PipelineSpec, train: JobRequest) -> list[tuple[str, str]]:
    """``[(name, script text)]`` of the chain: all rendered, and so all checked, before any is written or submitted."""
    return [(name, render_job_script(profile, req)) for name, req in pipeline_jobs(profile, spec, train)]
