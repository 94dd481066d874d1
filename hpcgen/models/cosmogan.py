"""CosmoGAN: a DCGAN for 2-D weak-lensing convergence maps, optionally conditioned on σ8.

Implements Mustafa, Bard, Bhimji, Lukić, Al-Rfou, Kratochvil, "CosmoGAN: creating high-fidelity weak lensing
convergence maps using Generative Adversarial Networks", Comput. Astrophys. Cosmol. 6, 1 (2019),
arXiv:1706.02390 (shared/REFERENCE.md §1), following the layers of their TensorFlow DCGAN:

- Generator: latent 64 → Linear (bias) → (512, s/16, s/16) → BN + ReLU → 3× [ConvTranspose 5×5 stride 2 + BN +
  ReLU] to 256, 128, 64 channels → ConvTranspose 5×5 stride 2 to 1 channel → tanh. At s = 256 this is 12 824 449
  parameters (the paper's ≈12.8 M) and 5.10 GFLOP per map (2 × multiply-adds, dominated by the three wide
  transposed convolutions at 1.68 GFLOP each).
- Discriminator: 4× [Conv 5×5 stride 2 'same'] to 64, 128, 256, 512 channels, each + LeakyReLU 0.2, with BN after
  every convolution but the first (the DCGAN rule; REFERENCE's "BN after the first" read as "from the second on")
  → Linear → one real/fake logit (the trainer's BCE applies the sigmoid).
- Initialisation: the DCGAN N(0, 0.02) for every convolution and linear weight, zero biases.
- Width (hpcgen's, not the paper's): ``width`` scales every hidden channel count of both networks (0.5 halves
  them: a quarter of the convolution FLOPs), for CPU budgets; 1.0 is the paper's network.
- σ8 conditioning (cosmogan_pytorch's conditional variant): σ8 is appended to the generator's latent and given to
  the discriminator as an extra constant input channel. σ8 enters as it is (≈0.8); a model built with
  conditioning requires ``sigma8`` and one built without it rejects one, so a mis-wired trainer fails loudly
  instead of silently dropping the condition.

Maps enter and leave the networks in pixel space (−1, 1); see :mod:`hpcgen.models.pixel_transform` for κ ↔ pixel.
"""

from __future__ import annotations

import torch
from torch import nn

_KERNEL = 5
_G_CHANNELS = (512, 256, 128, 64)  # the linear layer's channels, then after each transposed conv but the last
_D_CHANNELS = (64, 128, 256, 512)
_LEAKY_SLOPE = 0.2


def _check_image_size(image_size: int) -> int:
    if int(image_size) < 16 or int(image_size) % 16:
        raise ValueError(f"image_size must be a positive multiple of 16 (e.g. 128 or 256), got {image_size}")
    return int(image_size)


def _dcgan_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _channels(base: tuple[int, ...], width: float) -> tuple[int, ...]:
    if not 0 < float(width) <= 4:
        raise ValueError(f"width must be in (0, 4], got {width}")
    return tuple(max(1, round(c * float(width))) for c in base)


def _check_sigma8(sigma8, conditioned: bool, batch: int, who: str):
    if not conditioned:
        if sigma8 is not None:
            raise ValueError(f"{who} was built with sigma8_conditioning=False; pass sigma8=None")
        return None
    if sigma8 is None:
        raise ValueError(f"{who} was built with sigma8_conditioning=True; pass sigma8 of shape ({batch},)")
    if sigma8.shape != (batch,):
        raise ValueError(f"sigma8 must have shape ({batch},), got {tuple(sigma8.shape)}")
    return sigma8


class CosmoGenerator(nn.Module):
    """CosmoGAN generator: noise (B, latent_dim) [+ σ8 (B,)] → (B, image_size, image_size) pixels in (−1, 1)."""

    def __init__(self, latent_dim: int = 64, image_size: int = 256, sigma8_conditioning: bool = False,
                 width: float = 1.0):
        super().__init__()
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        self.latent_dim = int(latent_dim)
        self.image_size = _check_image_size(image_size)
        self.sigma8_conditioning = bool(sigma8_conditioning)
        self._base = self.image_size // 16
        self.channels = _channels(_G_CHANNELS, width)

        c0 = self.channels[0]
        self.linear = nn.Linear(self.latent_dim + self.sigma8_conditioning, c0 * self._base**2)
        layers: list[nn.Module] = [nn.BatchNorm2d(c0), nn.ReLU()]
        for c_in, c_out in zip(self.channels, self.channels[1:] + (1,)):
            # padding 2 + output_padding 1 makes a 5×5 stride-2 transposed conv exactly double H and W (TF 'same').
            layers.append(nn.ConvTranspose2d(c_in, c_out, _KERNEL, stride=2, padding=2, output_padding=1))
            layers += [nn.BatchNorm2d(c_out), nn.ReLU()] if c_out != 1 else [nn.Tanh()]
        self.body = nn.Sequential(*layers)
        _dcgan_init(self)

    def forward(self, noise: torch.Tensor, sigma8: torch.Tensor | None = None) -> torch.Tensor:
        """noise (B, latent_dim), sigma8 (B,) or None → (B, image_size, image_size) in (−1, 1)."""
        if noise.ndim != 2 or noise.shape[1] != self.latent_dim:
            raise ValueError(f"noise must have shape (B, {self.latent_dim}), got {tuple(noise.shape)}")
        sigma8 = _check_sigma8(sigma8, self.sigma8_conditioning, noise.shape[0], "CosmoGenerator")
        z = noise if sigma8 is None else torch.cat([noise, sigma8[:, None].to(noise.dtype)], dim=1)
        h = self.linear(z).view(-1, self.channels[0], self._base, self._base)
        return self.body(h).squeeze(1)


class CosmoDiscriminator(nn.Module):
    """CosmoGAN discriminator: x (B, image_size, image_size) [+ σ8 (B,)] → real/fake logit (B,)."""

    def __init__(self, image_size: int = 256, sigma8_conditioning: bool = False, width: float = 1.0):
        super().__init__()
        self.image_size = _check_image_size(image_size)
        self.sigma8_conditioning = bool(sigma8_conditioning)
        channels = _channels(_D_CHANNELS, width)

        layers: list[nn.Module] = []
        c_in = 1 + self.sigma8_conditioning
        for i, c_out in enumerate(channels):
            layers.append(nn.Conv2d(c_in, c_out, _KERNEL, stride=2, padding=2))
            if i > 0:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(_LEAKY_SLOPE))
            c_in = c_out
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        self.logit = nn.Linear(channels[-1] * (self.image_size // 16) ** 2, 1)
        _dcgan_init(self)

    def forward(self, x: torch.Tensor, sigma8: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, image_size, image_size) pixels, sigma8 (B,) or None → logit (B,)."""
        s = self.image_size
        if x.ndim != 3 or tuple(x.shape[1:]) != (s, s):
            raise ValueError(f"x must have shape (B, {s}, {s}), got {tuple(x.shape)}")
        sigma8 = _check_sigma8(sigma8, self.sigma8_conditioning, x.shape[0], "CosmoDiscriminator")
        h = x.unsqueeze(1)
        if sigma8 is not None:
            h = torch.cat([h, sigma8.to(x.dtype)[:, None, None, None].expand(-1, 1, s, s)], dim=1)
        return self.logit(self.features(h)).squeeze(1)
