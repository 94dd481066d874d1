"""``hpcgen simulate ising``: 2D Ising configurations at a list of temperatures, sharded over MPI ranks.

``--n`` is the number of configurations **per temperature**; the file holds n·n_T of them in temperature order
(global index g = t·n + j), split over the ranks in contiguous blocks by ``hpcgen.jobs.sharded_run``. Each rank
runs one chain for every temperature its block touches, with the stream ``stream(seed, rank, t)``: every chain at
every temperature has its own stream. Same seed and rank count → identical file; ``--shard K/M`` writes exactly
what rank K of an M-rank run writes.

Before any configuration is kept, a pilot chain per temperature (``hpcgen.sim.ising.pilot_run``, the stream
``stream(seed, PILOT_STREAM, t)``, independent of the rank count; the pilots are shared out over the ranks and
their results summed; a ``--shard`` process runs them all itself and gets the same numbers) measures τ_int of the
energy and of |m| in sweeps. They go into the file's attributes and set, per temperature:

- ``--thin auto``: thin = ⌈2·max(τ_E, τ_|M|)⌉ sweeps between kept configurations (``thin_from_tau``);
  ``--thin K``: K sweeps at every temperature.
- ``--thermalise auto``: max(1000, ⌈20·max(τ_E, τ_|M|)⌉) sweeps discarded at the start of every chain (cold start);
  ``--thermalise K``: K sweeps.
- Wolff: the clusters per sweep r that the pilot calibrated (``hpcgen.sim.ising``), so that τ_int and thin are in
  the same sweeps in the pilot and in every production chain; recorded as ``wolff_clusters_per_sweep``.

See docs/ising.md.
"""

from __future__ import annotations

import math
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpcgen.config import check_sample_run
from hpcgen.data.ising_file import ising_attrs, ising_specs
from hpcgen.data.sharded import ShardSlot
from hpcgen.dist.world import World
from hpcgen.errors import UserError
from hpcgen.jobs.sharded_run import GenerationFailed, placement, prepare_output, run_sharded, split_counts
from hpcgen.seeding import stream

ISING_ALGORITHMS = ("metropolis", "wolff")  # hpcgen.sim.ising.ALGORITHMS, spelt out so that validating needs no numba
MIN_L = 4
THERMALISE_MIN_SWEEPS = 1000
THERMALISE_TAUS = 20
PILOT_STREAM = 2**32 - 1  # stream(seed, PILOT_STREAM, t): never a rank's stream
_AUTO = "auto"


@dataclass(frozen=True)
class TemperatureSpec:
    """Temperatures in J/k_B, parsed from ``A:B:K`` (K evenly spaced values from A to B, ``numpy.linspace``) or
    ``T1,T2,...`` (in that order; ``Tc`` stands for the exact critical temperature 2/ln(1 + √2))."""

    values: tuple[float, ...]
    text: str = ""

    @classmethod
    def parse(cls, text: str, flag: str = "--temperatures") -> TemperatureSpec:
        allowed = (f"{flag}: expected A:B:K (K >= 2 evenly spaced temperatures from A to B) or T1,T2,... (Tc = the "
                   "critical temperature), temperatures > 0 in units of J/k_B")
        t = str(text).strip()
        try:
            if ":" in t:
                parts = t.split(":")
                if len(parts) != 3:
                    raise ValueError
                a, b, k = float(parts[0]), float(parts[1]), int(parts[2])
                if k < 2 or not a < b:
                    raise UserError(f"{allowed} and A < B, got {text!r}")
                values = tuple(float(v) for v in np.linspace(a, b, k))
            else:
                values = tuple(_critical_temperature() if p.strip().lower() == "tc" else float(p) for p in t.split(","))
        except ValueError:
            raise UserError(f"{allowed}, got {text!r}") from None
        if not values or not all(math.isfinite(v) and v > 0 for v in values):
            raise UserError(f"{allowed}, got {text!r}")
        return cls(values, t)


def _critical_temperature() -> float:
    return 2.0 / math.log(1.0 + math.sqrt(2.0))  # hpcgen.physics.ising_exact.T_C (no scipy import here)


def _sweeps(value, flag: str, minimum: int, what: str) -> int | str:
    """``auto`` or an integer >= minimum (from an int or its text)."""
    if value == _AUTO:
        return _AUTO
    try:
        k = int(value) if not isinstance(value, float) else None
    except (TypeError, ValueError):
        k = None
    if k is None or k < minimum:
        raise UserError(f"{flag}: expected auto or {what} >= {minimum}, got {value!r}")
    return k


@dataclass(frozen=True)
class SimulateIsingConfig:
    algorithm: str
    L: int
    temperatures: TemperatureSpec
    n: int  # configurations per temperature
    seed: int
    out: Path
    thin: int | str = _AUTO  # sweeps between kept configurations, or "auto" (⌈2 τ_int⌉ from the pilot)
    thermalise: int | str = _AUTO  # sweeps discarded per chain, or "auto" (max(1000, ⌈20 τ_int⌉))
    pilot_sweeps: int = 4096  # first pilot segment; doubled until τ_int is reliable
    pilot_max_sweeps: int = 1 << 20
    chunk: int = 0
    overwrite: bool = False
    progress: bool = True
    shard: ShardSlot | None = None  # write only this shard (a Slurm array task); merge later

    def __post_init__(self) -> None:
        if self.algorithm not in ISING_ALGORITHMS:
            raise UserError(f"--algorithm: expected one of {', '.join(ISING_ALGORITHMS)}, got {self.algorithm!r}")
        if not isinstance(self.L, (int, np.integer)) or self.L < MIN_L:
            raise UserError(f"--L: expected a lattice side (spins per row) >= {MIN_L}, got {self.L}")
        object.__setattr__(self, "thin", _sweeps(self.thin, "--thin", 1, "a number of sweeps"))
        object.__setattr__(self, "thermalise", _sweeps(self.thermalise, "--thermalise", 0, "a number of sweeps"))
        if self.pilot_sweeps < 16:
            raise UserError(f"--pilot-sweeps: expected a number of sweeps >= 16, got {self.pilot_sweeps}")
        if self.pilot_max_sweeps < self.pilot_sweeps:
            raise UserError(f"--pilot-max-sweeps: expected >= --pilot-sweeps ({self.pilot_sweeps}), got "
                            f"{self.pilot_max_sweeps}")
        check_sample_run(self.n, self.seed, self.chunk, self.out, "configurations per temperature")

    @property
    def chunk_size(self) -> int:
        return self.chunk or 64


def _pilots(cfg: SimulateIsingConfig, world: World, shard: bool) -> np.ndarray:
    """(n_T, 7) array of τ_E, σ(τ_E), τ_|M|, σ(τ_|M|), pilot sweeps, reliable, Wolff clusters per sweep (0 for
    Metropolis) — the same on every rank."""
    from hpcgen.sim.ising import pilot_run

    temps = cfg.temperatures.values
    rank, size = (0, 1) if shard else (world.rank, world.size)
    mine = [t for t in range(len(temps)) if t % size == rank]
    table = np.zeros((len(temps), 7))
    bar = None
    if cfg.progress and world.rank == 0 and mine:
        from tqdm import tqdm

        bar = tqdm(total=len(mine), unit="T", desc=f"pilot τ_int {cfg.algorithm} L={cfg.L}"
                   + (f" (rank 0's share of x{size} ranks)" if size > 1 else ""),
                   file=sys.stderr, mininterval=0.5, dynamic_ncols=True)
    failed = False
    therm = THERMALISE_MIN_SWEEPS if cfg.thermalise == _AUTO else cfg.thermalise
    try:
        for t in mine:
            p = pilot_run(cfg.algorithm, cfg.L, temps[t], stream(cfg.seed, PILOT_STREAM, t), thermalise=therm,
                          min_sweeps=cfg.pilot_sweeps, max_sweeps=cfg.pilot_max_sweeps)
            table[t] = (p.tau_energy.tau, p.tau_energy.error, p.tau_abs_magnetisation.tau,
                        p.tau_abs_magnetisation.error, p.sweeps, float(p.reliable), p.clusters_per_sweep or 0.0)
            if bar is not None:
                bar.update(1)
    except Exception:  # reported here, then agreed on collectively below
        failed = True
        print(f"hpcgen: rank {world.rank}: pilot run failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
    finally:
        if bar is not None:
            bar.close()
    if shard:
        if failed:
            raise GenerationFailed("the pilot run failed; no output written")
        return table
    summed = np.asarray(world.allreduce_sum([*table.ravel().tolist(), float(failed)]))
    if summed[-1]:
        raise GenerationFailed(f"{int(summed[-1])} of {world.size} ranks failed in the pilot run; no output written")
    return summed[:-1].reshape(table.shape)


def simulate_ising(cfg: SimulateIsingConfig, world: World) -> Path:
    """Write ``cfg.n`` configurations per temperature over ``world``; returns the merged file's path (every rank)."""
    from hpcgen.physics.autocorrelation import thin_from_tau
    from hpcgen.sim.ising import SWEEP_DEFINITIONS, IsingChain

    index, size = placement(world, cfg.shard)
    prepare_output(cfg.out, cfg.overwrite, world, cfg.shard)
    temps = np.asarray(cfg.temperatures.values, dtype=np.float64)
    pilot = _pilots(cfg, world, cfg.shard is not None)
    tau_max = np.maximum(pilot[:, 0], pilot[:, 2])
    thin = [thin_from_tau(tau) if cfg.thin == _AUTO else cfg.thin for tau in tau_max]
    therm = [max(THERMALISE_MIN_SWEEPS, math.ceil(THERMALISE_TAUS * tau)) if cfg.thermalise == _AUTO
             else cfg.thermalise for tau in tau_max]
    if world.rank == 0:
        for t in np.nonzero(pilot[:, 5] == 0)[0]:
            print(f"hpcgen: warning: T={temps[t]:.6g}: τ_int not reliable after a pilot of {int(pilot[t, 4])} sweeps "
                  f"(τ_E {pilot[t, 0]:.3g}, τ_|M| {pilot[t, 2]:.3g}; raise --pilot-max-sweeps); thin {thin[t]} "
                  "may be too small", file=sys.stderr, flush=True)
    wolff = cfg.algorithm == "wolff"
    extra = {"wolff_clusters_per_sweep": pilot[:, 6].copy()} if wolff else {}
    attrs = ising_attrs(cfg.algorithm, cfg.L, cfg.seed, temps, thin, therm, pilot[:, 0], pilot[:, 1], pilot[:, 2],
                        pilot[:, 3], pilot[:, 4].astype(np.int64), pilot[:, 5] > 0,
                        sweep_definition=SWEEP_DEFINITIONS[cfg.algorithm], samples_per_temperature=int(cfg.n),
                        temperature_spec=cfg.temperatures.text, thin_rule="auto: ceil(2 max(tau_E, tau_absM))"
                        if cfg.thin == _AUTO else f"fixed {cfg.thin}", world_size=size, **extra)
    offset = sum(split_counts(cfg.n * len(temps), size)[:index])
    chains: dict[int, IsingChain] = {}

    def produce(start: int, count: int) -> dict:
        t_of = (offset + start + np.arange(count)) // cfg.n
        spins = []
        for t in np.unique(t_of):
            t = int(t)
            if t not in chains:
                chains.clear()  # temperatures come in order: earlier chains are done
                chains[t] = IsingChain(cfg.algorithm, cfg.L, float(temps[t]), stream(cfg.seed, index, t),
                                       clusters_per_sweep=float(pilot[t, 6]) if wolff else None)
                chains[t].thermalise(therm[t])
            spins.append(chains[t].sample(int((t_of == t).sum()), thin[t]).spins)
        return {"spins": np.concatenate(spins), "temperature": temps[t_of]}

    return run_sharded(cfg.out, cfg.n * len(temps), world, ising_specs(cfg.L), attrs, produce, cfg.chunk_size,
                       cfg.progress, desc=f"ising {cfg.algorithm} L={cfg.L}", unit="config", slot=cfg.shard)
