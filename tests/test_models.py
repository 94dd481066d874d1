"""The GAN modules: shapes, conditioning, the analytic ECAL head, model sizes, the κ pixel transform, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hpcgen.models import (
    CosmoDiscriminator,
    CosmoGenerator,
    Discriminator3D,
    Generator3D,
    build_gan,
    count_parameters,
    flops_per_sample,
    model_summary,
)
from hpcgen.models.pixel_transform import KAPPA_SHIFT, kappa_to_pixel, pixel_to_kappa


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


def energies(*gev: float) -> torch.Tensor:
    return torch.tensor(gev, dtype=torch.float32)


# --- 3DGAN ------------------------------------------------------------------------------------------------------
def test_3dgan_generator_makes_non_negative_25_cubed_showers():
    g = Generator3D()
    out = g(torch.randn(2, 200), energies(10.0, 250.0))
    assert out.shape == (2, 25, 25, 25) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() > 0


def test_3dgan_discriminator_returns_logit_energy_and_ecal_sum_per_sample():
    d = Discriminator3D()
    x = torch.rand(3, 25, 25, 25)
    heads = d(x)
    assert len(heads) == 3
    for head in heads:
        assert head.shape == (3,) and head.dtype == torch.float32


def test_3dgan_conditioning_is_multiplicative_in_the_energy():
    g = Generator3D().eval()
    noise, e = torch.randn(3, 200), energies(2.0, 37.5, 480.0)
    with torch.no_grad():
        conditioned = g(noise, e)
        prescaled = g(noise * (e / 100.0)[:, None], energies(100.0, 100.0, 100.0))
    torch.testing.assert_close(conditioned, prescaled, rtol=0, atol=0)
    assert not torch.allclose(conditioned[0], g(noise[:1], energies(300.0))[0])


def test_3dgan_ecal_head_is_the_cell_sum_with_unit_gradient():
    d = Discriminator3D().eval()
    x = torch.rand(2, 25, 25, 25, requires_grad=True)
    _, _, ecal = d(x)
    # float32 sums of 15625 cells in another order than torch's: equal to a few ulp
    torch.testing.assert_close(ecal, x.detach().sum(dim=(1, 2, 3)), rtol=1e-6, atol=0)
    (grad,) = torch.autograd.grad(ecal.sum(), x)
    torch.testing.assert_close(grad, torch.ones_like(x))


def test_3dgan_other_shapes_resample_the_paper_network_and_bad_inputs_are_rejected():
    g = Generator3D(image_shape=(8, 8, 6)).eval()
    out = g(torch.randn(2, 200), energies(10.0, 50.0))
    assert out.shape == (2, 8, 8, 6) and (out >= 0).all()
    with pytest.raises(ValueError, match="three positive cell counts"):
        Generator3D(image_shape=(8, 8))
    with pytest.raises(ValueError, match="energy_gev"):
        Generator3D()(torch.randn(2, 200), energies(10.0))
    with pytest.raises(ValueError, match=r"\(B, 25, 25, 25\)"):
        Discriminator3D()(torch.rand(2, 25, 25, 24))


def test_3dgan_sizes_match_the_layer_arithmetic():
    g, d = build_gan("calo")
    # Dense 200→3136; Conv3D 8→64 (6,6,8); BN 64; Conv3D 64→6 (6,5,8); BN 6; Conv3D 6→6 (3,3,8); Conv3D 6→1 (2,2,2)
    g_params = (200 * 3136 + 3136) + (8 * 288 * 64 + 64) + 128 + (64 * 240 * 6 + 6) + 12 + (6 * 72 * 6 + 6) + 6 * 8
    assert count_parameters(g) == g_params == 872_808
    # 2 FLOPs per multiply-add: output positions × kernel volume × C_in × C_out
    g_flops = 2 * (200 * 3136 + 7 * 7 * 8 * 288 * 8 * 64 + 13 * 14 * 9 * 240 * 64 * 6
                   + 26**3 * 72 * 6 * 6 + 25**3 * 8 * 6 * 1)
    assert flops_per_sample(g, "calo") == g_flops == 511_390_048
    # Conv3D 1→32 (5³); 3× Conv3D →8 (5³) with BN; two Dense 10648→1 heads
    d_params = (125 * 32 + 32) + (32 * 125 * 8 + 8) + 2 * (8 * 125 * 8 + 8) + 3 * 16 + 2 * (8 * 11**3 + 1)
    assert count_parameters(d) == d_params


# --- CosmoGAN ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [128, 256])
def test_cosmogan_maps_have_the_requested_size_and_lie_in_the_tanh_range(size):
    g, d = build_gan("cosmo", image_size=size)
    maps = g(torch.randn(2, 64))
    assert maps.shape == (2, size, size) and maps.dtype == torch.float32
    assert maps.abs().max() < 1 and maps.std() > 0
    logit = d(maps)
    assert logit.shape == (2,) and logit.dtype == torch.float32


def test_sigma8_conditioning_changes_generator_and_discriminator_outputs():
    g, d = build_gan("cosmo", image_size=32, sigma8_conditioning=True)
    g.eval()
    d.eval()
    noise, x = torch.randn(2, 64), torch.rand(2, 32, 32) * 2 - 1
    low, high = torch.full((2,), 0.6), torch.full((2,), 1.0)
    with torch.no_grad():
        assert (g(noise, low) - g(noise, high)).abs().max() > 1e-4
        assert (d(x, low) - d(x, high)).abs().max() > 1e-4
    assert g.linear.in_features == 65 and d.features[0].in_channels == 2


def test_sigma8_is_required_by_conditioned_models_and_rejected_by_unconditioned_ones():
    g, d = build_gan("cosmo", image_size=16)
    with pytest.raises(ValueError, match="sigma8_conditioning=False"):
        g(torch.randn(1, 64), torch.full((1,), 0.8))
    with pytest.raises(ValueError, match="sigma8_conditioning=False"):
        d(torch.zeros(1, 16, 16), torch.full((1,), 0.8))
    gc, dc = build_gan("cosmo", image_size=16, sigma8_conditioning=True)
    with pytest.raises(ValueError, match="sigma8_conditioning=True"):
        gc(torch.randn(1, 64))
    with pytest.raises(ValueError, match="sigma8_conditioning=True"):
        dc(torch.zeros(1, 16, 16))


def test_cosmogan_256_generator_has_the_papers_12_8M_parameters():
    g = CosmoGenerator(image_size=256)
    n = count_parameters(g)
    assert abs(n / 12.8e6 - 1) < 0.05
    # Linear 64→512·16² (+bias); BN 512; ConvT 512→256→128→64→1, 5×5 (+bias); BN 256, 128, 64
    exact = (64 + 1) * 512 * 256 + 2 * 512
    exact += sum(c_in * c_out * 25 + c_out for c_in, c_out in [(512, 256), (256, 128), (128, 64), (64, 1)])
    exact += 2 * (256 + 128 + 64)
    assert n == exact == 12_824_449


def test_cosmogan_256_generator_costs_5_1_gflop_per_map():
    g = CosmoGenerator(image_size=256)
    flops = flops_per_sample(g, "cosmo")
    assert abs(flops / 5.1e9 - 1) < 0.15
    # a stride-2 transposed conv costs 2 · C_in · C_out · 25 per *input* pixel
    layers = [(512, 256, 16), (256, 128, 32), (128, 64, 64), (64, 1, 128)]  # (C_in, C_out, input side)
    analytic = 2 * 64 * 512 * 16**2 + sum(2 * c_in * c_out * 25 * side**2 for c_in, c_out, side in layers)
    assert flops == analytic == 5_102_370_816


def test_cosmogan_half_width_has_half_the_channels_and_a_quarter_of_the_conv_flops():
    g, d = build_gan("cosmo", image_size=128, width=0.5)
    assert g.channels == (256, 128, 64, 32)
    assert [m.out_channels for m in d.modules() if isinstance(m, torch.nn.Conv2d)] == [32, 64, 128, 256]
    assert g(torch.randn(2, 64)).shape == (2, 128, 128) and d(torch.zeros(2, 128, 128)).shape == (2,)
    full = flops_per_sample(CosmoGenerator(image_size=128), "cosmo")
    layers = [(256, 128, 8), (128, 64, 16), (64, 32, 32), (32, 1, 64)]  # (C_in, C_out, input side)
    analytic = 2 * 64 * 256 * 8**2 + sum(2 * c_in * c_out * 25 * side**2 for c_in, c_out, side in layers)
    assert flops_per_sample(g, "cosmo") == analytic and analytic < 0.3 * full
    with pytest.raises(ValueError, match="width"):
        CosmoGenerator(width=0)


def test_cosmogan_rejects_sizes_that_are_not_multiples_of_16():
    with pytest.raises(ValueError, match="multiple of 16"):
        CosmoGenerator(image_size=100)
    with pytest.raises(ValueError, match="multiple of 16"):
        CosmoDiscriminator(image_size=8)


# --- registry and sizing ----------------------------------------------------------------------------------------
def test_build_gan_names_the_allowed_domains_and_options():
    with pytest.raises(ValueError, match="'calo', 'cosmo'"):
        build_gan("weather")
    with pytest.raises(ValueError, match="image_size"):
        build_gan("calo", image_size=256)


def test_model_summary_reports_both_networks_and_leaves_the_generator_in_training_mode():
    summary = model_summary("cosmo", image_size=128)
    assert summary["generator_params"] == count_parameters(CosmoGenerator(image_size=128))
    assert summary["discriminator_params"] == count_parameters(CosmoDiscriminator(image_size=128))
    assert summary["generator_flops_per_sample"] == pytest.approx(5.1e9 / 4, rel=0.01)  # FLOPs scale with area
    g = Generator3D()
    flops_per_sample(g, "calo")
    assert g.training
    with pytest.raises(ValueError, match="expects a Generator3D"):
        flops_per_sample(CosmoGenerator(image_size=16), "calo")


# --- κ pixel transform ------------------------------------------------------------------------------------------
def test_pixel_transform_round_trips_kappa_to_1e_6():
    kappa = np.concatenate([np.linspace(-KAPPA_SHIFT, 0.5, 10_001), [1.0, 2.0]])
    np.testing.assert_allclose(pixel_to_kappa(kappa_to_pixel(kappa)), kappa, rtol=0, atol=1e-6)
    k32 = torch.tensor(kappa[:-2], dtype=torch.float32)
    back = pixel_to_kappa(kappa_to_pixel(k32))
    assert isinstance(back, torch.Tensor) and back.dtype == torch.float32
    torch.testing.assert_close(back, k32, rtol=0, atol=1e-6)


def test_pixel_transform_is_monotone_and_maps_kappa_into_the_tanh_range():
    kappa = np.linspace(-KAPPA_SHIFT, 0.5, 10_001)
    s = kappa_to_pixel(kappa)
    assert np.all(np.diff(s) > 0)
    assert s[0] == -1.0 and s[-1] < 1 and kappa_to_pixel(0.0) == 0.0
    assert kappa_to_pixel(-0.07) == -1.0  # below the empty-beam bound: clipped, not below −1
    assert np.all(np.diff(pixel_to_kappa(np.linspace(-1, 1, 1001))) >= 0)
    assert np.isfinite(pixel_to_kappa(np.array([-1.0, 1.0]))).all()  # saturated tanh stays finite


# --- training ---------------------------------------------------------------------------------------------------
def _real_batch(domain: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    gen = torch.Generator().manual_seed(1)
    if domain == "calo":
        return torch.empty(2, 25, 25, 25).exponential_(1e3, generator=gen), energies(20.0, 80.0)
    kappa = 0.017 * torch.randn(4, 32, 32, generator=gen)
    return kappa_to_pixel(kappa), None


@pytest.mark.parametrize("domain", ["calo", "cosmo"])
def test_20_adam_steps_teach_d_to_separate_real_from_generated_and_g_to_fool_it(domain):
    torch.set_num_threads(min(2, torch.get_num_threads()))
    options = {"image_size": 32} if domain == "cosmo" else {}
    g, d = build_gan(domain, **options)
    real, cond = _real_batch(domain)
    noise = torch.randn(real.shape[0], g.latent_dim)

    def logit(x):
        out = d(x)
        return out[0] if domain == "calo" else out

    def generate():
        return g(noise, cond) if domain == "calo" else g(noise)

    def d_loss(fake):
        # real and fake in separate D calls, so BatchNorm never mixes them (as in 3DGAN)
        real_logit, fake_logit = logit(real), logit(fake)
        return (F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
                + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit)))

    def g_loss():
        fake_logit = logit(generate())
        return F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))

    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    with torch.no_grad():
        fake = generate()
    d_losses = []
    for _ in range(20):
        opt_d.zero_grad()
        loss = d_loss(fake)
        loss.backward()
        opt_d.step()
        d_losses.append(loss.item())
    assert d_losses[-1] < 0.5 * d_losses[0]

    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d.requires_grad_(False)
    g_losses = []
    for _ in range(20):
        opt_g.zero_grad()
        loss = g_loss()
        loss.backward()
        opt_g.step()
        g_losses.append(loss.item())
    assert g_losses[-1] < 0.5 * g_losses[0]
