"""Sampling-calorimeter geometry shared by every calorimeter generator and observable.

The default is a W/Si sampling ECAL in the spirit of the CALICE SiW ECAL and of the 3DGAN data: 25 layers of
3.5 mm tungsten followed by 0.5 mm silicon (≈ 25 X0), each silicon layer read out by 25×25 pads of 5.1×5.1 mm².
The particle travels along +z (depth) and enters at the centre of the front face (x = y = 0 is the centre of
pad 12 in both x and y), with an optional Gaussian impact jitter.

Effective-medium constants (Z_eff, X0_eff, R_M,eff, E_c,eff, F_S, ê) are those of the GFlash sampling-calorimeter
recipe (Grindhammer & Peters, hep-ex/0001020), with X0, R_M and E_c of the mixture by the PDG mixture rules;
see docs/gflash.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from hpcgen.physics.materials import Material, material

# Scale energy in the Molière-radius definition R_M = E_s X0 / E_c.
E_SCALE_MEV = 21.2


@dataclass(frozen=True)
class SamplingCalorimeter:
    """A layered sampling calorimeter: each layer is passive absorber then active sensor.

    Cells are indexed ``ECAL[i, j, k]`` with i along x, j along y and k the layer (depth). Only energy deposited
    in the active material is read out.
    """

    n_layers: int = 25
    passive_material: str = "W"
    passive_thickness_mm: float = 3.5
    active_material: str = "Si"
    active_thickness_mm: float = 0.5
    n_cells_xy: int = 25
    cell_size_mm: float = 5.1
    impact_jitter_mm: float = 0.0
    name: str = field(default="W/Si sampling ECAL")

    def __post_init__(self) -> None:
        for fname in ("n_layers", "n_cells_xy"):
            if int(getattr(self, fname)) < 1:
                raise ValueError(f"geometry field {fname} must be >= 1, got {getattr(self, fname)}")
        for fname in ("passive_thickness_mm", "active_thickness_mm", "cell_size_mm"):
            if not float(getattr(self, fname)) > 0:
                raise ValueError(f"geometry field {fname} must be > 0, got {getattr(self, fname)}")
        if not float(self.impact_jitter_mm) >= 0:
            raise ValueError(f"geometry field impact_jitter_mm must be >= 0, got {self.impact_jitter_mm}")
        material(self.passive_material)
        material(self.active_material)

    # --- plain geometry -------------------------------------------------------------------------------------
    @property
    def passive(self) -> Material:
        return material(self.passive_material)

    @property
    def active(self) -> Material:
        return material(self.active_material)

    @property
    def layer_thickness_mm(self) -> float:
        return self.passive_thickness_mm + self.active_thickness_mm

    @property
    def depth_mm(self) -> float:
        return self.n_layers * self.layer_thickness_mm

    @property
    def width_mm(self) -> float:
        """Full transverse width of the read-out (and of the simulated volume)."""
        return self.n_cells_xy * self.cell_size_mm

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.n_cells_xy, self.n_cells_xy, self.n_layers)

    @property
    def layer_thickness_x0(self) -> float:
        return self.passive_thickness_mm / self.passive.x0_mm + self.active_thickness_mm / self.active.x0_mm

    @property
    def depth_x0(self) -> float:
        return self.n_layers * self.layer_thickness_x0

    def cell_centres_mm(self) -> np.ndarray:
        """(n_cells_xy,) transverse cell centres; the beam axis x = 0 is the centre of the middle cell."""
        n = self.n_cells_xy
        return (np.arange(n) - (n - 1) / 2.0) * self.cell_size_mm

    def layer_centres_mm(self) -> np.ndarray:
        """(n_layers,) depth of the middle of each active layer, measured from the front face."""
        k = np.arange(self.n_layers)
        return k * self.layer_thickness_mm + self.passive_thickness_mm + 0.5 * self.active_thickness_mm

    # --- GFlash effective medium ------------------------------------------------------------------------------
    # One homogeneous mixture of the layer's materials, by the PDG mixture rules (docs/gflash.md, "Effective
    # medium"): with mass fractions w_j and X0_j, E_c,j in mass-thickness units (ρ_j·X0_j),
    #   1/X0_eff = Σ w_j/X0_j,  1/R_M,eff = (1/E_s) Σ w_j E_c,j/X0_j,  E_c,eff = E_s X0_eff / R_M,eff,
    # converted to mm by ρ_eff. In length units this is the thickness (volume) fraction rule v_j = d_j/Σd:
    #   1/X0_eff = Σ v_j/X0_j,  R_M,eff = E_s / Σ v_j E_c,j/X0_j   (X0_j in mm).
    def _mass_weights(self) -> tuple[float, float]:
        p, a = self.passive, self.active
        mp = p.density_g_cm3 * self.passive_thickness_mm
        ma = a.density_g_cm3 * self.active_thickness_mm
        return mp / (mp + ma), ma / (mp + ma)

    @property
    def density_eff_g_cm3(self) -> float:
        p, a = self.passive, self.active
        return (p.density_g_cm3 * self.passive_thickness_mm + a.density_g_cm3 * self.active_thickness_mm) / (
            self.layer_thickness_mm
        )

    @property
    def z_eff(self) -> float:
        wp, wa = self._mass_weights()
        return wp * self.passive.z + wa * self.active.z

    def _mass_x0s(self) -> tuple[float, float]:
        """Radiation lengths of passive and active material in mass thickness (g/cm³·mm = 0.1 g/cm²)."""
        p, a = self.passive, self.active
        return p.density_g_cm3 * p.x0_mm, a.density_g_cm3 * a.x0_mm

    def _ec_over_x0_mass(self) -> float:
        """Σ_j w_j E_c,j / X0_j with X0_j in mass thickness: E_s / R_M of the mixture (MeV per g/cm³·mm)."""
        wp, wa = self._mass_weights()
        xp, xa = self._mass_x0s()
        return wp * self.passive.ec_mev / xp + wa * self.active.ec_mev / xa

    @property
    def x0_eff_mm(self) -> float:
        """X0 of the mixture: 1/X0 = Σ w_j/X0_j in mass thickness (PDG), divided by ρ_eff."""
        wp, wa = self._mass_weights()
        xp, xa = self._mass_x0s()
        return 1.0 / (wp / xp + wa / xa) / self.density_eff_g_cm3

    @property
    def rm_eff_mm(self) -> float:
        """Molière radius of the mixture: 1/R_M = (1/E_s) Σ w_j E_c,j/X0_j in mass thickness (PDG), divided by
        ρ_eff (10.37 mm for the default 3.5 mm W + 0.5 mm Si)."""
        return E_SCALE_MEV / self._ec_over_x0_mass() / self.density_eff_g_cm3

    @property
    def ec_eff_mev(self) -> float:
        """Critical energy of the mixture, consistent with its X0 and R_M: E_c = E_s X0_eff / R_M,eff
        (8.14 MeV for the default stack)."""
        return self.x0_eff_mm * self.density_eff_g_cm3 * self._ec_over_x0_mass()

    @property
    def sampling_frequency(self) -> float:
        """F_S = X0_eff / (d_active + d_passive): layers per effective radiation length."""
        return self.x0_eff_mm / self.layer_thickness_mm

    @property
    def e_hat(self) -> float:
        """ê = 1 / (1 + 0.007 (Z_passive − Z_active)), GFlash's e/mip correction."""
        return 1.0 / (1.0 + 0.007 * (self.passive.z - self.active.z))

    @property
    def mip_sampling_fraction(self) -> float:
        """Fraction of a minimum-ionising particle's energy loss that lands in the active layer."""
        ea = self.active.dedx_mip_mev_per_mm * self.active_thickness_mm
        ep = self.passive.dedx_mip_mev_per_mm * self.passive_thickness_mm
        return ea / (ea + ep)

    # --- serialisation ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "n_layers": self.n_layers,
            "passive_material": self.passive_material,
            "passive_thickness_mm": self.passive_thickness_mm,
            "active_material": self.active_material,
            "active_thickness_mm": self.active_thickness_mm,
            "n_cells_xy": self.n_cells_xy,
            "cell_size_mm": self.cell_size_mm,
            "impact_jitter_mm": self.impact_jitter_mm,
            "axes": "ECAL[i, j, k]: i = x, j = y, k = depth layer; x = y = 0 at the centre of cell (n-1)/2",
            "materials": {m.name: m.to_dict() for m in (self.passive, self.active)},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "SamplingCalorimeter":
        keys = {
            "name", "n_layers", "passive_material", "passive_thickness_mm", "active_material",
            "active_thickness_mm", "n_cells_xy", "cell_size_mm", "impact_jitter_mm",
        }
        return cls(**{k: v for k, v in d.items() if k in keys})

    @classmethod
    def from_json(cls, s: str) -> "SamplingCalorimeter":
        return cls.from_dict(json.loads(s))


DEFAULT_GEOMETRY = SamplingCalorimeter()


def shower_max_x0(energy_gev: float | np.ndarray, ec_mev: float, photon: bool = False):
    """PDG shower maximum t_max = ln(E/E_c) + C in radiation lengths, C = −0.5 (e±) or +0.5 (γ)."""
    return np.log(np.asarray(energy_gev) * 1e3 / ec_mev) + (0.5 if photon else -0.5)


def _check() -> None:  # pragma: no cover - developer aid
    g = DEFAULT_GEOMETRY
    print(g.depth_x0, g.x0_eff_mm, g.ec_eff_mev, g.rm_eff_mm, g.z_eff, g.sampling_frequency, g.e_hat,
          g.mip_sampling_fraction, math.log(100e3 / g.ec_eff_mev) - 0.5)
