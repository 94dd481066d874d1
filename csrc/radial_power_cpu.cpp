// CPU kernels of hpcgen::radial_power_bin and its backward: the binning half of hpcgen.ops.radial_power_spectrum
// (mathematics: hpcgen_cuda.h; the FFT stays torch.fft.rfft2). One pass over the rfft2 cells per map turns
// |F|^2 into per-bin C_ell (weights, normalisation and 1/modes folded into `factor`), cell m accumulating into
// copy m mod 8 of the bins; the copies, then the batch partial sums, are added in a fixed order. Maps are independent, so parallelising over them keeps results bitwise
// identical for any thread count.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

namespace {

constexpr int64_t kCellsPerTask = 32768;
constexpr int64_t kCopies = 8;  // independent per-bin accumulators in the forward

void check_binning(const at::Tensor& spectrum, const at::Tensor& factor, const at::Tensor& bin_index, const char* op) {
  TORCH_CHECK(spectrum.device().is_cpu(), op, ": spectrum must be a CPU tensor, got one on ", spectrum.device());
  TORCH_CHECK(spectrum.dim() == 3 && spectrum.size(2) == 2, op, ": spectrum must have shape (B, M, 2), got ",
              spectrum.sizes());
  TORCH_CHECK(spectrum.scalar_type() == at::kFloat || spectrum.scalar_type() == at::kDouble, op,
              ": spectrum must be float32 or float64, got ", spectrum.scalar_type());
  const int64_t M = spectrum.size(1);
  TORCH_CHECK(factor.device().is_cpu() && factor.scalar_type() == spectrum.scalar_type() && factor.dim() == 1 &&
                  factor.size(0) == M,
              op, ": factor must be a CPU (", M, ",) tensor of the spectrum's dtype, got ", factor.scalar_type(), " ",
              factor.sizes());
  TORCH_CHECK(bin_index.device().is_cpu() && bin_index.scalar_type() == at::kLong && bin_index.dim() == 1 &&
                  bin_index.size(0) == M,
              op, ": bin_index must be a CPU int64 (", M, ",) tensor, got ", bin_index.scalar_type(), " ",
              bin_index.sizes());
}

void check_indices(const int64_t* idx, int64_t M, int64_t nb) {
  for (int64_t m = 0; m < M; ++m)
    TORCH_CHECK(idx[m] >= 0 && idx[m] <= nb, "radial_power_bin: bin_index[", m, "] = ", idx[m], " is outside [0, ",
                nb, "]");
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> radial_power_bin_cpu(const at::Tensor& spectrum_in,
                                                                     const at::Tensor& factor_in,
                                                                     const at::Tensor& bin_index_in,
                                                                     const at::Tensor& order,
                                                                     const at::Tensor& offsets) {
  check_binning(spectrum_in, factor_in, bin_index_in, "radial_power_bin");
  TORCH_CHECK(offsets.dim() == 1 && offsets.size(0) >= 1, "radial_power_bin: offsets must have shape (nb+1,), got ",
              offsets.sizes());
  (void)order;  // the CPU kernel walks cells in memory order; the CSR order serves the CUDA kernel
  const int64_t nb = offsets.size(0) - 1;
  const at::Tensor spectrum = spectrum_in.contiguous(), factor = factor_in.contiguous(),
                   bin_index = bin_index_in.contiguous();
  const int64_t B = spectrum.size(0), M = spectrum.size(1);
  const int64_t* idx = bin_index.const_data_ptr<int64_t>();
  check_indices(idx, M, nb);
  at::Tensor cl = at::empty({B, nb}, spectrum.options());
  at::Tensor sum_cl = at::empty({nb}, spectrum.options()), sum_cl2 = at::empty({nb}, spectrum.options());
  AT_DISPATCH_FLOATING_TYPES(spectrum.scalar_type(), "radial_power_bin_cpu", [&] {
    const scalar_t* f = spectrum.const_data_ptr<scalar_t>();
    const scalar_t* w = factor.const_data_ptr<scalar_t>();
    scalar_t* c = cl.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, B, 1 + kCellsPerTask / std::max<int64_t>(M, 1), [&](int64_t b0, int64_t b1) {
      // Neighbouring cells mostly share a bin, so one accumulator per bin would serialise on its add latency;
      // cell m adds into copy m mod kCopies instead, and the copies are summed in a fixed order.
      const int64_t stride = nb + 1;
      std::vector<scalar_t> acc(static_cast<size_t>(kCopies * stride));
      for (int64_t b = b0; b < b1; ++b) {
        std::fill(acc.begin(), acc.end(), scalar_t(0));
        const scalar_t* fb = f + b * M * 2;
        const int64_t body = M - M % kCopies;
        for (int64_t m0 = 0; m0 < body; m0 += kCopies)
          for (int64_t q = 0; q < kCopies; ++q) {
            const int64_t m = m0 + q;
            const scalar_t re = fb[2 * m], im = fb[2 * m + 1];
            acc[q * stride + idx[m]] += w[m] * (re * re + im * im);
          }
        for (int64_t m = body; m < M; ++m) {
          const scalar_t re = fb[2 * m], im = fb[2 * m + 1];
          acc[(m - body) * stride + idx[m]] += w[m] * (re * re + im * im);
        }
        scalar_t* cb = c + b * nb;
        for (int64_t k = 0; k < nb; ++k) {
          scalar_t v = acc[k];
          for (int64_t q = 1; q < kCopies; ++q) v += acc[q * stride + k];
          cb[k] = v;
        }
      }
    });
    scalar_t* s1 = sum_cl.mutable_data_ptr<scalar_t>();
    scalar_t* s2 = sum_cl2.mutable_data_ptr<scalar_t>();
    for (int64_t k = 0; k < nb; ++k) {
      s1[k] = scalar_t(0);
      s2[k] = scalar_t(0);
    }
    for (int64_t b = 0; b < B; ++b)
      for (int64_t k = 0; k < nb; ++k) {
        const scalar_t v = c[b * nb + k];
        s1[k] += v;
        s2[k] += v * v;
      }
  });
  return {cl, sum_cl, sum_cl2};
}

at::Tensor radial_power_bin_backward_cpu(const at::Tensor& spectrum_in, const at::Tensor& factor_in,
                                         const at::Tensor& bin_index_in, const at::Tensor& cl_in,
                                         const at::Tensor& g_cl_in, const at::Tensor& g_sum_cl_in,
                                         const at::Tensor& g_sum_cl2_in) {
  check_binning(spectrum_in, factor_in, bin_index_in, "radial_power_bin_backward");
  const at::Tensor spectrum = spectrum_in.contiguous(), factor = factor_in.contiguous(),
                   bin_index = bin_index_in.contiguous();
  const int64_t B = spectrum.size(0), M = spectrum.size(1), nb = g_sum_cl_in.numel();
  const auto dt = spectrum.scalar_type();
  for (const auto* t : {&cl_in, &g_cl_in})
    TORCH_CHECK(t->scalar_type() == dt && t->sizes() == at::IntArrayRef({B, nb}),
                "radial_power_bin_backward: cl and g_cl must be (", B, ", ", nb, ") tensors of dtype ", dt);
  TORCH_CHECK(g_sum_cl_in.scalar_type() == dt && g_sum_cl2_in.scalar_type() == dt && g_sum_cl2_in.numel() == nb,
              "radial_power_bin_backward: g_sum_cl and g_sum_cl2 must be (", nb, ",) tensors of dtype ", dt);
  const int64_t* idx = bin_index.const_data_ptr<int64_t>();
  check_indices(idx, M, nb);
  const at::Tensor cl = cl_in.contiguous(), g_cl = g_cl_in.contiguous(), g1 = g_sum_cl_in.contiguous(),
                   g2 = g_sum_cl2_in.contiguous();
  at::Tensor grad = at::empty({B, M, 2}, spectrum.options());
  AT_DISPATCH_FLOATING_TYPES(dt, "radial_power_bin_backward_cpu", [&] {
    const scalar_t* f = spectrum.const_data_ptr<scalar_t>();
    const scalar_t* w = factor.const_data_ptr<scalar_t>();
    const scalar_t* c = cl.const_data_ptr<scalar_t>();
    const scalar_t* gc = g_cl.const_data_ptr<scalar_t>();
    const scalar_t* gs1 = g1.const_data_ptr<scalar_t>();
    const scalar_t* gs2 = g2.const_data_ptr<scalar_t>();
    scalar_t* out = grad.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, B, 1 + kCellsPerTask / std::max<int64_t>(M, 1), [&](int64_t b0, int64_t b1) {
      std::vector<scalar_t> G(static_cast<size_t>(nb + 1));
      for (int64_t b = b0; b < b1; ++b) {
        // dL/dC[b,k] including the paths through the batch sums; G[nb] = 0 for cells not binned.
        for (int64_t k = 0; k < nb; ++k) G[k] = gc[b * nb + k] + gs1[k] + scalar_t(2) * c[b * nb + k] * gs2[k];
        G[nb] = scalar_t(0);
        const scalar_t* fb = f + b * M * 2;
        scalar_t* ob = out + b * M * 2;
        for (int64_t m = 0; m < M; ++m) {
          const scalar_t g = scalar_t(2) * w[m] * G[idx[m]];
          ob[2 * m] = g * fb[2 * m];
          ob[2 * m + 1] = g * fb[2 * m + 1];
        }
      }
    });
  });
  return grad;
}

}  // namespace

TORCH_LIBRARY_IMPL(hpcgen, CPU, m) {
  m.impl("radial_power_bin", &radial_power_bin_cpu);
  m.impl("radial_power_bin_backward", &radial_power_bin_backward_cpu);
}
