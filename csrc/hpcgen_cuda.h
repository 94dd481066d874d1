// Torch-free interface between the CUDA kernels (csrc/*.cu) and the torch glue (csrc/ops_cuda.cpp).
//
// The .cu files see only raw pointers, sizes and a stream, so nvcc can compile them without torch's headers (which
// need a CUDA-enabled torch and, from torch 2.14, C++20). Every launcher runs on the stream it is given — the glue
// passes torch's current stream, so the kernels are correct under CUDA graphs — and returns the launch status.
//
// The mathematics is specified once, here, and implemented three times: csrc/*_cpu.cpp, csrc/*.cu and the pure-torch
// reference twins in hpcgen/ops/ (which the tests hold both kernels to).
//
// ecal_moments (x: (B, X, Y, Z) contiguous, dtype f32/bf16/f16/f64; "acc" = double for f64 inputs, float otherwise):
//   v        = x                              if power == 1
//            = (x > 0 ? x^power : 0)          otherwise
//   px[b,i]  = sum_{j,k} v[b,i,j,k]   py[b,j] = sum_{i,k} v   pz[b,k] = sum_{i,j} v      (acc, fixed order)
//   total[b] = sum_i px[b,i] in increasing i
//   for each axis a in (x, y, z) with profile P of n bins, cell coordinate c_i = i (cells, 0-based):
//     mean[b,a] = sum_i c_i P_i / T,   var[b,a] = sum_i (c_i - mean)^2 P_i / T   with T = total[b];  both 0 if T <= 0
//   Outputs: total (B,), px (B,X), py (B,Y), pz (B,Z), mean (B,3), var (B,3), all acc.
//   Backward (all g_* acc, same shapes as the outputs; the glue passes zeros for outputs without a gradient):
//     GP_a[i] = g_P_a[i] + (T > 0 ? (g_mean_a (c_i - mean_a) + g_var_a ((c_i - mean_a)^2 - var_a)) / T : 0)
//     dx[b,i,j,k] = f'(x) (g_total[b] + GPx[i] + GPy[j] + GPz[k]),  f'(x) = 1 if power == 1
//                                                                    = (x > 0 ? power x^(power-1) : 0) otherwise
//     dx has the dtype of x.
//   Determinism: no atomics; every sum has a fixed order, so results are bitwise identical run to run. The CUDA
//   forward reduces each x-slab (Y*Z cells) into its y- and z-partials in a workspace of B*X*(Y+Z) acc values, then
//   merges the slabs in increasing x. The CPU kernel orders its sums differently (csrc/ecal_moments_cpu.cpp), so
//   CPU and CUDA agree to rounding, not bitwise.
//
// radial_power_bin (the binning half of hpcgen.ops.radial_power_spectrum; the FFT is torch.fft.rfft2):
//   spectrum: (B, M, 2) contiguous f32 or f64, real and imaginary parts of the M = N*(N/2+1) rfft2 cells.
//   factor (M,) same dtype: Hermitian weight * pixel_rad^2/N^2 / modes[bin of the cell] (0 for cells not binned).
//   bin_index (M,) int64: the cell's bin in [0, nb), or nb for cells not binned.
//   order (K,) int64 and offsets (nb+1,) int64: the binned cells sorted by bin (CSR): bin k holds
//     order[offsets[k] .. offsets[k+1]) in increasing cell index.
//   cl[b,k]   = sum_{m in bin k, increasing m} factor[m] (re^2 + im^2)     (acc = dtype of spectrum)
//   sum_cl[k] = sum_b cl[b,k] in increasing b,   sum_cl2[k] = sum_b cl[b,k]^2 in increasing b
//   Backward: G[b,k] = g_cl[b,k] + g_sum_cl[k] + 2 cl[b,k] g_sum_cl2[k];
//     g_spectrum[b,m,:] = 2 factor[m] G[b, bin_index[m]] (re, im) for binned cells, 0 otherwise.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace hpcgen {

// Element type of a tensor handed to a kernel; the glue maps torch dtypes onto it.
enum class DType : int { f32 = 0, f64 = 1, bf16 = 2, f16 = 3 };

// Largest Y*Z slab (in acc elements) the forward keeps in shared memory: 48 KiB without an opt-in.
constexpr int64_t kEcalMaxSlabBytes = 48 * 1024;

// Workspace the forward needs, in acc elements: B * X * (Y + Z).
inline int64_t ecal_moments_workspace_elems(int64_t B, int64_t X, int64_t Y, int64_t Z) { return B * X * (Y + Z); }

cudaError_t ecal_moments_forward_cuda(const void* x, DType dtype, int64_t B, int64_t X, int64_t Y, int64_t Z,
                                      double power, void* workspace, void* total, void* px, void* py, void* pz,
                                      void* mean, void* var, cudaStream_t stream);

cudaError_t ecal_moments_backward_cuda(const void* x, DType dtype, int64_t B, int64_t X, int64_t Y, int64_t Z,
                                       double power, const void* total, const void* mean, const void* var,
                                       const void* g_total, const void* g_px, const void* g_py, const void* g_pz,
                                       const void* g_mean, const void* g_var, void* dx, cudaStream_t stream);

cudaError_t radial_power_bin_forward_cuda(const void* spectrum, DType dtype, int64_t B, int64_t M, const void* factor,
                                          const int64_t* order, const int64_t* offsets, int64_t nb, void* cl,
                                          void* sum_cl, void* sum_cl2, cudaStream_t stream);

cudaError_t radial_power_bin_backward_cuda(const void* spectrum, DType dtype, int64_t B, int64_t M, const void* factor,
                                           const int64_t* bin_index, int64_t nb, const void* cl, const void* g_cl,
                                           const void* g_sum_cl, const void* g_sum_cl2, void* g_spectrum,
                                           cudaStream_t stream);

}  // namespace hpcgen
