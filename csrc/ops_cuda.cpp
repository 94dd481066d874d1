// CUDA registrations of hpcgen's fused ops: the torch glue between the schemas (registration.cpp) and the torch-free
// kernels (ecal_moments.cu, radial_power.cu; mathematics in hpcgen_cuda.h). Compiled only against a CUDA-enabled
// torch. Each op checks its inputs, makes them contiguous, allocates outputs (and the ecal workspace) with at::empty
// — so memory comes from the caching allocator and the ops are CUDA-graph safe — and launches on torch's current
// stream, never the default one.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <tuple>

#include "hpcgen_cuda.h"

namespace {

using Tensor = at::Tensor;

hpcgen::DType to_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return hpcgen::DType::f32;
    case at::kDouble: return hpcgen::DType::f64;
    case at::kBFloat16: return hpcgen::DType::bf16;
    case at::kHalf: return hpcgen::DType::f16;
    default: break;
  }
  TORCH_CHECK(false, "hpcgen: unsupported dtype ", t);  // unreachable: every op checks its dtypes first
  return hpcgen::DType::f32;
}

at::ScalarType acc_dtype(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

// A tensor handed over next to the main input: same CUDA device, the expected dtype and shape. Returned contiguous.
Tensor checked(const Tensor& t, const Tensor& like, at::ScalarType dtype, at::IntArrayRef shape, const char* op,
               const char* name) {
  TORCH_CHECK(t.device() == like.device(), op, ": ", name, " must be on ", like.device(), ", got ", t.device());
  TORCH_CHECK(t.scalar_type() == dtype && t.sizes() == shape, op, ": ", name, " must be a ", dtype,
              " tensor of shape ", shape, ", got ", t.scalar_type(), " ", t.sizes());
  return t.contiguous();
}

// ---------------------------------------------------------------------------------------------------------------
// ecal_moments

void check_cells(const Tensor& x, const char* op) {
  TORCH_CHECK(x.is_cuda(), op, ": x must be a CUDA tensor, got one on ", x.device());
  TORCH_CHECK(x.dim() == 4, op, ": x must have shape (B, X, Y, Z), got ", x.sizes());
  const auto t = x.scalar_type();
  TORCH_CHECK(t == at::kFloat || t == at::kDouble || t == at::kBFloat16 || t == at::kHalf, op,
              ": x must be float32, float64, bfloat16 or float16, got ", t);
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> ecal_moments_cuda(const Tensor& x_in, double power) {
  check_cells(x_in, "ecal_moments");
  const c10::cuda::CUDAGuard guard(x_in.device());
  const Tensor x = x_in.contiguous();
  const int64_t B = x.size(0), X = x.size(1), Y = x.size(2), Z = x.size(3);
  const auto acc = acc_dtype(x.scalar_type());
  const int64_t acc_bytes = acc == at::kDouble ? 8 : 4;
  // The kernel keeps one Y*Z slab in shared memory (division form: no overflow for huge Y, Z).
  TORCH_CHECK(Z == 0 || Y <= hpcgen::kEcalMaxSlabBytes / acc_bytes / Z, "ecal_moments: a Y*Z slab of ", Y, "x", Z,
              " cells exceeds the CUDA kernel's ", hpcgen::kEcalMaxSlabBytes, "-byte shared-memory limit");
  const auto opts = x.options().dtype(acc);
  Tensor total = at::empty({B}, opts), px = at::empty({B, X}, opts), py = at::empty({B, Y}, opts),
         pz = at::empty({B, Z}, opts), mean = at::empty({B, 3}, opts), var = at::empty({B, 3}, opts);
  // Workspace from the caching allocator (not cudaMalloc): stream-ordered and capturable in a CUDA graph.
  Tensor work = at::empty({hpcgen::ecal_moments_workspace_elems(B, X, Y, Z)}, opts);
  C10_CUDA_CHECK(hpcgen::ecal_moments_forward_cuda(
      x.const_data_ptr(), to_dtype(x.scalar_type()), B, X, Y, Z, power, work.mutable_data_ptr(),
      total.mutable_data_ptr(), px.mutable_data_ptr(), py.mutable_data_ptr(), pz.mutable_data_ptr(),
      mean.mutable_data_ptr(), var.mutable_data_ptr(), at::cuda::getCurrentCUDAStream()));
  return {total, px, py, pz, mean, var};
}

Tensor ecal_moments_backward_cuda(const Tensor& x_in, double power, const Tensor& total, const Tensor& mean,
                                  const Tensor& var, const Tensor& g_total, const Tensor& g_px, const Tensor& g_py,
                                  const Tensor& g_pz, const Tensor& g_mean, const Tensor& g_var) {
  constexpr const char* op = "ecal_moments_backward";
  check_cells(x_in, op);
  const c10::cuda::CUDAGuard guard(x_in.device());
  const Tensor x = x_in.contiguous();
  const int64_t B = x.size(0), X = x.size(1), Y = x.size(2), Z = x.size(3);
  const auto acc = acc_dtype(x.scalar_type());
  const Tensor t = checked(total, x, acc, {B}, op, "total"), m = checked(mean, x, acc, {B, 3}, op, "mean"),
               v = checked(var, x, acc, {B, 3}, op, "var"), gt = checked(g_total, x, acc, {B}, op, "g_total"),
               gx = checked(g_px, x, acc, {B, X}, op, "g_px"), gy = checked(g_py, x, acc, {B, Y}, op, "g_py"),
               gz = checked(g_pz, x, acc, {B, Z}, op, "g_pz"), gm = checked(g_mean, x, acc, {B, 3}, op, "g_mean"),
               gv = checked(g_var, x, acc, {B, 3}, op, "g_var");
  Tensor dx = at::empty(x.sizes(), x.options());
  C10_CUDA_CHECK(hpcgen::ecal_moments_backward_cuda(
      x.const_data_ptr(), to_dtype(x.scalar_type()), B, X, Y, Z, power, t.const_data_ptr(), m.const_data_ptr(),
      v.const_data_ptr(), gt.const_data_ptr(), gx.const_data_ptr(), gy.const_data_ptr(), gz.const_data_ptr(),
      gm.const_data_ptr(), gv.const_data_ptr(), dx.mutable_data_ptr(), at::cuda::getCurrentCUDAStream()));
  return dx;
}

// ---------------------------------------------------------------------------------------------------------------
// radial_power_bin

// spectrum (B, M, 2) f32/f64 on CUDA; factor (M,) of its dtype; bin_index (M,) int64; all on one device.
void check_binning(const Tensor& spectrum, const Tensor& factor, const Tensor& bin_index, const char* op) {
  TORCH_CHECK(spectrum.is_cuda(), op, ": spectrum must be a CUDA tensor, got one on ", spectrum.device());
  TORCH_CHECK(spectrum.dim() == 3 && spectrum.size(2) == 2, op, ": spectrum must have shape (B, M, 2), got ",
              spectrum.sizes());
  TORCH_CHECK(spectrum.scalar_type() == at::kFloat || spectrum.scalar_type() == at::kDouble, op,
              ": spectrum must be float32 or float64, got ", spectrum.scalar_type());
  const int64_t M = spectrum.size(1);
  TORCH_CHECK(factor.device() == spectrum.device() && factor.scalar_type() == spectrum.scalar_type() &&
                  factor.dim() == 1 && factor.size(0) == M,
              op, ": factor must be a (", M, ",) ", spectrum.scalar_type(), " tensor on ", spectrum.device(), ", got ",
              factor.scalar_type(), " ", factor.sizes(), " on ", factor.device());
  TORCH_CHECK(bin_index.device() == spectrum.device() && bin_index.scalar_type() == at::kLong &&
                  bin_index.dim() == 1 && bin_index.size(0) == M,
              op, ": bin_index must be a (", M, ",) int64 tensor on ", spectrum.device(), ", got ",
              bin_index.scalar_type(), " ", bin_index.sizes(), " on ", bin_index.device());
}

// The CSR's contents (offsets monotone within [0, K], order's cells in [0, M)) are not checked here: that would
// need a device-to-host sync. The Python face builds them; the kernel skips cells outside [0, M).
std::tuple<Tensor, Tensor, Tensor> radial_power_bin_cuda(const Tensor& spectrum_in, const Tensor& factor_in,
                                                         const Tensor& bin_index, const Tensor& order_in,
                                                         const Tensor& offsets_in) {
  constexpr const char* op = "radial_power_bin";
  check_binning(spectrum_in, factor_in, bin_index, op);
  TORCH_CHECK(order_in.device() == spectrum_in.device() && order_in.scalar_type() == at::kLong &&
                  order_in.dim() == 1,
              op, ": order must be a 1-D int64 tensor on ", spectrum_in.device(), ", got ", order_in.scalar_type(),
              " ", order_in.sizes(), " on ", order_in.device());
  TORCH_CHECK(offsets_in.device() == spectrum_in.device() && offsets_in.scalar_type() == at::kLong &&
                  offsets_in.dim() == 1 && offsets_in.size(0) >= 1,
              op, ": offsets must be an (nb+1,) int64 tensor on ", spectrum_in.device(), ", got ",
              offsets_in.scalar_type(), " ", offsets_in.sizes(), " on ", offsets_in.device());
  const c10::cuda::CUDAGuard guard(spectrum_in.device());
  const Tensor spectrum = spectrum_in.contiguous(), factor = factor_in.contiguous(), order = order_in.contiguous(),
               offsets = offsets_in.contiguous();
  const int64_t B = spectrum.size(0), M = spectrum.size(1), nb = offsets.size(0) - 1;
  Tensor cl = at::empty({B, nb}, spectrum.options()), sum_cl = at::empty({nb}, spectrum.options()),
         sum_cl2 = at::empty({nb}, spectrum.options());
  C10_CUDA_CHECK(hpcgen::radial_power_bin_forward_cuda(
      spectrum.const_data_ptr(), to_dtype(spectrum.scalar_type()), B, M, factor.const_data_ptr(),
      order.const_data_ptr<int64_t>(), offsets.const_data_ptr<int64_t>(), nb, cl.mutable_data_ptr(),
      sum_cl.mutable_data_ptr(), sum_cl2.mutable_data_ptr(), at::cuda::getCurrentCUDAStream()));
  return {cl, sum_cl, sum_cl2};
}

// bin_index values outside [0, nb) (nb marks "not binned") get a zero gradient in the kernel; not checked here for
// the same no-sync reason as above.
Tensor radial_power_bin_backward_cuda(const Tensor& spectrum_in, const Tensor& factor_in, const Tensor& bin_index_in,
                                      const Tensor& cl, const Tensor& g_cl, const Tensor& g_sum_cl,
                                      const Tensor& g_sum_cl2) {
  constexpr const char* op = "radial_power_bin_backward";
  check_binning(spectrum_in, factor_in, bin_index_in, op);
  TORCH_CHECK(g_sum_cl.dim() == 1, op, ": g_sum_cl must have shape (nb,), got ", g_sum_cl.sizes());
  const c10::cuda::CUDAGuard guard(spectrum_in.device());
  const Tensor spectrum = spectrum_in.contiguous(), factor = factor_in.contiguous(),
               bin_index = bin_index_in.contiguous();
  const int64_t B = spectrum.size(0), M = spectrum.size(1), nb = g_sum_cl.size(0);
  const auto dt = spectrum.scalar_type();
  const Tensor c = checked(cl, spectrum, dt, {B, nb}, op, "cl"), gc = checked(g_cl, spectrum, dt, {B, nb}, op, "g_cl"),
               g1 = checked(g_sum_cl, spectrum, dt, {nb}, op, "g_sum_cl"),
               g2 = checked(g_sum_cl2, spectrum, dt, {nb}, op, "g_sum_cl2");
  Tensor grad = at::empty({B, M, 2}, spectrum.options());
  C10_CUDA_CHECK(hpcgen::radial_power_bin_backward_cuda(
      spectrum.const_data_ptr(), to_dtype(dt), B, M, factor.const_data_ptr(), bin_index.const_data_ptr<int64_t>(),
      nb, c.const_data_ptr(), gc.const_data_ptr(), g1.const_data_ptr(), g2.const_data_ptr(), grad.mutable_data_ptr(),
      at::cuda::getCurrentCUDAStream()));
  return grad;
}

}  // namespace

TORCH_LIBRARY_IMPL(hpcgen, CUDA, m) {
  m.impl("ecal_moments", &ecal_moments_cuda);
  m.impl("ecal_moments_backward", &ecal_moments_backward_cuda);
  m.impl("radial_power_bin", &radial_power_bin_cuda);
  m.impl("radial_power_bin_backward", &radial_power_bin_backward_cuda);
}
