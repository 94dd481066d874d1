// CUDA kernels of hpcgen::radial_power_bin (forward and backward), the binning half of the radial power spectrum;
// the mathematics, shapes and the CSR layout of (order, offsets) are specified in hpcgen_cuda.h. Torch-free.
//
// Forward, deterministic (no atomics):
//   kernel 1, one block per (bin k, sample b): a block-stride loop over the bin's cells order[offsets[k]..offsets[k+1])
//     accumulates factor * (re^2 + im^2) per thread, then a fixed-shape shared-memory tree reduction gives cl[b,k].
//     The summation order is fixed by the block size alone, so results are bitwise identical run to run (they equal
//     the spec's increasing-m sum only to rounding, as every parallel reduction does).
//   kernel 2, one thread per bin: sum_cl and sum_cl2 over b in increasing b.
// Backward: elementwise over the B*M cells. f32 and f64 only.
#include <cuda_runtime.h>

#include "hpcgen_cuda.h"

namespace hpcgen {
namespace {

constexpr int kBinThreads = 256;  // power of two: the tree reduction halves it. ~M/nb cells per bin (hundreds)
constexpr int kSumThreads = 128;
constexpr int kEwThreads = 256;
constexpr int64_t kMaxBlocks = 1 << 20;     // 1-D grid cap; kernels grid-stride past it
constexpr int64_t kMaxBlocksY = 65535;      // hardware limit of gridDim.y

template <typename T>
__global__ void __launch_bounds__(kBinThreads)
    radial_bin_kernel(const T* __restrict__ spectrum, int64_t B, int64_t M, const T* __restrict__ factor,
                      const int64_t* __restrict__ order, const int64_t* __restrict__ offsets, int64_t nb,
                      T* __restrict__ cl) {
  __shared__ T partial[kBinThreads];
  const int t = threadIdx.x;
  // Loop bounds depend only on blockIdx, so the whole block reaches every __syncthreads.
  for (int64_t b = blockIdx.y; b < B; b += gridDim.y) {
    const T* sb = spectrum + b * M * 2;
    for (int64_t k = blockIdx.x; k < nb; k += gridDim.x) {
      const int64_t lo = offsets[k], hi = offsets[k + 1];
      T acc = T(0);
      for (int64_t p = lo + t; p < hi; p += kBinThreads) {
        const int64_t m = order[p];
        // The glue cannot check the CSR's contents without a device sync; an out-of-range cell is skipped rather
        // than read out of bounds (the Python face builds order/offsets, so this never fires in practice).
        if (static_cast<uint64_t>(m) < static_cast<uint64_t>(M)) {
          const T re = sb[2 * m], im = sb[2 * m + 1];
          acc += factor[m] * (re * re + im * im);
        }
      }
      partial[t] = acc;
      __syncthreads();
#pragma unroll
      for (int w = kBinThreads / 2; w > 0; w >>= 1) {
        if (t < w) partial[t] += partial[t + w];
        __syncthreads();
      }
      if (t == 0) cl[b * nb + k] = partial[0];
      __syncthreads();  // partial[0] is read before the next (b, k) overwrites the buffer
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kSumThreads)
    radial_sum_kernel(const T* __restrict__ cl, int64_t B, int64_t nb, T* __restrict__ sum_cl,
                      T* __restrict__ sum_cl2) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < nb; k += stride) {
    T s = T(0), s2 = T(0);
    for (int64_t b = 0; b < B; ++b) {  // increasing b; adjacent threads read adjacent bins (coalesced)
      const T c = cl[b * nb + k];
      s += c;
      s2 += c * c;
    }
    sum_cl[k] = s;
    sum_cl2[k] = s2;
  }
}

// g_spectrum[b,m,:] = 2 factor[m] G[b, bin_index[m]] (re, im), G = g_cl + g_sum_cl + 2 cl g_sum_cl2; 0 if unbinned.
template <typename T>
__global__ void __launch_bounds__(kEwThreads)
    radial_backward_kernel(const T* __restrict__ spectrum, int64_t B, int64_t M, const T* __restrict__ factor,
                           const int64_t* __restrict__ bin_index, int64_t nb, const T* __restrict__ cl,
                           const T* __restrict__ g_cl, const T* __restrict__ g_sum_cl,
                           const T* __restrict__ g_sum_cl2, T* __restrict__ g_spectrum) {
  const int64_t n = B * M;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n; idx += stride) {
    const int64_t b = idx / M, m = idx - b * M;  // idx = b*M + m
    const int64_t k = bin_index[m];
    T gr = T(0), gi = T(0);
    if (static_cast<uint64_t>(k) < static_cast<uint64_t>(nb)) {  // k == nb marks an unbinned cell
      const int64_t bk = b * nb + k;
      const T G = g_cl[bk] + g_sum_cl[k] + T(2) * cl[bk] * g_sum_cl2[k];
      const T s = T(2) * factor[m] * G;
      gr = s * spectrum[2 * idx];
      gi = s * spectrum[2 * idx + 1];
    }
    g_spectrum[2 * idx] = gr;
    g_spectrum[2 * idx + 1] = gi;
  }
}

inline int grid_for(int64_t work, int64_t per_block, int64_t cap) {
  const int64_t blocks = (work + per_block - 1) / per_block;
  return static_cast<int>(blocks < cap ? blocks : cap);
}

template <typename T>
cudaError_t forward_impl(const void* spectrum, int64_t B, int64_t M, const void* factor, const int64_t* order,
                         const int64_t* offsets, int64_t nb, void* cl, void* sum_cl, void* sum_cl2,
                         cudaStream_t stream) {
  if (B > 0) {
    const dim3 grid(grid_for(nb, 1, kMaxBlocks), grid_for(B, 1, kMaxBlocksY));
    radial_bin_kernel<T><<<grid, kBinThreads, 0, stream>>>(static_cast<const T*>(spectrum), B, M,
                                                           static_cast<const T*>(factor), order, offsets, nb,
                                                           static_cast<T*>(cl));
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  }
  // Launched even for B == 0: the sums over an empty batch are 0 and must still be written.
  radial_sum_kernel<T><<<grid_for(nb, kSumThreads, kMaxBlocks), kSumThreads, 0, stream>>>(
      static_cast<const T*>(cl), B, nb, static_cast<T*>(sum_cl), static_cast<T*>(sum_cl2));
  return cudaGetLastError();
}

template <typename T>
cudaError_t backward_impl(const void* spectrum, int64_t B, int64_t M, const void* factor, const int64_t* bin_index,
                          int64_t nb, const void* cl, const void* g_cl, const void* g_sum_cl, const void* g_sum_cl2,
                          void* g_spectrum, cudaStream_t stream) {
  auto c = [](const void* p) { return static_cast<const T*>(p); };
  radial_backward_kernel<T><<<grid_for(B * M, kEwThreads, kMaxBlocks), kEwThreads, 0, stream>>>(
      c(spectrum), B, M, c(factor), bin_index, nb, c(cl), c(g_cl), c(g_sum_cl), c(g_sum_cl2),
      static_cast<T*>(g_spectrum));
  return cudaGetLastError();
}

}  // namespace

cudaError_t radial_power_bin_forward_cuda(const void* spectrum, DType dtype, int64_t B, int64_t M, const void* factor,
                                          const int64_t* order, const int64_t* offsets, int64_t nb, void* cl,
                                          void* sum_cl, void* sum_cl2, cudaStream_t stream) {
  if (B < 0 || M < 0 || nb < 0) return cudaErrorInvalidValue;
  if (dtype != DType::f32 && dtype != DType::f64) return cudaErrorInvalidValue;
  if (nb == 0) return cudaSuccess;  // every output is empty
  return dtype == DType::f32
             ? forward_impl<float>(spectrum, B, M, factor, order, offsets, nb, cl, sum_cl, sum_cl2, stream)
             : forward_impl<double>(spectrum, B, M, factor, order, offsets, nb, cl, sum_cl, sum_cl2, stream);
}

cudaError_t radial_power_bin_backward_cuda(const void* spectrum, DType dtype, int64_t B, int64_t M, const void* factor,
                                           const int64_t* bin_index, int64_t nb, const void* cl, const void* g_cl,
                                           const void* g_sum_cl, const void* g_sum_cl2, void* g_spectrum,
                                           cudaStream_t stream) {
  if (B < 0 || M < 0 || nb < 0) return cudaErrorInvalidValue;
  if (dtype != DType::f32 && dtype != DType::f64) return cudaErrorInvalidValue;
  if (B == 0 || M == 0) return cudaSuccess;  // g_spectrum is empty
  return dtype == DType::f32 ? backward_impl<float>(spectrum, B, M, factor, bin_index, nb, cl, g_cl, g_sum_cl,
                                                    g_sum_cl2, g_spectrum, stream)
                             : backward_impl<double>(spectrum, B, M, factor, bin_index, nb, cl, g_cl, g_sum_cl,
                                                     g_sum_cl2, g_spectrum, stream);
}

}  // namespace hpcgen
