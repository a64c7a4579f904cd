// The QIMADTorch operator schemas (sb_native/optim). Each backend registers its kernels with
// TORCH_LIBRARY_IMPL(sb_native, CPU|CUDA, m) in csrc/qimad/cpu and csrc/qimad/cuda, and
// csrc/qimad/composite.cpp the CompositeExplicitAutograd kernels; the SB ops declare theirs
// in csrc/sb/ops.cpp, a fragment of the same sb_native library.

#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(sb_native, m) {
  // Row-normalised fidelity matrix of the swarm: W[i, j] = F_ij / (sum_l F_il + eps) with
  // F_ij = |<psi_i|psi_j>|^k of the Bloch angles (alpha, beta) on the topology's edges (mask).
  m.def("qimad_fidelity(Tensor alpha, Tensor beta, Tensor mask, float k, float eps) -> Tensor");
  // A step's work on the angles: W = stack of the fidelity matrices for each exponent in k and
  // attract = uniform[1] * attract_on, both as dtype and from the angles before the step; then
  // the random walk in place: alpha = clamp(alpha + alpha_step * normal[0], 0, pi),
  // beta = remainder(beta + beta_step * normal[1], 2 pi).
  m.def("qimad_angles(Tensor(a!) alpha, Tensor(b!) beta, Tensor mask, float[] k, Tensor normal, "
        "Tensor uniform, Tensor attract_on, float alpha_step, float beta_step, float eps, "
        "ScalarType dtype) -> (Tensor, Tensor)");
  // One swarm step of the agents in rows over the flat (agents, parameters) state: RMSProp
  // state and step, attraction to best, communication W[seg_w] @ theta, tunnelling jumps.
  // Synchronous (every agent reads the positions from before the step) unless sequential:
  // then the rows move one after another in order, each reading the rows moved before it
  // (the reference implementation's order). With bounds, (2, parameters) rows [lower; upper],
  // each updated row is clipped to the box after its move, and a tunnelling jump in a column
  // of finite span is U(-1, 1) * 0.4 * span * temperature (the QIMAD authors' dynamics).
  // square_avg and grad hold the rows [first, first + square_avg.size(0)) of the swarm whose
  // positions theta holds whole (all of them by default): a swarm sharded over the ranks of a
  // process group keeps each agent's RMSProp state and gradient on its owner's rank only, while
  // the communication reads every agent's position. rows must lie in that range.
  m.def("qimad_update(Tensor(a!) theta, Tensor(b!) square_avg, Tensor grad, Tensor best, "
        "Tensor W, Tensor rows, Tensor attract, Tensor segments, Tensor seg_eta, "
        "Tensor seg_gamma, Tensor seg_w, Tensor tunnel_rows, Tensor tunnel_noise, "
        "float temperature, float rms_decay, float eps, bool sequential=False, "
        "Tensor? bounds=None, int first=0) -> ()");
  // Everything a step does after its closures (csrc/qimad/step.h): the finiteness test, the
  // records (agent_loss, agent_best, stagnation, best_loss: CPU), this step's random draws
  // (rows of the blocks normal and uniform, drawn afresh from generator every normal.size(0)
  // steps), the tunnelling choice, qimad_angles, qimad_update per bucket (sequential as
  // there, each bucket with its bounds) and the copy of the best weights into params. With
  // global_stagnation an agent's stagnation counts the evaluations that did not lower the
  // swarm's best, and every stagnating agent's counter restarts at its chance to tunnel,
  // whether it jumps or not (the QIMAD authors' rule); otherwise it counts the evaluations that
  // did not lower its own best, and restarts when it jumps. Returns each agent's fate: 0 not
  // evaluated, 1 updated, 2 updated and tunnelled, -1 reset to the best weights. With a
  // sharded swarm (first, and square_avg and grad holding rows [first, first + m) as for
  // qimad_update) the agents of rows outside the range are another rank's: their losses enter
  // the records, the tunnelling plan and the draws as anywhere, one reset to the best weights is
  // reset in theta, but only the range's gradients are tested (the caller passes an agent whose
  // gradient is not finite with a NaN loss) and only the range's agents move.
  m.def("qimad_step(Tensor(a!)[] theta, Tensor(b!)[] square_avg, Tensor(c!)[] grad, "
        "Tensor(d!)[] best, Tensor(e!)[] params, int[] bucket_params, Tensor[] segments, "
        "Tensor[] seg_eta, Tensor[] seg_gamma, Tensor[] seg_w, Tensor(f!) alpha, Tensor(g!) beta, "
        "Tensor mask, Tensor attract_on, int[] can_tunnel, float[] k, ScalarType dtype, "
        "Tensor(h!) agent_loss, Tensor(i!) agent_best, Tensor(j!) stagnation, "
        "Tensor(k!) best_loss, Tensor(l!) normal, Tensor(m!) uniform, int step, int[] rows, "
        "float[] losses, Generator? generator, float temperature, float alpha_step, "
        "float beta_step, float rms_decay, float eps, int stagnation_limit, Tensor?[] bounds, "
        "bool global_stagnation, bool sequential=False, int first=0) -> Tensor");
}
