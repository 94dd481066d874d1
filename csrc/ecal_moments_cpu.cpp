// CPU kernels of hpcgen::ecal_moments and its backward (mathematics: hpcgen_cuda.h).
//
// Forward reads x once, flat over each x-slab (Y*Z cells): the slab's sum is its x-profile entry, and the slabs
// are added cell-wise into one Y*Z plane per sample, whose row and column sums are the y- and z-profiles. Work is
// split over (sample, chunk of slabs) with at::parallel_for; chunks depend on the shape only and are merged in a
// fixed order, so the output is bitwise identical for any thread count. Backward reads x once
// and writes dx once. Accumulation is in at::opmath_type (float for bf16/f16/f32, double for f64).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

// Run-time dispatch between an AVX2 and a baseline build of the hot loops (x86-64 GCC/Clang only).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HPCGEN_TARGET_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define HPCGEN_TARGET_CLONES
#endif

namespace {

constexpr int64_t kCellsPerTask = 16384;  // parallel_for grain, in cells: ~64 KiB of float32 per task

at::ScalarType acc_dtype(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

void check_x(const at::Tensor& x, const char* op) {
  TORCH_CHECK(x.device().is_cpu(), op, ": x must be a CPU tensor, got one on ", x.device());
  TORCH_CHECK(x.dim() == 4, op, ": x must have shape (B, X, Y, Z), got ", x.sizes());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), op, ": x must be floating point, got ", x.scalar_type());
}

void check_acc(const at::Tensor& t, at::ScalarType acc, at::IntArrayRef shape, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == acc && t.sizes() == shape, "ecal_moments_backward: ", name,
              " must be a CPU ", acc, " tensor of shape ", shape, ", got ", t.scalar_type(), " ", t.sizes());
}

// Energy-weighted mean and centred variance of cell coordinate c_i = i under profile P (two passes, no cancellation).
template <typename acc_t>
void axis_moments(const acc_t* P, int64_t n, acc_t T, acc_t* mean, acc_t* var) {
  if (!(T > acc_t(0))) {
    *mean = acc_t(0);
    *var = acc_t(0);
    return;
  }
  acc_t s = 0;
  for (int64_t i = 0; i < n; ++i) s += acc_t(i) * P[i];
  const acc_t m = s / T;
  acc_t v = 0;
  for (int64_t i = 0; i < n; ++i) {
    const acc_t d = acc_t(i) - m;
    v += d * d * P[i];
  }
  *mean = m;
  *var = v / T;
}

// Branch-free float log and exp (the Cephes logf/expf polynomials, ~2 ulp over the normal range) so that x^p
// vectorises inside `omp simd` loops; std::pow would stay a scalar libm call per cell and cost more than the whole
// memory pass. Subnormal x is rescaled first; results below FLT_MIN or above FLT_MAX are clamped, not IEEE-exact.
inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline float log_approx(float x) {  // x > 0
  const bool subnormal = x < 1.17549435e-38f;
  x = subnormal ? x * 8388608.0f : x;  // × 2^23
  const uint32_t u = float_bits(x);
  float e = static_cast<float>(static_cast<int32_t>(u >> 23) - 127) - (subnormal ? 23.0f : 0.0f);
  float m = bits_float((u & 0x007fffffu) | 0x3f800000u);  // mantissa in [1, 2)
  const bool high = m > 1.41421356f;                      // fold into [√½, √2) for accuracy
  m = high ? m * 0.5f : m;
  e = high ? e + 1.0f : e;
  const float f = m - 1.0f, z = f * f;
  float y = 7.0376836292e-2f;
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * z - 0.5f * z;
  return f + y + e * 0.693147180559945f;
}

inline float exp_approx(float y) {
  y = std::min(std::max(y, -87.3f), 88.3f);
  const float t = y * 1.44269504088896341f + 0.5f;
  const float tt = static_cast<float>(static_cast<int32_t>(t));  // floor(t) by truncation: no libm call (SSE2)
  const float n = t < tt ? tt - 1.0f : tt;
  const float r = y - n * 0.693359375f + n * 2.12194440e-4f;
  const float z = r * r;
  float q = 1.9875691500e-4f;
  q = q * r + 1.3981999507e-3f;
  q = q * r + 8.3334519073e-3f;
  q = q * r + 4.1665795894e-2f;
  q = q * r + 1.6666665459e-1f;
  q = q * r + 5.0000001201e-1f;
  q = q * z + r + 1.0f;
  return q * bits_float(static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23);
}

// x^p for x > 0: the float path is vectorisable, double keeps libm's exact pow.
inline float pow_positive(float x, float p) { return exp_approx(p * log_approx(x)); }
inline double pow_positive(double x, double p) { return std::pow(x, p); }

// x^power as the op defines it (hpcgen_cuda.h): the identity for power 1, else 0 for x <= 0.
template <typename acc_t, bool UNIT>
inline acc_t cell_value(acc_t xv, acc_t p) {
  if constexpr (UNIT) {
    return xv;
  } else {  // evaluate on a safe argument, then select: no branch, so the loop stays vectorisable
    const bool positive = xv > acc_t(0);
    const acc_t pw = pow_positive(positive ? xv : acc_t(1), p);
    return positive ? pw : acc_t(0);
  }
}

// One chunk of consecutive x-slabs of one sample, flat over the Y*Z cells of each slab: the slab sums (px) and the
// cell-wise sum over the chunk's slabs (plane, Y*Z) — long unit-stride loops with no per-row horizontal reduction.
// A slab's sum is kept in kLanes independent partial sums (lane = cell index mod kLanes) so that the vectorised
// loop is not serialised on one accumulator's add latency; the lanes are then added in a fixed order, so results
// are bitwise reproducible. The AVX2 clone is chosen at load time on CPUs that have it.
constexpr int64_t kLanes = 32;

template <typename scalar_t, typename acc_t, bool UNIT>
HPCGEN_TARGET_CLONES void reduce_chunk(const scalar_t* __restrict xs, int64_t slabs, int64_t slab, acc_t p,
                                       acc_t* __restrict px, acc_t* __restrict plane) {
  for (int64_t m = 0; m < slab; ++m) plane[m] = acc_t(0);
  const int64_t body = slab - slab % kLanes;
  for (int64_t i = 0; i < slabs; ++i) {
    const scalar_t* __restrict row = xs + i * slab;
    acc_t lanes[kLanes] = {};
    for (int64_t m0 = 0; m0 < body; m0 += kLanes) {
#pragma omp simd
      for (int64_t q = 0; q < kLanes; ++q) {
        const acc_t v = cell_value<acc_t, UNIT>(static_cast<acc_t>(row[m0 + q]), p);
        lanes[q] += v;
        plane[m0 + q] += v;
      }
    }
    acc_t* __restrict tail_lanes = lanes;
    const scalar_t* __restrict tail_row = row + body;
    acc_t* __restrict tail_plane = plane + body;
#pragma omp simd
    for (int64_t q = 0; q < slab - body; ++q) {
      const acc_t v = cell_value<acc_t, UNIT>(static_cast<acc_t>(tail_row[q]), p);
      tail_lanes[q] += v;
      tail_plane[q] += v;
    }
    acc_t s = 0;
    for (int64_t q = 0; q < kLanes; ++q) s += lanes[q];
    px[i] = s;
  }
}

// Chunking of the X axis that depends on the shape only, never on the thread count (so results do not either).
int64_t slabs_per_chunk(int64_t X, int64_t slab) { return std::min<int64_t>(X, std::max<int64_t>(1, kCellsPerTask / slab)); }

template <typename scalar_t, typename acc_t, bool UNIT>
void forward_impl(const scalar_t* x, int64_t B, int64_t X, int64_t Y, int64_t Z, acc_t p, acc_t* work, acc_t* total,
                  acc_t* px, acc_t* py, acc_t* pz, acc_t* mean, acc_t* var) {
  const int64_t slab = Y * Z, per = slabs_per_chunk(X, slab), chunks = (X + per - 1) / per;
  at::parallel_for(0, B * chunks, 1, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t b = u / chunks, i0 = (u % chunks) * per, n = std::min(per, X - i0);
      reduce_chunk<scalar_t, acc_t, UNIT>(x + (b * X + i0) * slab, n, slab, p, px + b * X + i0, work + u * slab);
    }
  });
  at::parallel_for(0, B, 1 + kCellsPerTask / (chunks * slab), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      acc_t* plane = work + b * chunks * slab;  // merge the chunks' planes into the first, in chunk order
      for (int64_t c = 1; c < chunks; ++c)
        for (int64_t m = 0; m < slab; ++m) plane[m] += plane[c * slab + m];
      acc_t* pyb = py + b * Y;
      acc_t* pzb = pz + b * Z;
      for (int64_t k = 0; k < Z; ++k) pzb[k] = acc_t(0);
      for (int64_t j = 0; j < Y; ++j) {
        acc_t row = 0;
        for (int64_t k = 0; k < Z; ++k) {
          row += plane[j * Z + k];
          pzb[k] += plane[j * Z + k];
        }
        pyb[j] = row;
      }
      const acc_t* pxb = px + b * X;
      acc_t t = 0;
      for (int64_t i = 0; i < X; ++i) t += pxb[i];
      total[b] = t;
      axis_moments(pxb, X, t, mean + 3 * b + 0, var + 3 * b + 0);
      axis_moments(pyb, Y, t, mean + 3 * b + 1, var + 3 * b + 1);
      axis_moments(pzb, Z, t, mean + 3 * b + 2, var + 3 * b + 2);
    }
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> ecal_moments_cpu(
    const at::Tensor& x_in, double power) {
  check_x(x_in, "ecal_moments");
  const at::Tensor x = x_in.contiguous();
  const int64_t B = x.size(0), X = x.size(1), Y = x.size(2), Z = x.size(3);
  const auto opts = x.options().dtype(acc_dtype(x.scalar_type()));
  at::Tensor total = at::empty({B}, opts), px = at::empty({B, X}, opts), py = at::empty({B, Y}, opts),
             pz = at::empty({B, Z}, opts), mean = at::empty({B, 3}, opts), var = at::empty({B, 3}, opts);
  if (B == 0) return {total, px, py, pz, mean, var};
  if (X == 0 || Y == 0 || Z == 0) {  // an empty grid: zero energy, moments 0 by definition
    for (auto* t : {&total, &px, &py, &pz, &mean, &var}) t->zero_();
    return {total, px, py, pz, mean, var};
  }
  const int64_t per = slabs_per_chunk(X, Y * Z);
  at::Tensor work = at::empty({B, (X + per - 1) / per, Y * Z}, opts);  // one Y*Z plane per chunk of slabs
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "ecal_moments_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    auto run = [&](auto unit) {
      forward_impl<scalar_t, acc_t, decltype(unit)::value>(
          x.const_data_ptr<scalar_t>(), B, X, Y, Z, static_cast<acc_t>(power), work.mutable_data_ptr<acc_t>(),
          total.mutable_data_ptr<acc_t>(), px.mutable_data_ptr<acc_t>(), py.mutable_data_ptr<acc_t>(),
          pz.mutable_data_ptr<acc_t>(), mean.mutable_data_ptr<acc_t>(), var.mutable_data_ptr<acc_t>());
    };
    if (power == 1.0) run(std::true_type{}); else run(std::false_type{});
  });
  return {total, px, py, pz, mean, var};
}

// dL/dP_a[i] of one axis: the profile's own gradient plus what flows back through that axis' mean and variance.
template <typename acc_t>
void effective_profile_grad(const acc_t* g_p, int64_t n, acc_t T, acc_t m, acc_t v, acc_t g_m, acc_t g_v, acc_t* out) {
  const bool has_moments = T > acc_t(0);
  for (int64_t i = 0; i < n; ++i) {
    acc_t g = g_p[i];
    if (has_moments) {
      const acc_t d = acc_t(i) - m;
      g += (g_m * d + g_v * (d * d - v)) / T;
    }
    out[i] = g;
  }
}

// dx of one x-slab, flat over its Y*Z cells: f'(x) (base + plane[m]) with base = g_total + GPx[i] and
// plane[j*Z+k] = GPy[j] + GPz[k] precomputed per sample.
template <typename scalar_t, typename acc_t, bool UNIT>
HPCGEN_TARGET_CLONES void grad_slab(const scalar_t* __restrict xs, int64_t slab, acc_t p, acc_t base,
                                    const acc_t* __restrict plane, scalar_t* __restrict ds) {
#pragma omp simd
  for (int64_t m = 0; m < slab; ++m) {
    const acc_t g = base + plane[m];
    if constexpr (UNIT) {
      ds[m] = static_cast<scalar_t>(g);
    } else {
      const acc_t xv = static_cast<acc_t>(xs[m]);
      const bool positive = xv > acc_t(0);
      const acc_t slope = p * pow_positive(positive ? xv : acc_t(1), p - acc_t(1));  // d(x^p)/dx, branch-free
      ds[m] = static_cast<scalar_t>(positive ? slope * g : acc_t(0));
    }
  }
}

template <typename scalar_t, typename acc_t, bool UNIT>
void backward_impl(const scalar_t* x, int64_t B, int64_t X, int64_t Y, int64_t Z, acc_t p, const acc_t* total,
                   const acc_t* mean, const acc_t* var, const acc_t* g_total, const acc_t* g_px, const acc_t* g_py,
                   const acc_t* g_pz, const acc_t* g_mean, const acc_t* g_var, scalar_t* dx) {
  const int64_t slab = Y * Z, W = X + slab;
  // Per sample: base[i] = g_total + GPx[i] (X values), then the plane GPy[j] + GPz[k] (Y*Z values).
  std::vector<acc_t> gp(static_cast<size_t>(B * W));
  at::parallel_for(0, B, 1 + kCellsPerTask / W, [&](int64_t b0, int64_t b1) {
    std::vector<acc_t> gy(static_cast<size_t>(Y)), gz(static_cast<size_t>(Z));
    for (int64_t b = b0; b < b1; ++b) {
      acc_t* g = gp.data() + b * W;
      const acc_t T = total[b];
      effective_profile_grad(g_px + b * X, X, T, mean[3 * b], var[3 * b], g_mean[3 * b], g_var[3 * b], g);
      for (int64_t i = 0; i < X; ++i) g[i] += g_total[b];
      effective_profile_grad(g_py + b * Y, Y, T, mean[3 * b + 1], var[3 * b + 1], g_mean[3 * b + 1], g_var[3 * b + 1],
                             gy.data());
      effective_profile_grad(g_pz + b * Z, Z, T, mean[3 * b + 2], var[3 * b + 2], g_mean[3 * b + 2], g_var[3 * b + 2],
                             gz.data());
      for (int64_t j = 0; j < Y; ++j)
        for (int64_t k = 0; k < Z; ++k) g[X + j * Z + k] = gy[j] + gz[k];
    }
  });
  at::parallel_for(0, B * X, 1 + kCellsPerTask / slab, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      const int64_t b = s / X, i = s % X;
      const acc_t* g = gp.data() + b * W;
      grad_slab<scalar_t, acc_t, UNIT>(x + s * slab, slab, p, g[i], g + X, dx + s * slab);
    }
  });
}

at::Tensor ecal_moments_backward_cpu(const at::Tensor& x_in, double power, const at::Tensor& total,
                                     const at::Tensor& mean, const at::Tensor& var, const at::Tensor& g_total,
                                     const at::Tensor& g_px, const at::Tensor& g_py, const at::Tensor& g_pz,
                                     const at::Tensor& g_mean, const at::Tensor& g_var) {
  check_x(x_in, "ecal_moments_backward");
  const at::Tensor x = x_in.contiguous();
  const int64_t B = x.size(0), X = x.size(1), Y = x.size(2), Z = x.size(3);
  const auto acc = acc_dtype(x.scalar_type());
  check_acc(total, acc, {B}, "total");
  check_acc(mean, acc, {B, 3}, "mean");
  check_acc(var, acc, {B, 3}, "var");
  check_acc(g_total, acc, {B}, "g_total");
  check_acc(g_px, acc, {B, X}, "g_px");
  check_acc(g_py, acc, {B, Y}, "g_py");
  check_acc(g_pz, acc, {B, Z}, "g_pz");
  check_acc(g_mean, acc, {B, 3}, "g_mean");
  check_acc(g_var, acc, {B, 3}, "g_var");
  at::Tensor dx = at::empty_like(x, at::MemoryFormat::Contiguous);
  if (x.numel() == 0) return dx;
  const at::Tensor t = total.contiguous(), m = mean.contiguous(), v = var.contiguous(), gt = g_total.contiguous(),
                   gx = g_px.contiguous(), gy = g_py.contiguous(), gz = g_pz.contiguous(), gm = g_mean.contiguous(),
                   gv = g_var.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "ecal_moments_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    auto run = [&](auto unit) {
      backward_impl<scalar_t, acc_t, decltype(unit)::value>(
          x.const_data_ptr<scalar_t>(), B, X, Y, Z, static_cast<acc_t>(power), t.const_data_ptr<acc_t>(),
          m.const_data_ptr<acc_t>(), v.const_data_ptr<acc_t>(), gt.const_data_ptr<acc_t>(), gx.const_data_ptr<acc_t>(),
          gy.const_data_ptr<acc_t>(), gz.const_data_ptr<acc_t>(), gm.const_data_ptr<acc_t>(),
          gv.const_data_ptr<acc_t>(), dx.mutable_data_ptr<scalar_t>());
    };
    if (power == 1.0) run(std::true_type{}); else run(std::false_type{});
  });
  return dx;
}

}  // namespace

TORCH_LIBRARY_IMPL(hpcgen, CPU, m) {
  m.impl("ecal_moments", &ecal_moments_cpu);
  m.impl("ecal_moments_backward", &ecal_moments_backward_cpu);
}
