// QimadSession: a native QIMADTorch step(closure) from Python in one call. It holds, as C++
// tensors, everything qimad_step takes that does not change from step to step, and runs
// the closure loop (point the parameters at each evaluated agent's row, call the closure,
// read its loss, collect a gradient the closure left elsewhere) and then qimad_step.
// Why: on the digits benchmark the step's own time is mostly fixed per-call cost paid cold,
// right after closures that evicted the caches. From Python the loop is ~10 attribute writes
// and checks per agent, and qimad_step's 34 arguments (10 of them lists) are converted and
// walked by the boxed autograd and in-place fallbacks on every call; here the loop is C++
// and qimad_step is called unboxed, below those fallbacks (the step runs without grad
// mode, and qimad_step counts its writes to the parameters itself).
// sb_native/optim/qimad.py runs the same loop in Python for the torch backend and keeps
// this class optional: it exists only in the Python build of the extension.

#include <torch/extension.h>

#include <ATen/core/dispatch/Dispatcher.h>

#include <optional>
#include <tuple>
#include <utility>
#include <vector>

namespace sb_native {
namespace qimad {
namespace python {
namespace {

namespace py = pybind11;
using Slot = std::tuple<at::Tensor, at::Tensor, at::Tensor>;  // parameter, position row, grad row

class QimadSession {
 public:
  QimadSession(std::vector<std::vector<Slot>> slots, std::vector<at::Tensor> theta,
               std::vector<at::Tensor> square_avg, std::vector<at::Tensor> grad,
               std::vector<at::Tensor> best, std::vector<at::Tensor> params,
               std::vector<int64_t> bucket_params, std::vector<at::Tensor> segments,
               at::Tensor alpha, at::Tensor beta, at::Tensor mask, at::Tensor attract_on,
               std::vector<int64_t> can_tunnel, at::ScalarType dtype, at::Tensor agent_loss,
               at::Tensor agent_best, at::Tensor stagnation, at::Tensor best_loss,
               at::Tensor normal, at::Tensor uniform, at::Generator generator, double rms_decay,
               double eps, int64_t stagnation_limit, bool global_stagnation, bool sequential)
      : slots_(std::move(slots)), theta_(std::move(theta)), square_avg_(std::move(square_avg)),
        grad_(std::move(grad)), best_(std::move(best)), params_(std::move(params)),
        bucket_params_(std::move(bucket_params)), segments_(std::move(segments)),
        alpha_(std::move(alpha)), beta_(std::move(beta)), mask_(std::move(mask)),
        attract_on_(std::move(attract_on)), can_tunnel_(std::move(can_tunnel)), dtype_(dtype),
        agent_loss_(std::move(agent_loss)), agent_best_(std::move(agent_best)),
        stagnation_(std::move(stagnation)), best_loss_(std::move(best_loss)),
        normal_(std::move(normal)), uniform_(std::move(uniform)), generator_(std::move(generator)),
        rms_decay_(rms_decay), eps_(eps), stagnation_limit_(stagnation_limit),
        global_stagnation_(global_stagnation), sequential_(sequential) {
    TORCH_CHECK_VALUE(!slots_.empty(), "slots must hold one entry per agent");
    TORCH_CHECK_VALUE(agent_loss_.dim() == 1 && agent_loss_.scalar_type() == at::kDouble &&
                          agent_loss_.is_cpu() &&
                          agent_loss_.size(0) == static_cast<int64_t>(slots_.size()),
                      "agent_loss must be a float64 CPU tensor with one entry per agent");
  }

  // The groups' per-segment eta, gamma and matrix index, the distinct exponents k and each
  // bucket's box (None without bounds).
  void set_hyper(std::vector<at::Tensor> seg_eta, std::vector<at::Tensor> seg_gamma,
                 std::vector<at::Tensor> seg_w, std::vector<double> k,
                 const std::vector<std::optional<at::Tensor>>& bounds) {
    seg_eta_ = std::move(seg_eta);
    seg_gamma_ = std::move(seg_gamma);
    seg_w_ = std::move(seg_w);
    k_ = std::move(k);
    bounds_ = c10::List<std::optional<at::Tensor>>();
    for (const auto& b : bounds) bounds_.push_back(b);
  }

  // One step: the closures of the agents in rows, with grad mode on, then qimad_step without
  // it. Returns every agent's loss (the cached one for agents not evaluated), qimad_step's
  // fates and the best loss so far.
  std::tuple<std::vector<double>, at::Tensor, double> step(const py::object& closure,
                                                  const py::object& optimizer,
                                                  const std::vector<int64_t>& rows,
                                                  int64_t step, double temperature,
                                                  double alpha_step, double beta_step) {
    const int64_t n = static_cast<int64_t>(slots_.size());
    const double* cached = agent_loss_.data_ptr<double>();
    std::vector<double> losses(cached, cached + n);
    for (const int64_t i : rows) {
      TORCH_CHECK_VALUE(i >= 0 && i < n, "rows must lie in [0, ", n, "), got ", i);
    }
    {
      at::AutoGradMode grad_mode(true);
      run_closures(closure, optimizer, rows, losses);
    }

    static const auto op =
        c10::Dispatcher::singleton()
            .findSchemaOrThrow("sb_native::qimad_step", "")
            .typed<at::Tensor(at::TensorList, at::TensorList, at::TensorList, at::TensorList,
                              at::TensorList, at::IntArrayRef, at::TensorList, at::TensorList,
                              at::TensorList, at::TensorList, at::Tensor&, at::Tensor&,
                              const at::Tensor&, const at::Tensor&, at::IntArrayRef,
                              at::ArrayRef<double>, at::ScalarType, at::Tensor&, at::Tensor&,
                              at::Tensor&, at::Tensor&, at::Tensor&, at::Tensor&, int64_t,
                              at::IntArrayRef, at::ArrayRef<double>, std::optional<at::Generator>,
                              double, double, double, double, double, int64_t,
                              const c10::List<std::optional<at::Tensor>>&, bool, bool,
                              int64_t)>();
    at::Tensor fates;
    {
      // The step touches no Python object: other Python threads run meanwhile.
      py::gil_scoped_release no_gil;
      at::NoGradGuard no_grad;
      at::AutoDispatchBelowADInplaceOrView below_autograd;
      fates = op.call(theta_, square_avg_, grad_, best_, params_, bucket_params_, segments_,
                      seg_eta_, seg_gamma_, seg_w_, alpha_, beta_, mask_, attract_on_, can_tunnel_,
                      k_, dtype_, agent_loss_, agent_best_, stagnation_, best_loss_, normal_,
                      uniform_, step, rows, losses, generator_, temperature, alpha_step,
                      beta_step, rms_decay_, eps_, stagnation_limit_, bounds_,
                      global_stagnation_, sequential_, /*first=*/0);
    }
    return {std::move(losses), std::move(fates), *best_loss_.data_ptr<double>()};
  }

 private:
  // Points the parameters back at their own storage and clears the optimizer's current agent,
  // however the loop ends.
  struct Restore {
    const std::vector<Slot>& first;
    std::vector<at::Tensor> own;
    const py::object& optimizer;
    ~Restore() {
      for (size_t j = 0; j < own.size(); ++j) std::get<0>(first[j]).set_data(own[j]);
      // Also while a closure's exception unwinds: keep its error indicator as it is.
      PyObject *type, *value, *trace;
      PyErr_Fetch(&type, &value, &trace);
      if (PyObject_SetAttrString(optimizer.ptr(), "_current", Py_None) != 0) PyErr_Clear();
      PyErr_Restore(type, value, trace);
    }
  };

  void run_closures(const py::object& closure, const py::object& optimizer,
                    const std::vector<int64_t>& rows, std::vector<double>& losses) {
    Restore restore{slots_[0], {}, optimizer};
    for (const Slot& s : slots_[0]) restore.own.push_back(std::get<0>(s).variable_data());
    for (const int64_t i : rows) {
      // As in qimad.py's loop: the parameters view agent i's row; each .grad starts as None
      // and zero_grad() points it at the agent's gradient row.
      for (const Slot& s : slots_[i]) {
        const at::Tensor& p = std::get<0>(s);
        p.set_data(std::get<1>(s));
        p.mutable_grad().reset();
      }
      optimizer.attr("_current") = py::int_(i);
      losses[i] = loss_value(closure());
      at::NoGradGuard no_grad;
      for (const Slot& s : slots_[i]) {
        const at::Tensor& found = std::get<0>(s).grad();
        const at::Tensor& row = std::get<2>(s);
        if (!found.defined()) {
          row.zero_();
        } else if (!found.is_same(row)) {
          row.copy_(found);
        }
      }
    }
  }

  // The closure's loss as a float, as qimad.py's loss_value reads it. A one-element CPU float
  // tensor is read in place: item() is a dispatcher call, costly each time right after a
  // closure (bench/RESULTS.md).
  static double loss_value(const py::object& loss) {
    if (!THPVariable_Check(loss.ptr())) return loss.cast<double>();
    const at::Tensor& t = THPVariable_Unpack(loss.ptr());
    if (t.is_cpu() && t.layout() == at::kStrided && t.numel() == 1 && !t.is_neg() &&
        !t.is_conj()) {
      if (t.scalar_type() == at::kFloat) return *t.const_data_ptr<float>();
      if (t.scalar_type() == at::kDouble) return *t.const_data_ptr<double>();
    }
    return t.item<double>();
  }

  std::vector<std::vector<Slot>> slots_;
  std::vector<at::Tensor> theta_, square_avg_, grad_, best_, params_;
  std::vector<int64_t> bucket_params_;
  std::vector<at::Tensor> segments_, seg_eta_, seg_gamma_, seg_w_;
  at::Tensor alpha_, beta_, mask_, attract_on_;
  std::vector<int64_t> can_tunnel_;
  std::vector<double> k_;
  at::ScalarType dtype_;
  at::Tensor agent_loss_, agent_best_, stagnation_, best_loss_, normal_, uniform_;
  at::Generator generator_;
  double rms_decay_, eps_;
  int64_t stagnation_limit_;
  c10::List<std::optional<at::Tensor>> bounds_;
  bool global_stagnation_, sequential_;
};

}  // namespace

void register_qimad_session(py::module_& m) {
  py::class_<QimadSession>(m, "QimadSession")
      .def(py::init<std::vector<std::vector<Slot>>, std::vector<at::Tensor>,
                    std::vector<at::Tensor>, std::vector<at::Tensor>, std::vector<at::Tensor>,
                    std::vector<at::Tensor>, std::vector<int64_t>, std::vector<at::Tensor>,
                    at::Tensor, at::Tensor, at::Tensor, at::Tensor, std::vector<int64_t>,
                    at::ScalarType, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                    at::Tensor, at::Generator, double, double, int64_t, bool, bool>())
      .def("set_hyper", &QimadSession::set_hyper)
      .def("step", &QimadSession::step);
}

}  // namespace python
}  // namespace qimad
}  // namespace sb_native
