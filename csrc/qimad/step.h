#pragma once
// qimad_step: everything a QIMADTorch step does after its closures, in one call. Done from
// Python, that bookkeeping (finiteness test, best and stagnation records, random draws,
// tunnelling choice, the angles and update ops, the copy into the model) is ~25
// interpreter-level steps and ~10 dispatcher calls, and right after the closures, which have
// evicted the caches, each cold call costs more than the update's arithmetic on the digits
// benchmark (bench/RESULTS.md).
// This header holds what every device shares: the host-side plan of the step (records, which
// agents are reset, which tunnel) and the composite of ATen and swarm ops that is the op's
// kernel on devices without a fused one (csrc/qimad/composite.cpp,
// csrc/qimad/cuda/qimad_step_cuda.cu); the argument checks are step_checks.h's. The CPU
// kernel (csrc/qimad/cpu/qimad_step_cpu.cpp) runs the same plan with raw loops;
// sb_native/optim/_reference.py: qimad_step mirrors it line by line.

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <cmath>
#include <limits>
#include <optional>
#include <tuple>
#include <vector>

#include "checks.h"
#include "step_checks.h"

namespace sb_native {
namespace qimad {

// This step's row of the draw blocks; the blocks are drawn afresh (normal first) every
// normal.size(0) steps, so the generator is touched once per block, not twice per step.
inline int64_t draw_slot(at::Tensor& normal, at::Tensor& uniform, int64_t step,
                         const std::optional<at::Generator>& generator) {
  const int64_t slot = (step - 1) % normal.size(0);
  if (slot == 0) {
    normal.normal_(0, 1, generator);
    uniform.uniform_(0, 1, generator);
  }
  return slot;
}

// A parameter's in-place change, counted for autograd's saved-tensor checks by both kernels
// themselves: the CPU kernel writes around ATen, and QimadSession calls the op below the
// ADInplaceOrView key, where copy_ does not count it either.
inline void count_param_write(const at::Tensor& p) { p.unsafeGetTensorImpl()->bump_version(); }

// What a step does to each agent, decided on the host.
struct StepPlan {
  std::vector<int64_t> good, bad, tunnels;  // updated; reset to best; updated, then jump
  int64_t new_best = -1;  // the agent whose weights become the best ones, or -1
};

// Agent fates returned by qimad_step.
constexpr int64_t kNotEvaluated = 0, kUpdated = 1, kTunnelled = 2, kReset = -1;

// The records: finite[k] tells whether rows[k]'s loss and gradient are finite. A non-finite
// agent sits the update out and is sent back to the best weights, so its values never reach
// the others through communication; its last loss is recorded as inf. The swarm's best is the
// first agent holding the lowest loss. Stagnation counts an agent's evaluations without
// improvement: of its own best by more than eps, or, global_stagnation, of the swarm's best
// as the rows are taken in order (an agent that lowers it restarts its count, as in the QIMAD
// authors' loop).
inline StepPlan plan_records(at::IntArrayRef rows, at::ArrayRef<double> losses,
                             const std::vector<char>& finite, at::Tensor& agent_loss,
                             at::Tensor& agent_best, at::Tensor& stagnation,
                             at::Tensor& best_loss, double eps, bool global_stagnation,
                             int64_t* fate) {
  const int64_t n = agent_loss.numel();
  double* loss = agent_loss.data_ptr<double>();
  double* own_best = agent_best.data_ptr<double>();
  int64_t* stag = stagnation.data_ptr<int64_t>();
  double* best_so_far = best_loss.data_ptr<double>();
  StepPlan plan;
  for (size_t k = 0; k < rows.size(); ++k) {
    const int64_t i = rows[k];
    (finite[k] ? plan.good : plan.bad).push_back(i);
    loss[i] = finite[k] ? losses[i] : std::numeric_limits<double>::infinity();
    fate[i] = finite[k] ? kUpdated : kReset;
  }
  int64_t best_i = 0;  // with no agents, no best: best_so_far stays
  for (int64_t i = 1; i < n; ++i) {
    if (loss[i] < loss[best_i]) best_i = i;
  }
  double running = *best_so_far;  // the swarm's best as the rows are taken in order
  for (const int64_t i : rows) {
    const bool improved = loss[i] < own_best[i] - eps;
    if (improved) own_best[i] = loss[i];
    const bool counts = global_stagnation ? loss[i] < running : improved;
    if (loss[i] < running) running = loss[i];
    stag[i] = counts ? 0 : stag[i] + 1;
  }
  if (n > 0 && loss[best_i] < *best_so_far) {
    *best_so_far = loss[best_i];
    plan.new_best = best_i;
  }
  return plan;
}

// Tunnelling: an updated, stagnating agent with neighbours jumps with probability
// sin^2(alpha / 2), from this step's coin (uniform row 0) and alpha before the walk. Its
// stagnation restarts when it jumps, or, global_stagnation, at every such chance.
inline void plan_tunnels(StepPlan& plan, at::IntArrayRef can_tunnel, at::Tensor& stagnation,
                         const double* coin, const double* alpha, int64_t stagnation_limit,
                         bool global_stagnation, int64_t* fate) {
  int64_t* stag = stagnation.data_ptr<int64_t>();
  for (const int64_t i : plan.good) {
    if (!can_tunnel[i] || stag[i] <= stagnation_limit) continue;
    const bool jumps = coin[i] < std::pow(std::sin(alpha[i] / 2), 2.0);
    if (jumps) {
      plan.tunnels.push_back(i);
      fate[i] = kTunnelled;
    }
    if (jumps || global_stagnation) stag[i] = 0;
  }
}

// What this call moves of a plan when square_avg and grad hold the agents [first, end) only
// (a sharded swarm): the updated agents in the range; its tunnelling agents; and for each of
// both, the row of the noise drawn for all of plan.tunnels (-1 for an agent that does not jump).
struct OwnMoves {
  std::vector<int64_t> rows, tunnels, tunnel_of, noise_rows;
};

inline OwnMoves own_moves(const StepPlan& plan, int64_t first, int64_t end) {
  OwnMoves own;
  size_t t = 0;
  for (const int64_t i : plan.good) {
    while (t < plan.tunnels.size() && plan.tunnels[t] < i) ++t;
    const bool jumps = t < plan.tunnels.size() && plan.tunnels[t] == i;
    if (i < first || i >= end) continue;
    own.rows.push_back(i);
    own.tunnel_of.push_back(jumps ? static_cast<int64_t>(t) : -1);
    if (jumps) {
      own.tunnels.push_back(i);
      own.noise_rows.push_back(static_cast<int64_t>(t));
    }
  }
  return own;
}

// The op's kernel on devices without a fused one: the plan, with ATen ops for the device work
// and the swarm ops through the dispatcher.
inline at::Tensor qimad_step_composite(
    at::TensorList theta, at::TensorList square_avg, at::TensorList grad, at::TensorList best,
    at::TensorList params, at::IntArrayRef bucket_params, at::TensorList segments,
    at::TensorList seg_eta, at::TensorList seg_gamma, at::TensorList seg_w, at::Tensor& alpha,
    at::Tensor& beta, const at::Tensor& mask, const at::Tensor& attract_on,
    at::IntArrayRef can_tunnel, at::ArrayRef<double> k, at::ScalarType dtype,
    at::Tensor& agent_loss, at::Tensor& agent_best, at::Tensor& stagnation, at::Tensor& best_loss,
    at::Tensor& normal, at::Tensor& uniform, int64_t step, at::IntArrayRef rows,
    at::ArrayRef<double> losses, std::optional<at::Generator> generator, double temperature,
    double alpha_step, double beta_step, double rms_decay, double eps, int64_t stagnation_limit,
    const c10::List<std::optional<at::Tensor>>& bounds, bool global_stagnation, bool sequential,
    int64_t first) {
  check_step_args(theta, square_avg, grad, best, params, bucket_params, segments, seg_eta,
                  seg_gamma, seg_w, alpha, can_tunnel, agent_loss, agent_best, stagnation,
                  best_loss, normal, uniform, step, rows, losses, bounds, first);
  check_step_apart(theta, square_avg, grad, best, params, segments, seg_eta, seg_gamma, seg_w,
                   alpha, beta, mask, attract_on, agent_loss, agent_best, stagnation, best_loss,
                   normal, uniform, bounds);
  const int64_t n = alpha.size(0);
  const size_t nb = theta.size();
  at::Tensor fates = at::zeros({n}, at::kLong);
  int64_t* fate = fates.data_ptr<int64_t>();

  const int64_t end = first + square_avg[0].size(0);
  std::vector<int64_t> tested;  // the rows whose gradients this call holds, as grad rows
  for (const int64_t i : rows) {
    if (i >= first && i < end) tested.push_back(i - first);
  }
  std::vector<at::Tensor> row_ok;
  for (size_t b = 0; b < nb; ++b) {
    const at::Tensor idx = at::tensor(tested, theta[b].options().dtype(at::kLong));
    row_ok.push_back(at::isfinite(grad[b].index_select(0, idx)).all(1).to(at::kCPU));
  }
  std::vector<char> finite(rows.size());
  for (size_t j = 0, t = 0; j < rows.size(); ++j) {
    bool ok = std::isfinite(losses[rows[j]]);
    if (rows[j] >= first && rows[j] < end) {
      for (const at::Tensor& r : row_ok) ok = ok && r.data_ptr<bool>()[t];
      ++t;
    }
    finite[j] = ok;
  }
  StepPlan plan = plan_records(rows, losses, finite, agent_loss, agent_best, stagnation,
                               best_loss, eps, global_stagnation, fate);
  if (plan.new_best >= 0) {
    for (size_t b = 0; b < nb; ++b) best[b].copy_(theta[b][plan.new_best]);
  }
  for (const int64_t i : plan.bad) {
    for (size_t b = 0; b < nb; ++b) {
      theta[b][i].copy_(best[b]);
      if (i >= first && i < end) grad[b][i - first].zero_();
    }
  }

  const int64_t slot = draw_slot(normal, uniform, step, generator);
  const at::Tensor walk = normal[slot], coins = uniform[slot];
  const at::Tensor alpha_host = alpha.to(at::kCPU), coin = coins[0].to(at::kCPU);
  plan_tunnels(plan, can_tunnel, stagnation, coin.data_ptr<double>(), alpha_host.data_ptr<double>(),
               stagnation_limit, global_stagnation, fate);

  static const auto angles =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("sb_native::qimad_angles", "")
          .typed<std::tuple<at::Tensor, at::Tensor>(
              at::Tensor&, at::Tensor&, const at::Tensor&, at::ArrayRef<double>, const at::Tensor&,
              const at::Tensor&, const at::Tensor&, double, double, double, at::ScalarType)>();
  static const auto update =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("sb_native::qimad_update", "")
          .typed<void(at::Tensor&, at::Tensor&, const at::Tensor&, const at::Tensor&,
                      const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                      const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                      const at::Tensor&, double, double, double, bool,
                      const std::optional<at::Tensor>&, int64_t)>();
  const auto [W, attract] = angles.call(alpha, beta, mask, k, walk, coins, attract_on, alpha_step,
                                        beta_step, eps, dtype);
  const OwnMoves own = own_moves(plan, first, end);
  size_t next = 0;
  for (size_t b = 0; b < nb; ++b) {
    at::Tensor th = theta[b], sq = square_avg[b];
    const auto index = th.options().dtype(at::kLong);
    const int64_t nt = static_cast<int64_t>(plan.tunnels.size());
    // Drawn for every tunnelling agent, so the generator moves alike whatever this call owns.
    const at::Tensor noise =
        nt == 0 ? at::empty({0, th.size(1)}, th.options())
                : at::rand({nt, th.size(1)}, generator, alpha.options().dtype(th.scalar_type()))
                      .to(th.device())
                      .index_select(0, at::tensor(own.noise_rows, index));
    update.call(th, sq, grad[b], best[b], W.to(th.device(), th.scalar_type()),
                at::tensor(own.rows, index), attract.to(th.device(), th.scalar_type()),
                segments[b], seg_eta[b], seg_gamma[b], seg_w[b], at::tensor(own.tunnels, index),
                noise, temperature, rms_decay, eps, sequential, bounds.get(b), first);
    int64_t offset = 0;  // the model holds the best-known weights
    for (int64_t j = 0; j < bucket_params[b]; ++j, ++next) {
      at::Tensor p = params[next];
      p.copy_(best[b].narrow(0, offset, p.numel()).view(p.sizes()));
      count_param_write(p);
      offset += p.numel();
    }
  }
  return fates;
}

}  // namespace qimad
}  // namespace sb_native
