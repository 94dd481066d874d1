// CUDA kernels of hpcgen::ecal_moments (forward and backward); the mathematics, shapes and determinism contract are
// specified in hpcgen_cuda.h. Torch-free: the glue (ops_cuda.cpp) hands over raw pointers, sizes and its stream.
//
// Forward, deterministic (no atomics, every sum in a fixed order that depends only on the shapes):
//   kernel 1, one block per x-slab (b, i): stage v = f(x) of the Y*Z slab in shared memory (coalesced), then reduce
//     it into Y py-partials (sum over k, increasing k) and Z pz-partials (sum over j, increasing j), written to the
//     workspace laid out (B, X, Y + Z).
//   kernel 2, one block per sample b: merge the X slabs in increasing i (px, py, pz), total = sum_i px in increasing
//     i, then the per-axis mean and the centred (two-pass) variance over the small profiles.
// Backward: one elementwise grid-stride kernel; each element rebuilds its GP_x[i], GP_y[j], GP_z[k] inline (a few
// cached loads of per-sample values), because the backward has no workspace to stage them in.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "hpcgen_cuda.h"

namespace hpcgen {
namespace {

constexpr int kSlabThreads = 256;   // kernel 1: enough threads to stream a 25x25 slab in ~3 coalesced loads
constexpr int kMergeThreads = 128;  // kernel 2: X+Y+Z profile bins are few (75 for the 3DGAN layout)
constexpr int kEwThreads = 256;     // backward, elementwise
constexpr int64_t kMaxBlocks = 1 << 20;  // grid cap of the slab and backward kernels, which grid-stride past it

// Element conversions to/from the accumulation type (float for f32/bf16/f16, double for f64).
__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }
__device__ __forceinline__ float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_acc(__half v) { return __half2float(v); }

template <typename T> __device__ __forceinline__ T from_acc(float v);
template <> __device__ __forceinline__ float from_acc<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float v) { return __float2bfloat16(v); }
template <> __device__ __forceinline__ __half from_acc<__half>(float v) { return __float2half(v); }
template <typename T> __device__ __forceinline__ T from_acc(double v);
template <> __device__ __forceinline__ double from_acc<double>(double v) { return v; }

__device__ __forceinline__ float acc_pow(float b, float e) { return powf(b, e); }
__device__ __forceinline__ double acc_pow(double b, double e) { return pow(b, e); }

// v = f(x): identity when power == 1 (the fast path skips pow entirely), else x^power for x > 0 and 0 otherwise.
template <typename A> __device__ __forceinline__ A power_rule(A x, A power, bool linear) {
  if (linear) return x;
  return x > A(0) ? acc_pow(x, power) : A(0);
}

// f'(x): 1 when power == 1, else power * x^(power-1) for x > 0 and 0 otherwise.
template <typename A> __device__ __forceinline__ A power_rule_grad(A x, A power, bool linear) {
  if (linear) return A(1);
  return x > A(0) ? power * acc_pow(x, power - A(1)) : A(0);
}

// Kernel 1: one block per slab s = b*X + i (grid-stride over slabs, so B*X may exceed the grid cap). Loop bounds
// depend only on blockIdx, so every __syncthreads below is reached by the whole block.
template <typename T, typename A>
__global__ void __launch_bounds__(kSlabThreads)
    ecal_slab_kernel(const T* __restrict__ x, int64_t n_slabs, int64_t Y, int64_t Z, A power, bool linear,
                     A* __restrict__ ws) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  A* slab = reinterpret_cast<A*>(smem_raw);
  const int64_t cells = Y * Z;
  for (int64_t s = blockIdx.x; s < n_slabs; s += gridDim.x) {
    const T* xs = x + s * cells;
    for (int64_t c = threadIdx.x; c < cells; c += blockDim.x) slab[c] = power_rule(to_acc(xs[c]), power, linear);
    __syncthreads();
    // Output o < Y: py-partial of row j = o (sum over k). Output o >= Y: pz-partial of column k = o - Y (sum over j).
    // Each is summed by one thread in increasing index: a fixed order, hence bitwise reproducible.
    A* out = ws + s * (Y + Z);
    for (int64_t o = threadIdx.x; o < Y + Z; o += blockDim.x) {
      A acc = A(0);
      if (o < Y) {
        const A* row = slab + o * Z;
        for (int64_t k = 0; k < Z; ++k) acc += row[k];
      } else {
        const A* col = slab + (o - Y);
        for (int64_t j = 0; j < Y; ++j) acc += col[j * Z];  // threads read adjacent columns: no bank conflicts
      }
      out[o] = acc;
    }
    __syncthreads();  // the next slab overwrites the shared buffer
  }
}

// Kernel 2: one block per sample b = blockIdx.x (no grid-stride loop: keeping one across the double division's
// slow-path call made ptxas spill on sm_80; the launcher caps B at 2^31-1 instead). Phase 1 writes the profiles
// (px, py, pz) to the outputs; phases 2-3 read them back (visible to the block after __syncthreads) to form total,
// then mean and var, one thread per axis.
template <typename A>
__global__ void __launch_bounds__(kMergeThreads)
    ecal_merge_kernel(const A* __restrict__ ws, int64_t X, int64_t Y, int64_t Z, A* total, A* px, A* py,
                      A* pz, A* mean, A* var) {
  __shared__ A s_total;
  const int64_t W = Y + Z;  // workspace row (one slab) length
  const int64_t b = blockIdx.x;
  const A* wb = ws + b * X * W;
  for (int64_t o = threadIdx.x; o < X + W; o += blockDim.x) {
    A acc = A(0);
    if (o < X) {  // px[b,i]: slab i's py-partials in increasing j
      const A* row = wb + o * W;
      for (int64_t j = 0; j < Y; ++j) acc += row[j];
      px[b * X + o] = acc;
    } else {  // py[b,j] / pz[b,k]: workspace column X..X+W-1, merged over slabs in increasing i
      const int64_t c = o - X;
      for (int64_t i = 0; i < X; ++i) acc += wb[i * W + c];
      if (c < Y) py[b * Y + c] = acc;
      else pz[b * Z + (c - Y)] = acc;
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    A t = A(0);
    for (int64_t i = 0; i < X; ++i) t += px[b * X + i];
    total[b] = t;
    s_total = t;
  }
  __syncthreads();
  if (threadIdx.x < 3) {
    const int a = threadIdx.x;
    const A* P = a == 0 ? px + b * X : a == 1 ? py + b * Y : pz + b * Z;
    const int64_t n = a == 0 ? X : a == 1 ? Y : Z;
    const A T_ = s_total;
    A m = A(0), v = A(0);
    // "T > 0" (not "!(T <= 0)") so a NaN total gives zero moments, matching the backward's T > 0 test.
    if (T_ > A(0)) {
      for (int64_t i = 0; i < n; ++i) m += A(i) * P[i];
      m /= T_;
      for (int64_t i = 0; i < n; ++i) {
        const A d = A(i) - m;
        v += d * d * P[i];
      }
      v /= T_;
    }
    mean[b * 3 + a] = m;
    var[b * 3 + a] = v;
  }
}

// GP_a[c] = g_P + (T > 0 ? (g_mean (c - mean) + g_var ((c - mean)^2 - var)) / T : 0), see hpcgen_cuda.h.
template <typename A> __device__ __forceinline__ A grad_profile(A gP, int64_t c, A T_, A m, A v, A gm, A gv) {
  if (!(T_ > A(0))) return gP;
  const A d = A(c) - m;
  return gP + (gm * d + gv * (d * d - v)) / T_;
}

template <typename T, typename A>
__global__ void __launch_bounds__(kEwThreads)
    ecal_backward_kernel(const T* __restrict__ x, int64_t B, int64_t X, int64_t Y, int64_t Z, A power, bool linear,
                         const A* __restrict__ total, const A* __restrict__ mean, const A* __restrict__ var,
                         const A* __restrict__ g_total, const A* __restrict__ g_px, const A* __restrict__ g_py,
                         const A* __restrict__ g_pz, const A* __restrict__ g_mean, const A* __restrict__ g_var,
                         T* __restrict__ dx) {
  const int64_t n = B * X * Y * Z;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n; idx += stride) {
    int64_t r = idx;  // idx = ((b*X + i)*Y + j)*Z + k
    const int64_t k = r % Z;
    r /= Z;
    const int64_t j = r % Y;
    r /= Y;
    const int64_t i = r % X;
    const int64_t b = r / X;
    const A T_ = total[b];
    const A* m = mean + b * 3;
    const A* v = var + b * 3;
    const A* gm = g_mean + b * 3;
    const A* gv = g_var + b * 3;
    const A g = g_total[b] + grad_profile(g_px[b * X + i], i, T_, m[0], v[0], gm[0], gv[0]) +
                grad_profile(g_py[b * Y + j], j, T_, m[1], v[1], gm[1], gv[1]) +
                grad_profile(g_pz[b * Z + k], k, T_, m[2], v[2], gm[2], gv[2]);
    dx[idx] = from_acc<T>(power_rule_grad(to_acc(x[idx]), power, linear) * g);
  }
}

inline int grid_for(int64_t work, int64_t per_block) {
  const int64_t blocks = (work + per_block - 1) / per_block;
  return static_cast<int>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

template <typename T, typename A>
cudaError_t forward_impl(const void* x, int64_t B, int64_t X, int64_t Y, int64_t Z, double power, void* workspace,
                         void* total, void* px, void* py, void* pz, void* mean, void* var, cudaStream_t stream) {
  // Shared-memory budget: Y*Z*sizeof(A) <= kEcalMaxSlabBytes, written as a division so huge Y, Z cannot overflow.
  const int64_t max_cells = kEcalMaxSlabBytes / static_cast<int64_t>(sizeof(A));
  if (Z > 0 && Y > max_cells / Z) return cudaErrorInvalidValue;
  if (B > 0x7fffffff) return cudaErrorInvalidValue;  // gridDim.x limit of the one-block-per-sample merge
  const bool linear = power == 1.0;
  A* ws = static_cast<A*>(workspace);
  const int64_t n_slabs = B * X;
  if (n_slabs > 0) {  // X == 0: no slabs; the merge still writes py = pz = 0, total = 0 and zero moments
    const size_t smem = static_cast<size_t>(Y * Z) * sizeof(A);
    ecal_slab_kernel<T, A><<<grid_for(n_slabs, 1), kSlabThreads, smem, stream>>>(
        static_cast<const T*>(x), n_slabs, Y, Z, static_cast<A>(power), linear, ws);
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  }
  ecal_merge_kernel<A><<<static_cast<unsigned>(B), kMergeThreads, 0, stream>>>(
      ws, X, Y, Z, static_cast<A*>(total), static_cast<A*>(px), static_cast<A*>(py), static_cast<A*>(pz),
      static_cast<A*>(mean), static_cast<A*>(var));
  return cudaGetLastError();
}

template <typename T, typename A>
cudaError_t backward_impl(const void* x, int64_t B, int64_t X, int64_t Y, int64_t Z, double power, const void* total,
                          const void* mean, const void* var, const void* g_total, const void* g_px, const void* g_py,
                          const void* g_pz, const void* g_mean, const void* g_var, void* dx, cudaStream_t stream) {
  if (B == 0 || X == 0 || Y == 0 || Z == 0) return cudaSuccess;  // dx is empty (tested before B*X*Y*Z can overflow)
  const int64_t n = B * X * Y * Z;
  auto c = [](const void* p) { return static_cast<const A*>(p); };
  ecal_backward_kernel<T, A><<<grid_for(n, kEwThreads), kEwThreads, 0, stream>>>(
      static_cast<const T*>(x), B, X, Y, Z, static_cast<A>(power), power == 1.0, c(total), c(mean), c(var),
      c(g_total), c(g_px), c(g_py), c(g_pz), c(g_mean), c(g_var), static_cast<T*>(dx));
  return cudaGetLastError();
}

}  // namespace

cudaError_t ecal_moments_forward_cuda(const void* x, DType dtype, int64_t B, int64_t X, int64_t Y, int64_t Z,
                                      double power, void* workspace, void* total, void* px, void* py, void* pz,
                                      void* mean, void* var, cudaStream_t stream) {
  if (B < 0 || X < 0 || Y < 0 || Z < 0) return cudaErrorInvalidValue;
  if (B == 0) return cudaSuccess;  // every output is empty
  switch (dtype) {
    case DType::f32:
      return forward_impl<float, float>(x, B, X, Y, Z, power, workspace, total, px, py, pz, mean, var, stream);
    case DType::f64:
      return forward_impl<double, double>(x, B, X, Y, Z, power, workspace, total, px, py, pz, mean, var, stream);
    case DType::bf16:
      return forward_impl<__nv_bfloat16, float>(x, B, X, Y, Z, power, workspace, total, px, py, pz, mean, var,
                                                stream);
    case DType::f16:
      return forward_impl<__half, float>(x, B, X, Y, Z, power, workspace, total, px, py, pz, mean, var, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t ecal_moments_backward_cuda(const void* x, DType dtype, int64_t B, int64_t X, int64_t Y, int64_t Z,
                                       double power, const void* total, const void* mean, const void* var,
                                       const void* g_total, const void* g_px, const void* g_py, const void* g_pz,
                                       const void* g_mean, const void* g_var, void* dx, cudaStream_t stream) {
  if (B < 0 || X < 0 || Y < 0 || Z < 0) return cudaErrorInvalidValue;
  switch (dtype) {
    case DType::f32:
      return backward_impl<float, float>(x, B, X, Y, Z, power, total, mean, var, g_total, g_px, g_py, g_pz, g_mean,
                                         g_var, dx, stream);
    case DType::f64:
      return backward_impl<double, double>(x, B, X, Y, Z, power, total, mean, var, g_total, g_px, g_py, g_pz,
                                           g_mean, g_var, dx, stream);
    case DType::bf16:
      return backward_impl<__nv_bfloat16, float>(x, B, X, Y, Z, power, total, mean, var, g_total, g_px, g_py, g_pz,
                                                 g_mean, g_var, dx, stream);
    case DType::f16:
      return backward_impl<__half, float>(x, B, X, Y, Z, power, total, mean, var, g_total, g_px, g_py, g_pz, g_mean,
                                          g_var, dx, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace hpcgen
