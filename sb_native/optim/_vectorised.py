"""QIMADTorch's steps that evaluate every due agent in one call instead of one closure each:
step_batched (a per-agent loss, vectorised by torch.func.vmap) and step_vectorized (a loss
that already takes every agent at once, e.g. a test function of an (agents, d) tensor)."""

from typing import Callable, List, Optional, Sequence, Tuple

import torch

from ._owner import SwarmOwner
from ._stepping import functional_loss

# An evaluation of the stacked due agents: their losses (rows,) and, per parameter, gradients
# shaped like the stacked parameter.
Evaluation = Tuple[torch.Tensor, Sequence[torch.Tensor]]


class VectorisedSteps:
    """The vectorised steps of QIMADTorch (its base class: they use its swarm)."""

    @torch.no_grad()
    def step_batched(self: SwarmOwner, loss_fn: Callable,
                     module: Optional[torch.nn.Module] = None, *,
                     randomness: str = "error") -> float:
        """One step evaluating all agents due this step in one vectorised call.

        Without `module`, loss_fn(*params) takes the parameter tensors in the optimizer's order.
        With `module`, loss_fn(forward) takes a function running `module` on one agent's
        weights (torch.func.functional_call), e.g. lambda f: F.cross_entropy(f(X), y).
        Gradients come from torch.func.vmap(torch.func.grad_and_value(...)); randomness is
        vmap's ('error', 'different' or 'same'). Returns the best loss seen so far.

        >>> import torch, sb_native as sb
        >>> weights = torch.nn.Parameter(torch.tensor([2.0, -1.0]))
        >>> optimizer = sb.QIMADTorch([weights], num_agents=4, seed=0)
        >>> best = [optimizer.step_batched(lambda w: (w ** 2).sum()) for _ in range(20)]
        >>> best[0], best[-1] < 0.1
        (5.0, True)
        >>> model = torch.nn.utils.skip_init(torch.nn.Linear, 2, 1)  # no draw from the RNG
        >>> _ = torch.nn.init.zeros_(model.weight), torch.nn.init.zeros_(model.bias)
        >>> X, y = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), torch.tensor([1.0, 2.0, 3.0])
        >>> optimizer = sb.QIMADTorch(model.parameters(), num_agents=4, seed=0)
        >>> loss = lambda forward: torch.nn.functional.mse_loss(forward(X).reshape(-1), y)
        >>> best = [optimizer.step_batched(loss, model) for _ in range(20)]
        >>> best[-1] < best[0]
        True
        """
        def evaluate(stacked: List[torch.Tensor]) -> Evaluation:
            # Built here, not before: the first step builds the buckets it reads.
            fn = loss_fn if module is None else functional_loss(
                loss_fn, module, [p for b in self._buckets for p in b.params])
            value_and_grads = torch.func.vmap(
                torch.func.grad_and_value(fn, argnums=tuple(range(len(stacked)))),
                randomness=randomness)
            with torch.enable_grad():
                grads, values = value_and_grads(*stacked)
            return values, grads

        return self._step_rows(evaluate, "step_batched")

    @torch.no_grad()
    def step_vectorized(self: SwarmOwner, loss_fn: Callable,
                        jac: Optional[Callable] = None) -> float:
        """One step evaluating all agents due this step in one call of loss_fn, which takes
        every parameter stacked over those agents (shape (agents, *param.shape), in the
        optimizer's order) and returns their losses, shape (agents,). Each agent's loss must
        depend on its own row only: the gradients are those of the losses' sum (autograd), or
        jac(*stacked): one tensor per parameter shaped like its stack (a tensor alone for one
        parameter). Returns the best loss.

        >>> import torch, sb_native as sb
        >>> x = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
        >>> optimizer = sb.QIMADTorch([x], num_agents=4, seed=0, bounds=(-2.0, 2.0),
        ...                           init="uniform")
        >>> sphere = lambda X: ((X - 1) ** 2).sum(1)
        >>> best = [optimizer.step_vectorized(sphere) for _ in range(100)]
        >>> best[-1] < 1e-3, bool((x.detach() - 1).abs().max() < 0.05)
        (True, True)
        """
        def evaluate(stacked: List[torch.Tensor]) -> Evaluation:
            if jac is not None:
                grads = jac(*stacked)
                return loss_fn(*stacked), [grads] if torch.is_tensor(grads) else grads
            leaves = [t.detach().requires_grad_() for t in stacked]
            with torch.enable_grad():
                values = loss_fn(*leaves)
                grads = torch.autograd.grad(values.sum(), leaves, allow_unused=True)
            return values, [torch.zeros_like(t) if g is None else g
                            for t, g in zip(leaves, grads)]

        return self._step_rows(evaluate, "step_vectorized")

    def _step_rows(self: SwarmOwner, evaluate: Callable[[List[torch.Tensor]], Evaluation],
                   name: str) -> float:
        """A step whose due agents are evaluated at once: evaluate(stacked parameters) gives
        their losses and gradients, which go into the swarm's records and gradient rows; across
        a process group each rank evaluates its block of them (_ranks.py)."""
        rows = self._begin_step()
        assert self._swarm is not None  # built by _begin_step
        if self._group is not None:
            return self._step_shared(
                lambda mine, losses: self._take_rows(evaluate, name, mine, losses), rows)
        losses = self._swarm.agent_loss.tolist()
        self._take_rows(evaluate, name, rows, losses)
        return self._update(rows, losses)

    def _take_rows(self: SwarmOwner, evaluate: Callable[[List[torch.Tensor]], Evaluation],
                   name: str, rows: List[int], losses: List[float]) -> None:
        """evaluate() of the agents rows (of this process's gradient rows): their losses into
        losses, their gradients into the buckets' gradient rows."""
        if not rows:  # none here (a rank of more ranks than agents may own none)
            return
        n = self.param_groups[0]["num_agents"]
        stacked, rows_by_bucket = [], []
        for b in self._buckets:
            if len(rows) == n:
                theta = b.theta
            else:
                rows_by_bucket.append(self._rows(rows, b.device))
                theta = b.theta.index_select(0, rows_by_bucket[-1])
            stacked.extend(b.views(theta))
        values, grads = evaluate(stacked)
        values = torch.as_tensor(values).detach().reshape(-1)
        if values.numel() != len(rows) or len(grads) != len(stacked):
            raise ValueError(f"{name}: the loss must return one value per agent evaluated "
                             f"({len(rows)}, got {values.numel()}) and one gradient per "
                             f"parameter ({len(stacked)}, got {len(grads)})")
        start = 0
        for bi, b in enumerate(self._buckets):
            flat = torch.cat([g.reshape(len(rows), -1)
                              for g in grads[start:start + len(b.params)]], dim=1)
            start += len(b.params)
            if len(rows) == n:
                b.grad.copy_(flat)
            else:  # the gradient rows start at the bucket's first agent (a sharded swarm)
                b.grad.index_copy_(0, rows_by_bucket[bi] - b.first, flat)
        for i, value in zip(rows, values.tolist()):
            losses[i] = value
