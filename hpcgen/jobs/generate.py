"""``hpcgen generate``: sample a trained GAN generator into the same HDF5 schema as the Monte Carlo.

The file's ``generator`` attribute is ``gan:<checkpoint id>`` so ``hpcgen validate`` compares GAN and MC files
alike. Runs as one process or over MPI ranks, sharded exactly like ``hpcgen simulate`` (rank r draws its
conditions and noise from ``stream(seed, r)``); the generator runs in eval mode (BatchNorm running statistics),
from its weight average when the run kept one.

Ising runs write ``hpcgen.ising/1``: ``--n`` configurations **per temperature** (as in ``simulate ising``), in
temperature order, at ``--temperatures`` (default: the training data's). The schema's Markov-chain attributes
describe the sample sequence, with the file's ``sweep_definition`` as the unit: for a GAN one "sweep" is one
independent draw (fresh noise, fresh random flip and translation; the generator has no batch-dependent layer), so
by construction τ_int = ½ exactly (ρ(t) = 0 for t ≥ 1) with error 0, thin = 1, no thermalisation and no pilot
(``pilot_sweeps`` 0, ``tau_reliable`` true). Writing these exact values keeps one schema that every reader can
rely on, instead of a validator with a second, GAN-only set of rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hpcgen.config import DEVICES, EnergySpec, check_choice
from hpcgen.dist.launch import process_ranks, select_device
from hpcgen.dist.world import World
from hpcgen.errors import UserError
from hpcgen.jobs.sharded_run import prepare_output, run_sharded, split_counts
from hpcgen.jobs.simulate_ising import TemperatureSpec
from hpcgen.models import calo_sampler, cosmo_sampler, ising_sampler
from hpcgen.seeding import stream

GAN_SWEEP_DEFINITION = "one independent GAN sample (fresh noise, random global flip and translation)"


@dataclass(frozen=True)
class GenerateConfig:
    checkpoint: Path
    n: int
    out: Path
    energy: EnergySpec | None = None  # calo
    sigma8: float | None = None  # cosmo; None = the training data's σ8
    temperatures: TemperatureSpec | None = None  # ising, configurations per T; None = the training data's
    batch_size: int = 64
    device: str = "cpu"
    seed: int = 0
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.n < 1:
            raise UserError(f"--n: expected a number of samples >= 1, got {self.n}")
        if self.batch_size < 1:
            raise UserError(f"--batch-size: expected >= 1, got {self.batch_size}")
        check_choice(self.device, DEVICES, "--device")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available to this torch build")
        if not str(self.out).endswith(".h5") or not self.out.parent.is_dir():
            raise UserError(f"--out: expected NAME.h5 in an existing directory, got {str(self.out)!r}")
        if self.sigma8 is not None and not 0 < self.sigma8 < 2:
            raise UserError(f"--sigma8: expected a value in (0, 2), got {self.sigma8}")


def load_generator(run_dir: Path, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """The trained generator (eval mode) and its checkpoint, with one-line errors for a bad run directory."""
    from hpcgen.models import build_gan
    from hpcgen.train.checkpoint import checkpoint_path, load_checkpoint

    if not checkpoint_path(run_dir).exists():
        raise UserError(f"--checkpoint: {run_dir} holds no checkpoint.pt (train with --out {run_dir} first)")
    try:
        ckpt = load_checkpoint(run_dir)
        domain = ckpt["config"]["domain"]
        options = dict(ckpt["model_options"])
        if "image_shape" in options:
            options["image_shape"] = tuple(options["image_shape"])
        g, _ = build_gan(domain, **options)
        g.load_state_dict(ckpt["state"].get("G_ema", ckpt["state"]["G"]))  # the weight average when kept
    except (KeyError, TypeError, RuntimeError, ValueError, EOFError) as exc:
        raise UserError(f"--checkpoint: {run_dir}/checkpoint.pt is not a usable hpcgen checkpoint ({exc})") from None
    return g.to(device).eval(), ckpt


def generate(cfg: GenerateConfig, world: World) -> Path:
    device = select_device(process_ranks().local_rank, cfg.device)  # this rank's GPU on a multi-GPU node
    g, ckpt = load_generator(cfg.checkpoint, device)
    domain, tcfg, meta = ckpt["config"]["domain"], ckpt["config"], ckpt["data_meta"]
    gan_id = f"gan:{ckpt['checkpoint_id']}"
    kind = {"calo": "a calo (3DGAN)", "cosmo": "a cosmo (CosmoGAN)", "ising": "an ising (Ising DCGAN)"}[domain]
    if domain != "cosmo" and cfg.sigma8 is not None:
        raise UserError(f"--sigma8: only applies to a CosmoGAN checkpoint; this one is {kind} run")
    if domain != "calo" and cfg.energy is not None:
        raise UserError(f"--energy-gev: only applies to a 3DGAN checkpoint; this one is {kind} run")
    if domain != "ising" and cfg.temperatures is not None:
        raise UserError(f"--temperatures: only applies to an Ising GAN checkpoint; this one is {kind} run")
    prepare_output(cfg.out, cfg.overwrite, world)
    if domain == "ising":
        return _generate_ising(cfg, world, g, ckpt, device)
    counts = split_counts(cfg.n, world.size)
    offset = sum(counts[:world.rank])
    rng = stream(cfg.seed, world.rank)
    noise_gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
    torch.manual_seed(int(rng.integers(0, 2**62)))  # per-cell noise inputs of the factorised generator

    if domain == "calo":
        from hpcgen.data.calo_file import calo_attrs, calo_specs
        from hpcgen.physics.calo_geometry import SamplingCalorimeter
        geometry = SamplingCalorimeter.from_json(meta["geometry"])
        energy = cfg.energy or EnergySpec.parse("10:500")
        energies = energy.sample(offset, counts[world.rank], rng).astype(np.float32)
        specs = calo_specs(geometry.shape)
        attrs = calo_attrs(gan_id, geometry, cfg.seed, energy_spec=energy.text, world_size=world.size,
                           trained_on=meta.get("data_generator", ""))

        sample = calo_sampler(g, tcfg, device, noise_gen)

        def produce(start: int, count: int) -> dict:
            return {"ECAL": sample(energies[start:start + count]), "energy": energies[start:start + count]}
    else:
        from hpcgen.data.cosmo_file import cosmo_attrs, cosmo_specs

        s8 = cfg.sigma8 if cfg.sigma8 is not None else float(json.loads(meta["cosmology"])["sigma8"])
        size = int(ckpt["model_options"]["image_size"])
        specs = cosmo_specs(size, size, with_sigma8=True)
        attrs = cosmo_attrs(gan_id, json.loads(meta["cosmology"]), float(meta["z_source"]), float(meta["field_deg"]),
                            size, cfg.seed, world_size=world.size,
                            trained_on=meta.get("data_generator", ""))

        sample = cosmo_sampler(g, ckpt["model_options"], device, noise_gen, s8)

        def produce(start: int, count: int) -> dict:
            return {"kappa": sample(count), "sigma8": np.full(count, s8, dtype=np.float32)}

    # one chunk = one generator batch
    return run_sharded(cfg.out, cfg.n, world, specs, attrs, produce, chunk=cfg.batch_size, progress=cfg.progress,
                       desc=f"generate {domain}")


def _generate_ising(cfg: GenerateConfig, world: World, g: torch.nn.Module, ckpt: dict, device) -> Path:
    """``cfg.n`` configurations per temperature, in temperature order, split over the ranks like every sample."""
    from hpcgen.data.ising_file import ising_attrs, ising_specs

    meta, L = ckpt["data_meta"], int(ckpt["model_options"]["L"])
    temps = np.asarray(cfg.temperatures.values if cfg.temperatures is not None else meta["temperatures"],
                       dtype=np.float64)
    text = cfg.temperatures.text if cfg.temperatures is not None else ",".join(f"{t!r}" for t in temps)
    offset = sum(split_counts(cfg.n * len(temps), world.size)[:world.rank])
    rng = stream(cfg.seed, world.rank)
    noise_gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
    n_t = len(temps)
    attrs = ising_attrs("gan", L, cfg.seed, temps, thin=1, thermalise=0, tau_int_E=0.5, tau_int_E_err=0.0,
                        tau_int_absM=0.5, tau_int_absM_err=0.0, pilot_sweeps=np.zeros(n_t, dtype=np.int64),
                        tau_reliable=True, sweep_definition=GAN_SWEEP_DEFINITION,
                        generator=f"gan:{ckpt['checkpoint_id']}", samples_per_temperature=int(cfg.n),
                        temperature_spec=text, world_size=world.size, trained_on=meta.get("data_generator", ""))
    sample = ising_sampler(g, ckpt["model_options"], device, noise_gen)

    def produce(start: int, count: int) -> dict:
        t = temps[(offset + start + np.arange(count)) // cfg.n]
        return {"spins": sample(t), "temperature": t}

    return run_sharded(cfg.out, cfg.n * n_t, world, ising_specs(L), attrs, produce, chunk=cfg.batch_size,
                       progress=cfg.progress, desc="generate ising", unit="config")
