"""Submission: the one place that runs ``sbatch`` (``sbatch --parsable [--dependency=...] SCRIPT`` → job id).

Rendering (``hpcgen.slurm.render``) never submits; this module writes the rendered script next to the job's logs
(so a user can read and resubmit exactly what ran), calls sbatch through an injectable ``run`` and parses its
``--parsable`` answer (``JOBID`` or ``JOBID;CLUSTER``). ``submit_pipeline`` renders and checks every job of the
simulate → train → benchmark chain before it submits the first one, so bad input submits nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hpcgen.errors import UserError
from hpcgen.slurm.pipeline import PipelineSpec, render_pipeline
from hpcgen.slurm.profile import Profile
from hpcgen.slurm.render import JobRequest, job_name, render_job_script

_DEPENDENCY = re.compile(r"(?:(?:after|afterany|afterok|afternotok|aftercorr)(?::\d+(?:_\d+)?(?:\+\d+)?)+|singleton)"
                         r"(?:[,?](?:(?:after|afterany|afterok|afternotok|aftercorr)(?::\d+(?:_\d+)?(?:\+\d+)?)+"
                         r"|singleton))*\Z")


def check_dependency(text: str | None) -> str | None:
    if text is None:
        return None
    if not _DEPENDENCY.match(text):
        raise UserError(f"--dependency: expected TYPE:JOBID[:JOBID...] with TYPE after, afterany, afterok, afternotok "
                        f"or aftercorr (e.g. afterok:1234), got {text!r}")
    return text


def parse_parsable(stdout: str) -> str:
    """``sbatch --parsable`` prints ``JOBID`` or ``JOBID;CLUSTER`` (then maybe warnings on stderr)."""
    lines = [ln.strip() for ln in stdout.strip().splitlines() if ln.strip()]
    job = lines[-1].split(";", 1)[0] if lines else ""
    if not job.isdigit():
        raise UserError(f"sbatch: expected a job id from --parsable, got {stdout.strip()!r}")
    return job


def sbatch(script: Path, dependency: str | None = None, *, sbatch_cmd: str = "sbatch",
           run: Callable = subprocess.run) -> str:
    """Submit ``script``; return the job id. sbatch's own error becomes one line."""
    check_dependency(dependency)
    exe = shutil.which(sbatch_cmd) if os.sep not in sbatch_cmd else sbatch_cmd
    if not exe:
        raise UserError(f"sbatch: not found on PATH; submit from a Slurm login node (for a local test cluster: "
                        f"scripts/local-slurm.sh start), or use `hpcgen jobscript` to only write the script")
    argv = [exe, "--parsable", *([f"--dependency={dependency}"] if dependency else []), str(script)]
    proc = run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        err = next((ln for ln in (proc.stderr or "").splitlines() if ln.strip()), f"exit status {proc.returncode}")
        raise UserError(f"sbatch {script}: {err.strip()}")
    return parse_parsable(proc.stdout)


def write_script(text: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o755)
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class Submitted:
    name: str
    job_id: str
    script: Path
    dependency: str | None


def submit_job(profile: Profile, req: JobRequest, script_dir: Path, dependency: str | None = None,
               **sbatch_kw) -> Submitted:
    """Render ``req`` (every check happens here, before anything is written), keep the script in ``script_dir`` as
    ``<job name>-<time>-<pid>.sbatch`` and submit it."""
    check_dependency(dependency)
    text = render_job_script(profile, req)
    name = job_name(req)
    script = write_script(text, script_dir / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.sbatch")
    return Submitted(name, sbatch(script, dependency, **sbatch_kw), script, dependency)


def submit_pipeline(profile: Profile, spec: PipelineSpec, train: JobRequest, dependency: str | None = None,
                    **sbatch_kw) -> list[Submitted]:
    """Submit the Monte Carlo array job, then training (afterok), then the benchmark (afterok).

    Every script is rendered (and so checked) first; the directories under ``spec.workdir`` are created; then the
    jobs go to sbatch in order, each depending on the previous one.
    """
    check_dependency(dependency)
    texts = render_pipeline(profile, spec, train)
    for sub in ("data", "logs", "jobs", "bench"):
        (spec.workdir / sub).mkdir(parents=True, exist_ok=True)
    done: list[Submitted] = []
    for name, text in texts:
        script = write_script(text, spec.workdir / "jobs" / f"{name}.sbatch")
        dep = f"afterok:{done[-1].job_id}" if done else dependency
        done.append(Submitted(name, sbatch(script, dep, **sbatch_kw), script, dep))
    return done
