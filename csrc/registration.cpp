// Schemas of hpcgen's fused ops (namespace "hpcgen"). The CPU kernels register in *_cpu.cpp, the CUDA glue in
// ops_cuda.cpp; autograd and fake (meta) kernels are registered from Python (hpcgen/ops/registrations.py), the path
// pytorch/extension-cpp recommends. The mathematics of every op is specified in hpcgen_cuda.h.
#include <torch/library.h>

TORCH_LIBRARY(hpcgen, m) {
  m.def("ecal_moments(Tensor x, float power) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "ecal_moments_backward(Tensor x, float power, Tensor total, Tensor mean, Tensor var, Tensor g_total, "
      "Tensor g_px, Tensor g_py, Tensor g_pz, Tensor g_mean, Tensor g_var) -> Tensor");
  m.def("radial_power_bin(Tensor spectrum, Tensor factor, Tensor bin_index, Tensor order, Tensor offsets) "
        "-> (Tensor, Tensor, Tensor)");
  m.def(
      "radial_power_bin_backward(Tensor spectrum, Tensor factor, Tensor bin_index, Tensor cl, Tensor g_cl, "
      "Tensor g_sum_cl, Tensor g_sum_cl2) -> Tensor");
}
