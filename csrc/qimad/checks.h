#pragma once
// Argument checks of the QIMADTorch ops, shared by their CPU and CUDA kernels so both raise
// the same errors with the same messages (the index contents are checked on host copies).

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "../common/checks.h"

namespace sb_native {
namespace qimad {

inline void check_fidelity_args(const at::Tensor& alpha, const at::Tensor& beta,
                                const at::Tensor& mask) {
  TORCH_CHECK_VALUE(alpha.dim() == 1, "alpha must be 1-D (agents), got ", alpha.dim(),
                    " dimensions");
  common::check_float_tensor(alpha, "alpha");
  TORCH_CHECK_VALUE(beta.sizes() == alpha.sizes(), "beta must have the shape of alpha ",
                    alpha.sizes(), ", got ", beta.sizes());
  TORCH_CHECK_TYPE(beta.scalar_type() == alpha.scalar_type(), "beta must have the dtype of alpha (",
                   alpha.scalar_type(), "), got ", beta.scalar_type());
  const int64_t n = alpha.size(0);
  TORCH_CHECK_TYPE(mask.scalar_type() == at::kBool, "mask must be bool, got ", mask.scalar_type());
  TORCH_CHECK_VALUE(mask.dim() == 2 && mask.size(0) == n && mask.size(1) == n,
                    "mask must be (agents, agents) = (", n, ", ", n, "), got ", mask.sizes());
  TORCH_CHECK_VALUE(beta.device() == alpha.device() && mask.device() == alpha.device(),
                    "beta and mask must be on the device of alpha");
  TORCH_CHECK_VALUE(alpha.is_contiguous(), "alpha must be contiguous");
  TORCH_CHECK_VALUE(beta.is_contiguous(), "beta must be contiguous");
  TORCH_CHECK_VALUE(mask.is_contiguous(), "mask must be contiguous");
}

// A per-agent input of qimad_angles: (rows, agents), or (agents,) when rows is 0.
inline void check_agent_table(const at::Tensor& t, const at::Tensor& alpha, int64_t rows,
                              const char* name) {
  const int64_t n = alpha.size(0);
  const bool shaped = rows == 0 ? t.dim() == 1 && t.size(0) == n
                                : t.dim() == 2 && t.size(0) == rows && t.size(1) == n;
  TORCH_CHECK_VALUE(shaped, name, " must be ", rows == 0 ? "(agents,)" : "(2, agents)",
                    " with agents = ", n, ", got shape ", t.sizes());
  TORCH_CHECK_TYPE(t.scalar_type() == alpha.scalar_type(), name, " must have the dtype of alpha (",
                   alpha.scalar_type(), "), got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.device() == alpha.device(), name, " must be on the device of alpha");
  TORCH_CHECK_VALUE(t.is_contiguous(), name, " must be contiguous");
}

inline void check_angles_args(const at::Tensor& alpha, const at::Tensor& beta,
                              const at::Tensor& mask, at::ArrayRef<double> k,
                              const at::Tensor& normal, const at::Tensor& uniform,
                              const at::Tensor& attract_on, at::ScalarType dtype) {
  check_fidelity_args(alpha, beta, mask);
  TORCH_CHECK_VALUE(!k.empty(), "k must hold at least one fidelity exponent");
  check_agent_table(normal, alpha, 2, "normal");
  check_agent_table(uniform, alpha, 2, "uniform");
  check_agent_table(attract_on, alpha, 0, "attract_on");
  TORCH_CHECK_TYPE(dtype == at::kFloat || dtype == at::kDouble,
                   "dtype must be float32 or float64, got ", dtype);
  // The walk writes alpha and beta element by element after reading them all.
  common::check_apart(alpha, beta, "alpha", "beta");
  for (const auto& [t, name] : {std::pair<const at::Tensor&, const char*>{mask, "mask"},
                                {normal, "normal"}, {uniform, "uniform"},
                                {attract_on, "attract_on"}}) {
    common::check_apart(alpha, t, "alpha", name);
    common::check_apart(beta, t, "beta", name);
  }
}

inline void check_index(const at::Tensor& t, const at::Tensor& theta, const char* name) {
  TORCH_CHECK_TYPE(t.scalar_type() == at::kLong, name, " must be int64, got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.dim() == 1, name, " must be 1-D, got shape ", t.sizes());
  TORCH_CHECK_VALUE(t.device() == theta.device(), name, " must be on the device of theta");
  TORCH_CHECK_VALUE(t.is_contiguous(), name, " must be contiguous");
}

// square_avg or grad: the swarm's rows [first, first + rows) (all of them by default), shaped
// (rows, parameters) like theta's rows.
inline void check_shard(const at::Tensor& t, const at::Tensor& theta, int64_t first,
                        const char* name) {
  TORCH_CHECK_VALUE(first >= 0 && first <= theta.size(0), "first must lie in [0, ",
                    theta.size(0), "], got ", first);
  TORCH_CHECK_VALUE(t.dim() == 2 && t.size(1) == theta.size(1) &&
                        t.size(0) <= theta.size(0) - first,
                    name, " must be (rows, parameters) with parameters = ", theta.size(1),
                    " and rows <= agents - first = ", theta.size(0) - first, ", got shape ",
                    t.sizes());
  TORCH_CHECK_TYPE(t.scalar_type() == theta.scalar_type(), name, " must have the dtype of theta (",
                   theta.scalar_type(), "), got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.device() == theta.device(), name, " must be on the device of theta");
  TORCH_CHECK_VALUE(t.is_contiguous(), name, " must be contiguous");
}

inline void check_vector(const at::Tensor& t, const at::Tensor& theta, int64_t size,
                         const char* name) {
  TORCH_CHECK_VALUE(t.dim() == 1 && t.size(0) == size, name, " must be 1-D of length ", size,
                    ", got shape ", t.sizes());
  TORCH_CHECK_TYPE(t.scalar_type() == theta.scalar_type(), name, " must have the dtype of theta (",
                   theta.scalar_type(), "), got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.device() == theta.device(), name, " must be on the device of theta");
  TORCH_CHECK_VALUE(t.is_contiguous(), name, " must be contiguous");
}

// The per-segment tensors' shapes, dtypes and devices: segments (S + 1 column offsets), seg_eta,
// seg_gamma and seg_w (one entry per segment).
inline void check_segment_shapes(const at::Tensor& theta, const at::Tensor& segments,
                                 const at::Tensor& seg_eta, const at::Tensor& seg_gamma,
                                 const at::Tensor& seg_w) {
  check_index(segments, theta, "segments");
  TORCH_CHECK_VALUE(segments.numel() >= 1, "segments must hold at least the offset 0");
  const int64_t s = segments.numel() - 1;
  check_vector(seg_eta, theta, s, "seg_eta");
  check_vector(seg_gamma, theta, s, "seg_gamma");
  check_index(seg_w, theta, "seg_w");
  TORCH_CHECK_VALUE(seg_w.numel() == s, "seg_w must have one entry per segment (", s, "), got ",
                    seg_w.numel());
}

// qimad_update's optional box: (2, parameters) rows [lower; upper] like theta's (their order
// is the caller's to check: sb_native/optim checks it once, when the bounds are set).
inline void check_bounds(const std::optional<at::Tensor>& bounds, const at::Tensor& theta,
                         const char* name) {
  if (!bounds.has_value()) return;
  const at::Tensor& b = *bounds;
  TORCH_CHECK_VALUE(b.dim() == 2 && b.size(0) == 2 && b.size(1) == theta.size(1), name,
                    " must be (2, parameters) = (2, ", theta.size(1), "), got shape ", b.sizes());
  TORCH_CHECK_TYPE(b.scalar_type() == theta.scalar_type(), name, " must have the dtype of theta (",
                   theta.scalar_type(), "), got ", b.scalar_type());
  TORCH_CHECK_VALUE(b.device() == theta.device(), name, " must be on the device of theta");
  TORCH_CHECK_VALUE(b.is_contiguous(), name, " must be contiguous");
}

inline void check_update_args(const at::Tensor& theta, const at::Tensor& square_avg,
                              const at::Tensor& grad, const at::Tensor& best, const at::Tensor& W,
                              const at::Tensor& rows, const at::Tensor& attract,
                              const at::Tensor& segments, const at::Tensor& seg_eta,
                              const at::Tensor& seg_gamma, const at::Tensor& seg_w,
                              const at::Tensor& tunnel_rows, const at::Tensor& tunnel_noise,
                              const std::optional<at::Tensor>& bounds, int64_t first) {
  TORCH_CHECK_VALUE(theta.dim() == 2, "theta must be 2-D (agents, parameters), got ", theta.dim(),
                    " dimensions");
  common::check_float_tensor(theta, "theta");
  TORCH_CHECK_VALUE(theta.is_contiguous(), "theta must be contiguous");
  check_shard(square_avg, theta, first, "square_avg");
  check_shard(grad, theta, first, "grad");
  TORCH_CHECK_VALUE(grad.size(0) == square_avg.size(0), "grad must have the rows of square_avg (",
                    square_avg.size(0), "), got ", grad.size(0));
  const int64_t n = theta.size(0), p = theta.size(1);
  check_vector(best, theta, p, "best");
  TORCH_CHECK_VALUE(W.dim() == 3 && W.size(1) == n && W.size(2) == n,
                    "W must be (matrices, agents, agents) with agents = ", n, ", got shape ",
                    W.sizes());
  TORCH_CHECK_VALUE(W.size(0) >= 1, "W must hold at least one fidelity matrix");
  TORCH_CHECK_TYPE(W.scalar_type() == theta.scalar_type(), "W must have the dtype of theta (",
                   theta.scalar_type(), "), got ", W.scalar_type());
  TORCH_CHECK_VALUE(W.device() == theta.device(), "W must be on the device of theta");
  TORCH_CHECK_VALUE(W.is_contiguous(), "W must be contiguous");
  check_index(rows, theta, "rows");
  check_vector(attract, theta, n, "attract");
  check_segment_shapes(theta, segments, seg_eta, seg_gamma, seg_w);
  check_index(tunnel_rows, theta, "tunnel_rows");
  TORCH_CHECK_VALUE(tunnel_noise.dim() == 2 && tunnel_noise.size(0) == tunnel_rows.numel() &&
                        tunnel_noise.size(1) == p,
                    "tunnel_noise must be (tunnel_rows, parameters) = (", tunnel_rows.numel(), ", ",
                    p, "), got ", tunnel_noise.sizes());
  TORCH_CHECK_TYPE(tunnel_noise.scalar_type() == theta.scalar_type(),
                   "tunnel_noise must have the dtype of theta (", theta.scalar_type(), "), got ",
                   tunnel_noise.scalar_type());
  TORCH_CHECK_VALUE(tunnel_noise.device() == theta.device(),
                    "tunnel_noise must be on the device of theta");
  TORCH_CHECK_VALUE(tunnel_noise.is_contiguous(), "tunnel_noise must be contiguous");
  check_bounds(bounds, theta, "bounds");
  // The update writes theta and square_avg block by block, reading the other rows and
  // every other argument as it goes.
  common::check_apart(theta, square_avg, "theta", "square_avg");
  const std::pair<const at::Tensor&, const char*> read[] = {
      {grad, "grad"}, {best, "best"}, {W, "W"}, {rows, "rows"}, {attract, "attract"},
      {segments, "segments"}, {seg_eta, "seg_eta"}, {seg_gamma, "seg_gamma"}, {seg_w, "seg_w"},
      {tunnel_rows, "tunnel_rows"}, {tunnel_noise, "tunnel_noise"}};
  for (const auto& [t, name] : read) {
    common::check_apart(theta, t, "theta", name);
    common::check_apart(square_avg, t, "square_avg", name);
  }
  if (bounds.has_value()) {
    common::check_apart(theta, *bounds, "theta", "bounds");
    common::check_apart(square_avg, *bounds, "square_avg", "bounds");
  }
}

// segments a partition of the p parameter columns, seg_w valid indices of k matrices (host
// tensors whose shapes are checked).
inline void check_segment_contents(const at::Tensor& segments, const at::Tensor& seg_w, int64_t p,
                                   int64_t k) {
  const int64_t* seg = segments.data_ptr<int64_t>();
  const int64_t s = segments.numel() - 1;
  TORCH_CHECK_VALUE(seg[0] == 0 && seg[s] == p, "segments must run from 0 to ", p);
  for (int64_t i = 0; i < s; ++i) {
    TORCH_CHECK_VALUE(seg[i + 1] >= seg[i], "segments must be non-decreasing");
    const int64_t w = seg_w.data_ptr<int64_t>()[i];
    TORCH_CHECK_VALUE(w >= 0 && w < k, "seg_w must index W's ", k, " matrices, got ", w);
  }
}

// The per-segment tensors of one bucket of qimad_step (as qimad_update takes them).
inline void check_segment_args(const at::Tensor& theta, const at::Tensor& segments,
                               const at::Tensor& seg_eta, const at::Tensor& seg_gamma,
                               const at::Tensor& seg_w, int64_t k) {
  check_segment_shapes(theta, segments, seg_eta, seg_gamma, seg_w);
  check_segment_contents(segments, seg_w, theta.size(1), k);
}

// Index contents, checked once the shapes are known to be right: rows strictly increasing in
// [first, end), the rows square_avg and grad hold (an agent updated twice would take two
// steps), segments a partition of the parameter columns, seg_w valid matrix indices, every
// tunnelling row an updated row.
inline std::vector<int64_t> check_indices(const at::Tensor& rows, const at::Tensor& segments,
                                          const at::Tensor& seg_w, const at::Tensor& tunnel_rows,
                                          int64_t first, int64_t end, int64_t p, int64_t k) {
  const int64_t* r = rows.data_ptr<int64_t>();
  for (int64_t i = 0; i < rows.numel(); ++i) {
    TORCH_CHECK_VALUE(r[i] >= first && r[i] < end, "rows must lie in [", first, ", ", end,
                      "), got ", r[i]);
    TORCH_CHECK_VALUE(i == 0 || r[i] > r[i - 1], "rows must be strictly increasing");
  }
  check_segment_contents(segments, seg_w, p, k);
  // tunnel_of[r]: the tunnel_noise row of updated row r, or -1.
  std::vector<int64_t> tunnel_of(rows.numel(), -1);
  const int64_t* t = tunnel_rows.data_ptr<int64_t>();
  for (int64_t j = 0; j < tunnel_rows.numel(); ++j) {
    const int64_t* hit = std::lower_bound(r, r + rows.numel(), t[j]);
    TORCH_CHECK_VALUE(hit != r + rows.numel() && *hit == t[j], "tunnel_rows must be among rows, got ",
                      t[j]);
    tunnel_of[hit - r] = j;
  }
  return tunnel_of;
}

}  // namespace qimad
}  // namespace sb_native
