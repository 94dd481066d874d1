"""A temperature-conditioned DCGAN for 2D Ising configurations on an L×L torus (L a multiple of 4).

After Liu, Rodrigues & Cai, "Simulating the Ising model with a deep convolutional generative adversarial network",
arXiv:1710.04987: a DCGAN trained on Monte Carlo configurations whose generator produces Ising states at a given
temperature T around the critical point. What we could read of that paper is its abstract; it gives no layer list,
lattice size, output discretisation or treatment of the spin-flip symmetry, so none of those below is attributed
to it.

**Kept from Liu et al.**: the approach — a convolutional GAN (generator: noise + T → a configuration; discriminator:
configuration + T → real/fake) trained adversarially on Monte Carlo configurations at many temperatures across
T_c, one network for all temperatures, judged by comparing its observables with the Monte Carlo's.

**Ours (changes and additions)**:

- Conditioning on the reduced temperature t = (T − T_c)/T_c (T_c = 2/ln(1 + √2), O(1) over T ∈ [1.5, 3.5]): a
  small MLP embeds t; the generator gets the embedding appended to its noise and, through FiLM (Perez et al.,
  arXiv:1709.07871), in every hidden block; the discriminator gets t as a constant input channel and the
  embedding in its head.
- Periodic boundaries: **every convolution pads circularly** (:class:`CircularConv2d`), because the lattice is a
  torus — a zero-padded network sees a boundary the Monte Carlo does not have.
- Generator: noise (latent_dim) ⊕ embed(t) → Linear → (C0, L/4, L/4) → 2 × [nearest ×2 upsampling + circular
  3×3 convolution] → circular 3×3 convolution to one channel → tanh. Nearest upsampling + convolution instead of
  transposed convolution (which has no circular padding in torch, and makes checkerboard artefacts: Odena et al.,
  Distill 2016). Normalisation is pixel norm (Karras et al., arXiv:1710.10196), not BatchNorm: no layer depends
  on the batch, so training and generation compute the same function and samples are independent.
- **Exactly ±1 output**, two read-outs of the last layer's tanh field φ ∈ (−1, 1) (``readout``), the same in
  training and generation, so the discriminator always sees what generation emits:
  ``sign`` — s = sign(φ), ties +1 (deterministic: all randomness is the latent noise; :func:`straight_through_sign`);
  ``bernoulli`` — s = +1 with probability (1 + φ)/2, independently per site given φ (E[s | φ] = φ), from uniforms
  the caller draws (:func:`bernoulli_spins`). The Bernoulli read-out gives every site its own randomness, as the
  Monte Carlo's spins have; with the sign read-out, L² spins are a deterministic function of latent_dim numbers.
  Both are straight-through in training (Bengio, Léonard & Courville, arXiv:1308.3432): forward exactly ±1,
  backward the gradient of φ — for ``bernoulli`` that is the gradient of E[s | φ], an unbiased estimator.
- Discriminator: stride-1 circular 3×3 convolutions dilated 1, 2, 4, …, L/4 (receptive field L − 1: the whole
  torus), global average pooling, and a head that also reads two physics features, the energy per site e and |m|
  (the observables the fidelity targets are set on; translation- and flip-invariant by construction). Spectral
  normalisation on every weight (Miyato et al., arXiv:1802.05957); no BatchNorm, so each logit depends on its
  own configuration only.
- Symmetries of the target distribution, the spin flip s → −s (Z2) and the L² lattice translations:
  the **discriminator is exactly invariant** to both — its logit is the mean over the orbit {s, −s} of one
  translation-invariant network (stride 1 + circular padding + global pooling) — and **generation symmetrises
  exactly** (:func:`random_lattice_symmetry`): each sample gets a global flip with probability 1/2 and a
  uniformly random translation. The generated distribution is then exactly symmetric; since the target is, and
  a divergence is convex, symmetrising can only bring it closer. D cannot tell a sample from its flipped or
  translated copy, so training with or without the symmetrisation is the same game: D still sees exactly the
  distribution generation emits. (The point group D4 of the square lattice is a symmetry too; D is not
  invariant to it, so it is left out rather than applied at generation only.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

# hpcgen.physics.ising_exact.T_C, spelt out so that building a model does not import scipy (tests keep them equal)
T_C = 2.0 / math.log(1.0 + math.sqrt(2.0))
G_CHANNELS = (64, 32, 16)  # the linear layer's channels at L/4, then after each upsampling block (L/2, L)
D_CHANNELS = 16
EMBED = 32  # width of the temperature embedding
D_HEAD = 64
_SLOPE = 0.2
_EPS = 1e-8
READOUTS = ("sign", "bernoulli")  # the generator's ±1 read-out of its tanh field (module docstring)


def check_lattice_side(L: int) -> int:
    """L as an int; a multiple of 4 (the generator upsamples twice from an L/4 grid)."""
    if int(L) != L or int(L) < 4 or int(L) % 4:
        raise ValueError(f"L must be a positive multiple of 4 (e.g. 16, 32, 64), got {L}")
    return int(L)


def reduced_temperature(temperature: torch.Tensor) -> torch.Tensor:
    """(B,) temperatures T in J/k_B → (B, 1) float32 t = (T − T_c)/T_c, the conditioning input of both networks."""
    return ((temperature.float() - T_C) / T_C)[:, None]


def straight_through_sign(x: torch.Tensor) -> torch.Tensor:
    """sign(x) with ties +1 in the forward pass (exactly ±1), the identity's gradient (hence x's) backward."""
    hard = torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
    return hard + (x - x.detach())  # x − x is exactly 0: the forward value is exactly ±1


def bernoulli_spins(field: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Spins exactly ±1: +1 where ``uniforms`` < (1 + field)/2, so P(s = +1) = (1 + φ)/2 and E[s | φ] = φ for
    uniforms ~ U[0, 1); straight-through: the forward value is the draw, the gradient is φ's."""
    if uniforms.shape != field.shape:
        raise ValueError(f"site uniforms must have the field's shape {tuple(field.shape)}, got {tuple(uniforms.shape)}")
    hard = torch.where(uniforms.to(field.dtype) < 0.5 * (1 + field), 1.0, -1.0).to(field.dtype)
    return hard + (field - field.detach())


def energy_per_site(spins: torch.Tensor) -> torch.Tensor:
    """(B, L, L) spins → (B,) e = −(1/L²) Σ_x s_x (s_{x+ê1} + s_{x+ê2}) on the torus, in float32 (differentiable
    twin of :func:`hpcgen.physics.ising_observables.energy_per_site`, for the discriminator's physics features)."""
    s = spins.float()
    return -(s * (torch.roll(s, -1, 1) + torch.roll(s, -1, 2))).mean(dim=(1, 2))


def abs_magnetisation_per_site(spins: torch.Tensor) -> torch.Tensor:
    """(B, L, L) spins → (B,) |m| = |Σ s| / L², float32 (differentiable twin of the estimator in
    :mod:`hpcgen.physics.ising_observables`)."""
    return spins.float().mean(dim=(1, 2)).abs()


def physics_features(spins: torch.Tensor) -> torch.Tensor:
    """(B, L, L) spins → (B, 2) [e, |m|] per site, float32, differentiable: what the discriminator's head reads
    beside its convolutions, and what the generator's feature matching compares."""
    return torch.stack([energy_per_site(spins), abs_magnetisation_per_site(spins)], dim=1)


def random_lattice_symmetry(spins: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each configuration of (B, L, L) flipped (s → −s) with probability 1/2 and translated by a uniformly random
    lattice vector, all drawn from ``gen`` (a CPU generator): the generated distribution becomes exactly symmetric
    under Z2 and translations."""
    b, L = spins.shape[0], spins.shape[-1]
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1, 1).to(spins.device, spins.dtype)
    shift = torch.randint(0, L, (2, b), generator=gen).to(spins.device)
    sites = torch.arange(L, device=spins.device)
    rows = ((sites[None, :] + shift[0][:, None]) % L)[:, :, None].expand(b, L, L)
    cols = ((sites[None, :] + shift[1][:, None]) % L)[:, None, :].expand(b, L, L)
    moved = torch.gather(torch.gather(spins, 1, rows), 2, cols)  # out[i, j] = s[(i + a) % L, (j + b) % L]
    return moved * flip[:, None, None]


class CircularConv2d(nn.Conv2d):
    """A 3×3 convolution (dilated by ``dilation``) on the torus: the input is padded periodically by ``dilation``
    sites on each side, so the output has the input's size and every site has the same neighbourhood. Same result
    as ``padding_mode="circular"``; the padding is two concatenations, which autograd differentiates with less
    copying than torch's circular pad (measured: ~2× faster forward + backward at 32×32 on one CPU core)."""

    def __init__(self, c_in: int, c_out: int, dilation: int = 1) -> None:
        super().__init__(c_in, c_out, 3, dilation=dilation)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        p = self.dilation[0]
        h = torch.cat([h[..., -p:, :], h, h[..., :p, :]], dim=2)
        h = torch.cat([h[..., -p:], h, h[..., :p]], dim=3)
        return super().forward(h)


def _circular_conv(c_in: int, c_out: int, dilation: int = 1) -> nn.Conv2d:
    return CircularConv2d(c_in, c_out, dilation)


class _PixelNorm(nn.Module):
    """Each site's feature vector scaled to unit RMS over channels (Karras et al.): per sample, per site."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h * torch.rsqrt(h.pow(2).mean(dim=1, keepdim=True) + _EPS)


class _FiLM(nn.Module):
    """h · (1 + γ(embedding)) + β(embedding), per channel; starts as the identity."""

    def __init__(self, channels: int, embed: int) -> None:
        super().__init__()
        self.affine = nn.Linear(embed, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.affine(e)[:, :, None, None].chunk(2, dim=1)
        return h * (1 + gamma) + beta


def _embedding(width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(1, width), nn.LeakyReLU(_SLOPE), nn.Linear(width, width), nn.LeakyReLU(_SLOPE))


def _check_batch(spins_or_noise: torch.Tensor, temperature: torch.Tensor) -> None:
    if temperature.shape != (spins_or_noise.shape[0],):
        raise ValueError(f"temperature must have shape ({spins_or_noise.shape[0]},), got {tuple(temperature.shape)}")


class IsingGenerator(nn.Module):
    """noise (B, latent_dim), T (B,) in J/k_B [, site uniforms (B, L, L)] → spins (B, L, L), exactly ±1 (float;
    straight-through in training).

    :meth:`tanh_output` is the pre-read-out field in (−1, 1); ``readout`` (:data:`READOUTS`) turns it into spins,
    ``bernoulli`` from the caller's site uniforms (:attr:`needs_site_uniforms`). Batch-independent: every sample is
    a function of its own noise, uniforms and temperature only.
    """

    def __init__(self, L: int = 32, latent_dim: int = 64, readout: str = "sign") -> None:
        super().__init__()
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {', '.join(READOUTS)}, got {readout!r}")
        self.L, self.latent_dim, self.readout = check_lattice_side(L), int(latent_dim), readout
        c0, c1, c2 = G_CHANNELS
        self._base = self.L // 4
        self.embed = _embedding(EMBED)
        self.linear = nn.Linear(self.latent_dim + EMBED, c0 * self._base**2)
        self.norm = _PixelNorm()
        self.film0 = _FiLM(c0, EMBED)
        self.up = nn.ModuleList([_circular_conv(c0, c1), _circular_conv(c1, c2)])
        self.films = nn.ModuleList([_FiLM(c1, EMBED), _FiLM(c2, EMBED)])
        self.out = _circular_conv(c2, 1)

    def body(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """(B, C0, L/4, L/4) features, (B, EMBED) embedding → (B, L, L) tanh field: the convolutional part, which
        commutes with translations (a shift by one cell of the L/4 grid shifts the output by 4 sites)."""
        h = F.leaky_relu(self.film0(self.norm(h), e), _SLOPE)
        for conv, film in zip(self.up, self.films):
            h = conv(F.interpolate(h, scale_factor=2, mode="nearest"))
            h = F.leaky_relu(film(self.norm(h), e), _SLOPE)
        return torch.tanh(self.out(h)).squeeze(1)

    def tanh_output(self, noise: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
        """(B, L, L) in (−1, 1): the field before the sign read-out."""
        if noise.ndim != 2 or noise.shape[1] != self.latent_dim:
            raise ValueError(f"noise must have shape (B, {self.latent_dim}), got {tuple(noise.shape)}")
        _check_batch(noise, temperature)
        e = self.embed(reduced_temperature(temperature).to(noise.dtype))
        h = self.linear(torch.cat([noise, e], dim=1)).view(-1, G_CHANNELS[0], self._base, self._base)
        return self.body(h, e)

    @property
    def needs_site_uniforms(self) -> bool:
        """Whether :meth:`forward` needs per-site uniforms in [0, 1) (the ``bernoulli`` read-out)."""
        return self.readout == "bernoulli"

    def forward(self, noise: torch.Tensor, temperature: torch.Tensor,
                site_uniforms: torch.Tensor | None = None) -> torch.Tensor:
        """Spins exactly ±1 by the read-out (``sign``: ties +1; ``bernoulli``: from ``site_uniforms``, required);
        the gradient is the tanh field's (straight-through)."""
        field = self.tanh_output(noise, temperature)
        if self.readout == "sign":
            return straight_through_sign(field)
        if site_uniforms is None:
            raise ValueError("the bernoulli read-out needs site_uniforms of shape (B, L, L), uniform in [0, 1)")
        return bernoulli_spins(field, site_uniforms)


class IsingDiscriminator(nn.Module):
    """spins (B, L, L), T (B,) → real/fake logit (B,), exactly invariant to s → −s and to lattice translations."""

    def __init__(self, L: int = 32, spectral_norm_on: bool = True) -> None:
        super().__init__()
        self.L = check_lattice_side(L)
        sn = spectral_norm if spectral_norm_on else (lambda m: m)
        dilations = [1]
        while dilations[-1] * 2 <= self.L // 4:
            dilations.append(dilations[-1] * 2)
        self.dilations = tuple(dilations)  # receptive field 1 + 2 Σ d = L − 1
        self.convs = nn.ModuleList([sn(_circular_conv(2 if i == 0 else D_CHANNELS, D_CHANNELS, d))
                                    for i, d in enumerate(self.dilations)])
        self.embed = _embedding(EMBED)
        self.head = nn.Sequential(sn(nn.Linear(D_CHANNELS + 2 + EMBED, D_HEAD)), nn.LeakyReLU(_SLOPE),
                                  sn(nn.Linear(D_HEAD, 1)))

    def _logit(self, spins: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """One translation-invariant evaluation (not yet flip-symmetrised)."""
        b = spins.shape[0]
        h = torch.cat([spins[:, None], t[:, :, None, None].expand(b, 1, self.L, self.L).to(spins.dtype)], dim=1)
        for conv in self.convs:
            h = F.leaky_relu(conv(h), _SLOPE)
        physics = physics_features(spins)
        features = torch.cat([h.mean(dim=(2, 3)).to(physics.dtype), physics, self.embed(t)], dim=1)
        return self.head(features).squeeze(1)

    def forward(self, spins: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
        """Mean logit over {s, −s}, both in one batched call (one set of weights, also in training)."""
        if spins.ndim != 3 or tuple(spins.shape[1:]) != (self.L, self.L):
            raise ValueError(f"spins must have shape (B, {self.L}, {self.L}), got {tuple(spins.shape)}")
        _check_batch(spins, temperature)
        t = reduced_temperature(temperature)
        both = self._logit(torch.cat([spins, -spins]), torch.cat([t, t]))
        return 0.5 * (both[:spins.shape[0]] + both[spins.shape[0]:])
