"""PDG material constants used by every calorimeter generator.

Source: Particle Data Group, "Atomic and nuclear properties of materials" (pdg.lbl.gov/AtomicNuclearProperties),
the same values as shared/REFERENCE.md §2. One table: the detailed cascade, GFlash and the observables all read it,
so their geometries agree cell by cell.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Material:
    """A homogeneous material.

    Attributes carry their units in the name: ``x0_mm`` radiation length, ``rm_mm`` Molière radius,
    ``ec_mev`` critical energy for electrons (Rossi definition, PDG), ``dedx_mip_mev_per_mm`` minimum-ionising
    stopping power, ``z`` and ``a`` (g/mol) the (effective) atomic number and mass.
    """

    name: str
    density_g_cm3: float
    x0_mm: float
    rm_mm: float
    ec_mev: float
    z: float
    a: float
    dedx_mip_mev_per_mm: float

    def to_dict(self) -> dict:
        return asdict(self)


MATERIALS: dict[str, Material] = {
    "W": Material("W", 19.3, 3.504, 9.327, 7.97, 74.0, 183.84, 2.211),
    "Si": Material("Si", 2.329, 93.70, 49.40, 40.19, 14.0, 28.0855, 0.3876),
    "PbWO4": Material("PbWO4", 8.28, 8.903, 19.59, 9.64, 68.36, 455.04 / 6.0, 1.022),
    "Pb": Material("Pb", 11.35, 5.612, 16.02, 7.43, 82.0, 207.2, 1.273),
}


def material(name: str) -> Material:
    """Look a material up by name; unknown names raise ``KeyError`` listing the known ones."""
    try:
        return MATERIALS[name]
    except KeyError:
        raise KeyError(f"unknown material {name!r}; known: {', '.join(sorted(MATERIALS))}") from None
