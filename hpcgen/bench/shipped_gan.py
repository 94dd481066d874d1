"""The shipped GANs' paperwork: training curves and PROVENANCE (benchmarks/calo_gan.sh and cosmo_gan.sh call these).

A shipped checkpoint is a directory holding ``checkpoint.pt``, ``metrics.jsonl`` (losses and the in-training
fidelity monitor, :mod:`hpcgen.train.monitor`) and, once validated, ``validation_metrics.json`` / ``report.md`` from
``hpcgen validate calo|cosmo``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from hpcgen.bench.results import host_info
from hpcgen.bench.time_to_fidelity import evaluations

# per domain: (monitor key, panel title, target, log scale), and the figure's title
MONITOR_PLOTS = {
    "calo": ((("AUC_high_level", "high-level classifier AUC", 0.85, False),
              ("S_layer_energy_median_over_floor", "median per-layer S / floor", 2.0, True),
              ("S_e_vis_over_e_p_over_floor", "S(E_vis/E_p) / floor", 2.0, True),
              ("response_width_rel_error_max", "max |σ/μ error| over energies", 0.25, True)),
             "calorimeter GAN: in-training fidelity monitor (held-out cascade showers)"),
    "cosmo": ((("cl_max_abs_rel_err_valid", "max |ΔC_ℓ/C_ℓ|, valid ℓ", 0.10, True),
               ("S_pixel_histogram_over_floor_p95", "pixel histogram S / floor p95", 2.0, True),
               ("S_peak_heights_over_floor_p95", "peak heights S / floor p95", 2.0, True),
               ("minkowski_excess_sigma_max", "Minkowski: max (D − floor p50)/σ_floor", 2.0, False)),
              "CosmoGAN: in-training fidelity monitor (held-out κ maps)"),
    "ising": ((("E_max_abs_rel_err", "max |ΔE/E| over T", 0.02, True),
               ("absM_max_abs_rel_err", "max |Δ|M|/|M|| over T", 0.02, True),
               ("chi_max_abs_rel_err", "max |Δχ/χ| over T", 0.10, True),
               ("Cv_max_abs_rel_err", "max |ΔC_v/C_v| over T", 0.10, True),
               ("AUC_pooled", "configuration classifier AUC", 0.75, False)),
              "Ising DCGAN: in-training fidelity monitor (held-out Wolff configurations)"),
}


def plot_training_curve(run_dir: str | Path, domain: str = "calo") -> Path:
    """``training_curve.png`` in ``run_dir``: every monitor metric against training wall time, targets dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels, suptitle = MONITOR_PLOTS[domain]
    evals = evaluations(run_dir)
    hours = [e["wall_s"] / 3600 for e in evals]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    for ax, (key, title, target, log) in zip(axes, panels):
        ax.plot(hours, [e["eval"][key] for e in evals], marker=".")
        ax.axhline(target, color="k", ls="--", lw=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("training wall time [h]")
        if log:
            ax.set_yscale("log")
    fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    out = Path(run_dir) / "training_curve.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _git(root: Path, *args: str) -> str:
    res = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    return res.stdout.strip() or "unknown"


# what each shipped run was trained and validated on, and the commands of its script (benchmarks/<domain>_gan.sh)
_RECIPE = {
    "calo": {
        "what": "calorimeter GAN", "unit": "showers",
        "data": ["data:      30000 cascade showers, E_p log-uniform 10-500 GeV, seed 101 (train.h5)",
                 "monitor:   1000 cascade showers at 10,50,100,200,500 GeV, seed 303 (monitor.h5; model selection only)",
                 "reference: 5000 cascade showers at 10,50,100,200,500 GeV, seed 202 (heldout.h5; never seen before "
                 "validation)"],
        "commands": ["commands:  benchmarks/calo_gan.sh data; benchmarks/calo_gan.sh train (repeat until the last "
                     "step); benchmarks/calo_gan.sh validate",
                     "           = mpirun -n 2 hpcgen train calo --data train.h5 --out run --engine ddp "
                     "--batch-size {batch} --steps {steps} --seed 11 --eval-data monitor.h5 --eval-every 500 "
                     "--checkpoint-every 250 --resume auto",
                     "             mpirun -n 2 hpcgen generate --checkpoint run --n 5000 --energy-gev "
                     "10,50,100,200,500 --seed 404",
                     "             hpcgen validate calo --ref heldout.h5 --test gan.h5 --per-energy-classifier"]},
    "cosmo": {
        "what": "CosmoGAN", "unit": "maps",
        "data": ["data:      8000 lognormal κ maps, 128² over 3.5°, z_s = 1, seed 101 (train.h5)",
                 "monitor:   512 lognormal maps, seed 303 (monitor.h5; model selection only)",
                 "reference: 2000 lognormal maps, seed 202 (heldout.h5; never seen before validation)"],
        "commands": ["commands:  benchmarks/cosmo_gan.sh data; benchmarks/cosmo_gan.sh train (repeat until the last "
                     "step); benchmarks/cosmo_gan.sh validate",
                     "           = mpirun -n 2 hpcgen train cosmo --data train.h5 --out run --engine ddp "
                     "--batch-size {batch} --steps {steps} {flags}--eval-data monitor.h5 --resume auto",
                     "             mpirun -n 2 hpcgen generate --checkpoint run --n 2000",
                     "             hpcgen validate cosmo --ref heldout.h5 --test gan.h5"]},
    "ising": {
        "what": "Ising DCGAN", "unit": "configurations",
        "data": ["data:      10000 Wolff configurations per temperature at T = 1.5,1.75,2,2.1,2.2,Tc,2.35,2.5,2.75,3,"
                 "3.5, thinned to ceil(2 tau_int), seed 1 (train.h5)",
                 "monitor:   2000 per temperature, seed 2 (monitor.h5; model selection only)",
                 "reference: 40000 per temperature, seed 3 (reference.h5; never seen before validation)"],
        "commands": ["commands:  benchmarks/ising_gan.sh data; benchmarks/ising_gan.sh train; "
                     "benchmarks/ising_gan.sh validate",
                     "           = mpirun -n 2 hpcgen train ising --data train.h5 --out run --engine ddp "
                     "--batch-size {batch} --steps {steps} --seed 11 --eval-data monitor.h5 --eval-every 250 "
                     "--checkpoint-every 250 --resume auto --time-limit-s 1800",
                     "             hpcgen generate --checkpoint run --n 20000 --seed 404",
                     "             hpcgen validate ising --ref reference.h5 --test gan.h5 --classifier-seeds 2 "
                     "--classifier-resamples 5"]},
}


def write_provenance(dest: str | Path, root: str | Path, batch_per_rank: str | int) -> Path:
    """PROVENANCE.txt in ``dest``: commands, commit, host (CPU model and ISA), wall time, samples seen, last monitor
    score (its domain's targets, :data:`MONITOR_PLOTS`)."""
    import torch

    dest, root = Path(dest), Path(root)
    ckpt = torch.load(dest / "checkpoint.pt", map_location="cpu", weights_only=False)
    cfg = ckpt["config"]
    domain = cfg["domain"]
    recipe = _RECIPE[domain]
    evals = evaluations(dest)
    host = host_info("ddp")
    world = int(ckpt["world_size"])
    if domain == "calo":
        arch = f", arch {cfg.get('calo_arch', '3dgan')}"
    elif domain == "cosmo":
        arch = ", spectral loss" if cfg.get("spectral_loss") else ", no spectral loss"
    else:
        arch = (f", L = {ckpt['model_options']['L']}, {cfg.get('spin_readout', 'sign')} read-out, feature matching "
                f"{cfg.get('feature_matching')}, EMA {cfg.get('g_ema')}")
    flags = "--spectral-loss " if cfg.get("spectral_loss") else ""
    lines = [
        f"{recipe['what']} checkpoint {ckpt['checkpoint_id']} (hpcgen {ckpt['hpcgen_version']}{arch})",
        f"commit:    {_git(root, 'rev-parse', '--short', 'HEAD')} (validated at this commit)",
        f"host:      {host['cpu']}; ISA {' '.join(host['isa']) or 'unknown'}; torch {host['torch']}",
        f"training:  {world} ranks x 1 thread (DDP), batch {batch_per_rank} per rank, {ckpt['step']} steps, "
        f"{ckpt['step'] * world * int(batch_per_rank)} {recipe['unit']} seen, {ckpt.get('wall_s', 0) / 3600:.2f} h "
        "wall in all sittings",
        *recipe["data"],
        *(c.format(batch=batch_per_rank, steps=cfg["steps"], flags=flags) for c in recipe["commands"]),
    ]
    if evals:
        last = evals[-1]["eval"]
        scores = ", ".join(f"{title} {last[key]:.3g}" for key, title, _, _ in MONITOR_PLOTS[domain][0])
        lines.append(f"monitor:   last at step {evals[-1]['step']}: {scores}")
    (dest / "PROVENANCE.txt").write_text("\n".join(lines) + "\n")
    return dest / "PROVENANCE.txt"
