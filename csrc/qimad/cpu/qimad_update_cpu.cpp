// qimad_update on the CPU: the op entry of the swarm update of qimad_update_cpu.h (one
// QIMADTorch step of every updated agent of a flat (agents, parameters) swarm).

#include <torch/library.h>

#include <optional>
#include <vector>

#include "../checks.h"
#include "qimad_update_cpu.h"

namespace sb_native {
namespace qimad {
namespace cpu {
namespace {

void qimad_update_cpu(at::Tensor& theta, at::Tensor& square_avg, const at::Tensor& grad,
                      const at::Tensor& best, const at::Tensor& W, const at::Tensor& rows,
                      const at::Tensor& attract, const at::Tensor& segments,
                      const at::Tensor& seg_eta, const at::Tensor& seg_gamma,
                      const at::Tensor& seg_w, const at::Tensor& tunnel_rows,
                      const at::Tensor& tunnel_noise, double temperature, double rms_decay,
                      double eps, bool sequential, const std::optional<at::Tensor>& bounds,
                      int64_t first) {
  check_update_args(theta, square_avg, grad, best, W, rows, attract, segments, seg_eta, seg_gamma,
                    seg_w, tunnel_rows, tunnel_noise, bounds, first);
  const std::vector<int64_t> tunnel_of =
      check_indices(rows, segments, seg_w, tunnel_rows, first, first + square_avg.size(0),
                    theta.size(1), W.size(0));
  cpu::update_swarm(theta, square_avg, grad, best, W,
                    at::IntArrayRef(rows.data_ptr<int64_t>(), rows.numel()), attract,
                    segments, seg_eta, seg_gamma, seg_w,
                    at::IntArrayRef(tunnel_rows.data_ptr<int64_t>(), tunnel_rows.numel()),
                    tunnel_of, tunnel_noise, temperature, rms_decay, eps, sequential,
                    bounds.value_or(at::Tensor()), first);
}

}  // namespace

TORCH_LIBRARY_IMPL(sb_native, CPU, m) { m.impl("qimad_update", &qimad_update_cpu); }

}  // namespace cpu
}  // namespace qimad
}  // namespace sb_native
