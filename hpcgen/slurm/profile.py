"""Site profiles: what a system's support staff would put in a job script, as data (``profiles/<name>.toml``).

A profile names the sbatch defaults (partition, QOS, constraint, time), the fields a job must set (``required``:
account, partition, qos, constraint), a node's GPUs and CPUs and how GPUs are requested (``--gpus-per-node``,
``--gpus-per-task`` or ``--gres``), the launch commands for MPI verbs and for DDP, how DDP finds rank 0 (``env``:
MASTER_ADDR from the node list, with a per-site hostname suffix; ``mpi``: hpcgen asks MPI), the engines the site can
run, and the environment every step needs. Profiles are loaded strictly: an unknown key or a bad value is an error
naming the file and the key. No torch here (ARCHITECTURE.md: ``slurm`` knows nothing of torch).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hpcgen.errors import UserError

ENGINES = ("ddp", "horovod")
GPU_REQUESTS = ("none", "per-node", "per-task", "gres")
RENDEZVOUS = ("env", "mpi")
REQUIRABLE = ("account", "partition", "qos", "constraint")
_SBATCH_KEYS = ("partition", "qos", "constraint", "time", "account")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# A profile value may use ${VAR} / ${VAR:-default} expansions of Slurm's variables, nothing else of the shell.
_EXPANSION = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[A-Za-z0-9_./-]*)?\}")
_PLAIN = re.compile(r"[A-Za-z0-9 _./:,=@%+-]*\Z")


def check_shell_word(value: str, where: str) -> str:
    """A profile-authored word may expand Slurm variables (``${SLURM_NTASKS}``) but nothing else of the shell."""
    if not isinstance(value, str) or not _PLAIN.match(_EXPANSION.sub("", value)):
        raise UserError(f"{where}: {value!r} may only hold letters, digits, ' _./:,=@%+-' and ${{VAR}} expansions")
    return value


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    required: tuple[str, ...]
    max_nodes: int
    engines: tuple[str, ...]
    modules: tuple[str, ...]
    sbatch: dict  # defaults for partition / qos / constraint / time / account
    gpus_per_node: int
    gpu_request: str
    cpus_per_node: int  # logical CPUs for --cpus-per-task = cpus // tasks; 0 = unknown (1 per task)
    ntasks_per_node: int  # default ranks per node (one per GPU on GPU systems)
    mpi_launch: tuple[str, ...]
    ddp_launch: tuple[str, ...]
    rendezvous: str
    master_addr_suffix: str
    grace_s: int
    env: tuple[tuple[str, str], ...]
    source: Path


def profiles_dir() -> Path:
    return Path(str(resources.files("hpcgen.slurm") / "profiles"))


def profile_names() -> list[str]:
    return sorted(p.stem for p in profiles_dir().glob("*.toml"))


def load_profile(name: str) -> Profile:
    """The profile called ``name`` (``hpcgen/slurm/profiles/<name>.toml``); a one-line error lists the known ones."""
    path = profiles_dir() / f"{name}.toml"
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name or "") or not path.is_file():
        raise UserError(f"SYSTEM: unknown system {name!r}; known: {', '.join(profile_names())}")
    return parse_profile(path)


def _take(table: dict, key: str, kind, where: str, default=None):
    if key not in table:
        if default is None:
            raise UserError(f"{where}: missing key {key!r}")
        return default
    value = table.pop(key)
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise UserError(f"{where}: {key} must be a {kind.__name__}, got {value!r}")
    return value


def _no_extra(table: dict, where: str) -> None:
    if table:
        raise UserError(f"{where}: unknown key {sorted(table)[0]!r}")


def parse_profile(path: Path) -> Profile:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    f = str(path)
    name = _take(data, "name", str, f)
    if name != path.stem:
        raise UserError(f"{f}: name {name!r} must equal the file name {path.stem!r}")
    description = _take(data, "description", str, f)
    required = tuple(_take(data, "required", list, f))
    for r in required:
        if r not in REQUIRABLE:
            raise UserError(f"{f}: required: {r!r} is not one of {', '.join(REQUIRABLE)}")
    max_nodes = _take(data, "max_nodes", int, f)
    engines = tuple(_take(data, "engines", list, f))
    if not engines or any(e not in ENGINES for e in engines):
        raise UserError(f"{f}: engines must be a non-empty subset of {', '.join(ENGINES)}, got {list(engines)}")
    modules = tuple(check_shell_word(m, f"{f}: modules") for m in _take(data, "modules", list, f))

    sb = dict(_take(data, "sbatch", dict, f))
    sbatch = {k: check_shell_word(_take(sb, k, str, f"{f} [sbatch]", ""), f"{f} [sbatch] {k}") for k in _SBATCH_KEYS}
    _no_extra(sb, f"{f} [sbatch]")
    sbatch = {k: v for k, v in sbatch.items() if v}

    node = dict(_take(data, "node", dict, f))
    gpus = _take(node, "gpus", int, f"{f} [node]")
    gpu_request = _take(node, "gpu_request", str, f"{f} [node]")
    if gpu_request not in GPU_REQUESTS:
        raise UserError(f"{f} [node]: gpu_request must be one of {', '.join(GPU_REQUESTS)}, got {gpu_request!r}")
    cpus = _take(node, "cpus", int, f"{f} [node]")
    ntasks = _take(node, "ntasks", int, f"{f} [node]")
    _no_extra(node, f"{f} [node]")
    if gpus < 0 or cpus < 0 or ntasks < 1 or max_nodes < 1:
        raise UserError(f"{f}: need gpus >= 0, cpus >= 0, ntasks >= 1, max_nodes >= 1")

    launch = dict(_take(data, "launch", dict, f))
    mpi = tuple(check_shell_word(w, f"{f} [launch] mpi") for w in _take(launch, "mpi", list, f"{f} [launch]"))
    ddp = tuple(check_shell_word(w, f"{f} [launch] ddp") for w in _take(launch, "ddp", list, f"{f} [launch]"))
    rendezvous = _take(launch, "rendezvous", str, f"{f} [launch]")
    if rendezvous not in RENDEZVOUS:
        raise UserError(f"{f} [launch]: rendezvous must be one of {', '.join(RENDEZVOUS)}, got {rendezvous!r}")
    suffix = check_shell_word(_take(launch, "master_addr_suffix", str, f"{f} [launch]", ""), f"{f} [launch]")
    _no_extra(launch, f"{f} [launch]")
    if not mpi or not ddp:
        raise UserError(f"{f} [launch]: mpi and ddp must name a launch command")

    pre = dict(_take(data, "preemption", dict, f))
    grace_s = _take(pre, "grace_s", int, f"{f} [preemption]")
    _no_extra(pre, f"{f} [preemption]")

    env_table = dict(_take(data, "env", dict, f, {}))
    env = []
    for key, value in env_table.items():
        if not _ENV_NAME.match(key):
            raise UserError(f"{f} [env]: {key!r} is not a variable name")
        if not isinstance(value, str):
            raise UserError(f"{f} [env]: {key} must be a string, got {value!r}")
        env.append((key, check_shell_word(value, f"{f} [env] {key}")))
    _no_extra(data, f)
    return Profile(name=name, description=description, required=required, max_nodes=max_nodes, engines=engines,
                   modules=modules, sbatch=sbatch, gpus_per_node=gpus, gpu_request=gpu_request, cpus_per_node=cpus,
                   ntasks_per_node=ntasks, mpi_launch=mpi, ddp_launch=ddp, rendezvous=rendezvous,
                   master_addr_suffix=suffix, grace_s=grace_s, env=tuple(env), source=path)
