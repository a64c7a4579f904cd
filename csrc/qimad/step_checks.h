#pragma once
// qimad_step's argument checks (step.h), shared by its CPU kernel and the composite the other
// devices run, so every device raises the same errors with the same messages before it
// touches memory.

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../common/checks.h"
#include "checks.h"

namespace sb_native {
namespace qimad {

// Each bucket is one (device, dtype) swarm: theta (agents, P), square_avg and grad (m, P), the
// agents [first, first + m) (m the same in every bucket), best (P,), and the next
// bucket_params[b] tensors of params, whose sizes add up to P.
inline void check_step_buckets(at::TensorList theta, at::TensorList square_avg,
                               at::TensorList grad, at::TensorList best, at::TensorList params,
                               at::IntArrayRef bucket_params, at::TensorList segments,
                               at::TensorList seg_eta, at::TensorList seg_gamma,
                               at::TensorList seg_w, int64_t n, int64_t first) {
  const size_t nb = theta.size();
  TORCH_CHECK_VALUE(nb >= 1, "theta must hold at least one bucket");
  const bool same = square_avg.size() == nb && grad.size() == nb && best.size() == nb &&
                    bucket_params.size() == nb && segments.size() == nb &&
                    seg_eta.size() == nb && seg_gamma.size() == nb && seg_w.size() == nb;
  TORCH_CHECK_VALUE(same, "theta, square_avg, grad, best, bucket_params, segments, seg_eta, "
                    "seg_gamma and seg_w must hold one entry per bucket (", nb, ")");
  TORCH_CHECK_VALUE(first >= 0 && first <= n, "first must lie in [0, ", n, "], got ", first);
  const int64_t m = square_avg[0].dim() == 2 ? square_avg[0].size(0) : -1;
  TORCH_CHECK_VALUE(m >= 0 && m <= n - first, "square_avg[0] must be (rows, parameters) with "
                    "rows <= agents - first = ", n - first, ", got shape ", square_avg[0].sizes());
  size_t next = 0;
  for (size_t b = 0; b < nb; ++b) {
    const at::Tensor& t = theta[b];
    TORCH_CHECK_VALUE(t.dim() == 2 && t.size(0) == n, "theta[", b, "] must be (agents, "
                      "parameters) with agents = ", n, ", got shape ", t.sizes());
    common::check_float_tensor(t, "theta");
    TORCH_CHECK_VALUE(t.is_contiguous(), "theta[", b, "] must be contiguous");
    for (const at::Tensor* other : {&square_avg[b], &grad[b]}) {
      TORCH_CHECK_VALUE(other->dim() == 2 && other->size(0) == m && other->size(1) == t.size(1) &&
                            other->scalar_type() == t.scalar_type() &&
                            other->device() == t.device() && other->is_contiguous(),
                        "square_avg[", b, "] and grad[", b, "] must be contiguous (", m,
                        ", parameters) rows like theta[", b, "]'s");
    }
    TORCH_CHECK_VALUE(best[b].dim() == 1 && best[b].size(0) == t.size(1) &&
                          best[b].scalar_type() == t.scalar_type() &&
                          best[b].device() == t.device() && best[b].is_contiguous(),
                      "best[", b, "] must be a contiguous (parameters,) row like theta[", b, "]'s");
    TORCH_CHECK_VALUE(bucket_params[b] >= 0 &&
                          next + static_cast<size_t>(bucket_params[b]) <= params.size(),
                      "bucket_params must split params into the buckets");
    int64_t width = 0;
    for (int64_t j = 0; j < bucket_params[b]; ++j, ++next) {
      const at::Tensor& p = params[next];
      TORCH_CHECK_VALUE(p.scalar_type() == t.scalar_type() && p.device() == t.device(), "params[",
                        next, "] must have the dtype and device of its bucket");
      width += p.numel();
    }
    TORCH_CHECK_VALUE(width == t.size(1), "the params of bucket ", b, " hold ", width,
                      " elements, its theta has ", t.size(1), " columns");
  }
  TORCH_CHECK_VALUE(next == params.size(), "bucket_params must split params into the buckets");
}

inline void check_step_record(const at::Tensor& t, const char* name, at::ScalarType dtype,
                              int64_t n) {
  TORCH_CHECK_VALUE(t.dim() == 1 && t.size(0) == n, name, " must be (agents,) with agents = ", n,
                    ", got shape ", t.sizes());
  TORCH_CHECK_TYPE(t.scalar_type() == dtype, name, " must be ", dtype, ", got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.device().is_cpu() && t.is_contiguous(), name,
                    " must be a contiguous CPU tensor");
}

// The checks of everything qimad_step reads before it hands the buckets to qimad_update
// (which checks segments, seg_eta, seg_gamma and seg_w itself, before it touches memory).
inline void check_step_args(at::TensorList theta, at::TensorList square_avg, at::TensorList grad,
                            at::TensorList best, at::TensorList params,
                            at::IntArrayRef bucket_params, at::TensorList segments,
                            at::TensorList seg_eta, at::TensorList seg_gamma,
                            at::TensorList seg_w, const at::Tensor& alpha,
                            at::IntArrayRef can_tunnel, const at::Tensor& agent_loss,
                            const at::Tensor& agent_best, const at::Tensor& stagnation,
                            const at::Tensor& best_loss, const at::Tensor& normal,
                            const at::Tensor& uniform, int64_t step, at::IntArrayRef rows,
                            at::ArrayRef<double> losses,
                            const c10::List<std::optional<at::Tensor>>& bounds, int64_t first) {
  TORCH_CHECK_VALUE(alpha.dim() == 1 && alpha.scalar_type() == at::kDouble &&
                        alpha.is_contiguous(),
                    "alpha must be a contiguous 1-D float64 tensor (agents)");
  const int64_t n = alpha.size(0);
  check_step_buckets(theta, square_avg, grad, best, params, bucket_params, segments, seg_eta,
                     seg_gamma, seg_w, n, first);
  TORCH_CHECK_VALUE(bounds.size() == theta.size(), "bounds must hold one entry per bucket (",
                    theta.size(), "), got ", bounds.size());
  for (size_t b = 0; b < theta.size(); ++b) check_bounds(bounds.get(b), theta[b], "bounds");
  // The swarm's records, kept on the host: each agent's last loss (inf after a reset), its
  // best loss, its evaluations without improvement; the swarm's best loss.
  check_step_record(agent_loss, "agent_loss", at::kDouble, n);
  check_step_record(agent_best, "agent_best", at::kDouble, n);
  check_step_record(stagnation, "stagnation", at::kLong, n);
  TORCH_CHECK_VALUE(best_loss.dim() == 0 && best_loss.scalar_type() == at::kDouble &&
                        best_loss.device().is_cpu(),
                    "best_loss must be a 0-dim float64 CPU tensor");
  // The random draws of a block of steps: (steps, 2, agents) each, on alpha's device.
  for (const auto& [t, name] : {std::pair<const at::Tensor&, const char*>{normal, "normal"},
                                {uniform, "uniform"}}) {
    TORCH_CHECK_VALUE(t.dim() == 3 && t.size(0) >= 1 && t.size(1) == 2 && t.size(2) == n &&
                          t.scalar_type() == at::kDouble && t.device() == alpha.device() &&
                          t.is_contiguous(),
                      name, " must be a contiguous float64 (steps, 2, agents) block on the "
                      "device of alpha with agents = ", n, ", got shape ", t.sizes());
  }
  TORCH_CHECK_VALUE(normal.size(0) == uniform.size(0),
                    "normal and uniform must hold the same number of steps");
  TORCH_CHECK_VALUE(step >= 1, "step must be >= 1, got ", step);
  TORCH_CHECK_VALUE(static_cast<int64_t>(losses.size()) == n,
                    "losses must hold one loss per agent (", n, "), got ", losses.size());
  TORCH_CHECK_VALUE(static_cast<int64_t>(can_tunnel.size()) == n,
                    "can_tunnel must hold one flag per agent (", n, "), got ", can_tunnel.size());
  for (size_t j = 0; j < rows.size(); ++j) {
    TORCH_CHECK_VALUE(rows[j] >= 0 && rows[j] < n, "rows must lie in [0, ", n, "), got ",
                      rows[j]);
    TORCH_CHECK_VALUE(j == 0 || rows[j] > rows[j - 1], "rows must be strictly increasing");
  }
}

// qimad_step's tensors apart in memory: everything the step writes (each bucket's theta,
// square_avg, grad and best; alpha and beta; the records; the draw blocks) from everything
// else it reads or writes, and params, into which the best weights are copied, from all but
// each other (each receives its own slice of best, in the same order on every device).
inline void check_step_apart(at::TensorList theta, at::TensorList square_avg,
                             at::TensorList grad, at::TensorList best, at::TensorList params,
                             at::TensorList segments, at::TensorList seg_eta,
                             at::TensorList seg_gamma, at::TensorList seg_w,
                             const at::Tensor& alpha, const at::Tensor& beta,
                             const at::Tensor& mask, const at::Tensor& attract_on,
                             const at::Tensor& agent_loss, const at::Tensor& agent_best,
                             const at::Tensor& stagnation, const at::Tensor& best_loss,
                             const at::Tensor& normal, const at::Tensor& uniform,
                             const c10::List<std::optional<at::Tensor>>& bounds) {
  enum Kind { kWritten, kParam, kRead };
  struct Named {
    at::Tensor t;
    const char* name;
    int64_t index;  // in its list, or -1
    Kind kind;
  };
  std::vector<Named> all;
  auto add_list = [&](at::TensorList list, const char* name, Kind kind) {
    for (size_t i = 0; i < list.size(); ++i) all.push_back({list[i], name, int64_t(i), kind});
  };
  add_list(theta, "theta", kWritten);
  add_list(square_avg, "square_avg", kWritten);
  add_list(grad, "grad", kWritten);
  add_list(best, "best", kWritten);
  add_list(params, "params", kParam);
  add_list(segments, "segments", kRead);
  add_list(seg_eta, "seg_eta", kRead);
  add_list(seg_gamma, "seg_gamma", kRead);
  add_list(seg_w, "seg_w", kRead);
  for (size_t b = 0; b < bounds.size(); ++b) {
    const std::optional<at::Tensor> box = bounds.get(b);
    if (box.has_value()) all.push_back({*box, "bounds", int64_t(b), kRead});
  }
  for (const auto& [t, name] : {std::pair<const at::Tensor&, const char*>{alpha, "alpha"},
                                {beta, "beta"}, {agent_loss, "agent_loss"},
                                {agent_best, "agent_best"}, {stagnation, "stagnation"},
                                {best_loss, "best_loss"}, {normal, "normal"},
                                {uniform, "uniform"}}) {
    all.push_back({t, name, -1, kWritten});
  }
  all.push_back({mask, "mask", -1, kRead});
  all.push_back({attract_on, "attract_on", -1, kRead});
  auto named = [](const Named& x) {
    return x.index < 0 ? std::string(x.name) : c10::str(x.name, "[", x.index, "]");
  };
  for (size_t i = 0; i < all.size(); ++i) {
    for (size_t j = i + 1; j < all.size(); ++j) {
      const Kind a = all[i].kind, b = all[j].kind;
      if (a == b && a != kWritten) continue;  // reads, or params, may share memory
      TORCH_CHECK_VALUE(!common::may_overlap(all[i].t, all[j].t), named(all[i]), " and ",
                        named(all[j]), " must not overlap in memory");
    }
  }
}

}  // namespace qimad
}  // namespace sb_native
