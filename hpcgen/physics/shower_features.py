"""Calorimeter shower observables used to validate a generator against a reference (shared/REFERENCE.md §3).

The observables are those of the 3DGAN papers (Khattak et al.) and of CaloGAN / the CaloChallenge (Krause et al.
2024, arXiv:2410.21611): sampling fraction ΣE_cells/E_p, longitudinal and transverse profiles, energy-weighted
first and second moments along x, y and depth, hit count and occupancy above a threshold, the cell-energy
spectrum, and radial containment. Everything is batched numpy on ``ecal_gev`` of shape (N, nx, ny, nz) in the
3DGAN layout (x, y, depth) with visible (active-layer) energy in GeV; sums are accumulated in float64. The
profiles, the sampling fraction and the energy-weighted moments all come from :func:`hpcgen.ops.ecal_moments` (the
same op as the 3DGAN discriminator's ECAL head, one pass over the cells): the op's moments in cell units become mm
through the geometry's cell and layer pitch.

Empty showers (zero visible energy) have every energy-weighted quantity defined as 0 — the CaloChallenge
convention of dividing by ``E + 1e-16`` made exact — so that no NaN (and no warning) reaches a histogram.
"""

from __future__ import annotations

import numpy as np
import torch

from hpcgen import ops
from hpcgen.physics.calo_geometry import DEFAULT_GEOMETRY, SamplingCalorimeter

# Showers per call of the profile op: bounds the float64 copy of a float32 data set to ~64 MB.
_PROFILE_BLOCK = 512
# Hit threshold as a fraction of the mean MIP deposit in one active layer (see hit_threshold_gev).
DEFAULT_HIT_MIP_FRACTION = 0.1


def hit_threshold_gev(geometry: SamplingCalorimeter = DEFAULT_GEOMETRY, mip_fraction: float = DEFAULT_HIT_MIP_FRACTION) -> float:
    """Cell hit threshold in GeV: ``mip_fraction`` × the MIP deposit in one active layer (dE/dx_MIP · d_active).

    For the default 0.5 mm Si layer the MIP deposit is 0.3876 MeV/mm × 0.5 mm ≈ 0.194 MeV, so the default
    0.1 MIP threshold is ≈ 1.94e-5 GeV (19.4 keV). A tenth of a MIP keeps every cell a charged track has crossed,
    even at grazing energy sharing between pads, and is of the order of the 15 keV cut the CaloChallenge applies to
    its Geant4 samples; it removes the sub-keV floor a ReLU generator leaves in empty cells, which would otherwise
    turn hit count and occupancy into a count of numerical noise.
    """
    if not mip_fraction >= 0:
        raise ValueError(f"mip_fraction must be >= 0, got {mip_fraction}")
    mip_mev = geometry.active.dedx_mip_mev_per_mm * geometry.active_thickness_mm
    return float(mip_fraction * mip_mev * 1e-3)


DEFAULT_HIT_THRESHOLD_GEV = hit_threshold_gev()


def _batch(ecal_gev) -> np.ndarray:
    ecal = np.asarray(ecal_gev)
    if ecal.ndim != 4:
        raise ValueError(f"ecal_gev must have shape (N, nx, ny, nz), got shape {ecal.shape}")
    return ecal


def _check_geometry(ecal: np.ndarray, geometry: SamplingCalorimeter) -> None:
    if tuple(ecal.shape[1:]) != tuple(geometry.shape):
        raise ValueError(
            f"ecal_gev cells {tuple(ecal.shape[1:])} do not match geometry '{geometry.name}' cells {geometry.shape}"
        )


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0 (no warning)."""
    num, den = np.broadcast_arrays(np.asarray(num, np.float64), np.asarray(den, np.float64))
    return np.divide(num, den, out=np.zeros(num.shape), where=den != 0)


def energy_moments(ecal_gev) -> ops.EcalMoments:
    """:func:`hpcgen.ops.ecal_moments` of every shower as float64 numpy arrays: total (N,), profiles (N, nx),
    (N, ny), (N, nz) in GeV, mean_cells and var_cells2 (N, 3) along x, y, depth in cell units.

    Blocks of showers are converted to float64 (so the sums are float64, as everywhere in this module).
    """
    ecal = _batch(ecal_gev)
    n = ecal.shape[0]
    out = ops.EcalMoments(np.empty(n), *(np.empty((n, side)) for side in ecal.shape[1:]), np.empty((n, 3)),
                          np.empty((n, 3)))
    with torch.no_grad():
        for start in range(0, n, _PROFILE_BLOCK):
            block = torch.from_numpy(np.ascontiguousarray(ecal[start:start + _PROFILE_BLOCK], dtype=np.float64))
            for dst, part in zip(out, ops.ecal_moments(block)):
                dst[start:start + block.shape[0]] = part.numpy()
    return out


def profiles(ecal_gev) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """((N, nx), (N, ny), (N, nz)) float64 visible energy in GeV per x column, y column and layer."""
    m = energy_moments(ecal_gev)
    return m.profile_x, m.profile_y, m.profile_z


def visible_energy(ecal_gev) -> np.ndarray:
    """(N,) total visible energy ΣE_cells in GeV."""
    return profiles(ecal_gev)[2].sum(axis=1)


def _divide_by_primary(visible_gev: np.ndarray, energy_gev) -> np.ndarray:
    energy = np.asarray(energy_gev, dtype=np.float64)
    if energy.shape != visible_gev.shape:
        raise ValueError(f"energy_gev must have shape {visible_gev.shape} to match ecal_gev, got {energy.shape}")
    if not np.all(energy > 0):
        raise ValueError("energy_gev must be > 0 for every shower")
    return visible_gev / energy


def sampling_fraction(ecal_gev, energy_gev) -> np.ndarray:
    """(N,) ΣE_cells / E_p. ``energy_gev`` (N,) is the primary energy and must be > 0."""
    return _divide_by_primary(visible_energy(ecal_gev), energy_gev)


def longitudinal_profile(ecal_gev) -> np.ndarray:
    """(N, nz) visible energy per layer in GeV."""
    return profiles(ecal_gev)[2]


def transverse_profiles(ecal_gev) -> tuple[np.ndarray, np.ndarray]:
    """((N, nx), (N, ny)) visible energy per column along x and along y in GeV."""
    x, y, _ = profiles(ecal_gev)
    return x, y


def moments_mm(m: ops.EcalMoments, geometry: SamplingCalorimeter) -> dict[str, np.ndarray]:
    """The op's centroids and variances (cell units, from :func:`energy_moments`) in mm; see :func:`moments`.

    Cell and layer centres are affine in the index (first centre + pitch · index), so mean_mm = first + pitch · mean
    and std_mm = pitch · √var. The op's centred two-pass variance has no E[c²] − μ² cancellation; empty showers give 0.
    """
    out: dict[str, np.ndarray] = {}
    nonempty = m.total > 0
    xy, depth = geometry.cell_centres_mm(), geometry.layer_centres_mm()
    for k, (axis, centres) in enumerate((("x", xy), ("y", xy), ("depth", depth))):
        pitch = centres[1] - centres[0] if centres.size > 1 else 0.0
        out[f"{axis}_mean_mm"] = np.where(nonempty, centres[0] + pitch * m.mean_cells[:, k], 0.0)
        out[f"{axis}_std_mm"] = np.where(nonempty, abs(pitch) * np.sqrt(np.maximum(m.var_cells2[:, k], 0.0)), 0.0)
    return out


def moments(ecal_gev, geometry: SamplingCalorimeter = DEFAULT_GEOMETRY) -> dict[str, np.ndarray]:
    """Energy-weighted first and second moments of each shower, each (N,) in mm.

    Keys: ``x_mean_mm``, ``y_mean_mm``, ``depth_mean_mm`` (centroid; x = y = 0 is the beam axis, depth from the
    front face at the active-layer centres) and ``x_std_mm``, ``y_std_mm``, ``depth_std_mm`` (energy-weighted
    standard deviation about the centroid, the CaloChallenge "shower width"). Empty showers give 0.
    """
    ecal = _batch(ecal_gev)
    _check_geometry(ecal, geometry)
    return moments_mm(energy_moments(ecal), geometry)


def hit_count(ecal_gev, threshold_gev: float = DEFAULT_HIT_THRESHOLD_GEV) -> np.ndarray:
    """(N,) number of cells with energy strictly above ``threshold_gev``."""
    return np.count_nonzero(_batch(ecal_gev) > threshold_gev, axis=(1, 2, 3)).astype(np.int64)


def sparsity(ecal_gev, threshold_gev: float = DEFAULT_HIT_THRESHOLD_GEV) -> np.ndarray:
    """(N,) fraction of cells above ``threshold_gev`` (occupancy; 1 − this is the fraction of empty cells)."""
    ecal = _batch(ecal_gev)
    return hit_count(ecal, threshold_gev) / float(np.prod(ecal.shape[1:]))


def cell_energy_spectrum(ecal_gev, threshold_gev: float = DEFAULT_HIT_THRESHOLD_GEV) -> np.ndarray:
    """Flat (n_hits,) float64 array of the energies (GeV) of all cells above ``threshold_gev`` in the batch."""
    ecal = _batch(ecal_gev)
    return ecal[ecal > threshold_gev].astype(np.float64)


def radial_containment(ecal_gev, geometry: SamplingCalorimeter = DEFAULT_GEOMETRY, radius_mm: float = 0.0) -> np.ndarray:
    """(N,) fraction of the visible energy in cells whose centre lies within ``radius_mm`` of the beam axis.

    The axis is the nominal beam axis x = y = 0 (not the shower centroid), parallel to depth, so containment also
    measures a generator's impact-point bias. Cells are counted whole (centre inside ⇒ all of it), so the answer is
    a step function of the radius with steps at cell-centre distances. Empty showers give 0.
    """
    ecal = _batch(ecal_gev)
    _check_geometry(ecal, geometry)
    c = geometry.cell_centres_mm()
    inside = (c[:, None] ** 2 + c[None, :] ** 2) <= float(radius_mm) ** 2
    # Collapse depth first: the transverse (N, nx, ny) map is all containment needs.
    xy_map = ecal.sum(axis=3, dtype=np.float64)
    return _safe_div(xy_map[:, inside].sum(axis=1), xy_map.sum(axis=(1, 2)))


SCALAR_FEATURES = (
    "sampling_fraction",
    "x_mean_mm",
    "y_mean_mm",
    "depth_mean_mm",
    "x_std_mm",
    "y_std_mm",
    "depth_std_mm",
    "hit_count",
    "sparsity",
)


def shower_features(
    ecal_gev,
    energy_gev,
    geometry: SamplingCalorimeter = DEFAULT_GEOMETRY,
    threshold_gev: float | None = None,
    moments_: ops.EcalMoments | None = None,
) -> dict[str, np.ndarray]:
    """Scalar per-shower features used for distances: a dict over :data:`SCALAR_FEATURES`, each (N,).

    ``threshold_gev`` is the hit threshold (default :func:`hit_threshold_gev` of ``geometry``, 0.1 MIP).
    ``moments_``: :func:`energy_moments` of ``ecal_gev`` when the caller has them already (validation also needs
    the profiles), so the cells are read once.
    """
    ecal = _batch(ecal_gev)
    _check_geometry(ecal, geometry)
    thr = hit_threshold_gev(geometry) if threshold_gev is None else float(threshold_gev)
    m = energy_moments(ecal) if moments_ is None else moments_
    feats = {"sampling_fraction": _divide_by_primary(m.profile_z.sum(axis=1), energy_gev)}
    feats.update(moments_mm(m, geometry))
    feats["hit_count"] = hit_count(ecal, thr)
    feats["sparsity"] = feats["hit_count"] / float(np.prod(ecal.shape[1:]))
    return {k: feats[k] for k in SCALAR_FEATURES}


def high_level_names(n_layers: int) -> tuple[str, ...]:
    """Column names of :func:`high_level_features` for a calorimeter of ``n_layers`` layers."""
    return ("log10_energy_gev", "sampling_fraction", *(f"layer_fraction_{k:02d}" for k in range(n_layers)),
            "x_mean_mm", "y_mean_mm", "depth_mean_mm", "x_std_mm", "y_std_mm", "depth_std_mm", "hit_count")


def high_level_features(
    ecal_gev,
    energy_gev,
    geometry: SamplingCalorimeter = DEFAULT_GEOMETRY,
    threshold_gev: float | None = None,
    moments_: ops.EcalMoments | None = None,
) -> np.ndarray:
    """(N, 9 + n_layers) float64 high-level features of every shower, columns :func:`high_level_names`.

    The CaloChallenge's high-level classifier input (Krause et al. 2024, arXiv:2410.21611) in this geometry:
    log10 of the primary energy, E_vis/E_p, the fraction of the visible energy in each layer, the energy-weighted
    centroid and width along x, y and depth (mm), and the hit count above the threshold. With 25 layers, 34 columns.
    Empty showers have layer fractions, centroids and widths 0.
    """
    m = energy_moments(ecal_gev) if moments_ is None else moments_
    f = shower_features(ecal_gev, energy_gev, geometry, threshold_gev, moments_=m)
    fractions = _safe_div(m.profile_z, m.total[:, None])
    cols = [np.log10(np.asarray(energy_gev, dtype=np.float64))[:, None], f["sampling_fraction"][:, None], fractions]
    cols += [f[k][:, None] for k in ("x_mean_mm", "y_mean_mm", "depth_mean_mm", "x_std_mm", "y_std_mm",
                                     "depth_std_mm", "hit_count")]
    return np.concatenate([np.asarray(c, dtype=np.float64) for c in cols], axis=1)
