"""Render an sbatch script: a pure function of a site profile and a typed job request (no I/O, no submission).

The model is submitit's ``slurm/slurm.py`` (render ≠ submit, golden files, no shell string concatenation of user
input): every user string becomes one shell word through ``shlex.quote``; the only unquoted expansions are the
renderer's own (``${SLURM_ARRAY_TASK_ID}``, a profile's ``${SLURM_CPUS_PER_TASK}``), marked by the ``Expand`` type.
Values that sbatch itself parses from ``#SBATCH`` lines (names, paths) are checked against a strict character set.

How a verb is launched (``launch_kind``):

- ``mpi`` — ``simulate``, ``generate``, ``demo``, ``bench throughput`` and ``train --engine horovod`` need MPI ranks:
  the profile's MPI launch (``srun`` with the site MPI's plugin; ``mpirun`` in the allocation on the local cluster);
- ``ddp`` — ``train --engine ddp``: the profile's DDP launch (``srun``), with MASTER_ADDR/MASTER_PORT exported for the
  env:// rendezvous (rank 0's host from the node list, plus a site suffix such as JUWELS Booster's ``i``), or with
  rank 0 found over MPI where the profile says ``rendezvous = "mpi"`` (Frontier);
- ``single`` — every other verb, and each task of an array job, runs as one process in the batch shell.

Preemption (``train``): the script asks for ``--signal=B:USR1@GRACE`` and ``--requeue``, runs ``train --resume
auto``, forwards SIGUSR1 to the step, and when the trainer exits 75 (checkpoint written) requeues the job with
``scontrol requeue``; the restarted job resumes from the checkpoint.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from importlib import resources

from hpcgen.errors import UserError
from hpcgen.slurm.profile import Profile, check_shell_word

EXIT_PREEMPTED = 75  # hpcgen.train.loop.EXIT_PREEMPTED, spelt out here: slurm imports no torch (a test keeps them equal)
MPI_VERBS = (("simulate",), ("generate",), ("demo",), ("bench", "throughput"))
_TIME = re.compile(r"(?:(\d+)-)?(\d{1,3}):([0-5]\d):([0-5]\d)\Z")
_SBATCH_WORD = re.compile(r"[A-Za-z0-9_.,:+=@%/-]+\Z")  # safe inside an #SBATCH line (sbatch's own parser)
_CONSTRAINT = re.compile(r"[A-Za-z0-9_.,:&|\[\]*()-]+\Z")


class Expand(str):
    """A shell word written by the renderer that must expand (``${SLURM_ARRAY_TASK_ID}/8``): rendered in double
    quotes, checked to hold nothing but ``${VAR}`` expansions and plain characters. User input is never one."""


@dataclass(frozen=True)
class JobRequest:
    """One sbatch job. ``command`` is ``VERB ARGS...`` of hpcgen; ``None`` fields take the profile's default."""

    command: tuple[str, ...]
    nodes: int = 1
    time: str | None = None  # [D-]HH:MM:SS
    account: str | None = None
    partition: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gpus_per_node: int | None = None
    ntasks_per_node: int | None = None
    cpus_per_task: int | None = None
    engine: str | None = None  # train only: ddp | horovod (default ddp, or the command's --engine)
    job_name: str | None = None
    workdir: str | None = None  # --chdir; None = where sbatch runs
    venv: str | None = None  # a virtual environment to activate (its hpcgen, mpirun, torch)
    modules: tuple[str, ...] | None = None  # `module load` lines; None = the profile's
    output: str | None = None  # log file pattern (sbatch --output); default %x-%j.out (the job name is hpcgen-VERB)
    array: int = 0  # > 0: an array of this many tasks; the command (a simulate) gets --shard ${SLURM_ARRAY_TASK_ID}/N
    requeue: bool = True  # train: checkpoint and requeue on the preemption signal; array tasks: rerun when requeued
    grace_s: int | None = None  # seconds between the signal and the time limit; None = the profile's
    max_requeues: int = 20
    before: tuple[tuple[str, ...], ...] = field(default=())  # one-process hpcgen commands run first (e.g. merge)
    after: tuple[tuple[str, ...], ...] = field(default=())  # one-process hpcgen commands run after success


@dataclass(frozen=True)
class Resolved:
    """What the request resolves to on a profile (shown by ``hpcgen submit`` and used by the renderer)."""

    kind: str  # mpi | ddp | single
    command: tuple[str, ...]  # with what the renderer adds (--engine, --resume auto, --shard)
    job_name: str
    ntasks_per_node: int
    cpus_per_task: int
    gpus_per_node: int
    sbatch: dict  # account / partition / qos / constraint / time, non-empty values only
    grace_s: int | None  # preemption notice before the time limit; None = not a checkpoint-and-requeue job


def verb_of(command: tuple[str, ...]) -> tuple[str, ...]:
    words = [w for w in command if not w.startswith("-")]
    return tuple(words[:2]) if words[:1] == ["bench"] else tuple(words[:1])


def job_name(req: JobRequest) -> str:
    """``req.job_name`` or ``hpcgen-VERB`` (``hpcgen-train``, ``hpcgen-bench-throughput``)."""
    return _sbatch_word(req.job_name or "hpcgen-" + "-".join(verb_of(tuple(req.command))), "--job-name")


def _option(command: tuple[str, ...], flag: str) -> str | None:
    for i, w in enumerate(command):
        if w == flag and i + 1 < len(command):
            return command[i + 1]
        if w.startswith(flag + "="):
            return w.split("=", 1)[1]
    return None


def _has(command: tuple[str, ...], flag: str) -> bool:
    return any(w == flag or w.startswith(flag + "=") for w in command)


def launch_kind(command: tuple[str, ...], engine: str | None, array: int = 0) -> str:
    verb = verb_of(command)
    if array:
        return "single"
    if verb == ("train",):
        return "mpi" if engine == "horovod" else "ddp"
    return "mpi" if any(verb[:len(v)] == v for v in MPI_VERBS) else "single"


def check_time(text: str) -> str:
    m = _TIME.match(text or "")
    if not m or (int(m.group(1) or 0), int(m.group(2)), int(m.group(3)), int(m.group(4))) == (0, 0, 0, 0):
        raise UserError(f"--time: expected HH:MM:SS or D-HH:MM:SS (e.g. 00:30:00), got {text!r}")
    return text


def _sbatch_word(value: str, flag: str, pattern=_SBATCH_WORD) -> str:
    if not pattern.match(value):
        raise UserError(f"{flag}: {value!r} has characters an #SBATCH line cannot carry; use letters, digits and "
                        "_.,:+=@%/- only")
    return value


def resolve(profile: Profile, req: JobRequest) -> Resolved:
    """Check ``req`` against ``profile`` (one-line UserError naming the flag) and fill in the defaults."""
    p = profile
    command = tuple(req.command)
    if not command:
        raise UserError("the hpcgen command after -- is missing (e.g. -- train calo --data showers.h5 ...)")
    verb = verb_of(command)
    if req.nodes < 1:
        raise UserError(f"--nodes: expected >= 1, got {req.nodes}")
    if req.nodes > p.max_nodes:
        raise UserError(f"--nodes: {p.name} has {p.max_nodes} node{'s' if p.max_nodes > 1 else ''}, asked for {req.nodes}")

    engine = None
    if verb == ("train",):
        given = _option(command, "--engine")
        if req.engine and given and req.engine != given:
            raise UserError(f"--engine {req.engine} contradicts the command's --engine {given}")
        engine = req.engine or given or "ddp"
        if engine not in p.engines:
            raise UserError(f"--engine: {p.name} cannot launch {engine} (it offers {', '.join(p.engines)}; "
                            f"see {p.source.name})")
        if not given:
            command += ("--engine", engine)
        if not _has(command, "--resume"):
            command += ("--resume", "auto")  # a requeued or resubmitted job continues its checkpoint
    elif req.engine:
        raise UserError(f"--engine: only applies to train, not {' '.join(verb)}")

    if req.array:
        if verb != ("simulate",):
            raise UserError(f"--array: only `simulate` runs as an array job (one shard per task), not {' '.join(verb)}")
        if req.array < 1:
            raise UserError(f"--array: expected >= 1 tasks, got {req.array}")
        if _has(command, "--shard"):
            raise UserError("--array: the command must not give --shard; each array task gets its own")
        command += ("--shard", Expand(f"${{SLURM_ARRAY_TASK_ID}}/{req.array}"))
    kind = launch_kind(command, engine, req.array)

    gpus = p.gpus_per_node if req.gpus_per_node is None else req.gpus_per_node
    if kind == "single" and req.gpus_per_node is None:
        gpus = 0
    if gpus < 0:
        raise UserError(f"--gpus-per-node: expected >= 0, got {gpus}")
    if gpus > 0 and p.gpu_request == "none":
        raise UserError(f"--gpus-per-node: {p.name} has no GPUs")
    if p.gpus_per_node and gpus > p.gpus_per_node:
        raise UserError(f"--gpus-per-node: {p.name} nodes have {p.gpus_per_node} GPUs, asked for {gpus}")
    if kind == "single":
        if req.nodes != 1:
            raise UserError(f"--nodes: `{' '.join(verb)}` runs as one process{' per array task' if req.array else ''}; "
                            "use --nodes 1")
        ntasks = 1
        if req.ntasks_per_node not in (None, 1):
            raise UserError(f"--ntasks-per-node: `{' '.join(verb)}` runs as one process; leave it at 1")
    else:
        ntasks = req.ntasks_per_node or (gpus if gpus else p.ntasks_per_node)
        if ntasks < 1:
            raise UserError(f"--ntasks-per-node: expected >= 1, got {ntasks}")
        if p.gpu_request == "per-task" and gpus and ntasks != gpus:
            raise UserError(f"--ntasks-per-node: {p.name} binds one GPU per task, so it must equal --gpus-per-node "
                            f"({gpus}), got {ntasks}")
    cpus = req.cpus_per_task or (max(1, p.cpus_per_node // ntasks) if p.cpus_per_node and kind != "single" else 1)
    if cpus < 1:
        raise UserError(f"--cpus-per-task: expected >= 1, got {cpus}")
    if p.cpus_per_node and cpus * ntasks > p.cpus_per_node:
        raise UserError(f"--cpus-per-task: {ntasks} tasks x {cpus} CPUs exceed the {p.cpus_per_node} CPUs of a "
                        f"{p.name} node")

    sbatch = {"time": "01:00:00", **p.sbatch}
    for key in ("account", "partition", "qos", "constraint", "time"):
        value = getattr(req, key)
        if value is not None:
            sbatch[key] = value
    check_time(sbatch["time"])
    for key in ("account", "partition", "qos"):
        if sbatch.get(key):
            _sbatch_word(sbatch[key], f"--{key}")
    if sbatch.get("constraint"):
        _sbatch_word(sbatch["constraint"], "--constraint", _CONSTRAINT)
    for key in p.required:
        if not sbatch.get(key):
            raise UserError(f"--{key}: {p.name} jobs need {'an' if key == 'account' else 'a'} {key} "
                            f"(sbatch --{key}); pass --{key} NAME")
    grace = None
    if req.requeue and verb == ("train",):
        grace = p.grace_s if req.grace_s is None else req.grace_s
        if grace < 1:
            raise UserError(f"--grace-s: expected >= 1 second, got {grace}")
    return Resolved(kind=kind, command=command, job_name=job_name(req), ntasks_per_node=ntasks, cpus_per_task=cpus,
                    gpus_per_node=gpus, sbatch={k: v for k, v in sbatch.items() if v}, grace_s=grace)


def _word(w: str) -> str:
    if isinstance(w, Expand):
        return '"' + check_shell_word(str(w), "internal expansion") + '"'
    return shlex.quote(str(w))


def _profile_word(value: str) -> str:
    """A profile's word (checked when the profile was loaded): expands when it holds ${VAR}, else is quoted."""
    return _word(Expand(value) if "${" in value else value)


def _hpcgen(command: tuple[str, ...]) -> str:
    return " ".join(["hpcgen", *(_word(w) for w in command)])


def _sbatch_lines(p: Profile, req: JobRequest, r: Resolved) -> list[str]:
    default_out = "%x-%A_%a.out" if req.array else "%x-%j.out"
    lines = [f"--job-name={r.job_name}"]
    for key in ("account", "partition", "qos", "constraint"):
        if key in r.sbatch:
            lines.append(f"--{key}={r.sbatch[key]}")
    lines += [f"--nodes={req.nodes}", f"--ntasks-per-node={r.ntasks_per_node}", f"--cpus-per-task={r.cpus_per_task}"]
    if r.gpus_per_node:
        lines.append({"per-node": f"--gpus-per-node={r.gpus_per_node}", "per-task": "--gpus-per-task=1",
                      "gres": f"--gres=gpu:{r.gpus_per_node}"}[p.gpu_request])
    lines.append(f"--time={r.sbatch['time']}")
    if req.array:
        lines.append(f"--array=0-{req.array - 1}")
    if req.workdir:
        lines.append(f"--chdir={_sbatch_word(req.workdir, '--workdir')}")
    lines.append(f"--output={_sbatch_word(req.output or default_out, '--output')}")
    if r.grace_s is not None:
        lines += [f"--signal=B:USR1@{r.grace_s}", "--requeue", "--open-mode=append"]
    elif req.array and req.requeue:
        # a preempted or node-failed array task is simply run again: its shard is rewritten from the start
        lines += ["--requeue", "--open-mode=append"]
    return [f"#SBATCH {line}" for line in lines]


def _environment(p: Profile, req: JobRequest, r: Resolved) -> list[str]:
    out = [f"module load {shlex.quote(m)}" for m in (p.modules if req.modules is None else req.modules)]
    if req.venv:
        out.append(f"source {shlex.quote(req.venv.rstrip('/') + '/bin/activate')}")
    out += [f"export {k}={_profile_word(v)}" for k, v in p.env]
    out.append("export HPCGEN_NO_PROGRESS=1  # no progress bars in log files")
    if r.kind == "ddp" and p.rendezvous == "env":
        out += ["# torch.distributed env:// rendezvous: rank 0 runs on the first node of the allocation",
                'MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"' + p.master_addr_suffix,
                "export MASTER_ADDR",
                "export MASTER_PORT=$((29500 + SLURM_JOB_ID % 1000))"]
    elif r.kind == "ddp":
        out.append("# rank, size and rank 0's address come from MPI (hpcgen.dist.launch), no MASTER_ADDR here")
    return out


def _step(p: Profile, r: Resolved) -> str:
    launch = {"mpi": p.mpi_launch, "ddp": p.ddp_launch, "single": ()}[r.kind]
    return " ".join([*(_profile_word(w) for w in launch), _hpcgen(r.command)])


def _before(req: JobRequest) -> list[str]:
    lines = []
    for cmd in req.before:
        lines.append(f'{_hpcgen(tuple(cmd))} || {{ rc=$?; log "{verb_of(tuple(cmd))[0]} failed ($rc)"; exit "$rc"; }}')
    return ["", "# -- before the step ".ljust(112, "-"), *lines] if lines else []


def _after(req: JobRequest, r: Resolved) -> list[str]:
    lines = []
    if r.grace_s is not None:
        lines += [
            f'if [ "$rc" -eq {EXIT_PREEMPTED} ]; then  # the trainer checkpointed on the signal: run again and resume',
            f'  if [ "${{SLURM_RESTART_COUNT:-0}}" -lt {int(req.max_requeues)} ]; then',
            '    log "checkpoint written; requeueing job $SLURM_JOB_ID to resume it"',
            '    scontrol requeue "$SLURM_JOB_ID" && exit 0',
            '    log "scontrol requeue failed: resubmit this script to resume from the checkpoint"',
            "  else",
            f'    log "requeued {int(req.max_requeues)} times already; resubmit this script to resume"',
            "  fi",
            "fi",
        ]
    if req.after:
        lines.append('if [ "$rc" -eq 0 ]; then')
        for cmd in req.after:
            lines.append(f"  {_hpcgen(tuple(cmd))} || rc=$?")
        lines.append("fi")
    return lines


def render_job_script(profile: Profile, req: JobRequest) -> str:
    """The complete sbatch script for ``req`` on ``profile`` (a pure function: same inputs, same text)."""
    r = resolve(profile, req)
    template = (resources.files("hpcgen.slurm") / "templates" / "job.sbatch.in").read_text()
    blocks = {
        "@SYSTEM@": profile.name,
        "@DESCRIPTION@": profile.description,
        "@SBATCH@": "\n".join(_sbatch_lines(profile, req, r)),
        "@ENVIRONMENT@": "\n".join(_environment(profile, req, r)),
        "@BEFORE@": "\n".join(_before(req)),
        "@STEP@": _step(profile, r),
        "@AFTER@": "\n".join(_after(req, r)),
    }
    for marker, text in blocks.items():
        template = template.replace(marker, text)
    return re.sub(r"\n{3,}", "\n\n", template)
