"""``hpcgen validate calo|cosmo|ising``: open and check two data files, then compare them (hpcgen.jobs.validate_calo,
hpcgen.jobs.validate_cosmo, hpcgen.jobs.validate_ising)."""

from __future__ import annotations

import math
from pathlib import Path

from hpcgen.data.calo_file import open_calo
from hpcgen.data.cosmo_file import open_cosmo, read_pm_limits
from hpcgen.data.ising_file import open_ising
from hpcgen.errors import UserError


class _Head:
    """The first ``n`` samples of an h5py dataset, still read lazily slice by slice (no full load)."""

    def __init__(self, ds, n: int) -> None:
        self.ds, self.shape = ds, (n, *ds.shape[1:])

    def __getitem__(self, sl: slice):
        start, stop, _ = sl.indices(self.shape[0])
        return self.ds[start:stop]


def _make_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out: cannot create directory {out_dir} ({exc.strerror})") from None


def fidelity_config(*, resamples: int, bins: int, seeds: int, folds: int, hidden: int | None, low_level: bool,
                    per_energy_classifier: bool, cross_check: bool, seed: int):
    """The :class:`hpcgen.fidelity.calo.FidelityConfig` of ``hpcgen validate calo``'s flags; a bad value is a
    one-line error naming its flag."""
    from hpcgen.fidelity.calo import FidelityConfig
    from hpcgen.fidelity.classifier import ClassifierConfig

    for flag, value, lo in (("--resamples", resamples, 1), ("--bins", bins, 2), ("--classifier-seeds", seeds, 1),
                            ("--folds", folds, 3), ("--classifier-hidden", 1 if hidden is None else hidden, 1)):
        if value < lo:
            raise UserError(f"{flag}: expected >= {lo}, got {value}")
    classifier = ClassifierConfig(seeds=seeds, folds=folds, **({} if hidden is None else {"hidden": hidden}))
    return FidelityConfig(bins=bins, resamples=resamples, classifier_resamples=resamples, classifier=classifier, cross_check=cross_check,
                          low_level=low_level, per_energy_classifier=per_energy_classifier, seed=seed)


def validate_calo_files(ref: Path, test: Path, out_dir: Path, max_showers: int = 0, config=None, warn=None) -> dict:
    import numpy as np

    with open_calo(ref) as r, open_calo(test) as t:
        if r.geometry.shape != t.geometry.shape or r.geometry.to_dict() != t.geometry.to_dict():
            raise UserError(f"{test}: geometry {t.geometry.name} {t.geometry.shape} differs from {ref}'s "
                            f"{r.geometry.name} {r.geometry.shape}; compare showers of one calorimeter")
        nr = min(len(r), max_showers) if max_showers else len(r)
        nt = min(len(t), max_showers) if max_showers else len(t)
        e_ref, e_test = np.asarray(r.energy_gev[:nr]), np.asarray(t.energy_gev[:nt])
        common = np.intersect1d(np.unique(e_ref), np.unique(e_test))
        if np.unique(e_ref).size <= 32 and np.unique(e_test).size <= 32 and common.size == 0:
            raise UserError(f"{test}: primary energies {_energies(e_test)} share none with {ref}'s {_energies(e_ref)}")
        _make_out_dir(out_dir)
        from hpcgen.fidelity.calo import FidelityConfig
        from hpcgen.jobs.validate_calo import validate_calo

        try:
            return validate_calo(
                _Head(r.ecal, nr), e_ref, _Head(t.ecal, nt), e_test, r.geometry, out_dir,
                ref_label=r.generator, test_label=t.generator, ref_name=str(ref), test_name=str(test),
                config=config or FidelityConfig(), warn=warn)
        except ValueError as exc:
            raise UserError(f"{ref} vs {test}: {exc}") from None


def _energies(e) -> str:
    import numpy as np

    return "{" + ", ".join(f"{v:g}" for v in np.unique(e)) + "} GeV"


def validate_cosmo_files(ref: Path, test: Path, out_dir: Path, max_maps: int = 0,
                         smoothing_arcmin: float | None = None) -> dict:
    """Validate two ``hpcgen.cosmo/1`` files; a file's optional ``pm_*`` attributes (a PM run's shot noise and
    resolved ℓ range) become its ``GeneratorLimits``. ``smoothing_arcmin`` None = validate_cosmo's default."""
    with open_cosmo(ref) as r, open_cosmo(test) as t:
        (h, w), (th, tw) = r.image_shape, t.image_shape
        if h != w:
            raise UserError(f"{ref}: maps are {h}×{w} pixels; validation needs square maps")
        if (th, tw) != (h, w):
            raise UserError(f"{test}: maps are {th}×{tw} pixels but the reference's are {h}×{w}; compare maps of one size")
        arcmin = float(r.attrs["pixel_arcmin"]), float(t.attrs["pixel_arcmin"])
        if not math.isclose(*arcmin, rel_tol=1e-6):
            raise UserError(f"{test}: pixel_arcmin is {arcmin[1]:.6g} but the reference's is {arcmin[0]:.6g}; "
                            "compare maps of one pixel scale")
        nr = min(len(r), max_maps) if max_maps else len(r)
        nt = min(len(t), max_maps) if max_maps else len(t)
        for path, n in ((ref, nr), (test, nt)):
            if n < 2:
                raise UserError(f"{path}: {n} map(s) to compare; validation needs at least 2 per file")
        _make_out_dir(out_dir)
        from hpcgen.fidelity.cosmo import DEFAULT_SMOOTHING_ARCMIN, GeneratorLimits
        from hpcgen.jobs.validate_cosmo import validate_cosmo

        smoothing = DEFAULT_SMOOTHING_ARCMIN if smoothing_arcmin is None else float(smoothing_arcmin)
        if not (math.isfinite(smoothing) and smoothing >= 0):
            raise UserError(f"--smoothing-arcmin: expected a Gaussian σ >= 0 arcmin, got {smoothing_arcmin}")
        limits = [None if d is None else GeneratorLimits(**d)
                  for d in (read_pm_limits(r.attrs), read_pm_limits(t.attrs))]
        try:
            return validate_cosmo(
                _Head(r.kappa, nr), _Head(t.kappa, nt), math.radians(arcmin[0] / 60.0), out_dir,
                ref_label=str(r.attrs["generator"]), test_label=str(t.attrs["generator"]), ref_name=str(ref),
                test_name=str(test), ref_limits=limits[0], test_limits=limits[1], smoothing_arcmin=smoothing)
        except ValueError as exc:
            if "smoothing_arcmin" in str(exc):
                raise UserError(f"--smoothing-arcmin: {exc}") from None
            raise


def ising_fidelity_config(*, resamples: int, bootstrap: int, max_configs: int, seeds: int, folds: int,
                          classifier_resamples: int, hidden: int | None, classifier: bool, seed: int):
    """The :class:`hpcgen.fidelity.ising.IsingFidelityConfig` of ``hpcgen validate ising``'s flags; a bad value is a
    one-line error naming its flag."""
    from hpcgen.fidelity.classifier import ClassifierConfig
    from hpcgen.fidelity.ising import IsingFidelityConfig

    for flag, value, lo in (("--resamples", resamples, 1), ("--bootstrap", bootstrap, 2),
                            ("--max-configs", max_configs, 0), ("--classifier-seeds", seeds, 1), ("--folds", folds, 3),
                            ("--classifier-resamples", classifier_resamples, 1),
                            ("--classifier-hidden", 1 if hidden is None else hidden, 1)):
        if value < lo:
            raise UserError(f"{flag}: expected >= {lo}, got {value}")
    ccfg = ClassifierConfig(seeds=seeds, folds=folds, **({} if hidden is None else {"hidden": hidden}))
    return IsingFidelityConfig(resamples=resamples, bootstrap=bootstrap, max_configs=max_configs, classifier=ccfg,
                               classifier_resamples=classifier_resamples, classifier_enabled=classifier, seed=seed)


def validate_ising_files(ref: Path, test: Path, out_dir: Path, config=None, plots: bool = True, warn=None) -> dict:
    """Validate two ``hpcgen.ising/1`` files (opened with validation: schema, int8 spins of exactly ±1, one L) at
    the temperatures both hold, matched exactly as stored. Every check runs before ``out_dir`` is created."""
    from hpcgen.fidelity.ising import shared_temperatures, temperature_list

    with open_ising(ref) as r, open_ising(test) as t:
        if t.L != r.L:
            raise UserError(f"{test}: configurations are {t.L}x{t.L} spins but the reference's ({ref}) are "
                            f"{r.L}x{r.L}; compare samples of one lattice size L")
        if shared_temperatures(r.temperature, t.temperature).size == 0:
            raise UserError(f"{test}: temperatures {temperature_list(t.temperature)} share none with {ref}'s "
                            f"{temperature_list(r.temperature)} (matched exactly, as stored); compare samples "
                            "at common temperatures")
        _make_out_dir(out_dir)
        from hpcgen.fidelity.ising import IsingFidelityConfig
        from hpcgen.jobs.validate_ising import validate_ising

        try:
            return validate_ising(
                r.spins, r.temperature, t.spins, t.temperature, out_dir, ref_label=str(r.attrs["generator"]),
                test_label=str(t.attrs["generator"]), ref_name=str(ref), test_name=str(test),
                ref_algorithm=str(r.attrs["algorithm"]), test_algorithm=str(t.attrs["algorithm"]),
                config=config or IsingFidelityConfig(), plots=plots, warn=warn)
        except ValueError as exc:
            raise UserError(f"{ref} vs {test}: {exc}") from None
