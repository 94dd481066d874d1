"""What a convergence map is: its pixels, field of view, source redshift and cosmology (shared by both generators)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hpcgen.errors import UserError
from hpcgen.physics.cosmology import CosmologyParams


@dataclass(frozen=True)
class CosmoMapSpec:
    """An N×N κ map over ``field_deg``² with all sources at ``z_source``. Defaults: CosmoGAN's maps."""

    pixels: int = 256
    field_deg: float = 3.5
    z_source: float = 1.0
    cosmology: CosmologyParams = field(default_factory=CosmologyParams)

    def __post_init__(self) -> None:
        if self.pixels < 8:
            raise UserError(f"--pixels: expected >= 8, got {self.pixels}")
        if not 0 < self.field_deg <= 30:
            raise UserError(f"--field-deg: expected a field in (0, 30] degrees, got {self.field_deg}")
        if not 0 < self.z_source <= 5:
            raise UserError(f"--z-source: expected 0 < z_s <= 5, got {self.z_source}")

    @property
    def field_rad(self) -> float:
        return math.radians(self.field_deg)

    @property
    def pixel_rad(self) -> float:
        return self.field_rad / self.pixels

    @property
    def pixel_arcmin(self) -> float:
        return self.field_deg * 60.0 / self.pixels
