"""Typed run configurations. Each validates once, at construction; errors name the flag and what is allowed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hpcgen.errors import UserError
from hpcgen.physics.calo_geometry import DEFAULT_GEOMETRY, SamplingCalorimeter

if TYPE_CHECKING:
    from hpcgen.data.sharded import ShardSlot

# Primary energies the calorimeter generators accept (GFlash's fits and the cascade's cost both assume this).
ENERGY_MIN_GEV, ENERGY_MAX_GEV = 1.0, 1000.0
# --device of every torch job: auto (this rank's GPU when torch sees one, hpcgen.dist.launch.select_device) | cpu | cuda
DEVICES = ("auto", "cpu", "cuda")


def check_choice(value, allowed, flag: str) -> None:
    """A one-line UserError naming ``flag`` unless ``value`` is one of ``allowed``: "--device: expected auto, cpu or
    cuda, got 'x'"."""
    if value not in allowed:
        names = [str(a) for a in allowed]
        words = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        raise UserError(f"{flag}: expected {words}, got {value!r}")


@dataclass(frozen=True)
class EnergySpec:
    """Primary-energy distribution, parsed from ``A:B`` (uniform), ``log:A:B`` (log-uniform) or ``E1,E2,...``.

    A list assigns energies round-robin by global shower index, so every listed energy gets N/len showers.
    """

    kind: str  # "uniform" | "log" | "list"
    values: tuple[float, ...]
    text: str = ""

    @classmethod
    def parse(cls, text: str, flag: str = "--energy-gev") -> "EnergySpec":
        allowed = f"{flag}: expected A:B, log:A:B or E1,E2,... with energies in [{ENERGY_MIN_GEV:g}, {ENERGY_MAX_GEV:g}] GeV"
        t = str(text).strip()
        try:
            if t.startswith("log:"):
                kind, parts = "log", t[4:].split(":")
            elif ":" in t:
                kind, parts = "uniform", t.split(":")
            else:
                kind, parts = "list", t.split(",")
            values = tuple(float(p) for p in parts)
        except ValueError:
            raise UserError(f"{allowed}, got {text!r}") from None
        if kind in ("uniform", "log") and (len(values) != 2 or not values[0] < values[1]):
            raise UserError(f"{allowed} and A < B, got {text!r}")
        if not values or not all(np.isfinite(v) and ENERGY_MIN_GEV <= v <= ENERGY_MAX_GEV for v in values):
            raise UserError(f"{allowed}, got {text!r}")
        return cls(kind, values, t)

    def sample(self, start: int, count: int, rng: np.random.Generator) -> np.ndarray:
        """Energies (GeV, float64) of global showers ``start .. start+count-1``; random kinds draw from ``rng``."""
        if self.kind == "list":
            return np.asarray(self.values, dtype=np.float64)[(start + np.arange(count)) % len(self.values)]
        a, b = self.values
        u = rng.random(count)
        if self.kind == "uniform":
            return a + (b - a) * u
        return np.exp(np.log(a) + (np.log(b) - np.log(a)) * u)


def check_sample_run(n: int, seed: int, chunk: int, out: Path, what: str) -> None:
    """The flags every sharded producer (simulate calo/cosmo) shares: --n, --seed, --chunk, --out."""
    if n < 1:
        raise UserError(f"--n: expected a number of {what} >= 1, got {n}")
    if seed < 0:
        raise UserError(f"--seed: expected an integer >= 0, got {seed}")
    if chunk < 0:
        raise UserError(f"--chunk: expected >= 0 (0 = default), got {chunk}")
    if not str(out).endswith(".h5"):
        raise UserError(f"--out: expected a file name ending in .h5, got {str(out)!r}")
    if not out.parent.is_dir():
        raise UserError(f"--out: directory {str(out.parent)!r} does not exist")


@dataclass(frozen=True)
class SimulateCaloConfig:
    generator: str
    n: int
    energy: EnergySpec
    seed: int
    out: Path
    chunk: int = 0  # showers per chunk and rank; 0 = generator default
    overwrite: bool = False
    progress: bool = True
    gflash_tune: str | None = None  # None = "literature" for gflash; not allowed for cascade
    geometry: SamplingCalorimeter = field(default=DEFAULT_GEOMETRY)
    shard: ShardSlot | None = None  # write only this shard (a Slurm array task); merge later

    def __post_init__(self) -> None:
        from hpcgen.sim import CALO_GENERATORS

        if self.generator not in CALO_GENERATORS:
            raise UserError(f"--generator: expected one of {', '.join(CALO_GENERATORS)}, got {self.generator!r}")
        from hpcgen.sim import GFLASH_TUNE_NAMES

        if self.gflash_tune is not None:
            if self.generator != "gflash":
                raise UserError(f"--gflash-tune: only applies to --generator gflash, not {self.generator!r}")
            if self.gflash_tune not in GFLASH_TUNE_NAMES:
                raise UserError(f"--gflash-tune: expected one of {', '.join(GFLASH_TUNE_NAMES)}, got {self.gflash_tune!r}")
        check_sample_run(self.n, self.seed, self.chunk, self.out, "showers")

    @property
    def chunk_size(self) -> int:
        return self.chunk or (8 if self.generator == "cascade" else 256)


TRAIN_DOMAINS = ("calo", "cosmo", "ising")
CALO_ARCHS = ("3dgan", "factorised")  # hpcgen.models.CALO_ARCHS, spelt out so that configs do not import torch
CALO_LOSSES = ("hinge", "bce")
D_VIEWS = ("both", "physics", "cells")  # hpcgen.models.calo_factorised.D_VIEWS
READOUTS = ("soft", "straight-through")  # hpcgen.models.calo_factorised.READOUTS
SPIN_READOUTS = ("sign", "bernoulli")  # hpcgen.models.ising_dcgan.READOUTS
ENGINES = ("ddp", "horovod")
LR_SCALINGS = ("none", "linear")


# hpcgen.ops.IMPLS, spelt out so that validating a config does not import torch (tests/test_ops_ecal_moments.py
# keeps the two equal)
OPS_IMPLS = ("auto", "ref", "cpu", "cuda")

@dataclass(frozen=True)
class TrainConfig:
    """A GAN training run. Domain defaults follow shared/REFERENCE.md §1 (3DGAN; CosmoGAN)."""

    domain: str
    data: Path
    out: Path
    engine: str = "ddp"
    batch_size: int = 8  # per rank
    steps: int = 0  # exactly one of steps / epochs > 0
    epochs: int = 0
    seed: int = 0
    resume: bool | str = False  # True, False or "auto" (continue a checkpoint when --out holds one)
    checkpoint_every: int = 100
    log_every: int = 1
    lr_scaling: str = "none"  # "linear": lr × world size, reached by a linear warm-up over warmup_steps
    warmup_steps: int = 0
    device: str = "auto"
    bf16: bool = False  # bf16 autocast (CUDA; CPU with AVX512-BF16 or AMX)
    ops_impl: str = "auto"  # fused-op implementation for the loss paths (hpcgen.ops.IMPLS)
    progress: bool = True
    # 3DGAN
    loss_weights: tuple[float, float, float] = (6.0, 0.2, 0.1)
    label_flip: float = 0.05
    g_steps: int = 0  # generator steps per discriminator step; 0 = the architecture's (3DGAN 2, factorised, Ising 1)
    image_scale: float = 100.0  # ECAL GeV × this is what the networks see (cells O(0.01–10))
    lr_calo: float = 1e-3
    # calorimeter architecture: the paper's 3DGAN or the factorised GAN (hpcgen.models.calo_factorised), which
    # uses its own loss (hinge or non-saturating BCE), Adam (lr_factorised, β 0.5/0.9) and an EMA of G's weights
    calo_arch: str = "factorised"
    calo_loss: str = "hinge"
    lr_factorised: float = 2e-4
    d_view: str = "physics"  # what the factorised discriminator reads: both | physics | cells
    readout: str = "straight-through"  # the factorised GAN's training read-out: soft | straight-through
    spectral_norm: bool = True
    feature_matching: float = 1.0  # weight of the physics-feature matching term in the factorised and Ising G loss
    g_ema: float = 0.999  # factorised and Ising: decay of G's weight average (0 = off); generate samples it
    # fidelity monitor: every eval_every steps rank 0 scores the generator against eval_data (metrics.jsonl)
    eval_data: Path | None = None
    eval_every: int = 0
    time_limit_s: float = 0.0  # checkpoint and stop (exit 75, resumable) after this much training in one sitting
    # CosmoGAN
    label_swap: float = 0.01
    lr_cosmo: float = 2e-4
    sigma8_conditioning: bool = False
    spectral_loss: bool = False
    cosmo_width: float = 1.0  # CosmoGAN channel multiplier (1 = the paper's network)
    spectral_weights: tuple[float, float] = (0.1, 0.1)  # λ1 (mean spectrum), λ2 (spectrum variance); our choice
    # Ising DCGAN (hpcgen.models.ising_dcgan): non-saturating BCE, Adam (lr_ising, β 0.5/0.999)
    lr_ising: float = 2e-4
    spin_readout: str = "bernoulli"  # the generator's ±1 read-out (sign | bernoulli); ablation in docs/ising.md

    def __post_init__(self) -> None:
        if self.domain not in TRAIN_DOMAINS:
            raise UserError(f"train: domain must be one of {', '.join(TRAIN_DOMAINS)}, got {self.domain!r}")
        if self.engine not in ENGINES:
            raise UserError(f"--engine: expected one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.batch_size < 1:
            raise UserError(f"--batch-size: expected >= 1 (per rank), got {self.batch_size}")
        if (self.steps > 0) == (self.epochs > 0) or self.steps < 0 or self.epochs < 0:
            raise UserError(f"--steps / --epochs: give exactly one, > 0 (got steps={self.steps}, epochs={self.epochs})")
        if self.resume not in (True, False, "auto"):
            raise UserError(f"--resume: expected nothing or auto, got {self.resume!r}")
        if self.checkpoint_every < 1:
            raise UserError(f"--checkpoint-every: expected >= 1, got {self.checkpoint_every}")
        if self.lr_scaling not in LR_SCALINGS:
            raise UserError(f"--lr-scaling: expected one of {', '.join(LR_SCALINGS)}, got {self.lr_scaling!r}")
        if self.warmup_steps < 0:
            raise UserError(f"--warmup-steps: expected >= 0, got {self.warmup_steps}")
        if self.seed < 0:
            raise UserError(f"--seed: expected an integer >= 0, got {self.seed}")
        check_choice(self.device, DEVICES, "--device")
        if self.ops_impl not in OPS_IMPLS:
            raise UserError(f"--ops-impl: expected one of {', '.join(OPS_IMPLS)}, got {self.ops_impl!r}")
        if not 0 <= self.label_flip < 0.5 or not 0 <= self.label_swap < 0.5:
            raise UserError("--label-flip: expected a probability in [0, 0.5)")
        if self.g_steps < 0:
            raise UserError(f"--g-steps: expected >= 1 (0 = the architecture's default), got {self.g_steps}")
        if self.g_steps == 0:  # 3DGAN 2 (and the recorded CosmoGAN default), factorised and Ising 1
            two = self.domain == "cosmo" or (self.domain == "calo" and self.calo_arch == "3dgan")
            object.__setattr__(self, "g_steps", 2 if two else 1)
        if self.time_limit_s < 0:
            raise UserError(f"--time-limit-s: expected seconds >= 0 (0 = none), got {self.time_limit_s}")
        check_choice(self.calo_arch, CALO_ARCHS, "--calo-arch")
        check_choice(self.calo_loss, CALO_LOSSES, "--calo-loss")
        check_choice(self.d_view, D_VIEWS, "--d-view")
        check_choice(self.readout, READOUTS, "--readout")
        check_choice(self.spin_readout, SPIN_READOUTS, "--spin-readout")
        if self.feature_matching < 0:
            raise UserError(f"--feature-matching: expected a weight >= 0, got {self.feature_matching}")
        if not 0 <= self.g_ema < 1:
            raise UserError(f"--g-ema: expected a decay in [0, 1), got {self.g_ema}")
        if not self.lr_factorised > 0 or not self.lr_calo > 0 or not self.lr_ising > 0:
            raise UserError("--lr: expected a learning rate > 0")
        if (self.eval_every > 0) != (self.eval_data is not None) or self.eval_every < 0:
            raise UserError("--eval-every / --eval-data: give both (steps > 0 and a held-out file) or neither")
        if self.eval_data is not None and not self.eval_data.exists():
            raise UserError(f"--eval-data: {self.eval_data}: no such file")
        if not 0 < self.cosmo_width <= 4:
            raise UserError(f"--cosmo-width: expected a channel multiplier in (0, 4] (1 = the paper's), got "
                            f"{self.cosmo_width}")
        if self.cosmo_width != 1.0 and self.domain != "cosmo":
            raise UserError("--cosmo-width: only applies to `train cosmo` (CosmoGAN)")
        if self.spin_readout != "bernoulli" and self.domain != "ising":
            raise UserError("--spin-readout: only applies to `train ising` (the Ising DCGAN)")
        if self.spectral_loss and self.domain != "cosmo":
            raise UserError("--spectral-loss: only applies to `train cosmo` (CosmoGAN)")
        if self.sigma8_conditioning and self.domain == "ising":
            raise UserError("--sigma8-conditioning: only applies to `train cosmo` (CosmoGAN); the Ising GAN is "
                            "conditioned on the temperature")
        if not self.data.exists():
            raise UserError(f"--data: {self.data}: no such file")
