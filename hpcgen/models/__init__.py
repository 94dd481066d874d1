"""The GANs of hpcgen as plain ``nn.Module``s — no losses, loops or I/O (the trainer owns those).

``build_gan("calo")`` is the 3DGAN for 25×25×25 calorimeter showers (:mod:`hpcgen.models.gan3d`, Khattak et al.);
``build_gan("cosmo")`` is CosmoGAN for convergence maps (:mod:`hpcgen.models.cosmogan`, Mustafa et al.);
``build_gan("ising")`` is the temperature-conditioned DCGAN for 2D Ising configurations
(:mod:`hpcgen.models.ising_dcgan`, after Liu, Rodrigues & Cai). The helpers
here size a model: parameters, and generator FLOPs per sample as ``torch.utils.flop_counter.FlopCounterMode``
counts them (2 FLOPs per multiply-add, convolutions and matmuls only — norms and activations are not counted).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from hpcgen.models.calo_factorised import FactorisedDiscriminator, FactorisedGenerator
from hpcgen.models.cosmogan import CosmoDiscriminator, CosmoGenerator
from hpcgen.models.gan3d import ENERGY_SCALE_GEV, Discriminator3D, Generator3D
from hpcgen.models.ising_dcgan import T_C, IsingDiscriminator, IsingGenerator, random_lattice_symmetry

DOMAINS = ("calo", "cosmo", "ising")
CALO_ARCHS = ("3dgan", "factorised")  # the paper's 3DGAN (baseline) | hpcgen.models.calo_factorised
_OPTIONS = {
    "calo": ("arch", "latent_dim", "image_shape", "output_scale", "dropout", "sampling_fraction", "threshold",
             "view", "spectral_norm", "readout"),
    "cosmo": ("latent_dim", "image_size", "sigma8_conditioning", "width"),
    "ising": ("L", "latent_dim", "readout"),
}


def _check_domain(domain: str) -> None:
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {', '.join(map(repr, DOMAINS))}; got {domain!r}")


def build_gan(domain: str, **options) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) for ``domain``.

    calo options: arch ("3dgan"). 3dgan: latent_dim (200), image_shape ((25, 25, 25)), output_scale (1.0),
        dropout (0.2). factorised: latent_dim (64), image_shape, sampling_fraction and threshold (network units),
        view ("both": what the discriminator reads, see FactorisedDiscriminator), spectral_norm (True), readout
        ("soft" | "straight-through": the training read-out of both networks).
    cosmo options: latent_dim (64), image_size (256), sigma8_conditioning (False), width (1.0: the paper's channels).
    ising options: L (32: the lattice side, a multiple of 4), latent_dim (64).
    """
    _check_domain(domain)
    unknown = sorted(set(options) - set(_OPTIONS[domain]))
    if unknown:
        raise ValueError(
            f"unknown {domain} model option(s) {', '.join(unknown)}; allowed: {', '.join(_OPTIONS[domain])}"
        )
    if domain == "calo" and options.get("arch", "3dgan") == "factorised":
        bad = sorted(set(options) & {"output_scale", "dropout"})
        if bad:
            raise ValueError(f"calo option(s) {', '.join(bad)} belong to arch '3dgan', not 'factorised'")
        g_opts = {k: options[k] for k in ("latent_dim", "image_shape", "sampling_fraction", "threshold", "readout")
                  if k in options}
        d_opts = {k: options[k] for k in ("image_shape", "threshold", "sampling_fraction", "view", "spectral_norm",
                                          "readout") if k in options}
        return FactorisedGenerator(**g_opts), FactorisedDiscriminator(**d_opts)
    if domain == "calo":
        arch = options.pop("arch", "3dgan")
        if arch != "3dgan":
            raise ValueError(f"calo arch must be one of {', '.join(map(repr, CALO_ARCHS))}; got {arch!r}")
        bad = sorted(set(options) & {"sampling_fraction", "threshold", "view", "spectral_norm", "readout"})
        if bad:
            raise ValueError(f"calo option(s) {', '.join(bad)} belong to arch 'factorised', not '3dgan'")
        g_keys = ("latent_dim", "image_shape", "output_scale")
        generator = Generator3D(**{k: v for k, v in options.items() if k in g_keys})
        discriminator = Discriminator3D(**{k: v for k, v in options.items() if k in ("image_shape", "dropout")})
    elif domain == "ising":
        generator = IsingGenerator(**options)
        discriminator = IsingDiscriminator(**{k: v for k, v in options.items() if k == "L"})
    else:
        generator = CosmoGenerator(**options)
        discriminator = CosmoDiscriminator(**{k: v for k, v in options.items() if k != "latent_dim"})
    return generator, discriminator


def calo_sampler(g: torch.nn.Module, train_config: dict, device: torch.device, noise_gen: torch.Generator,
                 precision: str = "fp32"):
    """``sample(energies_gev) -> (B, X, Y, Z)`` float32 numpy showers in GeV from a trained calorimeter generator
    (in the mode the caller set), noise from ``noise_gen``, cells divided by the run's ``image_scale``, computed in
    ``precision`` ("fp32", or "bf16": autocast, the factorised generator's softmax and energy in fp32)."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")

    @torch.no_grad()
    def sample(energies_gev: np.ndarray) -> np.ndarray:
        e = torch.as_tensor(np.asarray(energies_gev, dtype=np.float32)).to(device)
        z = torch.randn(len(e), g.latent_dim, generator=noise_gen).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            x = g(z, e)
        return (x.float() / train_config["image_scale"]).clamp_min(0).cpu().numpy()

    return sample


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (trainable or not; BatchNorm running statistics are buffers and not counted)."""
    return sum(p.numel() for p in module.parameters())


def _example_inputs(generator: nn.Module, domain: str) -> tuple:
    _check_domain(domain)
    noise = torch.zeros(1, generator.latent_dim)
    if domain == "calo":
        if not isinstance(generator, (Generator3D, FactorisedGenerator)):
            raise ValueError(f"domain 'calo' expects a Generator3D or FactorisedGenerator, got {type(generator).__name__}")
        return noise, torch.full((1,), ENERGY_SCALE_GEV)
    if domain == "ising":
        if not isinstance(generator, IsingGenerator):
            raise ValueError(f"domain 'ising' expects an IsingGenerator, got {type(generator).__name__}")
        uniforms = torch.full((1, generator.L, generator.L), 0.5) if generator.needs_site_uniforms else None
        return noise, torch.full((1,), T_C), uniforms
    if not isinstance(generator, CosmoGenerator):
        raise ValueError(f"domain 'cosmo' expects a CosmoGenerator, got {type(generator).__name__}")
    return noise, (torch.full((1,), 0.8) if generator.sigma8_conditioning else None)


def flops_per_sample(generator: nn.Module, domain: str) -> int:
    """FLOPs of one generator forward pass on a batch of 1 in eval mode, as FlopCounterMode counts them.

    FLOPs = 2 × multiply-accumulates of the convolutions and matmuls. The input shapes come from the generator
    itself (latent_dim, conditioning); its training mode is restored afterwards.
    """
    inputs = _example_inputs(generator, domain)
    was_training = generator.training
    generator.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            generator(*inputs)
    finally:
        generator.train(was_training)
    return int(counter.get_total_flops())


def model_summary(domain: str, **options) -> dict:
    """Size of the ``domain`` GAN built with ``options``: parameters of G and D, generator FLOPs per sample."""
    generator, discriminator = build_gan(domain, **options)
    return {
        "domain": domain,
        "generator": type(generator).__name__,
        "discriminator": type(discriminator).__name__,
        "generator_params": count_parameters(generator),
        "discriminator_params": count_parameters(discriminator),
        "generator_flops_per_sample": flops_per_sample(generator, domain),
    }


__all__ = [
    "DOMAINS",
    "CosmoDiscriminator",
    "CosmoGenerator",
    "CALO_ARCHS",
    "Discriminator3D",
    "FactorisedDiscriminator",
    "FactorisedGenerator",
    "Generator3D",
    "IsingDiscriminator",
    "IsingGenerator",
    "build_gan",
    "calo_sampler",
    "count_parameters",
    "flops_per_sample",
    "ising_sampler",
    "model_summary",
]


def cosmo_sampler(g: torch.nn.Module, model_options: dict, device: torch.device, noise_gen: torch.Generator,
                  sigma8: float):
    """``sample(n) -> (n, N, N)`` float32 numpy κ maps at ``sigma8`` from a trained CosmoGAN generator (in the mode
    the caller set; σ8 reaches the generator only when it was trained with ``sigma8_conditioning``), noise from
    ``noise_gen``."""
    from hpcgen.models.pixel_transform import pixel_to_kappa

    conditioned = bool(model_options.get("sigma8_conditioning"))

    @torch.no_grad()
    def sample(n: int) -> np.ndarray:
        z = torch.randn(n, g.latent_dim, generator=noise_gen).to(device)
        sig = torch.full((n,), sigma8, device=device) if conditioned else None
        return pixel_to_kappa(g(z, sig)).float().cpu().numpy()

    return sample


def ising_sampler(g: torch.nn.Module, model_options: dict, device: torch.device, noise_gen: torch.Generator):
    """``sample(temperatures) -> (B, L, L)`` int8 numpy spins, exactly ±1, at ``temperatures`` (B,) in J/k_B from a
    trained Ising generator (in the mode the caller set; its read-out is the one it was trained with, in every
    mode), noise (and the ``bernoulli`` read-out's site uniforms) from ``noise_gen``. Every sample then gets a
    random global flip (probability 1/2) and a uniformly random lattice translation, also from ``noise_gen`` (:func:`hpcgen.models.ising_dcgan.random_lattice_symmetry`): the output
    distribution is exactly Z2- and translation-symmetric."""
    L = int(model_options["L"])

    @torch.no_grad()
    def sample(temperatures: np.ndarray) -> np.ndarray:
        t = torch.as_tensor(np.asarray(temperatures, dtype=np.float32)).to(device)
        z = torch.randn(len(t), g.latent_dim, generator=noise_gen).to(device)
        u = torch.rand(len(t), L, L, generator=noise_gen).to(device) if g.needs_site_uniforms else None
        spins = random_lattice_symmetry(g(z, t, u).float(), noise_gen)
        if spins.shape[1:] != (L, L):
            raise ValueError(f"the generator makes {tuple(spins.shape[1:])} lattices, model_options say L = {L}")
        return spins.to(torch.int8).cpu().numpy()

    return sample
