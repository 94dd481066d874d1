"""Render the example job scripts in jobscripts/<system>/ with the real CLI (`hpcgen jobscript ...`).

    python jobscripts/render_examples.py           # rewrite them after a profile or renderer change
    python jobscripts/render_examples.py --check   # exit 1 naming any example that differs (tests run this)

Each example is the command line a user would type; the rendered file is committed so that a change to a profile
or to the renderer shows up in review as a diff of real scripts (tests/test_slurm_render.py keeps them in sync).
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAIN = ["train", "calo", "--data", "data/calo_gflash.h5", "--out", "run", "--steps", "2000", "--batch-size", "16",
         "--checkpoint-every", "200"]
SIMULATE = ["simulate", "calo", "--generator", "cascade", "--n", "100000", "--energy-gev", "10:500", "--seed", "1",
            "--out", "data/calo_cascade.h5"]

# (path under jobscripts/, `hpcgen jobscript` arguments)
EXAMPLES: list[tuple[str, list[str]]] = [
    ("local/train-ddp.sbatch", ["local", "--venv", "/opt/hpcgen/.venv", "--time", "00:20:00", "--", *TRAIN]),
    ("local/train-horovod.sbatch", ["local", "--venv", "/opt/hpcgen/.venv", "--engine", "horovod", "--", *TRAIN]),
    ("local/simulate-mpi.sbatch", ["local", "--venv", "/opt/hpcgen/.venv", "--", *SIMULATE]),
    ("local/simulate-array.sbatch", ["local", "--venv", "/opt/hpcgen/.venv", "--array", "8", "--", *SIMULATE]),
    ("local/pipeline", ["pipeline", "local", "--venv", "/opt/hpcgen/.venv", "--workdir", "/scratch/hpcgen-pipeline",
                        "--n", "2000", "--shards", "4", "--steps", "500"]),
    ("generic/train-ddp.sbatch", ["generic", "--partition", "gpu", "--nodes", "2", "--gpus-per-node", "4",
                                  "--cpus-per-task", "8", "--venv", "/opt/hpcgen/.venv", "--", *TRAIN]),
    ("generic/simulate-mpi.sbatch", ["generic", "--partition", "cpu", "--ntasks-per-node", "64",
                                     "--venv", "/opt/hpcgen/.venv", "--", *SIMULATE]),
    ("perlmutter/train-ddp.sbatch", ["perlmutter", "--account", "m0000_g", "--nodes", "4", "--time", "02:00:00",
                                     "--venv", "/global/common/software/m0000/hpcgen/.venv", "--", *TRAIN]),
    ("perlmutter/train-horovod.sbatch", ["perlmutter", "--account", "m0000_g", "--nodes", "4", "--engine", "horovod",
                                         "--venv", "/global/common/software/m0000/hpcgen/.venv", "--", *TRAIN]),
    ("perlmutter/pipeline", ["pipeline", "perlmutter", "--account", "m0000_g", "--nodes", "8",
                             "--venv", "/global/common/software/m0000/hpcgen/.venv",
                             "--workdir", "/pscratch/sd/u/user/hpcgen", "--n", "200000", "--shards", "64",
                             "--steps", "20000", "--batch-size", "32", "--time", "06:00:00"]),
    ("frontier/train-ddp.sbatch", ["frontier", "--account", "abc123", "--nodes", "8", "--time", "02:00:00",
                                   "--venv", "/lustre/orion/abc123/proj-shared/hpcgen/.venv", "--", *TRAIN]),
    ("frontier/simulate-array.sbatch", ["frontier", "--account", "abc123", "--array", "128",
                                        "--venv", "/lustre/orion/abc123/proj-shared/hpcgen/.venv", "--", *SIMULATE]),
    ("alps/train-ddp.sbatch", ["alps", "--account", "a-g000", "--nodes", "4",
                               "--venv", "/capstor/scratch/cscs/user/hpcgen/.venv", "--", *TRAIN]),
    ("juwels-booster/train-ddp.sbatch", ["juwels-booster", "--account", "hpcgen", "--nodes", "4",
                                         "--venv", "/p/project/hpcgen/.venv", "--", *TRAIN]),
    ("juwels-booster/train-horovod.sbatch", ["juwels-booster", "--account", "hpcgen", "--nodes", "4",
                                             "--engine", "horovod", "--venv", "/p/project/hpcgen/.venv", "--", *TRAIN]),
]


def render(path: str, args: list[str], root: Path) -> list[Path]:
    """Render one example under ``root`` with `hpcgen jobscript ARGS --out ...`; returns the files written."""
    from hpcgen.cli import main

    target = root / path
    cut = args.index("--") if "--" in args else len(args)
    argv = ["jobscript", *args[:cut], "--out", str(target), *args[cut:]]
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    if code != 0:
        raise RuntimeError(f"hpcgen {' '.join(argv)} exited {code}")
    return sorted(target.glob("*.sbatch")) if target.is_dir() else [target]


def main(argv: list[str]) -> int:
    check = "--check" in argv
    if not check:
        for path, args in EXAMPLES:
            for f in render(path, args, HERE):
                print(f"wrote {f.relative_to(HERE.parent)}")
        return 0
    stale = []
    with tempfile.TemporaryDirectory() as tmp:
        for path, args in EXAMPLES:
            for f in render(path, args, Path(tmp)):
                committed = HERE / f.relative_to(tmp)
                if not committed.is_file() or committed.read_text() != f.read_text():
                    stale.append(str(committed.relative_to(HERE.parent)))
    for s in stale:
        print(f"stale: {s} (run: python jobscripts/render_examples.py)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
