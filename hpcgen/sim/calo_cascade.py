"""Detailed analog electromagnetic cascade in a layered sampling calorimeter — the slow, physical MC baseline.

Every particle above the tracking cuts is followed step by step through the W/Si layers of a
:class:`~hpcgen.physics.calo_geometry.SamplingCalorimeter` (particles along +z, material changes at every layer
interface, the transverse box is the read-out area). It is the reference the fast generators (GFlash, GANs) are
judged against, so its physics follows textbook sources rather than tuned parametrisations:

* Photons — pair production with the complete-screening cross-section 7/(9 X0) (PDG "Passage of particles through
  matter", EM cascades) times a threshold factor f(k) (table ``_PAIR_RAMP``) and the Bethe–Heitler
  complete-screening energy sharing dσ/dx ∝ 1 − 4/3 x(1 − x) (Bethe & Heitler 1934; Tsai, Rev. Mod. Phys. 46
  (1974) 815); Compton scattering with the Klein–Nishina cross-section on Z/A·ρ·N_A free electrons, sampled exactly
  (Butcher & Messel, Nucl. Phys. 20 (1960) 15, as in Geant4's G4KleinNishinaCompton); photo-absorption from a
  log-log interpolation of NIST XCOM photoelectric values (``_PHOTOELECTRIC``), the photoelectron deposited on the
  spot. Photons are tracked with Woodcock (delta) tracking through the layers, which is exact.
* Electrons and positrons — bremsstrahlung with the complete-screening spectrum dσ/dk = (1/(X0 k))·(4/3 − 4/3 y +
  y²), y = k/E (PDG eq. 34.29; Tsai 1974): photons above ``brems_threshold_mev`` are emitted explicitly, the soft
  part is folded into the continuous loss; collision loss from the Rohrlich–Carlson (Bethe) electron formula with
  the material's mean excitation energy and the Sternheimer–Peierls density effect (ICRU Report 37, the ESTAR
  recipe); continuous losses are applied exactly through a CSDA range table; multiple scattering per step with the
  Highland formula θ0 = 13.6 MeV/(βcp)·√(x/X0)·(1 + 0.038 ln(x/X0)) (PDG eq. 34.15) and a Gaussian space angle;
  positrons annihilate at rest into two back-to-back 0.511 MeV photons.

Simplified, on purpose: no lateral displacement within a step (steps are short: ≤ ``max_step_x0`` X0 and ≤
``range_fraction`` of the residual range) and Highland applied per step (its log term makes θ0² non-additive, so
the sampling fraction depends on the step limits at the 1–5 % level, quantified in :class:`CascadeCuts`);
secondaries of brems and pair production are emitted along the parent direction (their angles, ~m_e/E, are far
below the multiple-scattering angles); no Rayleigh scattering, no fluorescence or Auger, no positron annihilation
in flight, the same stopping power for e+ as for e−; the complete-screening brems spectrum is used at all energies
(it overestimates radiation below ~10 MeV in W, by up to ~1.5× near 1 MeV); no LPM effect (irrelevant at ≤ 1 TeV
in W). Energy below the tracking cuts, and the soft-brems part of the continuous loss, is deposited where the
particle is.

Energy bookkeeping (exact to rounding, tested): all energies are kinetic. Pair production leaves 2 m_e c² that the
positron gives back when it annihilates (its two photons are tracked); a positron that escapes is booked as
leakage T + 2 m_e c². Hence active + passive + leakage = E0 for e− and γ primaries, and E0 + 2 m_e c² for an e+
primary (E0 its kinetic energy; the extra 2 m_e c² is its own annihilation).

Why numba: the cascade is a branchy loop over a particle stack (10⁵–10⁶ steps per 100 GeV shower) that numpy
cannot vectorise; ``@njit(cache=True)`` compiles it to machine code with no build step, no compiler in the
install and a JIT cost paid once per machine (the cache), and it stays single-threaded so the project's MPI ranks
are the only parallelism. Random numbers come from a per-shower xoshiro256** stream seeded with 256 bits drawn
from the caller's ``numpy.random.Generator`` — reproducible, independent of any global state, and free of the
birthday collisions of numba's 32-bit ``np.random.seed`` (expected after ~10⁵ showers).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from numba import njit

from hpcgen.physics.calo_geometry import SamplingCalorimeter
from hpcgen.physics.materials import Material
from hpcgen.sim.showers import CaloShowers

M_E_MEV = 0.51099895
_R_E_CM = 2.8179403262e-13
_N_A = 6.02214076e23
_E_MAX_MEV = 1.0e7  # tables reach 10 TeV
_PTS_PER_DECADE = 100
_NUDGE_MM = 1e-7  # push a particle across a layer interface so the next region lookup is unambiguous

PARTICLES = {"gamma": 0, "e-": 1, "e+": 2}

# Mean excitation energies I (eV), PDG "Atomic and nuclear properties"; other materials fall back to 16 Z^0.9 eV.
_MEAN_EXCITATION_EV = {"W": 727.0, "Si": 173.0, "Pb": 823.0, "PbWO4": 600.7}
# <Z/A> (mol/g) where a compound's table entry (Z_eff, mean A per atom) does not give its electron density; PDG.
_Z_OVER_A = {"PbWO4": 0.41315}

# Photoelectric mass attenuation τ/ρ (cm²/g) vs photon energy (MeV): NIST XCOM (Berger et al.) photoelectric
# column, equivalently the Hubbell–Seltzer total attenuation minus Klein–Nishina and coherent scattering. Values
# are recalled from those tables, not downloaded, and good to ~10 %; tests check the resulting totals against NIST
# at 0.5–10 MeV. W carries its K edge at 69.525 keV. Materials without a table scale the nearest one by
# (Z/Z_ref)^4.5 · A_ref/A.
_PHOTOELECTRIC = {
    "W": (
        (0.010, 0.015, 0.020, 0.030, 0.040, 0.050, 0.060, 0.069524, 0.069526, 0.080, 0.100, 0.150, 0.200,
         0.300, 0.400, 0.500, 0.600, 0.800, 1.000, 1.500, 2.000, 5.000, 10.00),
        (92.0, 135.0, 62.6, 21.0, 9.6, 5.2, 3.16, 2.1, 13.9, 7.45, 4.13, 1.37, 0.62,
         0.21, 0.103, 0.061, 0.041, 0.023, 0.0145, 0.0075, 0.0048, 0.0015, 0.0007),
    ),
    "Si": (
        (0.010, 0.015, 0.020, 0.030, 0.040, 0.050, 0.060, 0.080, 0.100, 0.150, 0.200, 0.300, 0.500, 1.000),
        (32.8, 9.6, 3.9, 1.05, 0.41, 0.20, 0.11, 0.044, 0.022, 0.0061, 0.0025, 0.0008, 0.0002, 0.00005),
    ),
}
_PE_REFERENCE = {"W": (74.0, 183.84), "Si": (14.0, 28.0855)}
# compounds: mass fractions of their heavy elements (oxygen's photo-absorption is negligible next to them)
_PE_MIXTURES = {"PbWO4": ((82.0, 207.2, 0.4554), (74.0, 183.84, 0.4040))}

# Pair-production threshold factor f(k) = σ_pair(k) / (7/(9 X0)) vs k (MeV). Up to 20 MeV: NIST XCOM Pb totals
# minus Klein–Nishina and photoelectric (Z = 82, close to W); above: Bethe–Heitler with Thomas–Fermi screening and
# Coulomb correction (Butcher–Messel screening functions, as in Geant4's G4BetheHeitlerModel) integrated for
# Z = 74 and normalised to its high-energy limit. Used for every material: for Si it overestimates pair production
# by ~20 % at 10 MeV, negligible in 0.005 X0 of silicon per layer.
_PAIR_RAMP = (
    (2 * M_E_MEV, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1e3, 1e4, 1e5),
    (0.0, 0.005, 0.036, 0.092, 0.136, 0.173, 0.204, 0.257, 0.300, 0.385, 0.446, 0.64, 0.73, 0.83, 0.91, 0.947,
     0.99, 1.0),
)


@dataclass(frozen=True)
class CascadeCuts:
    """Tracking cuts and step limits of :func:`simulate_cascade`.

    The defaults (0.5 MeV e±, 50 keV γ, explicit brems above 50 keV, steps ≤ 0.3 X0 and ≤ 0.3 of the residual
    range) cost ~53 ms per 100 GeV shower on one core (benchmarks/bench_calo_mc.py), 4× inside a 200 ms budget. A
    0.5 MeV electron has a range of ~0.15 mm in W; a 50 keV photon is absorbed within ~0.1 mm of W.

    Convergence (docs/cascade_convergence.md; benchmarks/bench_cascade_convergence.py, 10 and 50 GeV e−, sampling
    fraction known to ±0.2 % per setting). k_c was 0.5 MeV until that study: the soft-brems part of the loss of e±
    crossing a 0.5 mm Si sensor was deposited in it, although a 0.05–0.5 MeV photon's attenuation length in Si
    (1–5 cm) far exceeds the sensor, which raised the sampling fraction by 1.9–2.1 % (7σ); at 50 keV that share is
    0.17 %, for 19 % more tracking steps. The γ cut (down to 10 keV) moves nothing beyond its errors; e± cuts of
    0.25 and 0.1 MeV move the sampling fraction by ≤ 0.7 % and the lateral width by −1.0 to −1.6 %. The step limits
    are NOT converged: halving or quartering max_step_x0 or range_fraction lowers the sampling fraction by
    2.4–5.4 %, lowering min_step_mm raises it by ≤ 1.4 %, and scaling all three together by 0.5 … 0.05 gives
    1.0–2.1 % below the default, with the width 1–3 % larger and the 10 GeV σ/μ up to 9 % smaller — not
    monotonically, and at up to 10× the tracking steps. The cause is the multiple-scattering transport (with
    scattering switched off the sampling fraction is step-independent to 0.2 %): straight steps deflected at their
    end, and Highland's log term, which makes the scattering vanish as steps shrink. Read those spreads as the
    model's step systematic.

    electron_cut_mev: e± with less kinetic energy deposit it where they are (e+ then annihilate at rest).
    photon_cut_mev: photons below deposit their energy where they are.
    brems_threshold_mev: bremsstrahlung photons above k_c are produced explicitly; softer ones are continuous loss.
    max_step_x0: largest e± step, in radiation lengths of the current material (multiple-scattering accuracy).
    range_fraction: an e± step is at most this fraction of its residual range (so the end of a track scatters).
    min_step_mm: floor of the range-fraction limit, so the end of a track takes a bounded number of steps.
    active_soft_brems_local: True deposits the soft-brems part (below k_c) of an e±'s continuous loss in an active
        layer where the e± is, like the collision part; False books it in that layer's absorber, as if the soft
        photons all left the sensor. A diagnostic of the local-deposit bias: same histories, only the booking
        differs (sensor energy −1.6 % at k_c = 0.5 MeV, −0.17 % at the default 50 keV).
    """

    electron_cut_mev: float = 0.5
    photon_cut_mev: float = 0.05
    brems_threshold_mev: float = 0.05
    max_step_x0: float = 0.3
    range_fraction: float = 0.3
    min_step_mm: float = 0.05
    active_soft_brems_local: bool = True

    def __post_init__(self) -> None:
        for name in ("electron_cut_mev", "photon_cut_mev", "brems_threshold_mev", "max_step_x0", "min_step_mm"):
            v = float(getattr(self, name))
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"CascadeCuts.{name} must be a positive number, got {v}")
        if not 0 < float(self.range_fraction) <= 1:
            raise ValueError(f"CascadeCuts.range_fraction must be in (0, 1], got {self.range_fraction}")
        if not isinstance(self.active_soft_brems_local, bool):
            raise ValueError(f"CascadeCuts.active_soft_brems_local must be True or False, "
                             f"got {self.active_soft_brems_local!r}")
        if not float(self.photon_cut_mev) >= 0.01:
            raise ValueError(f"CascadeCuts.photon_cut_mev must be >= 0.01 (photoelectric tables start at 10 keV), "
                             f"got {self.photon_cut_mev}")


# --------------------------------------------------------------------------------------------------------------
# Cross-section and stopping-power tables (numpy, built once per (materials, cuts))
# --------------------------------------------------------------------------------------------------------------
def _log_grid(e_lo_mev: float) -> tuple[float, float, np.ndarray]:
    n = int(math.ceil(math.log10(_E_MAX_MEV / e_lo_mev) * _PTS_PER_DECADE)) + 1
    ln_lo = math.log(e_lo_mev)
    dl = (math.log(_E_MAX_MEV) - ln_lo) / (n - 1)
    return ln_lo, dl, np.exp(ln_lo + dl * np.arange(n))


def _klein_nishina_cm2(k_mev: np.ndarray) -> np.ndarray:
    """Klein–Nishina total cross-section per free electron (cm²)."""
    x = k_mev / M_E_MEV
    l2 = np.log1p(2 * x)
    return 2 * np.pi * _R_E_CM**2 * (
        (1 + x) / x**2 * (2 * (1 + x) / (1 + 2 * x) - l2 / x) + l2 / (2 * x) - (1 + 3 * x) / (1 + 2 * x) ** 2
    )


def _z_over_a(mat: Material) -> float:
    return _Z_OVER_A.get(mat.name, mat.z / mat.a)


def _photoelectric_cm2_g(mat: Material, k_mev: np.ndarray) -> np.ndarray:
    if mat.name in _PE_MIXTURES:
        parts = _PE_MIXTURES[mat.name]
        return sum(w * _photoelectric_cm2_g(Material("", 0, 0, 0, 0, z, a, 0), k_mev) for z, a, w in parts)
    ref = mat.name if mat.name in _PHOTOELECTRIC else ("W" if mat.z > 40 else "Si")
    e, tau = (np.log(np.asarray(v)) for v in _PHOTOELECTRIC[ref])
    # log-log interpolation, extrapolated with the end slopes (≈ k^-3 below, ≈ k^-1 above)
    lk = np.log(k_mev)
    out = np.interp(lk, e, tau)
    lo, hi = lk < e[0], lk > e[-1]
    out[lo] = tau[0] + (tau[1] - tau[0]) / (e[1] - e[0]) * (lk[lo] - e[0])
    out[hi] = tau[-1] + (tau[-1] - tau[-2]) / (e[-1] - e[-2]) * (lk[hi] - e[-1])
    z_ref, a_ref = _PE_REFERENCE[ref]
    return np.exp(out) * (mat.z / z_ref) ** 4.5 * a_ref / mat.a


def _collision_stopping_mev_mm(mat: Material, t_mev: np.ndarray) -> np.ndarray:
    """Electron collision stopping power (MeV/mm): Rohrlich–Carlson formula, Sternheimer–Peierls density effect."""
    i_ev = _MEAN_EXCITATION_EV.get(mat.name, 16.0 * mat.z**0.9)
    tau = t_mev / M_E_MEV
    gamma = tau + 1
    beta2 = 1 - 1 / gamma**2
    f_minus = 1 - beta2 + (tau**2 / 8 - (2 * tau + 1) * math.log(2)) / (tau + 1) ** 2
    # density effect, Sternheimer & Peierls (1971) general formula for solids
    hw_p = 28.816 * math.sqrt(mat.density_g_cm3 * _z_over_a(mat))  # plasma energy, eV
    c_bar = 2 * math.log(i_ev / hw_p) + 1
    if i_ev < 100:
        x1, x0 = 2.0, (0.2 if c_bar < 3.681 else 0.326 * c_bar - 1.0)
    else:
        x1, x0 = 3.0, (0.2 if c_bar < 5.215 else 0.326 * c_bar - 1.5)
    a_sp = (c_bar - 4.606 * x0) / (x1 - x0) ** 3
    x = np.log10(np.sqrt(tau * (tau + 2)))
    delta = np.where(x < x0, 0.0, np.where(x < x1, 4.606 * x - c_bar + a_sp * (x1 - x) ** 3, 4.606 * x - c_bar))
    i_over_m = i_ev * 1e-6 / M_E_MEV
    bracket = np.log(tau**2 * (tau + 2) / (2 * i_over_m**2)) + f_minus - delta
    mev_cm2_g = 0.1535375 * _z_over_a(mat) / beta2 * bracket
    return np.maximum(mev_cm2_g, 0.0) * mat.density_g_cm3 / 10.0


def _brems_tables(mat: Material, t_mev: np.ndarray, kc_mev: float) -> tuple[np.ndarray, np.ndarray]:
    """Complete-screening brems: (soft radiative loss below k_c in MeV/mm, discrete cross-section above k_c in 1/mm)."""
    e_tot = t_mev + M_E_MEV
    ymax = t_mev / e_tot
    yc = np.minimum(kc_mev / e_tot, ymax)
    soft = e_tot / mat.x0_mm * (4 / 3 * yc - 2 / 3 * yc**2 + yc**3 / 3)
    sigma = (4 / 3 * np.log(ymax / yc) - 4 / 3 * (ymax - yc) + (ymax**2 - yc**2) / 2) / mat.x0_mm
    return soft, np.maximum(sigma, 0.0)


def electron_tables(mat: Material, cuts: CascadeCuts) -> dict:
    """Per-material e± tables on the kinetic-energy grid from the electron cut up to 10 TeV.

    Returns ``t_mev``, ``dedx_col_mev_mm``, ``dedx_soft_brems_mev_mm``, ``range_mm`` (CSDA range down to the cut)
    and ``sigma_brems_per_mm`` (explicit photons above k_c). Exposed for tests and for inspection.
    """
    ln_lo, dl, t = _log_grid(cuts.electron_cut_mev)
    col = _collision_stopping_mev_mm(mat, t)
    soft, sigma = _brems_tables(mat, t, cuts.brems_threshold_mev)
    inv = 1.0 / (col + soft)
    # ∫ dT / S(T) with dT = T dlnT, trapezoid in ln T; R(cut) = 0 exactly
    integrand = inv * t
    range_mm = np.concatenate([[0.0], np.cumsum(0.5 * (integrand[1:] + integrand[:-1]) * dl)])
    return {"ln_lo": ln_lo, "dl": dl, "t_mev": t, "dedx_col_mev_mm": col, "dedx_soft_brems_mev_mm": soft,
            "range_mm": range_mm, "sigma_brems_per_mm": sigma}


def photon_tables(mat: Material, cuts: CascadeCuts) -> dict:
    """Per-material photon attenuation (1/mm) on the energy grid from the photon cut up to 10 TeV."""
    ln_lo, dl, k = _log_grid(cuts.photon_cut_mev)
    n_e = mat.density_g_cm3 * _N_A * _z_over_a(mat)  # electrons / cm³
    compton = n_e * _klein_nishina_cm2(k) / 10.0
    ramp = np.interp(np.log(k), np.log(_PAIR_RAMP[0]), _PAIR_RAMP[1], left=0.0, right=1.0)
    pair = np.where(k > 2 * M_E_MEV, 7.0 / (9.0 * mat.x0_mm) * ramp, 0.0)
    photo = mat.density_g_cm3 * _photoelectric_cm2_g(mat, k) / 10.0
    return {"ln_lo": ln_lo, "dl": dl, "k_mev": k, "mu_pair_per_mm": pair, "mu_compton_per_mm": compton,
            "mu_photo_per_mm": photo}


@functools.lru_cache(maxsize=8)
def _kernel_tables(passive: Material, active: Material, cuts: CascadeCuts):
    et = [electron_tables(m, cuts) for m in (passive, active)]
    gt = [photon_tables(m, cuts) for m in (passive, active)]
    e_tab = np.stack([np.stack([t["range_mm"], t["sigma_brems_per_mm"],
                                t["dedx_soft_brems_mev_mm"] / (t["dedx_col_mev_mm"] + t["dedx_soft_brems_mev_mm"])],
                               axis=1) for t in et])
    g_tab = np.zeros((3, gt[0]["k_mev"].size, 3))
    for m, t in enumerate(gt):
        g_tab[m, :, 0] = t["mu_pair_per_mm"] + t["mu_compton_per_mm"] + t["mu_photo_per_mm"]
        g_tab[m, :, 1] = t["mu_pair_per_mm"]
        g_tab[m, :, 2] = t["mu_compton_per_mm"]
    g_tab[2, :, 0] = np.maximum(g_tab[0, :, 0], g_tab[1, :, 0])  # Woodcock majorant
    e_par = np.array([et[0]["ln_lo"], et[0]["dl"]])
    g_par = np.array([gt[0]["ln_lo"], gt[0]["dl"]])
    return e_tab, e_par, g_tab, g_par


# --------------------------------------------------------------------------------------------------------------
# Compiled kernel
# --------------------------------------------------------------------------------------------------------------
# geo layout: 0 d_passive, 1 d_active, 2 layer pitch, 3 n_layers, 4 half width, 5 cell size, 6 n_cells, 7 depth,
#             8 X0 passive, 9 X0 active (all mm)
# cut layout: 0 e cut, 1 γ cut, 2 k_c, 3 max step (X0), 4 range fraction, 5 min step (mm)
# stack row:  0 type (0 γ, 1 e−, 2 e+), 1 kinetic energy (MeV), 2-4 x y z (mm), 5-7 direction
# acc:        0 active, 1 passive, 2 leakage (MeV), 3 steps


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True)
def _uniform(s):
    """xoshiro256** (Blackman & Vigna 2018) → float64 in [0, 1)."""
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    s[0] = s0
    s[1] = s1
    s[2] = s2
    s[3] = s3
    return float(result >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def _exp1(s):
    return -math.log(1.0 - _uniform(s))


@njit(cache=True)
def _rotate(ux, uy, uz, cost, phi):
    """Direction at polar angle acos(cost), azimuth phi about (ux, uy, uz) (Geant4's rotateUz)."""
    sint = math.sqrt(max(0.0, 1.0 - cost * cost))
    px, py, pz = sint * math.cos(phi), sint * math.sin(phi), cost
    perp = ux * ux + uy * uy
    if perp > 1e-20:
        up = math.sqrt(perp)
        nx = (ux * uz * px - uy * py) / up + ux * pz
        ny = (uy * uz * px + ux * py) / up + uy * pz
        nz = -up * px + uz * pz
    elif uz > 0:
        nx, ny, nz = px, py, pz
    else:
        nx, ny, nz = -px, py, -pz
    norm = 1.0 / math.sqrt(nx * nx + ny * ny + nz * nz)
    return nx * norm, ny * norm, nz * norm


@njit(cache=True)
def _push(stack, n, typ, t, x, y, z, ux, uy, uz):
    if n == stack.shape[0]:
        bigger = np.empty((2 * n, 8))
        bigger[:n] = stack
        stack = bigger
    stack[n, 0] = typ
    stack[n, 1] = t
    stack[n, 2] = x
    stack[n, 3] = y
    stack[n, 4] = z
    stack[n, 5] = ux
    stack[n, 6] = uy
    stack[n, 7] = uz
    return stack, n + 1


@njit(cache=True)
def _inside(x, y, z, geo):
    return 0.0 <= z < geo[7] and -geo[4] < x < geo[4] and -geo[4] < y < geo[4]


@njit(cache=True)
def _deposit(de, x, y, z, geo, ecal, layer_dep, acc):
    """Deposit de (MeV) at a point, in the material and cell that hold it (clamped onto the volume's faces)."""
    n_layers = int(geo[3])
    k = min(max(int(z / geo[2]), 0), n_layers - 1)
    layer_dep[k] += de
    if z - k * geo[2] < geo[0]:
        acc[1] += de
    else:
        acc[0] += de
        nc = int(geo[6])
        i = min(max(int((x + geo[4]) / geo[5]), 0), nc - 1)
        j = min(max(int((y + geo[4]) / geo[5]), 0), nc - 1)
        ecal[i, j, k] += de


@njit(cache=True)
def _deposit_passive(de, z, geo, layer_dep, acc):
    """Book de (MeV) in the absorber of the layer that holds depth z (energy leaving a thin sensor)."""
    k = min(max(int(z / geo[2]), 0), int(geo[3]) - 1)
    layer_dep[k] += de
    acc[1] += de


@njit(cache=True)
def _lookup(tab, m, col, ln_lo, dl, e):
    u = (math.log(e) - ln_lo) / dl
    i = min(max(int(u), 0), tab.shape[1] - 2)
    f = u - i
    return tab[m, i, col] * (1.0 - f) + tab[m, i + 1, col] * f


@njit(cache=True)
def _energy_at_range(e_tab, m, e_par, r, t_hint):
    """Inverse of the (piecewise-linear in ln T) range table: kinetic energy whose residual range is r."""
    u = (math.log(t_hint) - e_par[0]) / e_par[1]
    i = min(max(int(u), 0), e_tab.shape[1] - 2)
    while i > 0 and e_tab[m, i, 0] > r:
        i -= 1
    r0, r1 = e_tab[m, i, 0], e_tab[m, i + 1, 0]
    f = min(max((r - r0) / (r1 - r0), 0.0), 1.0)
    return math.exp(e_par[0] + (i + f) * e_par[1])


@njit(cache=True)
def _annihilate(stack, n, x, y, z, s, geo, cut, ecal, layer_dep, acc):
    if M_E_MEV < cut[1]:
        _deposit(2.0 * M_E_MEV, x, y, z, geo, ecal, layer_dep, acc)
        return stack, n
    cost = 2.0 * _uniform(s) - 1.0
    sint = math.sqrt(max(0.0, 1.0 - cost * cost))
    phi = 2.0 * math.pi * _uniform(s)
    ux, uy = sint * math.cos(phi), sint * math.sin(phi)
    stack, n = _push(stack, n, 0.0, M_E_MEV, x, y, z, ux, uy, cost)
    stack, n = _push(stack, n, 0.0, M_E_MEV, x, y, z, -ux, -uy, -cost)
    return stack, n


@njit(cache=True)
def _emit_charged(stack, n, typ, t, x, y, z, ux, uy, uz, s, geo, cut, ecal, layer_dep, acc):
    """Queue an e± or, below the electron cut, deposit it here (a positron then annihilates at rest)."""
    if t > cut[0]:
        return _push(stack, n, typ, t, x, y, z, ux, uy, uz)
    _deposit(t, x, y, z, geo, ecal, layer_dep, acc)
    if typ == 2.0:
        return _annihilate(stack, n, x, y, z, s, geo, cut, ecal, layer_dep, acc)
    return stack, n


@njit(cache=True)
def _track_photon(stack, n, k, x, y, z, ux, uy, uz, s, geo, cut, g_tab, g_par, ecal, layer_dep, acc):
    while True:
        if k < cut[1]:
            _deposit(k, x, y, z, geo, ecal, layer_dep, acc)
            return stack, n
        acc[3] += 1.0
        mu_max = _lookup(g_tab, 2, 0, g_par[0], g_par[1], k)
        step = _exp1(s) / mu_max
        x += step * ux
        y += step * uy
        z += step * uz
        if not _inside(x, y, z, geo):
            acc[2] += k
            return stack, n
        zl = z - int(z / geo[2]) * geo[2]
        m = 0 if zl < geo[0] else 1
        r = _uniform(s) * mu_max
        mu_pair = _lookup(g_tab, m, 1, g_par[0], g_par[1], k)
        if r < mu_pair:
            # Bethe–Heitler complete screening: x = E(e+)/k, dσ/dx ∝ 1 − 4/3 x(1 − x)
            x_min = M_E_MEV / k
            while True:
                xe = x_min + (1.0 - 2.0 * x_min) * _uniform(s)
                if _uniform(s) <= 1.0 - 4.0 / 3.0 * xe * (1.0 - xe):
                    break
            t_pos = xe * k - M_E_MEV
            t_ele = k - t_pos - 2.0 * M_E_MEV
            stack, n = _emit_charged(stack, n, 1.0, t_ele, x, y, z, ux, uy, uz, s, geo, cut, ecal, layer_dep, acc)
            stack, n = _emit_charged(stack, n, 2.0, t_pos, x, y, z, ux, uy, uz, s, geo, cut, ecal, layer_dep, acc)
            return stack, n
        mu_compton = _lookup(g_tab, m, 2, g_par[0], g_par[1], k)
        if r < mu_pair + mu_compton:
            # Klein–Nishina, Butcher & Messel sampling of ε = k'/k
            kap = k / M_E_MEV
            eps0 = 1.0 / (1.0 + 2.0 * kap)
            eps0sq = eps0 * eps0
            alpha1 = -math.log(eps0)
            alpha2 = alpha1 + 0.5 * (1.0 - eps0sq)
            while True:
                if alpha1 > alpha2 * _uniform(s):
                    eps = math.exp(-alpha1 * _uniform(s))
                    epssq = eps * eps
                else:
                    epssq = eps0sq + (1.0 - eps0sq) * _uniform(s)
                    eps = math.sqrt(epssq)
                onecost = (1.0 - eps) / (eps * kap)
                sint2 = onecost * (2.0 - onecost)
                if 1.0 - eps * sint2 / (1.0 + epssq) >= _uniform(s):
                    break
            k1 = eps * k
            t_e = k - k1
            vx, vy, vz = _rotate(ux, uy, uz, 1.0 - onecost, 2.0 * math.pi * _uniform(s))
            px, py, pz = k * ux - k1 * vx, k * uy - k1 * vy, k * uz - k1 * vz
            pn = math.sqrt(px * px + py * py + pz * pz)
            if pn > 0.0:
                px, py, pz = px / pn, py / pn, pz / pn
            else:
                px, py, pz = ux, uy, uz
            stack, n = _emit_charged(stack, n, 1.0, t_e, x, y, z, px, py, pz, s, geo, cut, ecal, layer_dep, acc)
            k, ux, uy, uz = k1, vx, vy, vz
            continue
        if r < _lookup(g_tab, m, 0, g_par[0], g_par[1], k):
            _deposit(k, x, y, z, geo, ecal, layer_dep, acc)  # photo-absorption
            return stack, n
        # else: Woodcock null collision, fly on


@njit(cache=True)
def _track_charged(stack, n, typ, t, x, y, z, ux, uy, uz, s, geo, cut, e_tab, e_par, ecal, layer_dep, acc):
    pitch, d_p, hw = geo[2], geo[0], geo[4]
    while True:
        if not _inside(x, y, z, geo):
            acc[2] += t + (2.0 * M_E_MEV if typ == 2.0 else 0.0)
            return stack, n
        acc[3] += 1.0
        kl = int(z / pitch)
        if z - kl * pitch < d_p:
            m, z_lo, z_hi = 0, kl * pitch, kl * pitch + d_p
        else:
            m, z_lo, z_hi = 1, kl * pitch + d_p, (kl + 1) * pitch
        # distance to the region's faces
        s_geo, z_limited, z_face = 1e30, False, 0.0
        if uz > 0.0:
            s_geo, z_limited, z_face = (z_hi - z) / uz, True, z_hi
        elif uz < 0.0:
            s_geo, z_limited, z_face = (z_lo - z) / uz, True, z_lo
        if ux != 0.0:
            sx = ((hw if ux > 0.0 else -hw) - x) / ux
            if sx < s_geo:
                s_geo, z_limited = sx, False
        if uy != 0.0:
            sy = ((hw if uy > 0.0 else -hw) - y) / uy
            if sy < s_geo:
                s_geo, z_limited = sy, False
        s_geo = max(s_geo, 0.0)
        r = _lookup(e_tab, m, 0, e_par[0], e_par[1], t)
        sig = _lookup(e_tab, m, 1, e_par[0], e_par[1], t)
        s_brems = _exp1(s) / sig if sig > 0.0 else 1e30
        s_lim = min(max(cut[4] * r, cut[5]), cut[3] * geo[8 + m])
        step = min(s_geo, s_brems, s_lim, r)
        stopped = step >= r
        if stopped:
            t1 = 0.0
        else:
            t1 = min(_energy_at_range(e_tab, m, e_par, r - step, t), t)
        t_mean = 0.5 * (t + t1)
        de, zm = t - t1, z + 0.5 * step * uz
        if m == 1 and cut[6] == 0.0:
            # soft-brems photons escape the thin sensor: only the collision part of the loss stays in it
            de_soft = de * _lookup(e_tab, 1, 2, e_par[0], e_par[1], max(t_mean, cut[0]))
            _deposit_passive(de_soft, zm, geo, layer_dep, acc)
            de -= de_soft
        _deposit(de, x + 0.5 * step * ux, y + 0.5 * step * uy, zm, geo, ecal, layer_dep, acc)
        x += step * ux
        y += step * uy
        z += step * uz
        if step == s_geo and z_limited:
            z = z_face + (_NUDGE_MM if uz > 0.0 else -_NUDGE_MM)
        elif step == s_geo:
            x += _NUDGE_MM * ux
            y += _NUDGE_MM * uy
        if stopped:
            if typ == 2.0:
                return _annihilate(stack, n, x, y, z, s, geo, cut, ecal, layer_dep, acc)
            return stack, n
        t = t1
        # multiple scattering, Highland θ0 at the step's mean energy
        xr = step / geo[8 + m]
        if xr > 1e-10:
            p2 = t_mean * (t_mean + 2.0 * M_E_MEV)
            theta0 = 13.6 * (t_mean + M_E_MEV) / p2 * math.sqrt(xr) * max(1.0 + 0.038 * math.log(xr), 0.0)
            theta = theta0 * math.sqrt(-2.0 * math.log(1.0 - _uniform(s)))
            cost = math.cos(theta) if theta < math.pi else 2.0 * _uniform(s) - 1.0
            ux, uy, uz = _rotate(ux, uy, uz, cost, 2.0 * math.pi * _uniform(s))
        if step == s_brems and _uniform(s) * sig < _lookup(e_tab, m, 1, e_par[0], e_par[1], t):
            # complete-screening spectrum above k_c: y log-uniform, accept 1 − y + 3/4 y²
            e_tot = t + M_E_MEV
            yc, ymax = cut[2] / e_tot, t / e_tot
            lr = math.log(ymax / yc)
            while True:
                yk = yc * math.exp(lr * _uniform(s))
                if _uniform(s) <= 1.0 - yk + 0.75 * yk * yk:
                    break
            k = min(yk * e_tot, t)
            t -= k
            stack, n = _push(stack, n, 0.0, k, x, y, z, ux, uy, uz)
        if t <= cut[0]:
            _deposit(t, x, y, z, geo, ecal, layer_dep, acc)
            if typ == 2.0:
                return _annihilate(stack, n, x, y, z, s, geo, cut, ecal, layer_dep, acc)
            return stack, n


@njit(cache=True)
def _shower(s, typ, t0, jitter, geo, cut, e_tab, e_par, g_tab, g_par, ecal, layer_dep, acc):
    """One shower from the front face; fills ecal (nx, ny, n_layers), layer_dep (n_layers,), acc (4,) in MeV."""
    x0 = y0 = 0.0
    if jitter > 0.0:
        # Box–Muller
        rr = jitter * math.sqrt(-2.0 * math.log(1.0 - _uniform(s)))
        ph = 2.0 * math.pi * _uniform(s)
        x0, y0 = rr * math.cos(ph), rr * math.sin(ph)
    stack = np.empty((256, 8))
    stack, n = _push(stack, 0, typ, t0, x0, y0, 0.0, 0.0, 0.0, 1.0)
    while n > 0:
        n -= 1
        p = stack[n]
        ptyp, t, x, y, z, ux, uy, uz = p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]
        if ptyp == 0.0:
            stack, n = _track_photon(stack, n, t, x, y, z, ux, uy, uz, s, geo, cut, g_tab, g_par, ecal, layer_dep,
                                     acc)
        elif t <= cut[0]:
            stack, n = _emit_charged(stack, n, ptyp, t, x, y, z, ux, uy, uz, s, geo, cut, ecal, layer_dep, acc)
        else:
            stack, n = _track_charged(stack, n, ptyp, t, x, y, z, ux, uy, uz, s, geo, cut, e_tab, e_par, ecal,
                                      layer_dep, acc)


# --------------------------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------------------------
def simulate_cascade(
    energies_gev: np.ndarray,
    geometry: SamplingCalorimeter,
    rng: np.random.Generator,
    cuts: CascadeCuts = CascadeCuts(),
    particle: str = "e-",
    progress: Callable[[int], object] | None = None,
) -> CaloShowers:
    """Simulate one analog EM shower per primary energy.

    energies_gev: (N,) primary kinetic energies (GeV), each in (0, 10⁴].
    geometry: the sampling calorimeter; the primary enters at (0, 0) on the front face along +z, moved by a
        Gaussian of σ = ``geometry.impact_jitter_mm`` in x and y when that is > 0.
    rng: the caller's generator; 4 × 64 bits are drawn per shower, so a given rng state gives identical showers.
    particle: "e-", "e+" or "gamma".
    progress: called as ``progress(n_done)`` after each shower, or None.

    Returns CaloShowers with ecal_gev (N, nx, ny, n_layers) float32 active-layer energy per cell, energy_gev (N,)
    float32 and tallies (float64 GeV unless noted): ``active_gev`` (N,), ``passive_gev`` (N,), ``leakage_gev`` (N,)
    (kinetic energy of everything leaving any face; escaping e+ with 2 m_e c²), ``layer_deposit_gev``
    (N, n_layers) active + passive per layer, and ``n_steps`` (N,) int64 tracking steps (the cost).
    active + passive + leakage = E0 (γ, e−) or E0 + 2 m_e c² (e+).
    """
    if particle not in PARTICLES:
        raise ValueError(f"particle must be one of {', '.join(PARTICLES)}, got {particle!r}")
    e = np.asarray(energies_gev, dtype=np.float64)
    if e.ndim != 1:
        raise ValueError(f"energies_gev must be a 1-D array, got shape {e.shape}")
    if e.size and not (np.all(np.isfinite(e)) and e.min() > 0 and e.max() * 1e3 <= _E_MAX_MEV):
        raise ValueError(f"energies_gev must be finite and in (0, {_E_MAX_MEV / 1e3:g}] GeV")
    if not isinstance(cuts, CascadeCuts):
        raise TypeError(f"cuts must be a CascadeCuts, got {type(cuts).__name__}")

    e_tab, e_par, g_tab, g_par = _kernel_tables(geometry.passive, geometry.active, cuts)
    g = geometry
    geo = np.array([g.passive_thickness_mm, g.active_thickness_mm, g.layer_thickness_mm, g.n_layers,
                    g.width_mm / 2, g.cell_size_mm, g.n_cells_xy, g.depth_mm, g.passive.x0_mm, g.active.x0_mm])
    cut = np.array([cuts.electron_cut_mev, cuts.photon_cut_mev, cuts.brems_threshold_mev, cuts.max_step_x0,
                    cuts.range_fraction, cuts.min_step_mm, float(cuts.active_soft_brems_local)])
    n = e.size
    seeds = rng.integers(0, 2**64, size=(n, 4), dtype=np.uint64)
    seeds[np.all(seeds == 0, axis=1), 0] = 1  # xoshiro's one forbidden state
    nc, nl = g.n_cells_xy, g.n_layers
    ecal = np.zeros((n, nc, nc, nl), dtype=np.float32)
    layer = np.zeros((n, nl))
    acc = np.zeros((n, 4))
    cell = np.zeros((nc, nc, nl))
    typ = float(PARTICLES[particle])
    for i in range(n):
        cell[:] = 0.0
        _shower(seeds[i], typ, e[i] * 1e3, float(g.impact_jitter_mm), geo, cut, e_tab, e_par, g_tab, g_par,
                cell, layer[i], acc[i])
        ecal[i] = cell * 1e-3
        if progress is not None:
            progress(i + 1)
    return CaloShowers(
        ecal_gev=ecal,
        energy_gev=e.astype(np.float32),
        tallies={
            "active_gev": acc[:, 0] * 1e-3,
            "passive_gev": acc[:, 1] * 1e-3,
            "leakage_gev": acc[:, 2] * 1e-3,
            "layer_deposit_gev": layer * 1e-3,
            "n_steps": acc[:, 3].astype(np.int64),
        },
    )
