"""The GAN recipes: what one discriminator step and one generator step compute, per domain.

3DGAN (Khattak, Vallecorsa, Carminati et al.; shared/REFERENCE.md §1): D on real and D on fake in separate calls
(BatchNorm never mixes them), labels flipped per sample with probability ``label_flip``; losses weighted
[6, 0.2, 0.1] over (real/fake BCE-with-logits, energy-regression MAPE, ECAL-sum MAPE); then ``g_steps`` generator
steps; RMSprop (lr 1e-3, ρ 0.9, ε 1e-7). The ECAL-sum target of a fake shower is the data's mean sampling fraction
times its energy (3DGAN fits ΣECAL(E) to the data for the same purpose).

Factorised calorimeter GAN (:mod:`hpcgen.models.calo_factorised`): hinge loss (Lim & Ye, arXiv:1705.02894; as in
SNGAN/BigGAN) or non-saturating BCE, no auxiliary heads (the energy is built into the generator and the physics
branch lets D see E_vis/E_p), Adam (lr 2e-4, β 0.5/0.9), one G step per D step, and an exponential moving average of
G's weights (Karras et al., arXiv:1710.10196; Yazıcı et al., arXiv:1806.04498) that generation samples from.

CosmoGAN (Mustafa et al., arXiv:1706.02390): non-saturating BCE-with-logits, Adam (lr 2e-4, β1 0.5), real/fake
labels swapped for a whole batch with probability ``label_swap``; κ enters through
``hpcgen.models.pixel_transform.kappa_to_pixel``.

Ising DCGAN (:mod:`hpcgen.models.ising_dcgan`, after Liu, Rodrigues & Cai, arXiv:1710.04987): non-saturating
BCE-with-logits, Adam (lr 2e-4, β 0.5/0.999), ``g_steps`` (default 1) G steps per D step, no label swapping;
spins enter as ±1 floats, the condition is T in J/k_B; the generator's training output is already exactly ±1
(its straight-through read-out, ``--spin-readout``), so D sees real and generated configurations in the same
discrete form; feature matching of e and |m| per temperature (``--feature-matching``,
:func:`per_temperature_moment_gap`) and the same weight average of G as the factorised GAN (``--g-ema``).

A task never knows which engine it runs on: it calls ``engine.wrap_model`` / ``wrap_optimizer`` / ``unwrap`` and
freezes D during the generator step, so no DDP reducer or Horovod hook fires for D there.
"""

from __future__ import annotations

import abc
import copy

import numpy as np
import torch
import torch.nn.functional as F

from hpcgen.config import TrainConfig
from hpcgen.models import build_gan
from hpcgen.models.ising_dcgan import physics_features as ising_physics_features
from hpcgen.models.pixel_transform import kappa_to_pixel, pixel_to_kappa

COSMO_LATENT = 64
CALO_LATENT = 200


def mape(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute percentage error (as a fraction), the 3DGAN regression loss."""
    return ((pred - target).abs() / target.abs().clamp_min(1e-12)).mean()


class _FrozenD:
    """Context: D's parameters stop requiring grad (the generator step must not touch D's gradients or hooks)."""

    def __init__(self, d: torch.nn.Module) -> None:
        self.params = [p for p in d.parameters() if p.requires_grad]

    def __enter__(self) -> None:
        for p in self.params:
            p.requires_grad_(False)

    def __exit__(self, *exc) -> None:
        for p in self.params:
            p.requires_grad_(True)


class GANTask(abc.ABC):
    """Shared skeleton; subclasses define the models, optimizers and losses of one domain."""

    domain = ""

    def __init__(self, cfg: TrainConfig, engine, noise_gen: torch.Generator, model_options: dict) -> None:
        self.cfg, self.engine, self.gen = cfg, engine, noise_gen
        self.device = engine.device
        g, d = build_gan(self.domain, **model_options)
        self.model_options = model_options
        self.G = engine.wrap_model(g.to(self.device))
        self.D = engine.wrap_model(d.to(self.device))
        self.lr_base = self.base_lr()
        opt_g, opt_d = self.make_optimizer(self.G), self.make_optimizer(self.D)
        self.opt_G = engine.wrap_optimizer(opt_g, engine.unwrap(self.G))
        self.opt_D = engine.wrap_optimizer(opt_d, engine.unwrap(self.D))

    # --- per-domain pieces -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def base_lr(self) -> float:
        ...

    @abc.abstractmethod
    def make_optimizer(self, model) -> torch.optim.Optimizer:
        ...

    @abc.abstractmethod
    def to_network(self, images: np.ndarray, cond: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        ...

    @abc.abstractmethod
    def d_losses(self, real, cond) -> dict[str, torch.Tensor]:
        ...

    @abc.abstractmethod
    def g_loss(self, cond) -> dict[str, torch.Tensor]:
        ...

    # --- shared ------------------------------------------------------------------------------------------------
    def autocast(self):
        enabled = self.cfg.bf16 and self.device.type in ("cuda", "cpu")
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def set_lr(self, lr: float) -> None:
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] = lr

    def step(self, images: np.ndarray, cond: np.ndarray) -> dict[str, float]:
        """One discriminator step on this rank's batch, then ``g_steps`` generator steps."""
        real, c = self.to_network(images, cond)
        self.opt_D.zero_grad()
        with self.autocast():
            d = self.d_losses(real, c)
        d["loss_D"].backward()
        self.opt_D.step()
        out = {k: float(v.detach()) for k, v in d.items()}
        for _ in range(self.g_steps):
            self.opt_G.zero_grad()
            with _FrozenD(self.engine.unwrap(self.D)), self.autocast():
                g = self.g_loss(c)
            g["loss_G"].backward()
            self.opt_G.step()
        out.update({k: float(v.detach()) for k, v in g.items()})
        return out

    @property
    def g_steps(self) -> int:
        return 1

    def sampling_generator(self) -> torch.nn.Module:
        """The network generation uses (the bare generator; tasks that keep a weight average return that)."""
        return self.engine.unwrap(self.G)

    def noise(self, batch: int, dim: int) -> torch.Tensor:
        return torch.randn(batch, dim, generator=self.gen).to(self.device)

    def rand(self, shape) -> torch.Tensor:
        return torch.rand(shape, generator=self.gen).to(self.device)

    def state(self) -> dict:
        return {"G": self.engine.unwrap(self.G).state_dict(), "D": self.engine.unwrap(self.D).state_dict(),
                "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict()}

    def load_state(self, state: dict) -> None:
        self.engine.unwrap(self.G).load_state_dict(state["G"])
        self.engine.unwrap(self.D).load_state_dict(state["D"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])


class _GeneratorAverage:
    """An exponential moving average of G's weights (``cfg.g_ema``; 0 = off), updated after every step; generation
    and the monitor sample the average (:meth:`sampling_generator`), and checkpoints keep it. Mixed into the tasks
    that use it, before :class:`GANTask`."""

    def init_weight_average(self) -> None:
        g = self.engine.unwrap(self.G)
        self.G_ema = copy.deepcopy(g).requires_grad_(False) if self.cfg.g_ema > 0 else None
        self.ema_updates = 0

    def step(self, images, cond):
        out = super().step(images, cond)
        if self.G_ema is not None:
            self.ema_updates += 1
            # warm-up (as in Ho et al.'s and Karras et al.'s code): early averages do not drag the initial weights
            decay = min(self.cfg.g_ema, (1 + self.ema_updates) / (10 + self.ema_updates))
            with torch.no_grad():
                src = self.engine.unwrap(self.G)
                for p_ema, p in zip(self.G_ema.parameters(), src.parameters()):
                    p_ema.lerp_(p.detach(), 1.0 - decay)
                for b_ema, b in zip(self.G_ema.buffers(), src.buffers()):
                    b_ema.copy_(b)
        return out

    def sampling_generator(self) -> torch.nn.Module:
        """The weight average when kept, else G."""
        return self.G_ema if self.G_ema is not None else self.engine.unwrap(self.G)

    def state(self) -> dict:
        out = super().state()
        if self.G_ema is not None:
            out["G_ema"] = self.G_ema.state_dict()
            out["ema_updates"] = self.ema_updates
        return out

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        if self.G_ema is not None:
            self.G_ema.load_state_dict(state.get("G_ema", state["G"]))
            self.ema_updates = int(state.get("ema_updates", 0))


class CaloGANTask(GANTask):
    domain = "calo"

    def __init__(self, cfg: TrainConfig, engine, noise_gen: torch.Generator, sampling_fraction: float,
                 image_shape: tuple[int, int, int]) -> None:
        self.sampling_fraction = float(sampling_fraction)  # ΣECAL/E of the data, in network units per GeV
        super().__init__(cfg, engine, noise_gen, {"image_shape": tuple(image_shape)})
        self.engine.unwrap(self.D).ops_impl = cfg.ops_impl  # the ECAL-sum head's fused op

    @property
    def g_steps(self) -> int:
        return self.cfg.g_steps

    def base_lr(self) -> float:
        return self.cfg.lr_calo

    def make_optimizer(self, model):
        return torch.optim.RMSprop(model.parameters(), lr=self.lr_base, alpha=0.9, eps=1e-7)

    def to_network(self, images, cond):
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device) * self.cfg.image_scale
        return x, torch.from_numpy(np.ascontiguousarray(cond)).to(self.device)

    def fake(self, energy_gev: torch.Tensor) -> torch.Tensor:
        return self.G(self.noise(len(energy_gev), CALO_LATENT), energy_gev)

    def _head_losses(self, out, labels, energy_gev, ecal_target):
        logit, e_pred, ecal = out
        w = self.cfg.loss_weights
        bce = F.binary_cross_entropy_with_logits(logit.float(), labels)
        return bce, w[0] * bce + w[1] * mape(e_pred.float(), energy_gev) + w[2] * mape(ecal.float(), ecal_target)

    def d_losses(self, real, energy_gev):
        b = len(energy_gev)
        flip = self.rand((2, b)) < self.cfg.label_flip
        y_real = torch.where(flip[0], 0.0, 1.0)
        y_fake = torch.where(flip[1], 1.0, 0.0)
        with torch.no_grad():
            fake = self.fake(energy_gev)
        ecal_real = real.sum(dim=(1, 2, 3))
        bce_r, loss_r = self._head_losses(self.D(real), y_real, energy_gev, ecal_real)
        bce_f, loss_f = self._head_losses(self.D(fake), y_fake, energy_gev, self.sampling_fraction * energy_gev)
        return {"loss_D": loss_r + loss_f, "bce_D_real": bce_r, "bce_D_fake": bce_f}

    def g_loss(self, energy_gev):
        fake = self.fake(energy_gev)
        ones = torch.ones(len(energy_gev), device=self.device)
        bce, loss = self._head_losses(self.engine.unwrap(self.D)(fake), ones, energy_gev,
                                      self.sampling_fraction * energy_gev)
        return {"loss_G": loss, "bce_G": bce}

    @torch.no_grad()
    def sample(self, energy_gev: torch.Tensor) -> torch.Tensor:
        """Showers in GeV (B, 25, 25, 25) for energies (B,) in GeV."""
        g = self.engine.unwrap(self.G)
        return g(self.noise(len(energy_gev), CALO_LATENT), energy_gev.to(self.device)) / self.cfg.image_scale


class CaloFactorisedTask(_GeneratorAverage, GANTask):
    """The factorised calorimeter GAN (module docstring); D is called as D(x, E_p) and returns one score."""

    domain = "calo"

    def __init__(self, cfg: TrainConfig, engine, noise_gen: torch.Generator, sampling_fraction: float,
                 image_shape: tuple[int, int, int], threshold: float, fit_sample=None) -> None:
        self.sampling_fraction = float(sampling_fraction)
        options = {"arch": "factorised", "image_shape": tuple(image_shape), "sampling_fraction": self.sampling_fraction,
                   "threshold": float(threshold), "view": cfg.d_view, "spectral_norm": cfg.spectral_norm,
                   "readout": cfg.readout}
        super().__init__(cfg, engine, noise_gen, options)
        g = self.engine.unwrap(self.G)
        self.latent = g.latent_dim
        if fit_sample is not None:  # physics-feature standardisation from real showers (the same on every rank)
            x, e = self.to_network(*fit_sample)
            self.engine.unwrap(self.D).fit_feature_scaling(x, e)
            g.fit_template(x, e)
            g.fit_response(x, e)
        self.init_weight_average()

    def base_lr(self) -> float:
        return self.cfg.lr_factorised

    def make_optimizer(self, model):
        return torch.optim.Adam(model.parameters(), lr=self.lr_base, betas=(0.5, 0.9))

    to_network = CaloGANTask.to_network  # cells × image_scale, energies in GeV

    def fake(self, energy_gev: torch.Tensor) -> torch.Tensor:
        return self.G(self.noise(len(energy_gev), self.latent), energy_gev)

    def d_losses(self, real, energy_gev):
        with torch.no_grad():
            fake = self.fake(energy_gev)
        s_real, s_fake = self.D(real, energy_gev), self.D(fake, energy_gev)
        if self.cfg.feature_matching:
            with torch.no_grad():
                self._real_features = self.engine.unwrap(self.D).standardised_features(real, energy_gev)
        if self.cfg.calo_loss == "hinge":
            l_real, l_fake = F.relu(1 - s_real).mean(), F.relu(1 + s_fake).mean()
        else:
            l_real, l_fake = F.softplus(-s_real).mean(), F.softplus(s_fake).mean()
        return {"loss_D": l_real + l_fake, "loss_D_real": l_real, "loss_D_fake": l_fake}

    def g_loss(self, energy_gev):
        d = self.engine.unwrap(self.D)
        fake = self.fake(energy_gev)
        s = d(fake, energy_gev)
        loss = -s.mean() if self.cfg.calo_loss == "hinge" else F.softplus(-s).mean()
        if not self.cfg.feature_matching:
            return {"loss_G": loss}
        # feature matching (Salimans et al., arXiv:1606.03498) on the physics features: the fakes are made at this
        # batch's energies, so their batch mean and spread must match the real batch's, whatever D has learnt
        f_fake, f_real = d.standardised_features(fake, energy_gev), self._real_features
        fm = ((f_fake.mean(0) - f_real.mean(0)) ** 2 + (f_fake.std(0) - f_real.std(0)) ** 2).mean()
        return {"loss_G": loss + self.cfg.feature_matching * fm, "adv_G": loss, "fm_G": fm}



class CosmoGANTask(GANTask):
    domain = "cosmo"

    def __init__(self, cfg: TrainConfig, engine, noise_gen: torch.Generator, image_size: int,
                 pixel_rad: float) -> None:
        super().__init__(cfg, engine, noise_gen,
                         {"image_size": int(image_size), "sigma8_conditioning": cfg.sigma8_conditioning,
                          "width": cfg.cosmo_width})
        self.pixel_rad = float(pixel_rad)
        self._real = None  # this step's real batch (pixel space), for the spectral loss of the G steps
        if cfg.spectral_loss:
            from hpcgen.train.spectral_loss import spectral_edges

            self.spectral_edges = spectral_edges(int(image_size), self.pixel_rad)

    def base_lr(self) -> float:
        return self.cfg.lr_cosmo

    def make_optimizer(self, model):
        return torch.optim.Adam(model.parameters(), lr=self.lr_base, betas=(0.5, 0.999))

    def _s8(self, sigma8):
        return sigma8 if self.cfg.sigma8_conditioning else None

    def to_network(self, images, cond):
        s = kappa_to_pixel(torch.from_numpy(np.ascontiguousarray(images)).to(self.device))
        return s, torch.from_numpy(np.ascontiguousarray(cond)).to(self.device)

    def fake(self, sigma8: torch.Tensor) -> torch.Tensor:
        return self.G(self.noise(len(sigma8), COSMO_LATENT), self._s8(sigma8))

    def d_losses(self, real, sigma8):
        b = len(sigma8)
        swap = bool(self.rand(1)[0] < self.cfg.label_swap)
        y_real = torch.full((b,), 0.0 if swap else 1.0, device=self.device)
        with torch.no_grad():
            fake = self.fake(sigma8)
        self._real = real
        bce_r = F.binary_cross_entropy_with_logits(self.D(real, self._s8(sigma8)).float(), y_real)
        bce_f = F.binary_cross_entropy_with_logits(self.D(fake, self._s8(sigma8)).float(), 1.0 - y_real)
        return {"loss_D": bce_r + bce_f, "bce_D_real": bce_r, "bce_D_fake": bce_f}

    def g_loss(self, sigma8):
        fake = self.fake(sigma8)
        logit = self.engine.unwrap(self.D)(fake, self._s8(sigma8))
        bce = F.binary_cross_entropy_with_logits(logit.float(), torch.ones(len(sigma8), device=self.device))
        if not self.cfg.spectral_loss:
            return {"loss_G": bce, "bce_G": bce}
        from hpcgen.train.spectral_loss import spectral_loss

        spec = spectral_loss(fake, self._real, self.pixel_rad, self.spectral_edges, self.engine.allreduce_sum,
                             self.cfg.spectral_weights, impl=self.cfg.ops_impl)
        # × world size: the engines average gradients over ranks, a global loss needs their sum
        return {"loss_G": bce + self.engine.world_size * spec, "bce_G": bce, "spectral_G": spec.detach()}

    @torch.no_grad()
    def sample(self, sigma8: torch.Tensor) -> torch.Tensor:
        """Convergence maps κ (B, H, W) for σ8 values (B,)."""
        g = self.engine.unwrap(self.G)
        return pixel_to_kappa(g(self.noise(len(sigma8), COSMO_LATENT), self._s8(sigma8.to(self.device))))


class IsingGANTask(_GeneratorAverage, GANTask):
    """The Ising DCGAN (module docstring); D(spins, T) returns one logit, invariant to s → −s and translations."""

    domain = "ising"

    def __init__(self, cfg: TrainConfig, engine, noise_gen: torch.Generator, L: int) -> None:
        super().__init__(cfg, engine, noise_gen, {"L": int(L), "readout": cfg.spin_readout})
        self.latent = self.engine.unwrap(self.G).latent_dim
        self.L = int(L)
        self.init_weight_average()

    @property
    def g_steps(self) -> int:
        return self.cfg.g_steps

    def base_lr(self) -> float:
        return self.cfg.lr_ising

    def make_optimizer(self, model):
        return torch.optim.Adam(model.parameters(), lr=self.lr_base, betas=(0.5, 0.999))

    def to_network(self, images, cond):
        spins = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(self.device)
        return spins, torch.from_numpy(np.ascontiguousarray(cond, dtype=np.float32)).to(self.device)

    def fake(self, temperature: torch.Tensor) -> torch.Tensor:
        z = self.noise(len(temperature), self.latent)
        if not self.engine.unwrap(self.G).needs_site_uniforms:
            return self.G(z, temperature)
        return self.G(z, temperature, self.rand((len(temperature), self.L, self.L)))

    def d_losses(self, real, temperature):
        with torch.no_grad():
            fake = self.fake(temperature)
            if self.cfg.feature_matching:
                self._real_features = ising_physics_features(real)
        # softplus(−x) = BCE(x, 1), softplus(x) = BCE(x, 0)
        l_real = F.softplus(-self.D(real, temperature).float()).mean()
        l_fake = F.softplus(self.D(fake, temperature).float()).mean()
        return {"loss_D": l_real + l_fake, "bce_D_real": l_real, "bce_D_fake": l_fake}

    def g_loss(self, temperature):
        fake = self.fake(temperature)
        logit = self.engine.unwrap(self.D)(fake, temperature)
        loss = F.softplus(-logit.float()).mean()
        if not self.cfg.feature_matching:
            return {"loss_G": loss}
        fm = per_temperature_moment_gap(ising_physics_features(fake), self._real_features, temperature)
        return {"loss_G": loss + self.cfg.feature_matching * fm, "adv_G": loss, "fm_G": fm}


def per_temperature_moment_gap(fake: torch.Tensor, real: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """Feature matching (Salimans et al., arXiv:1606.03498) per temperature: the fakes are made at the real batch's
    temperatures, so at every temperature of the batch both hold equally many samples; the squared gaps of their
    means and standard deviations (per feature; C_v and χ are the spreads of e and |m| at one T), averaged over
    features and over the temperatures with ≥ 2 samples, each weighted by its share of the batch. Equal group
    sizes give both sides the same small-sample bias of the standard deviation."""
    gaps, total = [], 0
    for t in torch.unique(temperature):
        k = temperature == t
        n = int(k.sum())
        if n < 2:
            continue
        f, r = fake[k], real[k]
        gap = (f.mean(0) - r.mean(0)) ** 2 + (f.std(0) - r.std(0)) ** 2
        gaps.append(n * gap.mean())
        total += n
    if not gaps:
        return fake.sum() * 0.0
    return torch.stack(gaps).sum() / total
