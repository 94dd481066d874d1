"""3DGAN for 25×25×25 calorimeter showers, conditioned on the primary energy.

Implements the fixed-angle 3DGAN of Khattak, Vallecorsa, Carminati et al. ("Three dimensional energy
parametrized generative adversarial networks for electromagnetic shower simulation", ICIP 2018; "Fast simulation
of a high granularity calorimeter by generative adversarial networks", Eur. Phys. J. C 82 (2022) 386), following
the layer list of their Keras ``EcalEnergyGan`` generator and discriminator (shared/REFERENCE.md §1). The PyTorch
rendering is ours; what it keeps from the Keras original and why:

- Keras defaults the original relied on: LeakyReLU slope 0.3 (Keras' default, not PyTorch's 0.01); BatchNorm
  ε = 1e-3 and moving-average decay 0.99 (PyTorch momentum 0.01); He-uniform convolutions in the generator,
  Glorot-uniform elsewhere, Glorot-normal for the last generator layer, zero biases.
- Layout: tensors are channels-first (B, C, X, Y, Z) inside, (B, X, Y, Z) at the boundary, with the 3DGAN data
  layout X, Y transverse and Z the depth; the Keras ``Reshape((7, 7, 8, 8))`` becomes (8 ch, 7, 7, 8) — the dense
  layer before it is learnt, so the permutation of its outputs is immaterial.
- The discriminator's first convolution is followed by LeakyReLU + Dropout (no BatchNorm), as in the original.
- The real/fake head returns a logit (the trainer applies the sigmoid inside its BCE); the energy head predicts
  E_p in units of 100 GeV, as the original's target E_p/100, and is returned in GeV.
"""

from __future__ import annotations

import torch
from torch import nn

from hpcgen import ops

# The conditioning scale: the generator multiplies its noise by E_p / ENERGY_SCALE_GEV, and the discriminator's
# regression head predicts E_p / ENERGY_SCALE_GEV (both as in the original, which trains on E_p / 100).
ENERGY_SCALE_GEV = 100.0
IMAGE_SHAPE = (25, 25, 25)

_LEAKY_SLOPE = 0.3  # Keras LeakyReLU default, which the original used
_BN = dict(eps=1e-3, momentum=0.01)  # Keras BatchNormalization defaults (decay 0.99)


def _check_shape(name: str, shape) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{name} must be three positive cell counts (X, Y, Z), got {shape}")
    return shape


class Generator3D(nn.Module):
    """3DGAN generator: (noise, E_p) → a 25×25×25 shower of non-negative cell energies.

    Conditioning is multiplicative, as in the paper: the network sees ``h = noise · (E_p / 100 GeV)``, so
    ``G(noise, E) == G(noise · E/100, 100)`` exactly.

    Layers (shapes as (channels, X, Y, Z)): Dense(latent → 3136) → (8, 7, 7, 8) → Conv3D 64 (6,6,8) 'same' +
    LeakyReLU + BN → UpSample (2,2,2) → (64, 14, 14, 16) → ZeroPad (2,2,0) → Conv3D 6 (6,5,8) + LeakyReLU + BN →
    (6, 13, 14, 9) → UpSample (2,2,3) → ZeroPad (1,0,3) → (6, 28, 28, 33) → Conv3D 6 (3,3,8) + LeakyReLU →
    (6, 26, 26, 26) → Conv3D 1 (2,2,2), no bias → ReLU → (1, 25, 25, 25).

    Args:
        latent_dim: length of the noise vector (200 in the paper).
        image_shape: (25, 25, 25) is the paper's network. Any other shape (e.g. the small calorimeters of the
            training tests) keeps that network and resamples its 25³ output with adaptive average pooling, which
            keeps cells ≥ 0.
        output_scale: the ReLU output is multiplied by this, so it sets the unit of the cells (1.0 = GeV as the
            network is initialised; a trainer working on data rescaled by ``c`` passes ``1/c`` here).
    """

    def __init__(self, latent_dim: int = 200, image_shape=IMAGE_SHAPE, output_scale: float = 1.0):
        super().__init__()
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        shape = _check_shape("image_shape", image_shape)
        if not float(output_scale) > 0:
            raise ValueError(f"output_scale must be > 0, got {output_scale}")
        self.latent_dim = int(latent_dim)
        self.image_shape = shape
        self.output_scale = float(output_scale)
        self.resample = nn.Identity() if shape == IMAGE_SHAPE else nn.AdaptiveAvgPool3d(shape)

        self.dense = nn.Linear(self.latent_dim, 8 * 7 * 7 * 8)
        # ConstantPad3d takes (z_lo, z_hi, y_lo, y_hi, x_lo, x_hi): the last axis first.
        self.body = nn.Sequential(
            nn.ConstantPad3d((3, 4, 2, 3, 2, 3), 0.0),  # Keras 'same' for (6, 6, 8): the odd cell goes after
            nn.Conv3d(8, 64, (6, 6, 8)),
            nn.LeakyReLU(_LEAKY_SLOPE),
            nn.BatchNorm3d(64, **_BN),
            nn.Upsample(scale_factor=(2, 2, 2), mode="nearest"),
            nn.ConstantPad3d((0, 0, 2, 2, 2, 2), 0.0),
            nn.Conv3d(64, 6, (6, 5, 8)),
            nn.LeakyReLU(_LEAKY_SLOPE),
            nn.BatchNorm3d(6, **_BN),
            nn.Upsample(scale_factor=(2, 2, 3), mode="nearest"),
            nn.ConstantPad3d((3, 3, 0, 0, 1, 1), 0.0),
            nn.Conv3d(6, 6, (3, 3, 8)),
            nn.LeakyReLU(_LEAKY_SLOPE),
            nn.Conv3d(6, 1, (2, 2, 2), bias=False),
            nn.ReLU(),
        )
        self._keras_init()

    def _keras_init(self) -> None:
        nn.init.xavier_uniform_(self.dense.weight)
        nn.init.zeros_(self.dense.bias)
        convs = [m for m in self.body if isinstance(m, nn.Conv3d)]
        for conv in convs[:-1]:
            nn.init.kaiming_uniform_(conv.weight, a=0.0, nonlinearity="relu")  # Keras he_uniform
            nn.init.zeros_(conv.bias)
        nn.init.xavier_normal_(convs[-1].weight)

    def forward(self, noise: torch.Tensor, energy_gev: torch.Tensor) -> torch.Tensor:
        """noise (B, latent_dim), energy_gev (B,) primary energy in GeV → (B, 25, 25, 25) cell energies ≥ 0."""
        if noise.ndim != 2 or noise.shape[1] != self.latent_dim:
            raise ValueError(f"noise must have shape (B, {self.latent_dim}), got {tuple(noise.shape)}")
        if energy_gev.shape != noise.shape[:1]:
            raise ValueError(f"energy_gev must have shape ({noise.shape[0]},), got {tuple(energy_gev.shape)}")
        h = noise * (energy_gev / ENERGY_SCALE_GEV)[:, None]
        h = self.dense(h).view(-1, 8, 7, 7, 8)
        return self.resample(self.body(h)).squeeze(1) * self.output_scale


class Discriminator3D(nn.Module):
    """3DGAN discriminator with three heads: real/fake logit, regressed E_p, and the analytic ECAL sum.

    Layers (channels, X, Y, Z for a 25³ input): Conv3D 32 (5³) 'same' + LeakyReLU + Dropout → 3× [ZeroPad p +
    Conv3D 8 (5³) + LeakyReLU + BN + Dropout] with p = 2, 2, 1 → (8, 23, 23, 23) → AvgPool 2³ → (8, 11, 11, 11)
    → flatten (10648) → Dense 1 (logit) and Dense 1 (E_p / 100 GeV). The ECAL sum is not learnt: it is
    ``hpcgen.ops.ecal_sum`` of the input, exact and with unit gradient per cell.

    Args:
        image_shape: cells (X, Y, Z); every side must be at least 4 (25³ for the 3DGAN data).
        dropout: dropout probability after every convolution (0.2 in the paper).

    ``ops_impl`` (attribute, default ``"auto"``): the ECAL-sum op's implementation (``hpcgen.ops`` ``impl=``), an
    execution choice rather than a weight, so the trainer sets it on the built model and checkpoints do not carry it.
    """

    def __init__(self, image_shape=IMAGE_SHAPE, dropout: float = 0.2):
        super().__init__()
        shape = _check_shape("image_shape", image_shape)
        if min(shape) < 4:
            raise ValueError(f"image_shape sides must be >= 4 for the discriminator's pooling, got {shape}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.image_shape = shape
        self.dropout = float(dropout)
        self.ops_impl = "auto"

        layers: list[nn.Module] = [
            nn.Conv3d(1, 32, 5, padding=2),
            nn.LeakyReLU(_LEAKY_SLOPE),
            nn.Dropout(self.dropout),
        ]
        in_ch = 32
        for pad in (2, 2, 1):
            layers += [
                nn.Conv3d(in_ch, 8, 5, padding=pad),
                nn.LeakyReLU(_LEAKY_SLOPE),
                nn.BatchNorm3d(8, **_BN),
                nn.Dropout(self.dropout),
            ]
            in_ch = 8
        layers += [nn.AvgPool3d(2), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        n_features = 8
        for side in shape:
            n_features *= (side - 2) // 2  # the pad-1 block trims 2 cells, the pooling halves (floor)
        self.real_fake = nn.Linear(n_features, 1)
        self.energy = nn.Linear(n_features, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv3d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)  # Keras glorot_uniform default
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, X, Y, Z) cell energies in GeV → (logit (B,), energy_pred_gev (B,), ecal_sum (B,))."""
        if x.ndim != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"x must have shape (B, {', '.join(map(str, self.image_shape))}), got {tuple(x.shape)}")
        h = self.features(x.unsqueeze(1))
        logit = self.real_fake(h).squeeze(1)
        energy_pred_gev = self.energy(h).squeeze(1) * ENERGY_SCALE_GEV
        return logit, energy_pred_gev, ops.ecal_sum(x, impl=self.ops_impl)
