// Autograd of hpcgen::ecal_moments in C++ (the Autograd dispatch key): forward saves x and the moments, backward
// calls hpcgen::ecal_moments_backward. In C++ rather than torch.library.register_autograd because at 3DGAN batch
// sizes the Python autograd wrapper cost as much as the kernels themselves (measured: ~0.2 ms of a 0.6 ms step).
// The fake (meta) kernels stay in Python (hpcgen/ops/registrations.py).
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using Moments = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;

Moments call_forward(const Tensor& x, double power) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("hpcgen::ecal_moments", "")
                             .typed<Moments(const Tensor&, double)>();
  return op.call(x, power);
}

Tensor call_backward(const Tensor& x, double power, const Tensor& total, const Tensor& mean, const Tensor& var,
                     const Tensor& g_total, const Tensor& g_px, const Tensor& g_py, const Tensor& g_pz,
                     const Tensor& g_mean, const Tensor& g_var) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("hpcgen::ecal_moments_backward", "")
          .typed<Tensor(const Tensor&, double, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                        const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&)>();
  return op.call(x, power, total, mean, var, g_total, g_px, g_py, g_pz, g_mean, g_var);
}

class EcalMomentsFunction : public torch::autograd::Function<EcalMomentsFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& x, double power) {
    Moments out;
    {
      const at::AutoDispatchBelowADInplaceOrView below_autograd;  // else the call would land here again
      out = call_forward(x, power);
    }
    auto [total, px, py, pz, mean, var] = out;
    ctx->save_for_backward({x, total, mean, var});
    ctx->saved_data["power"] = power;
    return {total, px, py, pz, mean, var};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &x = saved[0], &total = saved[1], &mean = saved[2], &var = saved[3];
    const int64_t B = x.size(0);
    const std::vector<std::vector<int64_t>> shapes = {{B}, {B, x.size(1)}, {B, x.size(2)}, {B, x.size(3)}, {B, 3}, {B, 3}};
    for (size_t i = 0; i < grads.size(); ++i)  // an output that did not reach the loss contributes zero
      if (!grads[i].defined()) grads[i] = at::zeros(shapes[i], total.options());
    Tensor dx = call_backward(x, ctx->saved_data["power"].toDouble(), total, mean, var, grads[0], grads[1], grads[2],
                              grads[3], grads[4], grads[5]);
    return {dx, Tensor()};
  }
};

Moments ecal_moments_autograd(const Tensor& x, double power) {
  const auto out = EcalMomentsFunction::apply(x, power);
  return {out[0], out[1], out[2], out[3], out[4], out[5]};
}

}  // namespace

TORCH_LIBRARY_IMPL(hpcgen, Autograd, m) { m.impl("ecal_moments", &ecal_moments_autograd); }
