"""The main job, ``mpirun -n 2 hpcgen demo``: Monte Carlo → GAN training → generation → validation → throughput
at fidelity → one report, on a laptop-sized budget.

Steps (every rank takes part; files and reports come from rank 0):
1. simulate calorimeter showers with the detailed cascade (the reference) and GFlash (tuned to it), sharded over
   the ranks;
2. train the calorimeter GAN data-parallel (DDP) on the cascade set: continue the shipped checkpoint
   (benchmarks/results/calo_gan, trained on 2 ranks on cascade showers to the fidelity in its PROVENANCE.txt) when
   it is present and the job has 2 ranks, else train from scratch — a few CPU minutes cannot train a GAN, which is
   why the shipped checkpoint exists;
3. generate GAN showers into the Monte Carlo schema and validate GFlash and the GAN against the cascade;
4. measure samples/s of cascade, GFlash and the GAN at each energy with their fidelity (``hpcgen bench
   throughput``), and write ``report/report.md`` from the result files alone (``hpcgen report``).

``--domain cosmo`` runs the same steps on weak-lensing κ maps (PM, lognormal, CosmoGAN); ``--domain ising`` on the
2D Ising model at L = 32 (``--tiny``: 16): Metropolis reference configurations over a few temperatures, the Ising GAN
trained with DDP (continuing benchmarks/results/ising_gan when it exists, holds a GAN of that L and the job has 2
ranks, else from scratch), generated,
validated against the reference, and the independent-samples throughput of Metropolis, Wolff and the GAN with
their fidelity.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

from hpcgen.errors import UserError

SHIPPED_CHECKPOINT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "calo_gan"
# An Ising GAN trained on 2 ranks on Metropolis configurations at L = 16 (none ships yet; used when present)
SHIPPED_ISING_CHECKPOINT = SHIPPED_CHECKPOINT.parent / "ising_gan"


@dataclasses.dataclass
class DemoConfig:
    """``hpcgen demo``. ``tiny`` shrinks every step to a smoke run (CI)."""

    out: Path = Path("demo-out")
    tiny: bool = False
    seed: int = 7
    domain: str = "calo"

    @property
    def sizes(self) -> dict:
        if self.tiny:
            return {"n": 100, "energies": "10,50", "steps": 2, "gan_n": 100, "tp_energies": (10.0, 50.0),
                    "gan_batches": (1, 16), "seconds": 0.2, "repeats": 2, "fidelity_n": 20, "max_seconds": 0.5}
        return {"n": 1000, "energies": "10,50,100,200", "steps": 10, "gan_n": 1000,
                "tp_energies": (10.0, 50.0, 100.0, 200.0, 500.0), "gan_batches": (1, 16, 64, 256), "seconds": 0.5,
                "repeats": 3, "fidelity_n": 100, "max_seconds": 5.0}


def run_demo(cfg: DemoConfig, world, log=print) -> Path:
    """Run every step; returns the report path (on every rank).

    A bad input seen by one rank only would leave the others waiting in a barrier, so under MPI any error here
    prints on the rank that saw it and aborts the job.
    """
    try:
        runs = {"cosmo": _run_demo_cosmo, "ising": _run_demo_ising}
        return runs.get(cfg.domain, _run_demo)(cfg, world, log)
    except Exception as exc:
        if world.size > 1:
            import sys

            what = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            print(f"hpcgen: error on rank {world.rank}: {what}", file=sys.stderr, flush=True)
            world.abort(2 if isinstance(exc, UserError) else 1)
        raise


class _Pipeline:
    """What both demos share: timed steps with a barrier around each, a DDP training run, validation against the
    reference Monte Carlo, and the closing report (rank 0 writes and prints)."""

    def __init__(self, world, log, out: Path):
        self.world, self.log, self.out = world, log, out
        self.t_start = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)  # on every rank: each validates its output path

    def step(self, name: str, fn):
        self.world.barrier()
        t0 = time.perf_counter()
        if self.world.rank == 0:
            self.log(f"== {name}")
        result = fn()
        self.world.barrier()
        if self.world.rank == 0:
            self.log(f"   {name}: {time.perf_counter() - t0:.1f} s")
        return result

    def train(self, tcfg) -> dict:
        from hpcgen.dist.engine import make_engine
        from hpcgen.train.loop import open_training_data, train

        opened = open_training_data(tcfg)
        engine = make_engine("ddp", device="cpu", timeout_s=300.0)
        try:
            return train(tcfg, engine, opened)
        finally:
            engine.close()

    def train_gan(self, shipped: Path | None, what: str, scratch_batch: int, **train_options) -> dict:
        """Train ``what`` data-parallel into ``out/run``: continue the shipped checkpoint ``shipped`` by
        ``train_options["steps"]`` steps when it can be resumed (it was written by 2 ranks; its batch size), else
        (or with ``shipped=None``) from scratch at ``scratch_batch``. Returns the last metrics."""
        from hpcgen.config import TrainConfig
        from hpcgen.train.checkpoint import load_checkpoint

        run_dir = self.out / "run"
        fine_tune = shipped is not None and self.world.size == 2 and (shipped / "checkpoint.pt").exists()
        shipped_step, batch = 0, scratch_batch
        if self.world.rank == 0:
            if run_dir.exists():
                shutil.rmtree(run_dir)
            if fine_tune:
                shutil.copytree(shipped, run_dir)
                ckpt = load_checkpoint(run_dir)
                shipped_step, batch = int(ckpt["step"]), int(ckpt["config"]["batch_size"])
        shipped_step, batch = self.world.bcast((shipped_step, batch))
        steps = train_options.pop("steps")
        tcfg = TrainConfig(out=run_dir, engine="ddp", batch_size=batch, steps=shipped_step + steps, resume=fine_tune,
                           progress=False, checkpoint_every=10**6, **train_options)
        last = self.step(f"train the {what} (DDP)", lambda: self.train(tcfg))
        if self.world.rank == 0:
            how = (f"fine-tuned the shipped checkpoint {shipped.name} from step {shipped_step}" if fine_tune
                   else "from scratch")
            self.log(f"   {how} to step {last['step']}: {last.get('samples_per_s_total', float('nan')):.2f} "
                     f"samples/s on {self.world.size} ranks")
        return last

    def validate(self, validate_files, reference: str, tests: tuple[str, ...]) -> list[Path]:
        """``hpcgen validate`` of every test file against the reference, on rank 0, one timed step each."""
        reports = []
        for test in tests:
            out = self.out / f"validation_{test}"

            def run(test=test, out=out) -> None:
                if self.world.rank == 0:
                    validate_files(self.out / f"{reference}.h5", self.out / f"{test}.h5", out)

            self.step(f"validate {test} vs {reference}", run)
            reports.append(out / "report.md")
        return reports

    def finish(self, result: dict | None, headline, reports: list[Path]) -> Path:
        report = self.out / "report" / "report.md"
        if self.world.rank == 0:
            from hpcgen.bench.report import render_report

            render_report([self.out / "throughput.json"], self.out / "report")
            self.log("")
            for line in headline(result):
                self.log(line)
            self.log(f"validation: {', '.join(str(p) for p in reports)}")
            self.log(f"report: {report}  (demo wall time {time.perf_counter() - self.t_start:.0f} s on "
                     f"{self.world.size} ranks)")
        return report


def _run_demo(cfg: DemoConfig, world, log) -> Path:
    from hpcgen.bench.throughput import CaloThroughputConfig, headline, run_calo_throughput
    from hpcgen.config import EnergySpec, SimulateCaloConfig
    from hpcgen.jobs.generate import GenerateConfig, generate
    from hpcgen.jobs.simulate_calo import simulate_calo
    from hpcgen.jobs.validate_files import validate_calo_files

    s, out = cfg.sizes, Path(cfg.out)
    pipe = _Pipeline(world, log, out)
    energy = EnergySpec.parse(s["energies"])
    for gen in ("cascade", "gflash"):
        sim_cfg = SimulateCaloConfig(generator=gen, n=s["n"], energy=energy, seed=cfg.seed, out=out / f"{gen}.h5",
                                     overwrite=True, progress=False, gflash_tune="cascade" if gen == "gflash" else None)
        pipe.step(f"simulate {gen}: {s['n']} showers at {s['energies']} GeV on {world.size} ranks",
                  lambda c=sim_cfg: simulate_calo(c, world))
    run_dir = out / "run"
    # the shipped checkpoint continued on the demo's cascade showers (its recipe and batch size), else from scratch
    pipe.train_gan(SHIPPED_CHECKPOINT, "calorimeter GAN", 4, domain="calo", data=out / "cascade.h5", seed=cfg.seed,
                   steps=s["steps"])
    pipe.step(f"generate {s['gan_n']} GAN showers", lambda: generate(
        GenerateConfig(checkpoint=run_dir, n=s["gan_n"], out=out / "gan.h5", energy=energy, seed=cfg.seed,
                       overwrite=True, progress=False), world))
    reports = pipe.validate(validate_calo_files, "cascade", ("gflash", "gan"))
    tp_cfg = CaloThroughputConfig(out=out / "throughput.json", checkpoint=run_dir, energies_gev=s["tp_energies"],
                                  gan_batches=s["gan_batches"], seconds=s["seconds"], repeats=s["repeats"],
                                  fidelity_n=s["fidelity_n"], seed=cfg.seed, max_seconds=s["max_seconds"])
    result = pipe.step("throughput at fidelity", lambda: run_calo_throughput(tp_cfg, world, log=lambda line: None))
    return pipe.finish(result, headline, reports)


def check_domain(domain: str) -> None:
    if domain not in ("calo", "cosmo", "ising"):
        raise UserError(f"--domain: expected calo, cosmo or ising, got {domain!r}")


# The full demo's PM reference (docs/cosmo_validation.md, "The demo's reference"): 64³ particles, so that the particle
# shot noise stays below 10 % of the signal up to ℓ ≈ 700 (32³ particles: 8× the noise, only ℓ < 122 valid), and
# lens planes of 128² cells (2 Mpc) rather than the default 2·n_m = 256² (1 Mpc): the 64² maps' 3.3′ pixels span
# 1.7 Mpc at the lensing-weighted distance, and sampling a finer plane grid at the pixel centres folds its noise
# into the map (2.7× the Poisson level with 256², 0.8× with 128², at equal C_ℓ signal). None = PMConfig's default.
COSMO_SIZES = {
    True: {"pixels": 32, "particles": 16, "plane_mesh": None, "n_pm": 8, "n_lognormal": 64, "steps": 2, "gan_n": 8,
           "gan_batches": (1, 4), "seconds": 0.2, "repeats": 2, "fidelity_n": 4},
    False: {"pixels": 64, "particles": 64, "plane_mesh": 128, "n_pm": 32, "n_lognormal": 512, "steps": 30,
            "gan_n": 64, "gan_batches": (1, 4, 16, 64), "seconds": 0.5, "repeats": 3, "fidelity_n": 16},
}


def _run_demo_cosmo(cfg: DemoConfig, world, log) -> Path:
    """The κ-map pipeline: PM (reference) and lognormal maps, CosmoGAN trained from scratch on the lognormal set
    (no trained CosmoGAN ships with hpcgen, and minutes of CPU cannot train one: its fidelity numbers say so),
    generation, validation against PM, throughput at fidelity and the report."""
    from hpcgen.bench.throughput_cosmo import CosmoThroughputConfig, headline, run_cosmo_throughput
    from hpcgen.jobs.generate import GenerateConfig, generate
    from hpcgen.jobs.simulate_cosmo import SimulateCosmoConfig, simulate_cosmo
    from hpcgen.jobs.validate_files import validate_cosmo_files
    from hpcgen.sim.cosmo_pm import PMConfig, check_pm_config
    from hpcgen.sim.cosmo_spec import CosmoMapSpec

    s, out = COSMO_SIZES[cfg.tiny], Path(cfg.out)
    pipe = _Pipeline(world, log, out)
    spec = CosmoMapSpec(pixels=s["pixels"])
    pm = PMConfig(n_particles_side=s["particles"], plane_mesh_side=s["plane_mesh"])
    check_pm_config(spec, pm)
    for gen, n, pm_cfg in (("pm", s["n_pm"], pm), ("lognormal", s["n_lognormal"], None)):
        sim = SimulateCosmoConfig(generator=gen, n=n, seed=cfg.seed, out=out / f"{gen}.h5", spec=spec, pm=pm_cfg,
                                  overwrite=True, progress=False)
        pipe.step(f"simulate {gen}: {n} maps of {s['pixels']}² on {world.size} ranks",
                  lambda c=sim: simulate_cosmo(c, world))
    run_dir = out / "run"
    # from scratch: the demo's 64² maps are not what a shipped CosmoGAN (128²) was trained on
    pipe.train_gan(None, "CosmoGAN", 4, domain="cosmo", data=out / "lognormal.h5", seed=cfg.seed, steps=s["steps"])
    pipe.step(f"generate {s['gan_n']} GAN maps", lambda: generate(
        GenerateConfig(checkpoint=run_dir, n=s["gan_n"], out=out / "gan.h5", seed=cfg.seed, overwrite=True,
                       progress=False), world))
    reports = pipe.validate(validate_cosmo_files, "pm", ("lognormal", "gan"))
    tp = CosmoThroughputConfig(out=out / "throughput.json", checkpoint=run_dir, pm_particles_side=s["particles"],
                               pm_plane_mesh=s["plane_mesh"], gan_batches=s["gan_batches"], seconds=s["seconds"],
                               repeats=s["repeats"], fidelity_n=s["fidelity_n"], seed=cfg.seed)
    result = pipe.step("throughput at fidelity", lambda: run_cosmo_throughput(tp, world, log=lambda line: None))
    return pipe.finish(result, headline, reports)


# The Ising demo at L = 16 (a multiple of 4: the DCGAN's lattice). T_c ≈ 2.269 is where Metropolis slows down most.
ISING_SIZES = {
    True: {"L": 16, "temperatures": "2.0,Tc,3.0", "n": 64, "steps": 2, "gan_n": 32, "tp_temperatures": (2.0, 3.0),
           "gan_batches": (1, 16), "seconds": 0.05, "repeats": 2, "max_seconds": 0.3, "tau_min_sweeps": 256,
           "fidelity_n": 16, "classifier": False},
    False: {"L": 32, "temperatures": "1.8,2.1,Tc,2.5,3.0", "n": 1000, "steps": 100, "gan_n": 500,
            "tp_temperatures": (1.8, 2.1, 2.269185314213022, 2.5, 3.0), "gan_batches": (1, 16, 64, 256),
            "seconds": 0.3, "repeats": 3, "max_seconds": 3.0, "tau_min_sweeps": 4096, "fidelity_n": 200,
            "classifier": True},
}


def _shipped_ising_for(L: int) -> Path | None:
    """The shipped Ising checkpoint when it exists and was trained on L×L lattices (a GAN only generates its own L),
    else None (train from scratch)."""
    from hpcgen.train.checkpoint import load_checkpoint

    if not (SHIPPED_ISING_CHECKPOINT / "checkpoint.pt").exists():
        return None
    side = load_checkpoint(SHIPPED_ISING_CHECKPOINT).get("model_options", {}).get("L")
    return SHIPPED_ISING_CHECKPOINT if side == L else None


def _ising_validator(classifier: bool):
    """``validate ising`` of the demo: the default settings, the classifier only in the full demo."""
    from hpcgen.jobs.validate_files import ising_fidelity_config, validate_ising_files

    config = ising_fidelity_config(resamples=20, bootstrap=50, max_configs=0 if classifier else 200, seeds=1, folds=3,
                                   classifier_resamples=3, hidden=None, classifier=classifier, seed=0)
    return lambda ref, test, out: validate_ising_files(ref, test, out, config=config, plots=True)


def _run_demo_ising(cfg: DemoConfig, world, log) -> Path:
    """Metropolis reference at L = 16, the Ising GAN (DDP), generation, validation against the reference,
    independent samples/s at fidelity of Metropolis, Wolff and the GAN, and the report."""
    from hpcgen.bench.throughput_ising import IsingThroughputConfig, headline, run_ising_throughput
    from hpcgen.jobs.generate import GenerateConfig, generate
    from hpcgen.jobs.simulate_ising import SimulateIsingConfig, TemperatureSpec, simulate_ising

    s, out = ISING_SIZES[cfg.tiny], Path(cfg.out)
    pipe = _Pipeline(world, log, out)
    temps = TemperatureSpec.parse(s["temperatures"])
    sim = SimulateIsingConfig(algorithm="metropolis", L=s["L"], temperatures=temps, n=s["n"], seed=cfg.seed,
                              out=out / "metropolis.h5", overwrite=True, progress=False)
    pipe.step(f"simulate metropolis: {s['n']} configurations of {s['L']}² at T = {s['temperatures']} on "
              f"{world.size} ranks", lambda: simulate_ising(sim, world))
    run_dir = out / "run"
    pipe.train_gan(_shipped_ising_for(s["L"]), "Ising GAN", 8, domain="ising", data=out / "metropolis.h5",
                   seed=cfg.seed, steps=s["steps"])
    pipe.step(f"generate {s['gan_n']} GAN configurations per temperature", lambda: generate(
        GenerateConfig(checkpoint=run_dir, n=s["gan_n"], out=out / "gan.h5", seed=cfg.seed, overwrite=True,
                       progress=False), world))
    reports = pipe.validate(_ising_validator(s["classifier"]), "metropolis", ("gan",))
    tp = IsingThroughputConfig(out=out / "throughput.json", checkpoint=run_dir, temperatures=s["tp_temperatures"],
                               gan_batches=s["gan_batches"], seconds=s["seconds"], repeats=s["repeats"],
                               max_seconds=s["max_seconds"], tau_min_sweeps=s["tau_min_sweeps"],
                               fidelity_n=s["fidelity_n"], classifier=s["classifier"], seed=cfg.seed)
    result = pipe.step("throughput at fidelity", lambda: run_ising_throughput(tp, world, log=lambda line: None))
    return pipe.finish(result, headline, reports)
