"""The shipped calorimeter GAN's paperwork: its training curve and its PROVENANCE (benchmarks/calo_gan.sh calls these).

A shipped checkpoint is a directory holding ``checkpoint.pt``, ``metrics.jsonl`` (losses and the in-training
fidelity monitor) and, once validated, ``validation_metrics.json`` / ``report.md`` from ``hpcgen validate calo``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from hpcgen.bench.results import host_info
from hpcgen.bench.time_to_fidelity import evaluations

MONITOR_PLOTS = (("AUC_high_level", "high-level classifier AUC", 0.85, False),
                 ("S_layer_energy_median_over_floor", "median per-layer S / floor", 2.0, True),
                 ("S_e_vis_over_e_p_over_floor", "S(E_vis/E_p) / floor", 2.0, True),
                 ("response_width_rel_error_max", "max |σ/μ error| over energies", 0.25, True))


def plot_training_curve(run_dir: str | Path) -> Path:
    """``training_curve.png`` in ``run_dir``: every monitor metric against training wall time, targets dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evals = evaluations(run_dir)
    hours = [e["wall_s"] / 3600 for e in evals]
    fig, axes = plt.subplots(1, len(MONITOR_PLOTS), figsize=(4.2 * len(MONITOR_PLOTS), 3.6))
    for ax, (key, title, target, log) in zip(axes, MONITOR_PLOTS):
        ax.plot(hours, [e["eval"][key] for e in evals], marker=".")
        ax.axhline(target, color="k", ls="--", lw=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training wall time [h]")
        if log:
            ax.set_yscale("log")
    fig.suptitle("calorimeter GAN: in-training fidelity monitor (held-out cascade showers)", fontsize=10)
    fig.tight_layout()
    out = Path(run_dir) / "training_curve.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _git(root: Path, *args: str) -> str:
    res = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    return res.stdout.strip() or "unknown"


def write_provenance(dest: str | Path, root: str | Path, batch_per_rank: str | int) -> Path:
    """PROVENANCE.txt in ``dest``: commands, commit, host (CPU model and ISA), wall time, samples seen, verdict."""
    import torch

    dest, root = Path(dest), Path(root)
    ckpt = torch.load(dest / "checkpoint.pt", map_location="cpu", weights_only=False)
    evals = evaluations(dest)
    host = host_info("ddp")
    world = int(ckpt["world_size"])
    lines = [
        f"calorimeter GAN checkpoint {ckpt['checkpoint_id']} (hpcgen {ckpt['hpcgen_version']}, "
        f"arch {ckpt['config'].get('calo_arch', '3dgan')})",
        f"commit:    {_git(root, 'rev-parse', '--short', 'HEAD')} (validated at this commit)",
        f"host:      {host['cpu']}; ISA {' '.join(host['isa']) or 'unknown'}; torch {host['torch']}",
        f"training:  {world} ranks x 1 thread (DDP), batch {batch_per_rank} per rank, {ckpt['step']} steps, "
        f"{ckpt['step'] * world * int(batch_per_rank)} showers seen, {ckpt.get('wall_s', 0) / 3600:.2f} h wall "
        f"in all sittings",
        "data:      30000 cascade showers, E_p log-uniform 10-500 GeV, seed 101 (train.h5)",
        "monitor:   1000 cascade showers at 10,50,100,200,500 GeV, seed 303 (monitor.h5; model selection only)",
        "reference: 5000 cascade showers at 10,50,100,200,500 GeV, seed 202 (heldout.h5; never seen before validation)",
        "commands:  benchmarks/calo_gan.sh data; benchmarks/calo_gan.sh train (repeat until the last step); "
        "benchmarks/calo_gan.sh validate",
        "           = mpirun -n 2 hpcgen train calo --data train.h5 --out run --engine ddp "
        f"--batch-size {batch_per_rank} --steps {ckpt['config']['steps']} --seed 11 --eval-data monitor.h5 "
        "--eval-every 500 --checkpoint-every 250 --resume auto",
        "             mpirun -n 2 hpcgen generate --checkpoint run --n 5000 --energy-gev 10,50,100,200,500 --seed 404",
        "             hpcgen validate calo --ref heldout.h5 --test gan.h5 --per-energy-classifier",
    ]
    if evals:
        last = evals[-1]["eval"]
        lines.append(f"monitor:   last at step {evals[-1]['step']}: AUC {last['AUC_high_level']:.3f}, "
                     f"S(E_vis/E_p)/floor {last['S_e_vis_over_e_p_over_floor']:.2f}, "
                     f"median layer S/floor {last['S_layer_energy_median_over_floor']:.2f}")
    (dest / "PROVENANCE.txt").write_text("\n".join(lines) + "\n")
    return dest / "PROVENANCE.txt"
