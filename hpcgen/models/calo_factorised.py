"""A factorised conditional calorimeter GAN: a normalised shower shape times a learned visible energy.

The 3DGAN (:mod:`hpcgen.models.gan3d`) must learn a 50× range of output amplitude from a noise vector scaled by
E_p; in a CPU budget it does not (docs/calo_gan.md). This model takes the energy out of the network's hands, as the
two-stage designs do — CaloFlow (Krause & Shih, arXiv:2106.05285) and CaloDREAM (Favaro et al., arXiv:2405.09629)
first generate the energy, then a normalised shape:

- the generator emits **shape logits** over all cells — a learnable template started at the log of the training
  data's mean shape, plus the decoder's output — turned into a unit-sum shape by a softmax (cell energies span
  six decades, so log space is the natural output), and a **response** r = E_vis / E_p with
  log r = μ(E_p) + σ(E_p)·z₀ + δ(z, E_p): a Gaussian prior fitted to the training data (mean and width quadratic
  in log E_p, drawn with the first noise component, which the shape network also sees) plus a learned correction,
  so E_vis follows E_p with the right spread from the first step and the GAN learns the rest of the response's
  distribution and its correlation with the shape;
- the shape decoder is a stack of stride-2 transposed 3D convolutions from a 4³-ish grid to the calorimeter, each
  conditioned on log(E_p/100 GeV) by FiLM (Perez et al., arXiv:1709.07871) and given per-cell noise
  (StyleGAN's noise inputs, Karras et al., arXiv:1812.04948) for cell-to-cell fluctuations;
- the discriminator sees log(1 + cell/threshold) times a soft above-threshold indicator (a softmax never gives an
  exact zero; a Monte Carlo shower leaves 90–99 % of the cells empty, and the comparison that matters is above the
  0.1-MIP hit threshold) through stride-2 3D convolutions (25³ → 13³ → 7³ → 4³, not the
  3DGAN's five full-resolution 5³ convolutions), plus a **physics branch**: differentiable versions of the
  high-level observables the fidelity classifier reads (E_vis/E_p, layer fractions, centroids and widths along
  x, y and depth, a soft hit count at the same 0.1-MIP threshold), standardised by statistics of the training data;
- the read-out indicator ("above the hit threshold") that the generator's training forward pass, the
  discriminator and the feature matching apply is ``readout``: "soft" — a sigmoid in log(cell/threshold) in both
  passes — or "straight-through" — exactly 1 or 0 forward, as generation reads out, with the sigmoid's gradient
  backward (Bengio, Léonard & Courville, arXiv:1308.3432). With "soft", cells just below the threshold count
  partly, so a generator can match the soft hit count while generating too many hard hits;
- spectral normalisation on every discriminator weight (Miyato et al., arXiv:1802.05957); the trainer uses the
  hinge loss by default.

Every size follows from ``image_shape``: each axis is halved (rounding up) three times, so any calorimeter works
(the training tests use 8³). Cells are in the trainer's network units (GeV × its image scale).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

ENERGY_REF_GEV = 100.0
D_VIEWS = ("both", "physics", "cells")
READOUTS = ("soft", "straight-through")
N_PHYSICS = 8  # physics-branch features besides the layer fractions: log r, 3 centroids, 3 widths, log hit count
_SLOPE = 0.2


def energy_condition(energy_gev: torch.Tensor) -> torch.Tensor:
    """(B,) primary energies in GeV → (B, 1) log(E_p / 100 GeV), the conditioning input of both networks."""
    return torch.log(energy_gev.float() / ENERGY_REF_GEV)[:, None]


def halvings(shape, n: int = 3) -> list[tuple[int, int, int]]:
    """Grid sizes from the calorimeter down: each axis halved, rounding up, ``n`` times ([25³, 13³, 7³, 4³])."""
    sizes = [tuple(int(s) for s in shape)]
    for _ in range(n):
        sizes.append(tuple((s + 1) // 2 for s in sizes[-1]))
    return sizes


class FiLM(nn.Module):
    """Feature-wise affine conditioning: h · (1 + γ(c)) + β(c), per channel."""

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.affine = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.affine(c).to(h.dtype)[:, :, None, None, None].chunk(2, dim=1)
        return h * (1 + gamma) + beta


class NoiseInput(nn.Module):
    """Per-cell Gaussian noise with a learned per-channel strength (zero at initialisation)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(1, channels, 1, 1, 1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.strength.to(h.dtype) * torch.randn_like(h)


class _UpBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, size_in, size_out, cond_dim: int) -> None:
        super().__init__()
        pad_out = tuple(o - (2 * i - 1) for i, o in zip(size_in, size_out))  # 0 or 1 per axis
        self.up = nn.ConvTranspose3d(c_in, c_out, 3, stride=2, padding=1, output_padding=pad_out)
        self.film = FiLM(cond_dim, c_out)
        self.conv = nn.Conv3d(c_out, c_out, 3, padding=1)
        self.noise = NoiseInput(c_out)

    def forward(self, h, c):
        h = F.leaky_relu(self.film(self.up(h), c), _SLOPE)
        return F.leaky_relu(self.noise(self.conv(h)), _SLOPE)


class FactorisedGenerator(nn.Module):
    """(noise, E_p) → showers (B, X, Y, Z) ≥ 0 whose sum is E_p · r, log r = μ(c) + σ(c)·noise₀ + δ(noise, c).

    Cells at or below ``threshold`` read 0 (in training through :func:`hit_indicator` with ``readout``, so
    gradients pass) and their energy is shared among the read-out cells. ``fit_template`` and ``fit_response`` start the shape and the response
    from the training data; the trainer calls them before the first step.

    Args:
        latent_dim: noise length.
        image_shape: cells (X, Y, Z).
        sampling_fraction: the data's mean E_vis / E_p in network units (the response's starting point).
        threshold: the hit threshold in network units (0 = keep every cell).
        channels: decoder channels from the coarsest grid up (one per up-sampling, three).
        readout: the training read-out, "soft" or "straight-through" (:func:`hit_indicator`).
    """

    def __init__(self, latent_dim: int = 64, image_shape=(25, 25, 25), sampling_fraction: float = 1.0,
                 threshold: float = 0.0, channels=(64, 32, 16), readout: str = "soft") -> None:
        super().__init__()
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        if not float(sampling_fraction) > 0:
            raise ValueError(f"sampling_fraction must be > 0, got {sampling_fraction}")
        self.latent_dim = int(latent_dim)
        self.image_shape = tuple(int(s) for s in image_shape)
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ValueError(f"image_shape must be three positive cell counts, got {image_shape}")
        if float(threshold) < 0:
            raise ValueError(f"threshold must be >= 0, got {threshold}")
        self.threshold = float(threshold)
        self.readout = _check_readout(readout)
        self.register_buffer("log_sf", torch.tensor(math.log(float(sampling_fraction))))
        sizes = halvings(self.image_shape)[::-1]  # coarse → fine
        c0 = channels[0]
        self.base_size = sizes[0]
        self.trunk = nn.Sequential(nn.Linear(self.latent_dim + 1, 128), nn.LeakyReLU(_SLOPE))
        self.to_grid = nn.Linear(128, c0 * math.prod(sizes[0]))
        self.response = nn.Sequential(nn.Linear(128 + 1, 64), nn.LeakyReLU(_SLOPE), nn.Linear(64, 1))
        nn.init.zeros_(self.response[-1].weight)
        nn.init.zeros_(self.response[-1].bias)
        # the data's mean log-shape at log(E_p/100 GeV) = c is template + c · template_slope (fit_template sets
        # both before training): the network starts from the average shower at each energy and learns the rest
        self.template = nn.Parameter(torch.zeros(self.image_shape))
        self.template_slope = nn.Parameter(torch.zeros(self.image_shape))
        # log r ~ N(μ(c), σ(c)) with μ, log σ quadratic in c (fit_response sets them): the response's analytic
        # prior, drawn with the first noise component so the shape network sees the draw; δ(noise, c) corrects it
        self.register_buffer("response_mean_coef", torch.tensor([math.log(float(sampling_fraction)), 0.0, 0.0]))
        self.register_buffer("response_log_width_coef", torch.tensor([math.log(1e-6), 0.0, 0.0]))
        chans = list(channels) + [channels[-1] // 2]
        self.blocks = nn.ModuleList(_UpBlock(chans[i], chans[i + 1], sizes[i], sizes[i + 1], 1) for i in range(3))
        self.head = nn.Conv3d(chans[-1], 1, 3, padding=1)

    @torch.no_grad()
    def fit_template(self, x: torch.Tensor, energy_gev: torch.Tensor, bins: int = 4, floor: float = 1e-9) -> None:
        """Set template and template_slope to the least-squares line, per cell, through log(mean unit-sum shape +
        floor) of the showers x in ``bins`` quantile bins of log(E_p/100 GeV)."""
        shapes = x.float() / x.float().sum(dim=(1, 2, 3)).clamp_min(1e-30)[:, None, None, None]
        c = energy_condition(energy_gev).squeeze(1)
        order = torch.argsort(c)
        groups = [g for g in torch.tensor_split(order, min(bins, len(c))) if len(g)]
        cs = torch.stack([c[g].mean() for g in groups])
        logs = torch.stack([torch.log(shapes[g].mean(0) + floor) for g in groups])
        if len(groups) < 2 or float(cs.std()) == 0:
            self.template.copy_(logs.mean(0))
            self.template_slope.zero_()
            return
        dc = cs - cs.mean()
        slope = (dc[:, None, None, None] * (logs - logs.mean(0))).sum(0) / (dc**2).sum()
        self.template_slope.copy_(slope)
        self.template.copy_(logs.mean(0) - slope * cs.mean())

    @torch.no_grad()
    def fit_response(self, x: torch.Tensor, energy_gev: torch.Tensor, bins: int = 6) -> None:
        """Fit the response prior to showers x (network units): μ(c) = mean log r and log σ(c) = log std of log r,
        each a quadratic in c = log(E_p/100 GeV) (σ from ``bins`` quantile bins of c; fewer terms with few bins)."""
        log_r = torch.log(x.double().sum(dim=(1, 2, 3)).clamp_min(1e-30) / energy_gev.double())
        c = energy_condition(energy_gev).squeeze(1).double()
        deg = 2 if float(c.std()) > 0 and len(c) >= 6 * bins else 0
        self.response_mean_coef.copy_(_polyfit(c, log_r, deg))
        groups = [g for g in torch.tensor_split(torch.argsort(c), bins) if len(g) > 2] if deg else [torch.arange(len(c))]
        cs = torch.stack([c[g].mean() for g in groups])
        resid = log_r - _polyval(self.response_mean_coef.double(), c)
        widths = torch.stack([resid[g].std().clamp_min(1e-6) for g in groups])
        self.response_log_width_coef.copy_(_polyfit(cs, torch.log(widths), min(deg, len(groups) - 1)))

    def _log_response(self, noise: torch.Tensor, c: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """(B,) log(E_vis / E_p) in network units: the prior's draw with noise₀ plus the learned correction."""
        cc = c.squeeze(1).float()
        mean = _polyval(self.response_mean_coef, cc)
        width = torch.exp(_polyval(self.response_log_width_coef, cc))
        delta = self.response(torch.cat([h, c.to(h.dtype)], dim=1)).float().squeeze(1)
        return mean + width * noise[:, 0].float() + delta

    def forward(self, noise: torch.Tensor, energy_gev: torch.Tensor) -> torch.Tensor:
        if noise.ndim != 2 or noise.shape[1] != self.latent_dim:
            raise ValueError(f"noise must have shape (B, {self.latent_dim}), got {tuple(noise.shape)}")
        if energy_gev.shape != noise.shape[:1]:
            raise ValueError(f"energy_gev must have shape ({noise.shape[0]},), got {tuple(energy_gev.shape)}")
        c = energy_condition(energy_gev)
        h0 = self.trunk(torch.cat([noise, c.to(noise.dtype)], dim=1))
        log_r = self._log_response(noise, c, h0)
        h = F.leaky_relu(self.to_grid(h0), _SLOPE).view(-1, self.blocks[0].up.in_channels, *self.base_size)
        for block in self.blocks:
            h = block(h, c)
        template = self.template + c.float()[:, :, None, None] * self.template_slope
        shape = torch.softmax((self.head(h).float().squeeze(1) + template).flatten(1), dim=1).view(-1, *self.image_shape)
        x = shape * (energy_gev.float() * torch.exp(log_r))[:, None, None, None]
        if self.threshold > 0:  # read-out: cells below the threshold read 0 (differentiably while training), and
            # the energy they held is shared among the read-out cells, so that E_vis = r · E_p exactly
            kept = (hit_indicator(x, self.threshold, self.readout) if self.training
                    else (x > self.threshold).float())
            total = x.sum(dim=(1, 2, 3))
            x = x * kept
            x = x * (total / x.sum(dim=(1, 2, 3)).clamp_min(1e-30))[:, None, None, None]
        return x


def _polyfit(x: torch.Tensor, y: torch.Tensor, deg: int) -> torch.Tensor:
    """Coefficients (3,) [a0, a1, a2] of the least-squares polynomial of degree ``deg`` ≤ 2 (higher ones 0)."""
    a = torch.stack([x**k for k in range(deg + 1)], dim=1)
    coef = torch.linalg.lstsq(a, y[:, None]).solution.squeeze(1)
    return torch.cat([coef, coef.new_zeros(3 - len(coef))]).float()


def _polyval(coef: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return coef[0] + coef[1] * x + coef[2] * x**2


def physics_features(x: torch.Tensor, energy_gev: torch.Tensor, log_sf: float, threshold: float,
                     readout: str = "soft") -> torch.Tensor:
    """(B, N_PHYSICS + Z) differentiable shower observables of cells x (B, X, Y, Z) ≥ 0 in network units.

    Columns: log(E_vis / E_p) − log_sf, centroid and width along x, y, depth (cells, centred on the grid), log of
    the hit count Σ :func:`hit_indicator` (``readout``), then the fraction of E_vis in each layer.
    """
    x = x.float()
    total = x.sum(dim=(1, 2, 3)).clamp_min(1e-12)
    p = x / total[:, None, None, None]
    cols = [torch.log(total / energy_gev.float()) - log_sf]
    moments = []
    for axis, other in ((1, (2, 3)), (2, (1, 3)), (3, (1, 2))):
        profile = p.sum(dim=other)
        n = profile.shape[1]
        pos = torch.arange(n, dtype=x.dtype, device=x.device) - (n - 1) / 2
        mean = (profile * pos).sum(1)
        var = (profile * pos**2).sum(1) - mean**2
        moments.append((mean, var.clamp_min(1e-6).sqrt()))
    cols += [m for m, _ in moments] + [s for _, s in moments]
    cols.append(torch.log1p(hit_indicator(x, threshold, readout).sum(dim=(1, 2, 3))))
    layer_fraction = p.sum(dim=(1, 2))
    return torch.cat([torch.stack(cols, dim=1), layer_fraction], dim=1)


def soft_hits(x: torch.Tensor, threshold: float, temperature: float = 0.3) -> torch.Tensor:
    """Per-cell soft indicator of "above the hit threshold": sigmoid(ln(cell/threshold) / temperature)."""
    return torch.sigmoid(torch.log(x.float().clamp_min(1e-30) / threshold) / temperature)


def _check_readout(readout: str) -> str:
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {', '.join(READOUTS)}, got {readout!r}")
    return readout


def hit_indicator(x: torch.Tensor, threshold: float, readout: str = "soft") -> torch.Tensor:
    """Per-cell "above the hit threshold": :func:`soft_hits` ("soft"), or exactly 1 above and 0 at or below the
    threshold in the forward pass with the soft indicator's gradient in the backward pass ("straight-through")."""
    soft = soft_hits(x, threshold)
    if _check_readout(readout) == "soft":
        return soft
    return (x.float() > threshold).to(soft.dtype) + (soft - soft.detach())  # exactly 0 + 1 or 0 forward


def readout_view(x: torch.Tensor, threshold: float, readout: str = "soft") -> torch.Tensor:
    """What the discriminator's CNN sees of cells x ≥ 0: log(1 + x/threshold) times the hit indicator, so a cell
    below the threshold is (about) 0 whether it is exactly empty (Monte Carlo) or a softmax tail (generator)."""
    return torch.log1p(x.float().clamp_min(0) / threshold) * hit_indicator(x, threshold, readout) / 4.0


def _sn(module: nn.Module, on: bool) -> nn.Module:
    return spectral_norm(module) if on else module


class FactorisedDiscriminator(nn.Module):
    """(showers, E_p) → real/fake score (B,): a stride-2 3D CNN on log(1 + cell/threshold) plus a physics branch.

    Args:
        image_shape: cells (X, Y, Z).
        threshold: the hit threshold in network units (0.1 MIP × the trainer's image scale).
        sampling_fraction: the data's mean E_vis / E_p in network units (centres the response feature).
        view: what D reads — "both" (cells through the CNN and the physics branch), "physics" (the physics
            features only: the observables the fidelity classifier reads) or "cells" (the CNN only).
        spectral_norm: spectral normalisation on every weight.
        channels: convolution channels at the three stride-2 stages.
        readout: the hit indicator of the cells D reads, "soft" or "straight-through" (:func:`hit_indicator`).

    ``feature_mean`` / ``feature_std`` (buffers) standardise the physics features; the trainer sets them from
    the training data with :meth:`fit_feature_scaling` before the first step, and checkpoints carry them.
    """

    def __init__(self, image_shape=(25, 25, 25), threshold: float = 1.0, sampling_fraction: float = 1.0,
                 view: str = "both", spectral_norm: bool = True, channels=(16, 32, 64), readout: str = "soft") -> None:
        super().__init__()
        self.readout = _check_readout(readout)
        self.image_shape = tuple(int(s) for s in image_shape)
        if not float(threshold) > 0 or not float(sampling_fraction) > 0:
            raise ValueError("threshold and sampling_fraction must be > 0")
        self.threshold = float(threshold)
        self.log_sf = math.log(float(sampling_fraction))
        if view not in D_VIEWS:
            raise ValueError(f"view must be one of {', '.join(D_VIEWS)}, got {view!r}")
        self.view = view
        self.physics = view in ("both", "physics")
        self.cells = view in ("both", "cells")
        sn = bool(spectral_norm)
        sizes = halvings(self.image_shape)
        layers: list[nn.Module] = [_sn(nn.Conv3d(1, channels[0] // 2, 3, padding=1), sn), nn.LeakyReLU(_SLOPE)]
        c_in = channels[0] // 2
        for c_out in channels:
            layers += [_sn(nn.Conv3d(c_in, c_out, 3, stride=2, padding=1), sn), nn.LeakyReLU(_SLOPE),
                       _sn(nn.Conv3d(c_out, c_out, 3, padding=1), sn), nn.LeakyReLU(_SLOPE)]
            c_in = c_out
        layers += [nn.Flatten(), _sn(nn.Linear(c_in * math.prod(sizes[-1]), 128), sn), nn.LeakyReLU(_SLOPE)]
        self.cnn = nn.Sequential(*layers) if self.cells else None
        n_feat = N_PHYSICS + self.image_shape[2]
        self.register_buffer("feature_mean", torch.zeros(n_feat))
        self.register_buffer("feature_std", torch.ones(n_feat))
        joint = (128 if self.cells else 0) + 1
        if self.physics:
            self.phys = nn.Sequential(_sn(nn.Linear(n_feat + 1, 128), sn), nn.LeakyReLU(_SLOPE),
                                      _sn(nn.Linear(128, 128), sn), nn.LeakyReLU(_SLOPE))
            joint += 128
        self.head = nn.Sequential(_sn(nn.Linear(joint, 128), sn), nn.LeakyReLU(_SLOPE), _sn(nn.Linear(128, 1), sn))

    def features(self, x: torch.Tensor, energy_gev: torch.Tensor) -> torch.Tensor:
        """Physics features of the read-out shower: every cell weighted by its hit indicator, so energy a generator
        spreads below the threshold (which generation zeroes) counts for nothing."""
        return physics_features(x.float() * hit_indicator(x, self.threshold, self.readout), energy_gev, self.log_sf,
                                self.threshold, self.readout)

    def standardised_features(self, x: torch.Tensor, energy_gev: torch.Tensor) -> torch.Tensor:
        """:meth:`features` in units of the training data's spread (what the physics branch reads)."""
        return (self.features(x, energy_gev) - self.feature_mean) / self.feature_std

    @torch.no_grad()
    def fit_feature_scaling(self, x: torch.Tensor, energy_gev: torch.Tensor) -> None:
        f = self.features(x, energy_gev)
        self.feature_mean.copy_(f.mean(0))
        self.feature_std.copy_(f.std(0).clamp_min(1e-3))

    def forward(self, x: torch.Tensor, energy_gev: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"x must have shape (B, {', '.join(map(str, self.image_shape))}), got {tuple(x.shape)}")
        c = energy_condition(energy_gev)
        parts = []
        if self.cells:
            parts.append(self.cnn(readout_view(x, self.threshold, self.readout).unsqueeze(1)))
        if self.physics:
            parts.append(self.phys(torch.cat([self.standardised_features(x, energy_gev), c], dim=1)))
        h = torch.cat([p.to(parts[0].dtype) for p in parts] + [c.to(parts[0].dtype)], dim=1)
        return self.head(h).squeeze(1).float()
