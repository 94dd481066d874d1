"""The command line: the only place that parses argv. Each verb is a thin call into hpcgen.jobs.

Bad input ends with one line on stderr naming the flag/file and what is allowed, and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hpcgen import __version__
from hpcgen.errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + message
        raise UserError(f"{self.prog}: {message}")


def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="run a Monte Carlo generator over MPI ranks into HDF5")
    dom = p.add_subparsers(dest="domain", required=True, parser_class=_Parser)
    c = dom.add_parser("calo", help="calorimeter showers (hpcgen.calo/1)")
    c.add_argument("--generator", required=True, help="cascade | gflash")
    c.add_argument("--n", type=int, required=True, help="total number of showers over all ranks")
    c.add_argument("--energy-gev", default="10:500",
                   help="primary energy: A:B uniform, log:A:B log-uniform, or E1,E2,... (default 10:500)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", type=Path, required=True, help="output file NAME.h5 (shards NAME.r<k>.h5 beside it)")
    c.add_argument("--chunk", type=int, default=0, help="showers per chunk and rank (0 = generator default)")
    c.add_argument("--impact-jitter-mm", type=float, default=0.0, help="Gaussian σ of the impact point (mm)")
    c.add_argument("--gflash-tune", default=None,
                   help="GFlash parameter set: literature (paper values, default) or cascade (tuned to the detailed cascade)")
    c.add_argument("--overwrite", action="store_true", help="replace an existing output and its shards")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.add_argument("--shard", default=None, metavar="K/M", help=_SHARD_HELP)
    k = dom.add_parser("cosmo", help="weak-lensing convergence maps (hpcgen.cosmo/1)")
    k.add_argument("--generator", required=True, help="pm (particle-mesh N-body + Born lensing) | lognormal")
    k.add_argument("--n", type=int, required=True, help="total number of maps over all ranks")
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--out", type=Path, required=True, help="output file NAME.h5 (shards NAME.r<k>.h5 beside it)")
    k.add_argument("--pixels", type=int, default=256, help="map side in pixels (default 256)")
    k.add_argument("--field-deg", type=float, default=3.5, help="map side in degrees (default 3.5)")
    k.add_argument("--z-source", type=float, default=1.0, help="source redshift (default 1.0)")
    k.add_argument("--sigma8", type=float, default=0.798)
    k.add_argument("--omega-m", type=float, default=0.26)
    k.add_argument("--particles", type=int, default=64, help="PM: particles per side (64 → 64³)")
    k.add_argument("--mesh", type=int, default=0, help="PM: mesh cells per side (0 = generator default)")
    k.add_argument("--box-mpc", type=float, default=0.0, help="PM: comoving box side in Mpc (0 = default)")
    k.add_argument("--steps", type=int, default=20, help="PM: kick-drift-kick steps")
    k.add_argument("--device", default="cpu", help="PM: cpu | cuda")
    k.add_argument("--maps-per-realisation", type=int, default=1,
                   help="PM: maps cut from one N-body run (random shift/rotation per plane each)")
    k.add_argument("--chunk", type=int, default=0, help="maps per chunk and rank (0 = generator default)")
    k.add_argument("--overwrite", action="store_true", help="replace an existing output and its shards")
    k.add_argument("--no-progress", action="store_true", help="no progress bar")
    k.add_argument("--shard", default=None, metavar="K/M", help=_SHARD_HELP)
    i = dom.add_parser("ising", help="2D Ising configurations at a list of temperatures (hpcgen.ising/1)")
    i.add_argument("--algorithm", required=True, help="metropolis (checkerboard single-spin) | wolff (single cluster)")
    i.add_argument("--L", type=int, required=True, help="lattice side: L×L spins, periodic (>= 4)")
    i.add_argument("--temperatures", required=True,
                   help="A:B:K (K evenly spaced from A to B) or T1,T2,... (Tc = the critical temperature); J/k_B")
    i.add_argument("--n", type=int, required=True, help="configurations per temperature (over all ranks)")
    i.add_argument("--thin", default="auto",
                   help="sweeps between kept configurations, or auto = ceil(2 tau_int) from a pilot run (default)")
    i.add_argument("--thermalise", default="auto",
                   help="sweeps discarded at the start of each chain, or auto = max(1000, ceil(20 tau_int)) (default)")
    i.add_argument("--pilot-sweeps", type=int, default=4096,
                   help="first pilot segment per temperature; doubled until tau_int is reliable (default 4096)")
    i.add_argument("--pilot-max-sweeps", type=int, default=1 << 20, help="cap of the pilot segment (default 2^20)")
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--out", type=Path, required=True, help="output file NAME.h5 (shards NAME.r<k>.h5 beside it)")
    i.add_argument("--chunk", type=int, default=0, help="configurations per chunk and rank (0 = 64)")
    i.add_argument("--overwrite", action="store_true", help="replace an existing output and its shards")
    i.add_argument("--no-progress", action="store_true", help="no progress bar")
    i.add_argument("--shard", default=None, metavar="K/M", help=_SHARD_HELP)


_SHARD_HELP = ("write only shard K of M (0-based) as one process, exactly what rank K of an M-rank run writes "
               "(one Slurm array task each); then `hpcgen merge OUT --shards M`")


def _add_merge(sub) -> None:
    p = sub.add_parser("merge", help="merge the shards of a --shard K/M run into one file (HDF5 virtual datasets)")
    p.add_argument("out", type=Path, help="the --out of the shard runs; shards NAME.r<k>.h5 lie beside it")
    p.add_argument("--shards", type=int, required=True, help="number of shards M")
    p.add_argument("--overwrite", action="store_true", help="replace an existing merged file")


def _shard(args: argparse.Namespace):
    if args.shard is None:
        return None
    from hpcgen.data.sharded import ShardSlot

    return ShardSlot.parse(args.shard)


def _simulate_cosmo(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from hpcgen.jobs.simulate_cosmo import SimulateCosmoConfig, simulate_cosmo
    from hpcgen.physics.cosmology import CosmologyParams
    from hpcgen.sim.cosmo_spec import CosmoMapSpec

    spec = CosmoMapSpec(pixels=args.pixels, field_deg=args.field_deg, z_source=args.z_source,
                        cosmology=CosmologyParams(Omega_m=args.omega_m, sigma8=args.sigma8))
    pm = None
    if args.generator == "pm":
        from hpcgen.sim.cosmo_pm import PMConfig, check_pm_config

        pm = PMConfig(n_particles_side=args.particles, n_steps=args.steps, device=args.device,
                      maps_per_realisation=args.maps_per_realisation)
        if args.mesh:
            pm = replace(pm, mesh_side=args.mesh)
        if args.box_mpc:
            pm = replace(pm, box_mpc=args.box_mpc)
        check_pm_config(spec, pm)
    cfg = SimulateCosmoConfig(generator=args.generator, n=args.n, seed=args.seed, out=args.out, spec=spec, pm=pm,
                              chunk=args.chunk, overwrite=args.overwrite, progress=_progress(args),
                              shard=_shard(args))
    return _run_on_world(lambda w: simulate_cosmo(cfg, w), f"{cfg.n} {cfg.generator} maps", cfg.shard)


def _simulate_ising(args: argparse.Namespace) -> int:
    from hpcgen.jobs.simulate_ising import SimulateIsingConfig, TemperatureSpec, simulate_ising

    temperatures = TemperatureSpec.parse(args.temperatures)
    cfg = SimulateIsingConfig(algorithm=args.algorithm, L=args.L, temperatures=temperatures, n=args.n, seed=args.seed,
                              out=args.out, thin=args.thin, thermalise=args.thermalise, pilot_sweeps=args.pilot_sweeps,
                              pilot_max_sweeps=args.pilot_max_sweeps, chunk=args.chunk, overwrite=args.overwrite,
                              progress=_progress(args), shard=_shard(args))
    what = f"{cfg.n} {cfg.algorithm} configurations at each of {len(cfg.temperatures.values)} temperatures"
    return _run_on_world(lambda w: simulate_ising(cfg, w), what, cfg.shard)


def _add_validate(sub) -> None:
    p = sub.add_parser("validate", help="compare a test data set with a reference: report.md, plots, metrics.json")
    dom = p.add_subparsers(dest="domain", required=True, parser_class=_Parser)
    c = dom.add_parser("calo", help="calorimeter showers")
    c.add_argument("--ref", type=Path, required=True)
    c.add_argument("--test", type=Path, required=True)
    c.add_argument("--out", type=Path, required=True, help="output directory (created)")
    c.add_argument("--max-showers", type=int, default=0, help="use at most this many showers of each file (0 = all)")
    c.add_argument("--resamples", type=int, default=20,
                   help="reference-vs-reference resamples of every floor (disjoint halves; >= 20 for a headline)")
    c.add_argument("--bins", type=int, default=30, help="equal-count bins of the reference for separation powers")
    c.add_argument("--classifier-seeds", type=int, default=5, help="k-fold classifier runs, each with its own seed")
    c.add_argument("--folds", type=int, default=5, help="k of the k-fold classifier split (>= 3)")
    c.add_argument("--classifier-hidden", type=int, default=None,
                   help="width of the classifier DNN's layers (default: hpcgen.fidelity.classifier.ClassifierConfig)")
    c.add_argument("--low-level", action="store_true",
                   help="also train the voxel classifier (costs ~100x the high-level one on a CPU)")
    c.add_argument("--per-energy-classifier", action="store_true", help="classifiers per primary energy, not only pooled")
    c.add_argument("--no-cross-check", action="store_true", help="skip the gradient-boosted classifier")
    c.add_argument("--seed", type=int, default=0, help="seed of the resamples and classifier splits")
    k = dom.add_parser("cosmo", help="weak-lensing convergence maps")
    k.add_argument("--ref", type=Path, required=True)
    k.add_argument("--test", type=Path, required=True)
    k.add_argument("--out", type=Path, required=True, help="output directory (created)")
    k.add_argument("--max-maps", type=int, default=0, help="use at most this many maps of each file (0 = all)")
    k.add_argument("--smoothing-arcmin", type=float, default=None,
                   help="Gaussian σ in arcmin of the smoothing before peak counts and Minkowski functionals "
                        "(default 2; 0 = none)")
    i = dom.add_parser("ising", help="2D Ising configurations (hpcgen.ising/1), per shared temperature")
    i.add_argument("--ref", type=Path, required=True)
    i.add_argument("--test", type=Path, required=True)
    i.add_argument("--out", type=Path, required=True, help="output directory (created)")
    i.add_argument("--max-configs", type=int, default=2000,
                   help="configurations per temperature and file the classifier reads (0 = all; the observables use "
                        "all)")
    i.add_argument("--resamples", type=int, default=20,
                   help="reference-vs-reference resamples of every observable's floor (disjoint halves)")
    i.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples of the standard errors")
    i.add_argument("--classifier-seeds", type=int, default=3, help="k-fold classifier runs per value, each its own seed")
    i.add_argument("--classifier-resamples", type=int, default=10,
                   help="k-fold classifier runs (reference half vs half) of each classifier floor")
    i.add_argument("--folds", type=int, default=5, help="k of the k-fold classifier split (>= 3)")
    i.add_argument("--classifier-hidden", type=int, default=None,
                   help="width of the classifier DNN's layers (default: hpcgen.fidelity.classifier.ClassifierConfig)")
    i.add_argument("--no-classifier", action="store_true", help="skip the configuration classifier")
    i.add_argument("--seed", type=int, default=0, help="seed of the resamples and classifier splits")


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="convert a data set to another community layout")
    fmt = p.add_subparsers(dest="format", required=True, parser_class=_Parser)
    c = fmt.add_parser("calochallenge", help="CaloChallenge layout: incident_energies (N,1) MeV, showers (N,voxels) MeV")
    c.add_argument("src", type=Path)
    c.add_argument("dst", type=Path)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a GAN data-parallel (DDP or Horovod) under any launcher")
    p.add_argument("domain", help="calo (3DGAN) | cosmo (CosmoGAN) | ising (temperature-conditioned Ising DCGAN)")
    p.add_argument("--data", type=Path, required=True,
                   help="training data (hpcgen.calo/1, hpcgen.cosmo/1 or hpcgen.ising/1: L a multiple of 4)")
    p.add_argument("--engine", default="ddp", help="ddp (torch DDP: gloo on CPU, NCCL on GPU) | horovod")
    p.add_argument("--batch-size", type=int, default=8, help="samples per rank and step")
    p.add_argument("--steps", type=int, default=0, help="optimisation steps (or give --epochs)")
    p.add_argument("--epochs", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="run directory: checkpoint.pt, metrics.jsonl, config.json")
    p.add_argument("--resume", nargs="?", const="yes", default="no", choices=("yes", "auto"),
                   help="continue the checkpoint in --out exactly; `--resume auto` continues it when there is one and "
                        "starts fresh otherwise (what a requeued Slurm job wants)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (also at the end)")
    p.add_argument("--lr-scaling", default="none", help="none | linear (lr × ranks, with --warmup-steps)")
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (GPU chosen by local rank)")
    p.add_argument("--bf16", action="store_true",
                   help="bf16 autocast (CUDA; on CPU it pays with AVX512-BF16 or AMX: see `hpcgen info`)")
    p.add_argument("--ops-impl", default="auto", help="fused loss ops: auto (compiled if built) | ref | cpu | cuda")
    p.add_argument("--eval-data", type=Path, default=None,
                   help="held-out Monte Carlo file (showers, κ maps or Ising configurations) scored every "
                        "--eval-every steps into metrics.jsonl")
    p.add_argument("--eval-every", type=int, default=0, help="steps between fidelity scores (needs --eval-data)")
    p.add_argument("--g-steps", type=int, default=0,
                   help="generator steps per discriminator step (default: 3DGAN 2, factorised 1, ising 1)")
    c = p.add_argument_group("calorimeter GAN (`train calo`; docs/calo_gan.md)")
    c.add_argument("--calo-arch", default="factorised",
                   help="factorised (shape × learned E_vis; default) | 3dgan (the paper's network, the baseline)")
    c.add_argument("--calo-loss", default="hinge", help="factorised: hinge (default) | bce (non-saturating)")
    c.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: 3dgan 1e-3 RMSprop, factorised 2e-4 Adam, cosmo 2e-4 Adam, "
                        "ising 2e-4 Adam)")
    c.add_argument("--d-view", default="physics",
                   help="factorised: what D reads — physics (the features the fidelity classifier reads; default), both (+ cells), cells")
    c.add_argument("--readout", default="straight-through",
                   help="factorised: the training read-out of the hit threshold in G, D and the feature matching — "
                        "straight-through (exactly 0/1 as in generation, the sigmoid's gradient; default) | soft")
    c.add_argument("--no-spectral-norm", action="store_true", help="factorised: no spectral norm in D")
    p.add_argument("--feature-matching", type=float, default=1.0,
                   help="factorised and ising: weight of matching the batch mean and spread of the physics features "
                        "(ising: e and |m| per temperature) in G's loss (0 = off)")
    p.add_argument("--g-ema", type=float, default=0.999,
                   help="factorised and ising: decay of G's weight average that generation uses (0 = off)")
    p.add_argument("--spin-readout", default="bernoulli",
                   help="ising: the generator's ±1 read-out of its tanh field φ — bernoulli (s = +1 with probability "
                        "(1 + φ)/2 per site; default) | sign (s = sign φ, the deterministic one)")
    p.add_argument("--sigma8-conditioning", action="store_true", help="CosmoGAN conditioned on σ8")
    p.add_argument("--spectral-loss", action="store_true", help="CosmoGAN spectral loss (needs the P(k) estimator)")
    p.add_argument("--cosmo-width", type=float, default=1.0,
                   help="CosmoGAN channel multiplier of both networks (1 = the paper's; 0.5 = a quarter of the FLOPs)")
    p.add_argument("--timeout-s", type=float, default=120.0, help="rendezvous/collective timeout (DDP)")
    p.add_argument("--time-limit-s", type=float, default=0.0,
                   help="checkpoint and stop with exit 75 after this many seconds of training (resume later)")
    p.add_argument("--no-progress", action="store_true")


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="sample a trained GAN into the Monte Carlo's HDF5 schema")
    p.add_argument("--checkpoint", type=Path, required=True, help="run directory of `hpcgen train`")
    p.add_argument("--n", type=int, required=True,
                   help="samples over all ranks (ising: configurations per temperature, as for simulate ising)")
    p.add_argument("--energy-gev", default=None, help="3DGAN primary energies (as for simulate; default 10:500)")
    p.add_argument("--sigma8", type=float, default=None, help="CosmoGAN σ8 (default: the training data's)")
    p.add_argument("--temperatures", default=None,
                   help="Ising GAN temperatures in J/k_B, as for simulate ising: A:B:K or T1,T2,... (Tc = the "
                        "critical temperature; default: the training data's)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-progress", action="store_true")


def _floats(text: str, flag: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise UserError(f"{flag}: expected comma-separated numbers, got {text!r}") from None


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise UserError(f"{flag}: expected comma-separated integers, got {text!r}") from None


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks: throughput at fidelity, training scaling, fused kernels")
    kind = p.add_subparsers(dest="bench", required=True, parser_class=_Parser)
    t = kind.add_parser("throughput", help="samples/s of each Monte Carlo and of the GAN, with fidelity vs the reference MC")
    t.add_argument("--domain", default="calo",
                   help="calo (cascade, GFlash, 3DGAN) | cosmo (PM, lognormal, CosmoGAN) | ising (Metropolis, Wolff, DCGAN)")
    t.add_argument("--out", type=Path, required=True, help="results file (hpcgen.bench/1 JSON)")
    t.add_argument("--checkpoint", type=Path, default=None,
                   help="GAN run directory (default: the shipped calorimeter GAN, benchmarks/results/calo_gan)")
    t.add_argument("--energies-gev", default="10,50,100,200,500")
    t.add_argument("--gan-batches", default=None,
                   help="GAN batch sizes to scan (default calo 1,16,64,256 at 100 GeV; cosmo 1,4,16,64)")
    t.add_argument("--seconds", type=float, default=1.0, help="target length of one timed batch")
    t.add_argument("--repeats", type=int, default=3, help="at least this many timed batches")
    t.add_argument("--target-rel-error", type=float, default=0.02,
                   help="calo: time more batches until the mean rate's relative standard error is this small")
    t.add_argument("--max-seconds", type=float, default=30.0,
                   help="calo: ... or until this many seconds were timed per generator and energy")
    t.add_argument("--min-showers", type=int, default=10, help="calo: showers per Monte Carlo batch, at least")
    t.add_argument("--precisions", default="fp32,bf16",
                   help="calo: the GAN's precisions (bf16 only where the host runs it natively)")
    t.add_argument("--fidelity-n", type=int, default=None,
                   help="samples per generator (and energy) for the fidelity (default calo 100 showers, cosmo 16 maps)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help="the GAN's device: auto (GPU if present) | cpu | cuda")
    t.add_argument("--threads", default="", help="CPU thread counts to scan the GAN over, e.g. 1,2 (default: none)")
    t.add_argument("--L-list", dest="L_list", default="",
                   help="ising: further lattice sides, Monte Carlo only (the checkpoint's L is always measured)")
    t.add_argument("--temperatures", default=None,
                   help="ising: temperatures in J/k_B, T1,T2,... (Tc = the critical one; default 1.5,2,Tc,2.5,3.5)")
    t.add_argument("--tau-min-sweeps", type=int, default=4096,
                   help="ising: sweeps of each timed chain for its τ_int, at least")
    t.add_argument("--no-classifier", action="store_true", help="ising: observables only, no classifier AUC")
    c = kind.add_parser("scaling", help="training scaling, DDP vs Horovod, with a calibrated prediction to 1024 ranks")
    c.add_argument("--model", required=True, help="calo (3DGAN) | cosmo (CosmoGAN)")
    c.add_argument("--engine", default="ddp,horovod", help="comma-separated: ddp, horovod")
    c.add_argument("--ranks", default="1,2", help="rank counts to launch with mpirun (must include 1)")
    c.add_argument("--mode", default="weak", help="weak (fixed batch per rank) | strong (fixed global batch)")
    c.add_argument("--batch-per-rank", type=int, default=4)
    c.add_argument("--global-batch", type=int, default=8)
    c.add_argument("--steps", type=int, default=6)
    c.add_argument("--warmup-steps", type=int, default=2)
    c.add_argument("--data", type=Path, default=None, help="training data (default: a synthetic set)")
    c.add_argument("--networks", default="slingshot-11,hdr-infiniband,ethernet-25g",
                   help="presets or custom:ALPHA_S:BANDWIDTH_GBPS for the prediction")
    c.add_argument("--out", type=Path, required=True)
    f = kind.add_parser("time-to-fidelity",
                        help="wall time and samples seen until the calorimeter GAN meets its fidelity target")
    f.add_argument("--data", type=Path, required=True, help="training showers (hpcgen.calo/1)")
    f.add_argument("--eval-data", type=Path, required=True, help="held-out Monte Carlo showers for the monitor")
    f.add_argument("--out", type=Path, required=True, help="results file (hpcgen.bench/1 JSON; a PNG beside it)")
    f.add_argument("--ranks", default="1,2", help="rank counts (one core each; lr scaled linearly)")
    f.add_argument("--seeds", default="1,2,3")
    f.add_argument("--minutes", type=float, default=10.0, help="training wall time per run")
    f.add_argument("--batch-per-rank", type=int, default=32)
    f.add_argument("--eval-every", type=int, default=100)
    f.add_argument("--warmup-steps", type=int, default=100)
    f.add_argument("--target", action="append", default=[], metavar="METRIC=VALUE",
                   help="change one target, e.g. AUC_high_level=0.99 (default: the shipped checkpoint's targets)")
    f.add_argument("--runs", type=Path, default=Path(".cache/time_to_fidelity"), help="where the runs go")
    k = kind.add_parser("kernels", help="fused ops vs eager vs torch.compile, fwd+bwd")
    k.add_argument("--out", type=Path, required=True)
    k.add_argument("--batches", default="16,64,128")
    k.add_argument("--repeats", type=int, default=15)
    k.add_argument("--warmup", type=int, default=3)
    k.add_argument("--threads", type=int, default=2)
    k.add_argument("--device", default="cpu", help="cpu | cuda")


def _add_job_flags(p) -> None:
    """Flags shared by `jobscript` and `submit`: the sbatch resources and site fields (default: the profile's)."""
    g = p.add_argument_group("job (defaults from the system's profile, hpcgen/slurm/profiles/SYSTEM.toml)")
    g.add_argument("--nodes", type=int, default=1)
    g.add_argument("--gpus-per-node", type=int, default=None)
    g.add_argument("--ntasks-per-node", type=int, default=None, help="ranks per node (default: one per GPU)")
    g.add_argument("--cpus-per-task", type=int, default=None)
    g.add_argument("--time", default=None, help="wall-clock limit HH:MM:SS or D-HH:MM:SS")
    g.add_argument("--account", default=None)
    g.add_argument("--partition", default=None)
    g.add_argument("--qos", default=None)
    g.add_argument("--constraint", default=None)
    g.add_argument("--engine", default=None, help="train only: ddp | horovod (default ddp)")
    g.add_argument("--job-name", default=None)
    g.add_argument("--workdir", type=Path, default=None, help="the job's working directory (sbatch --chdir)")
    g.add_argument("--venv", default=None,
                   help="virtual environment the job activates (default: the one running this command, if any)")
    g.add_argument("--no-venv", action="store_true", help="activate no virtual environment (hpcgen is on PATH)")
    g.add_argument("--module", action="append", default=None, help="`module load` this (repeat; replaces the profile's)")
    g.add_argument("--output", default=None, help="log file pattern (default %%x-%%j.out, e.g. hpcgen-train-1234.out)")
    g.add_argument("--array", type=int, default=0,
                   help="simulate only: an array job of N tasks, task k writing shard k/N (then `hpcgen merge`)")
    g.add_argument("--no-requeue", action="store_true",
                   help="train: do not ask for the preemption signal and requeue (default: --signal=B:USR1@GRACE --requeue)")
    g.add_argument("--grace-s", type=int, default=None, help="seconds between the preemption signal and the end")
    g.add_argument("--max-requeues", type=int, default=20)
    q = p.add_argument_group("pipeline (`pipeline SYSTEM`: Monte Carlo array job -> train -> bench, each afterok)")
    d = _pipeline_defaults()  # None below: a flag given outside a pipeline is an error, not silently ignored
    q.add_argument("--domain", default=None, help=f"calo | cosmo (default {d['domain']})")
    q.add_argument("--generator", default=None,
                   help="Monte Carlo: gflash|cascade (calo), lognormal|pm (cosmo) (default gflash / lognormal)")
    q.add_argument("--n", type=int, default=None, help=f"Monte Carlo samples in total (default {d['n']})")
    q.add_argument("--shards", type=int, default=None, help=f"array tasks, one shard each (default {d['shards']})")
    q.add_argument("--seed", type=int, default=None, help=f"(default {d['seed']})")
    q.add_argument("--energy-gev", default=None,
                   help=f"calo primary energies, as for simulate (default {d['energy_gev']})")
    q.add_argument("--pixels", type=int, default=None, help=f"cosmo map side (default {d['pixels']})")
    q.add_argument("--steps", type=int, default=None, help=f"training steps (default {d['steps']})")
    q.add_argument("--batch-size", type=int, default=None, help=f"per rank (default {d['batch_size']})")
    q.add_argument("--fidelity-n", type=int, default=None,
                   help=f"benchmark: samples per energy for the fidelity (default {d['fidelity_n']})")
    q.add_argument("--bench-seconds", type=float, default=None,
                   help=f"benchmark: length of one timed batch (default {d['bench_seconds']})")
    q.add_argument("--bench-energies-gev", default=None, help="benchmark energies (calo; default bench's own)")
    q.add_argument("--sim-time", default=None, help=f"time limit of each array task (default {d['sim_time']})")
    q.add_argument("--bench-time", default=None, help=f"time limit of the benchmark job (default {d['bench_time']})")


def _pipeline_defaults() -> dict:
    """PipelineSpec's defaults, by flag (all but --workdir)."""
    import dataclasses

    from hpcgen.slurm.pipeline import PipelineSpec

    return {f.name: f.default for f in dataclasses.fields(PipelineSpec) if f.name != "workdir"}


def _add_slurm(sub) -> None:
    j = sub.add_parser("jobscript", help="render an sbatch script for a system: jobscript SYSTEM [flags] -- VERB ARGS")
    j.add_argument("system", help="local | generic | perlmutter | frontier | alps | juwels-booster (or: pipeline SYSTEM)")
    j.add_argument("pipeline_system", nargs="?", default=None, help=argparse.SUPPRESS)
    j.add_argument("--out", type=Path, default=None, help="write here (a directory for a pipeline) instead of stdout")
    _add_job_flags(j)
    s = sub.add_parser("submit", help="render and sbatch: submit SYSTEM [flags] -- VERB ARGS, or submit pipeline SYSTEM")
    s.add_argument("system", help="local | generic | perlmutter | frontier | alps | juwels-booster (or: pipeline SYSTEM)")
    s.add_argument("pipeline_system", nargs="?", default=None, help=argparse.SUPPRESS)
    s.add_argument("--dependency", default=None, help="sbatch --dependency, e.g. afterok:1234")
    s.add_argument("--script-dir", type=Path, default=Path("hpcgen-jobs"),
                   help="where the rendered script is kept (default hpcgen-jobs/)")
    _add_job_flags(s)


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="report.md + PNG plots from hpcgen.bench/1 result files alone")
    p.add_argument("results", type=Path, nargs="+", help="result JSON files")
    p.add_argument("--out", type=Path, required=True, help="output directory")


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="the main job: MC → train → generate → validate → throughput at fidelity → report")
    p.add_argument("--domain", default="calo", help="calo | cosmo | ising (Metropolis at L = 16, the Ising GAN)")
    p.add_argument("--out", type=Path, default=Path("demo-out"))
    p.add_argument("--tiny", action="store_true", help="smoke-test sizes (about a minute)")
    p.add_argument("--seed", type=int, default=7)


def _bench(args: argparse.Namespace) -> int:
    if args.bench == "kernels":
        from hpcgen.bench.kernels import run_kernels

        run_kernels(args.out, _ints(args.batches, "--batches"), args.repeats, args.warmup, args.threads, args.device)
        print(f"wrote {args.out}")
        return 0
    if args.bench == "time-to-fidelity":
        from hpcgen.bench.time_to_fidelity import TimeToFidelityConfig, parse_targets, run_time_to_fidelity

        run_time_to_fidelity(TimeToFidelityConfig(
            data=args.data, eval_data=args.eval_data, out=args.out, ranks=_ints(args.ranks, "--ranks"),
            seeds=_ints(args.seeds, "--seeds"), minutes=args.minutes, batch_per_rank=args.batch_per_rank,
            eval_every=args.eval_every, warmup_steps=args.warmup_steps, targets=parse_targets(args.target),
            runs=args.runs))
        print(f"wrote {args.out}")
        return 0
    if args.bench == "scaling":
        from hpcgen.bench.scaling import ScalingConfig, run_scaling

        run_scaling(ScalingConfig(
            model=args.model, out=args.out, engines=tuple(args.engine.split(",")), ranks=_ints(args.ranks, "--ranks"),
            mode=args.mode, batch_per_rank=args.batch_per_rank, global_batch=args.global_batch, steps=args.steps,
            warmup_steps=args.warmup_steps, data=args.data, networks=tuple(args.networks.split(","))))
        print(f"wrote {args.out}")
        return 0
    if args.bench == "throughput":
        from hpcgen.bench.demo import SHIPPED_CHECKPOINT, check_domain
        from hpcgen.bench.throughput import CaloThroughputConfig, run_calo_throughput

        check_domain(args.domain)
        from hpcgen.dist.world import world

        if args.domain == "ising":
            from hpcgen.bench.throughput_ising import DEFAULT_TEMPERATURES, IsingThroughputConfig, run_ising_throughput
            from hpcgen.jobs.simulate_ising import TemperatureSpec

            temps = TemperatureSpec.parse(args.temperatures).values if args.temperatures else DEFAULT_TEMPERATURES
            cfg = IsingThroughputConfig(
                out=args.out, checkpoint=args.checkpoint,
                L_list=_ints(args.L_list, "--L-list") if args.L_list else (), temperatures=temps,
                gan_batches=_ints(args.gan_batches or "1,16,64,256", "--gan-batches"), seconds=args.seconds,
                repeats=args.repeats, target_rel_error=args.target_rel_error, max_seconds=args.max_seconds,
                tau_min_sweeps=args.tau_min_sweeps, precisions=tuple(args.precisions.split(",")),
                fidelity_n=args.fidelity_n or 200, classifier=not args.no_classifier, seed=args.seed,
                device=args.device)
            w = world()
            run_ising_throughput(cfg, w, log=print if w.rank == 0 else (lambda line: None))
            if w.rank == 0:
                print(f"wrote {args.out}")
            return 0
        if args.domain == "cosmo":
            from hpcgen.bench.throughput_cosmo import CosmoThroughputConfig, run_cosmo_throughput

            if args.checkpoint is None:
                raise UserError("--checkpoint: throughput --domain cosmo needs a CosmoGAN run directory "
                                "(`hpcgen train cosmo --out RUN`); none ships with hpcgen")
            cfg = CosmoThroughputConfig(out=args.out, checkpoint=args.checkpoint,
                                        gan_batches=_ints(args.gan_batches or "1,4,16,64", "--gan-batches"),
                                        seconds=args.seconds, repeats=args.repeats,
                                        fidelity_n=args.fidelity_n or 16, seed=args.seed, device=args.device,
                                        threads=_ints(args.threads, "--threads") if args.threads else ())
            w = world()
            run_cosmo_throughput(cfg, w, log=print if w.rank == 0 else (lambda line: None))
            if w.rank == 0:
                print(f"wrote {args.out}")
            return 0
        cfg = CaloThroughputConfig(
            out=args.out, checkpoint=args.checkpoint or SHIPPED_CHECKPOINT,
            energies_gev=_floats(args.energies_gev, "--energies-gev"),
            gan_batches=_ints(args.gan_batches or "1,16,64,256", "--gan-batches"),
            seconds=args.seconds, repeats=args.repeats, fidelity_n=args.fidelity_n or 100, seed=args.seed,
            device=args.device, threads=_ints(args.threads, "--threads") if args.threads else (),
            target_rel_error=args.target_rel_error, max_seconds=args.max_seconds, min_showers=args.min_showers,
            precisions=tuple(args.precisions.split(",")))
        w = world()
        run_calo_throughput(cfg, w, log=print if w.rank == 0 else (lambda line: None))
        if w.rank == 0:
            print(f"wrote {args.out}")
        return 0
    raise AssertionError(args.bench)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hpcgen", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hpcgen {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    info = sub.add_parser("info", help="versions, MPI library, Horovod, fused ops, GPU, Slurm tools")
    info.add_argument("--models", action="store_true", help="also parameter counts and generator FLOPs per sample")
    _add_simulate(sub)
    _add_train(sub)
    _add_generate(sub)
    _add_validate(sub)
    _add_export(sub)
    _add_merge(sub)
    _add_bench(sub)
    _add_report(sub)
    _add_demo(sub)
    _add_slurm(sub)
    return parser


def _run(args: argparse.Namespace) -> int:
    if args.verb == "info":
        from hpcgen.info import collect_info, format_info

        print(format_info(collect_info()))
        if args.models:
            from hpcgen.info import format_models

            print(format_models())
        return 0
    if args.verb == "train":
        return _train(args)
    if args.verb == "bench":
        return _bench(args)
    if args.verb == "report":
        from hpcgen.bench.report import render_report

        for path in args.results:
            if not path.is_file():
                raise UserError(f"report: {path}: no such file")
        try:
            print(f"wrote {render_report(list(args.results), args.out)}")
        except ValueError as exc:
            raise UserError(f"report: {exc}") from None
        return 0
    if args.verb == "demo":
        from hpcgen.bench.demo import DemoConfig, check_domain, run_demo
        from hpcgen.dist.world import world

        check_domain(args.domain)
        w = world()
        run_demo(DemoConfig(out=args.out, tiny=args.tiny, seed=args.seed, domain=args.domain), w, log=print if w.rank == 0 else (lambda line: None))
        return 0
    if args.verb == "generate":
        from hpcgen.config import EnergySpec
        from hpcgen.jobs.generate import GenerateConfig, generate
        from hpcgen.jobs.simulate_ising import TemperatureSpec

        cfg = GenerateConfig(
            checkpoint=args.checkpoint, n=args.n, out=args.out,
            energy=EnergySpec.parse(args.energy_gev) if args.energy_gev else None, sigma8=args.sigma8,
            temperatures=TemperatureSpec.parse(args.temperatures) if args.temperatures is not None else None,
            batch_size=args.batch_size, device=args.device, seed=args.seed, overwrite=args.overwrite,
            progress=_progress(args))
        what = f"{cfg.n} samples" if cfg.temperatures is None else \
            f"{cfg.n} configurations at each of {len(cfg.temperatures.values)} temperatures"
        return _run_on_world(lambda w: generate(cfg, w), what)
    if args.verb == "simulate" and args.domain == "cosmo":
        return _simulate_cosmo(args)
    if args.verb == "simulate" and args.domain == "ising":
        return _simulate_ising(args)
    if args.verb == "simulate":
        from hpcgen.config import EnergySpec, SimulateCaloConfig
        from hpcgen.physics.calo_geometry import SamplingCalorimeter

        try:
            geometry = SamplingCalorimeter(impact_jitter_mm=args.impact_jitter_mm)
        except ValueError as exc:
            raise UserError(f"--impact-jitter-mm: {exc}") from None
        cfg = SimulateCaloConfig(
            generator=args.generator, n=args.n, energy=EnergySpec.parse(args.energy_gev), seed=args.seed,
            out=args.out, chunk=args.chunk, overwrite=args.overwrite, progress=_progress(args), gflash_tune=args.gflash_tune,
            geometry=geometry, shard=_shard(args))
        from hpcgen.jobs.simulate_calo import simulate_calo

        return _run_on_world(lambda w: simulate_calo(cfg, w), f"{cfg.n} {cfg.generator} showers", cfg.shard)
    if args.verb == "validate" and args.domain == "cosmo":
        if args.max_maps < 0:
            raise UserError(f"--max-maps: expected >= 0, got {args.max_maps}")
        from hpcgen.jobs.validate_files import validate_cosmo_files

        metrics = validate_cosmo_files(args.ref, args.test, args.out, max_maps=args.max_maps,
                                       smoothing_arcmin=args.smoothing_arcmin)
        for line in metrics["warnings"]:
            print(f"hpcgen: warning: {line}", file=sys.stderr)
        pv, rng = metrics["power_spectrum_valid"], metrics["ell_valid_range"]
        where = f"valid ℓ {rng[0]:.0f}–{rng[1]:.0f}" if rng else "no valid ℓ bin"
        chi2 = f"χ² {pv['chi2']['chi2']:.4g} for {pv['chi2']['dof']} bins" if pv["chi2"] else "χ² –"
        rel = "–" if pv["max_abs_rel_err"] is None else f"{pv['max_abs_rel_err']:.3g}"
        print(f"wrote {args.out / 'report.md'} and metrics.json; power spectrum over {where}: {chi2}, "
              f"max |rel. error| {rel}")
        return 0
    if args.verb == "validate" and args.domain == "ising":
        from hpcgen.jobs.validate_files import ising_fidelity_config, validate_ising_files

        cfg = ising_fidelity_config(resamples=args.resamples, bootstrap=args.bootstrap, max_configs=args.max_configs,
                                    seeds=args.classifier_seeds, folds=args.folds,
                                    classifier_resamples=args.classifier_resamples, hidden=args.classifier_hidden,
                                    classifier=not args.no_classifier, seed=args.seed)
        metrics = validate_ising_files(args.ref, args.test, args.out, config=cfg,
                                       warn=lambda line: print(f"hpcgen: warning: {line}", file=sys.stderr))
        within = sum(bool(r["within_floor_p95"]) for r in metrics["verdict"])
        auc = [r for r in metrics["verdict"] if r["key"] == "AUC"][-1:]  # pooled, or the one temperature's
        auc_text = "".join(f"{r['metric'].split(': ')[0]} classifier AUC {r['value']:.3f} ± {r['spread']:.3f} "
                           f"(floor p95 {r['floor_p95']:.3f}); " for r in auc)
        print(f"wrote {args.out / 'report.md'} and metrics.json; {len(metrics['temperatures'])} temperature(s): "
              f"{auc_text}{within} of {len(metrics['verdict'])} verdict rows within the floor p95")
        return 0
    if args.verb == "validate":
        if args.max_showers < 0:
            raise UserError(f"--max-showers: expected >= 0, got {args.max_showers}")
        from hpcgen.jobs.validate_files import fidelity_config, validate_calo_files

        cfg = fidelity_config(resamples=args.resamples, bins=args.bins, seeds=args.classifier_seeds, folds=args.folds,
                              hidden=args.classifier_hidden, low_level=args.low_level,
                              per_energy_classifier=args.per_energy_classifier, cross_check=not args.no_cross_check,
                              seed=args.seed)
        metrics = validate_calo_files(args.ref, args.test, args.out, max_showers=args.max_showers, config=cfg,
                                      warn=lambda line: print(f"hpcgen: warning: {line}", file=sys.stderr))
        pooled = metrics["groups"][-1]
        within = sum(bool(r["within_floor_p95"]) for r in pooled["verdict"])
        auc = next(r for r in pooled["verdict"] if r["metric"] == "AUC_high_level")
        print(f"wrote {args.out / 'report.md'} and metrics.json; {pooled['label']}: high-level AUC "
              f"{auc['value']:.3f} ± {auc['spread']:.3f} (floor p95 {auc['floor_p95']:.3f}); "
              f"{within} of {len(pooled['verdict'])} metrics within the floor p95")
        return 0
    if args.verb in ("jobscript", "submit"):
        return _slurm(args)
    if args.verb == "merge":
        from hpcgen.data.sharded import merge_shards

        out = merge_shards(args.out, args.shards, overwrite=args.overwrite)
        print(f"wrote {out} (virtual datasets over {args.shards} shards)")
        return 0
    if args.verb == "export":
        from hpcgen.data.calo_file import export_calochallenge

        print(f"wrote {export_calochallenge(args.src, args.dst)}")
        return 0
    raise AssertionError(args.verb)


def _job_request(args: argparse.Namespace, command: tuple[str, ...]):
    from hpcgen.slurm import JobRequest

    venv = None
    if not args.no_venv:
        venv = args.venv or os.environ.get("VIRTUAL_ENV") or (sys.prefix if sys.prefix != sys.base_prefix else None)
    workdir = None if args.workdir is None else str(args.workdir.absolute())
    return JobRequest(
        command=command, nodes=args.nodes, time=args.time, account=args.account, partition=args.partition,
        qos=args.qos, constraint=args.constraint, gpus_per_node=args.gpus_per_node,
        ntasks_per_node=args.ntasks_per_node, cpus_per_task=args.cpus_per_task, engine=args.engine,
        job_name=args.job_name, workdir=workdir, venv=venv, modules=None if args.module is None else tuple(args.module),
        output=args.output, array=args.array, requeue=not args.no_requeue, grace_s=args.grace_s,
        max_requeues=args.max_requeues)


def _slurm(args: argparse.Namespace) -> int:
    """jobscript / submit: check everything (the system, the flags, the hpcgen command after --), then render and,
    for submit, sbatch. Nothing is written or submitted when any check fails."""
    from hpcgen.slurm import load_profile, render_job_script

    pipeline = args.system == "pipeline"
    system = args.pipeline_system if pipeline else args.system
    if pipeline and not system:
        raise UserError(f"{args.verb} pipeline: name the system, e.g. `hpcgen {args.verb} pipeline local`")
    if not pipeline and args.pipeline_system:
        raise UserError(f"{args.verb}: unexpected {args.pipeline_system!r} after the system; the hpcgen command "
                        "goes after --")
    profile = load_profile(system)
    defaults = _pipeline_defaults()
    flags = {k: getattr(args, k) for k in defaults}
    if not pipeline:
        given = [k for k, v in flags.items() if v is not None]
        if given:
            raise UserError(f"--{given[0].replace('_', '-')}: only applies to `{args.verb} pipeline`; flags of the "
                            "hpcgen command itself go after --")
    flags = {k: defaults[k] if v is None else v for k, v in flags.items()}
    if pipeline:
        if args.command:
            raise UserError(f"{args.verb} pipeline: takes no command after --; it runs simulate, train and bench")
        from hpcgen.slurm.pipeline import PipelineSpec, render_pipeline

        spec = PipelineSpec(workdir=(args.workdir or Path("hpcgen-pipeline")).absolute(), **flags)
        train = _job_request(args, ())
        if args.verb == "jobscript":
            texts = render_pipeline(profile, spec, train)
            if args.out is None:
                for name, text in texts:
                    print(f"# ===== {name}.sbatch =====\n{text}")
                return 0
            from hpcgen.slurm.submit import write_script

            for name, text in texts:
                print(f"wrote {write_script(text, args.out / f'{name}.sbatch')}")
            return 0
        from hpcgen.slurm.submit import submit_pipeline

        for job in submit_pipeline(profile, spec, train, dependency=args.dependency):
            after = f" (after {job.dependency})" if job.dependency else ""
            print(f"submitted {job.name}: job {job.job_id}{after}; script {job.script}")
        print(f"outputs under {spec.workdir} (logs/, run/, bench/, report/)")
        return 0

    if not args.command:
        raise UserError(f"{args.verb} {system}: the hpcgen command is missing; put it after --, "
                        f"e.g. `hpcgen {args.verb} {system} --nodes 1 -- train calo --data showers.h5 --out run --steps 100`")
    if args.command[0] in ("jobscript", "submit"):
        raise UserError(f"{args.verb}: the command after -- runs inside the job; it cannot be {args.command[0]}")
    try:  # the command must parse as hpcgen's own, here and now, not in the queue hours later
        build_parser().parse_args(list(args.command))
    except UserError as exc:
        raise UserError(f"the command after --: {exc}") from None
    req = _job_request(args, tuple(args.command))
    if args.verb == "submit":
        from hpcgen.slurm.submit import submit_job

        job = submit_job(profile, req, args.script_dir.absolute(), dependency=args.dependency)
        print(job.job_id)
        print(f"submitted job {job.job_id} to {system}; script {job.script}", file=sys.stderr)
        return 0
    text = render_job_script(profile, req)
    if args.out is None:
        sys.stdout.write(text)
    else:
        from hpcgen.slurm.submit import write_script

        print(f"wrote {write_script(text, args.out)}")
    return 0


def _progress(args: argparse.Namespace) -> bool:
    return not (args.no_progress or os.environ.get("HPCGEN_NO_PROGRESS"))


def _run_on_world(job, what: str, shard=None) -> int:
    """Run a sharded job over the MPI world (or one process) and report its output file on rank 0."""
    from hpcgen.dist.world import world

    w = world()
    out = job(w)
    if shard is not None:
        print(f"wrote {out} (shard {shard.index} of {shard.count} of {what}; merge with "
              f"`hpcgen merge OUT --shards {shard.count}` when all are written)")
    elif w.rank == 0:
        print(f"wrote {out} ({what} over {w.size} ranks)")
    return 0


def _lr_option(args: argparse.Namespace) -> dict:
    """--lr goes to the learning rate of the chosen network (TrainConfig keeps one per recipe)."""
    if args.lr is None:
        return {}
    if args.domain == "cosmo":
        return {"lr_cosmo": args.lr}
    if args.domain == "ising":
        return {"lr_ising": args.lr}
    return {"lr_calo": args.lr} if args.calo_arch == "3dgan" else {"lr_factorised": args.lr}


def _train(args: argparse.Namespace) -> int:
    from hpcgen.config import TrainConfig

    cfg = TrainConfig(
        domain=args.domain, data=args.data, out=args.out, engine=args.engine, batch_size=args.batch_size,
        steps=args.steps, epochs=args.epochs, seed=args.seed,
        resume={"no": False, "yes": True, "auto": "auto"}[args.resume],
        checkpoint_every=args.checkpoint_every, lr_scaling=args.lr_scaling, warmup_steps=args.warmup_steps,
        device=args.device, bf16=args.bf16, ops_impl=args.ops_impl, g_steps=args.g_steps, sigma8_conditioning=args.sigma8_conditioning,
        spectral_loss=args.spectral_loss, cosmo_width=args.cosmo_width, spin_readout=args.spin_readout, progress=_progress(args), calo_arch=args.calo_arch, calo_loss=args.calo_loss,
        d_view=args.d_view, readout=args.readout, spectral_norm=not args.no_spectral_norm, g_ema=args.g_ema,
        feature_matching=args.feature_matching,
        eval_data=args.eval_data, eval_every=args.eval_every, time_limit_s=args.time_limit_s, **_lr_option(args))
    if args.timeout_s <= 0:
        raise UserError(f"--timeout-s: expected > 0, got {args.timeout_s}")
    from hpcgen.dist.engine import make_engine
    from hpcgen.train.loop import Preempted, train

    from hpcgen.train.loop import open_training_data

    data = open_training_data(cfg)  # before any rendezvous: bad input fails fast on every rank alike
    engine = make_engine(cfg.engine, device=cfg.device, timeout_s=args.timeout_s)
    try:
        last = train(cfg, engine, data)
    except Preempted as exc:
        if engine.rank == 0:
            print(f"hpcgen: {exc}; exit {exc.exit_code} (resume with --resume)", file=sys.stderr)
        engine.close()
        return exc.exit_code
    except UserError:  # raised alike on every rank (decided collectively): leave in order
        engine.close()
        raise
    if engine.rank == 0 and "loss_D" not in last:
        print(f"nothing to train: {cfg.out} is already at step {last['step']} of {cfg.steps or cfg.epochs} "
              f"{'steps' if cfg.steps else 'epochs'}")
    elif engine.rank == 0:
        print(f"trained {cfg.domain} to step {last['step']} on {engine.world_size} ranks ({engine.name}): "
              f"loss_D {last['loss_D']:.4f}, loss_G {last['loss_G']:.4f}, "
              f"{last['samples_per_s_total']:.1f} samples/s total; checkpoint in {cfg.out}")
    engine.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        command: list[str] = []
        if argv[:1] in (["jobscript"], ["submit"]) and "--" in argv:  # jobscript/submit ... -- VERB ARGS
            cut = argv.index("--")
            argv, command = argv[:cut], argv[cut + 1:]
        args = build_parser().parse_args(argv)
        args.command = command
        return _run(args)
    except UserError as exc:
        # Under MPI every rank sees the same bad input; one line from rank 0 is enough.
        rank = os.environ.get("OMPI_COMM_WORLD_RANK") or os.environ.get("PMI_RANK") or os.environ.get("PMIX_RANK") or "0"
        if rank == "0":
            print(f"hpcgen: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("hpcgen: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from hpcgen.jobs.sharded_run import GenerationFailed

        if isinstance(exc, GenerationFailed):
            print(f"hpcgen: error: {exc}", file=sys.stderr)
            return 1
        _abort_peers_on_crash()
        raise


def _abort_peers_on_crash() -> None:
    """An unexpected exception on one MPI rank must not leave the others waiting in a collective forever."""
    import traceback

    if "mpi4py.MPI" in sys.modules:
        from mpi4py import MPI

        if MPI.Is_initialized() and not MPI.Is_finalized() and MPI.COMM_WORLD.Get_size() > 1:
            traceback.print_exc()
            sys.stderr.flush()
            MPI.COMM_WORLD.Abort(1)


if __name__ == "__main__":
    sys.exit(main())
