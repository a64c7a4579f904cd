// qimad_step on the CPU: the plan of csrc/qimad/step.h with raw loops, and the angles and
// update work called directly (qimad_angles_cpu.h, qimad_update_cpu.h), not through the
// dispatcher. After a step's closures every distinct ATen kernel the step touches runs cold
// (far slower than its arithmetic on a handful of elements: bench/RESULTS.md), so this
// kernel allocates the two angle outputs and the fates and otherwise calls no ATen op: the
// finiteness test, the best-weight and reset copies and the copy into the model are plain
// loops and memcpy, and the random draws come in blocks (draw_slot). Devices without a kernel
// of their own run the composite of ../step.h (composite.cpp).

#include <torch/library.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "../checks.h"
#include "../step.h"
#include "qimad_angles_cpu.h"
#include "qimad_update_cpu.h"

namespace sb_native {
namespace qimad {
namespace cpu {
namespace {

// Whether each of the rows of grad (the agents from first on, P) holds only finite values; rows
// outside it keep their flag (their loss carries their owner's test).
template <typename T>
void rows_finite(const at::Tensor& grad, at::IntArrayRef rows, int64_t first,
                 std::vector<char>& finite) {
  const int64_t p = grad.size(1), end = first + grad.size(0);
  const T* g = grad.data_ptr<T>();
  for (size_t k = 0; k < rows.size(); ++k) {
    if (rows[k] < first || rows[k] >= end) continue;
    const T* row = g + (rows[k] - first) * p;
    int bad = 0;  // x - x is 0 exactly when x is finite; an integer OR vectorises
    for (int64_t c = 0; c < p; ++c) bad |= !(row[c] - row[c] == T(0));
    finite[k] = finite[k] && !bad;
  }
}

// theta's or grad's row i of a bucket, as raw bytes.
char* row_bytes(const at::Tensor& t, int64_t i) {
  return static_cast<char*>(t.data_ptr()) + i * t.size(1) * t.element_size();
}

at::Tensor qimad_step_cpu(
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
  check_angles_args(alpha, beta, mask, k, normal[0], uniform[0], attract_on, dtype);
  const int64_t n = alpha.size(0), m = static_cast<int64_t>(k.size());
  const size_t nb = theta.size();
  for (size_t b = 0; b < nb; ++b) {
    check_segment_args(theta[b], segments[b], seg_eta[b], seg_gamma[b], seg_w[b], m);
  }
  at::Tensor fates = at::empty({n}, at::kLong);
  int64_t* fate = fates.data_ptr<int64_t>();
  std::fill(fate, fate + n, kNotEvaluated);

  std::vector<char> finite(rows.size());
  for (size_t j = 0; j < rows.size(); ++j) finite[j] = std::isfinite(losses[rows[j]]);
  for (size_t b = 0; b < nb; ++b) {
    AT_DISPATCH_FLOATING_TYPES(grad[b].scalar_type(), "qimad_step_cpu_finite",
                               [&] { rows_finite<scalar_t>(grad[b], rows, first, finite); });
  }
  StepPlan plan = plan_records(rows, losses, finite, agent_loss, agent_best, stagnation,
                               best_loss, eps, global_stagnation, fate);
  const int64_t end = first + square_avg[0].size(0);
  for (size_t b = 0; b < nb; ++b) {
    const size_t row = theta[b].size(1) * theta[b].element_size();
    if (row == 0) continue;  // no parameters: null buffers, which memcpy must not get
    if (plan.new_best >= 0) {
      std::memcpy(best[b].data_ptr(), row_bytes(theta[b], plan.new_best), row);
    }
    for (const int64_t i : plan.bad) {
      std::memcpy(row_bytes(theta[b], i), best[b].data_ptr(), row);
      if (i >= first && i < end) std::memset(row_bytes(grad[b], i - first), 0, row);
    }
  }

  const int64_t slot = draw_slot(normal, uniform, step, generator);
  const at::Tensor walk = normal[slot], coins = uniform[slot];
  plan_tunnels(plan, can_tunnel, stagnation, coins.data_ptr<double>(), alpha.data_ptr<double>(),
               stagnation_limit, global_stagnation, fate);
  at::Tensor W = at::empty({m, n, n}, alpha.options().dtype(dtype));
  at::Tensor attract = at::empty({n}, alpha.options().dtype(dtype));
  cpu::angles_into(alpha, beta, mask, k, walk, coins, attract_on, alpha_step, beta_step,
                   eps, W, attract);

  // The agents this call moves, each with its row of the noise drawn for all of plan.tunnels.
  const OwnMoves own = own_moves(plan, first, end);
  const int64_t nt = static_cast<int64_t>(plan.tunnels.size());
  size_t next = 0;
  for (size_t b = 0; b < nb; ++b) {
    at::Tensor th = theta[b], sq = square_avg[b];
    const auto type = th.scalar_type();
    const at::Tensor noise = nt == 0 ? at::empty({0, th.size(1)}, th.options())
                                     : at::rand({nt, th.size(1)}, generator, th.options());
    cpu::update_swarm(th, sq, grad[b], best[b], W.scalar_type() == type ? W : W.to(type),
                      own.rows, attract.scalar_type() == type ? attract : attract.to(type),
                      segments[b], seg_eta[b], seg_gamma[b], seg_w[b], plan.tunnels,
                      own.tunnel_of, noise, temperature, rms_decay, eps, sequential,
                      bounds.get(b).value_or(at::Tensor()), first);
    // The model holds the best-known weights (its version counters: ../step.h).
    const char* src = static_cast<const char*>(best[b].data_ptr());
    for (int64_t j = 0; j < bucket_params[b]; ++j, ++next) {
      at::Tensor p = params[next];
      const size_t bytes = p.numel() * p.element_size();
      if (p.is_contiguous()) {
        if (bytes > 0) std::memcpy(p.data_ptr(), src, bytes);  // an empty one's may be null
      } else {
        p.copy_(at::from_blob(const_cast<char*>(src), p.sizes(), p.options()));
      }
      count_param_write(p);
      src += bytes;
    }
  }
  return fates;
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CPU, m) { m.impl("qimad_step", &qimad_step_cpu); }

}  // namespace cpu
}  // namespace qimad
}  // namespace sb_native
