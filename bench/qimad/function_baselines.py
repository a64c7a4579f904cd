"""The QIMAD authors' benchmark protocol (github.com/metamatematico/QUIMAD: config.yaml,
benchmarks.py, baselines.py, qimad_optimizer.py, run_experiments.py), rewritten here so that other
optimisers can be measured on it: the three d=10 test functions, their gradients, the authors'
baselines, their QIMAD loop, and scipy's global optimisers on the same evaluation budget.

Each test function is written once for numpy and torch, x (..., d) -> (...). On one numpy point it
performs the authors' per-point operations in their order, so it computes their values bit for
bit (numpy sums a row alike alone or inside a matrix; checked against their code for Ackley's
central differences too); that is what lets the loops below replay the published runs. On a torch
(agents, d) tensor it serves the batched optimisers.

Every runner takes (fn, grad, bounds, dim, iterations, seed, threshold) and returns Run(best,
nfev, njev): the best value ever seen (the authors report min over a run of
best_global_objective), the objective values it asked for, and the gradient rows. A
central-difference gradient row costs 2d further values, which nfev does not count.
"""

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from scipy import optimize


class Run(NamedTuple):
    best: float
    nfev: int
    njev: int


def _xp(x):
    return torch if isinstance(x, torch.Tensor) else np


def rastrigin(x):
    xp = _xp(x)
    return 10 * x.shape[-1] + (x**2 - 10 * xp.cos(2 * math.pi * x)).sum(-1)


def rastrigin_grad(x):
    xp = _xp(x)
    return 2 * x + 2 * math.pi * 10 * xp.sin(2 * math.pi * x)


def ackley(x):
    xp, d = _xp(x), x.shape[-1]
    t1 = -20 * xp.exp(-0.2 * xp.sqrt((x**2).sum(-1) / d))
    t2 = -xp.exp(xp.cos(2 * math.pi * x).sum(-1) / d)
    return t1 + t2 + 20 + math.e


def rosenbrock(x):
    head, tail = x[..., :-1], x[..., 1:]
    return (100.0 * (tail - head**2) ** 2 + (1.0 - head) ** 2).sum(-1)


def rosenbrock_grad(x):
    head, tail = x[..., :-1], x[..., 1:]
    g = _xp(x).zeros_like(x)
    g[..., :-1] += -2 * (1.0 - head) - 4 * 100.0 * head * (tail - head**2)
    g[..., 1:] += 2 * 100.0 * (tail - head**2)
    return g


def central_difference(fn, eps=1e-6):
    """The authors' gradient for functions without an analytic one: per coordinate
    (f(x + eps e_i) - f(x - eps e_i)) / 2 eps, all 2d points of all rows in one call of fn."""

    def grad(x):
        d = x.shape[-1]
        e = eps * (torch.eye(d, dtype=x.dtype, device=x.device) if isinstance(x, torch.Tensor)
                   else np.eye(d))
        xs = x[..., None, :]
        return (fn(xs + e) - fn(xs - e)) / (2 * eps)

    return grad


@dataclass
class Problem:
    """A protocol function: fn, the protocol's gradient, the box, and the published mean and
    standard deviation (ddof=1) over seeds 42..71 of each of the authors' optimisers."""

    fn: object
    grad: object
    bounds: tuple
    published: dict = field(default_factory=dict)


# Published: the authors' results/stats_markdown.md (30 runs, seeds 42-71, D=10).
PROBLEMS = {
    "Rastrigin": Problem(rastrigin, rastrigin_grad, (-5.12, 5.12), {
        "QIMAD": (19.5845, 9.4554), "PSO": (27.7920, 16.3702), "Adam": (85.5991, 18.5779)}),
    "Ackley": Problem(ackley, central_difference(ackley), (-32.768, 32.768), {
        "QIMAD": (10.1548, 2.7234), "PSO": (3.8863, 4.9000), "Adam": (19.4936, 0.2219)}),
    "Rosenbrock": Problem(rosenbrock, rosenbrock_grad, (-5.0, 10.0), {
        "QIMAD": (234.0504, 281.7576), "PSO": (7466.5312, 19992.2303),
        "Adam": (464110.7167, 346315.1143)}),
}
# The authors' Wilcoxon p-values, QIMAD against PSO (two-sided, 30 pairs).
PUBLISHED_P_VS_PSO = {"Rastrigin": 0.02341, "Ackley": 0.00001, "Rosenbrock": 0.88719}


def _values(fn, points):
    """One value per row, each computed alone as the authors' code does."""
    return np.array([float(fn(p)) for p in points])


def _authors_stream(seed, bounds, dim, starts_before):
    """run_experiments.py seeds numpy's global RNG with the run's seed, then SGD, Adam and PSO
    draw from it in that order (QIMAD has a RandomState of its own). A RandomState(seed) advanced
    past the starting points drawn before the optimiser gives it the published run's numbers
    without touching the global RNG."""
    rs = np.random.RandomState(seed)
    for _ in range(starts_before):
        rs.uniform(bounds[0], bounds[1], dim)
    return rs


def pso(fn, grad, bounds, dim, iterations, seed, threshold,
        particles=8, w=0.7, c1=1.5, c2=1.5):
    """baselines.PSO: 8 values to initialise the personal bests, then each iteration 8 values,
    personal then global best updates, velocities clipped to +-span, positions to the box."""
    lo, hi = bounds
    span = abs(hi - lo)
    rs = _authors_stream(seed, bounds, dim, 2)
    pos = rs.uniform(lo, hi, (particles, dim))
    vel = rs.uniform(-span, span, (particles, dim)) * 0.1
    pbest_pos, pbest_obj = pos.copy(), _values(fn, pos)
    best = float(pbest_obj.min())
    gbest = pos[int(np.argmin(pbest_obj))].copy()
    nfev = particles
    for _ in range(iterations):
        objs = _values(fn, pos)
        nfev += particles
        for i in range(particles):
            if objs[i] < pbest_obj[i]:
                pbest_obj[i], pbest_pos[i] = objs[i], pos[i]
            if objs[i] < best:
                best, gbest = float(objs[i]), pos[i].copy()
        r1, r2 = rs.rand(particles, dim), rs.rand(particles, dim)
        vel = w * vel + c1 * r1 * (pbest_pos - pos) + c2 * r2 * (gbest - pos)
        vel = np.clip(vel, -span, span)
        pos = np.clip(pos + vel, lo, hi)
        if best < threshold:
            break
    return Run(best, nfev, 0)


def adam(fn, grad, bounds, dim, iterations, seed, threshold,
         lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8):
    """baselines.Adam: one point from a uniform start, bias-corrected moments, clipped to the
    box; one value and one gradient per iteration."""
    lo, hi = bounds
    theta = _authors_stream(seed, bounds, dim, 1).uniform(lo, hi, dim)
    m, v, best = np.zeros(dim), np.zeros(dim), math.inf
    for t in range(1, iterations + 1):
        best = min(best, float(fn(theta)))
        g = grad(theta)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
        theta = np.clip(theta - lr * m_hat / (np.sqrt(v_hat) + eps), lo, hi)
        if best < threshold:
            break
    return Run(best, t, t)


def _bloch(alpha, beta):
    return np.array([np.cos(alpha / 2), np.exp(1j * beta) * np.sin(alpha / 2)], dtype=complex)


def published_qimad(fn, grad, bounds, dim, iterations, seed, threshold, agents=8,
                    eta=0.05, gamma=0.05, k=2, alpha_lr=0.03, beta_lr=0.03):
    """qimad_optimizer.QIMAD on the complete graph, statement for statement and draw for draw:
    agents move one after another, each seeing the positions and states of those before it."""
    lo, hi = bounds
    rs = np.random.RandomState(seed)
    theta, alpha, beta = [], [], []
    for _ in range(agents):
        theta.append(rs.uniform(lo, hi, dim))
        alpha.append(rs.uniform(0, np.pi))
        beta.append(rs.uniform(0, 2 * np.pi))
    psi = [_bloch(a, b) for a, b in zip(alpha, beta)]
    v = [np.zeros(dim) for _ in range(agents)]
    stagnation = [0] * agents
    best, gbest, nfev = math.inf, None, 0
    for _ in range(iterations):
        objs = [fn(t) for t in theta]
        nfev += agents
        for i, obj in enumerate(objs):
            if obj < best:
                best, gbest, stagnation[i] = obj, theta[i].copy(), 0
            else:
                stagnation[i] += 1
        for i in range(agents):
            g = grad(theta[i])
            v[i] = 0.99 * v[i] + (1 - 0.99) * g**2
            step = eta / (np.sqrt(v[i]) + 1e-8)
            attraction = 0.2 * rs.rand() * (gbest - theta[i])
            tunnel = np.zeros(dim)
            if stagnation[i] > 3:
                if rs.rand() < float(np.abs(psi[i][1]) ** 2):
                    tunnel = rs.uniform(-1, 1, dim) * ((hi - lo) * 0.4)
                stagnation[i] = 0
            others = [j for j in range(agents) if j != i]
            weights = np.array([np.abs(np.vdot(psi[i], psi[j])) ** k for j in others])
            comm = np.zeros(dim)
            for w, j in zip(weights / (weights.sum() + 1e-8), others):
                comm += w * (theta[j] - theta[i])
            theta[i] = np.clip(theta[i] - step * g + gamma * comm + attraction + tunnel, lo, hi)
            alpha[i] = np.clip(alpha[i] + alpha_lr * rs.randn(), 0, np.pi)
            beta[i] = (beta[i] + beta_lr * rs.randn()) % (2 * np.pi)
            psi[i] = _bloch(alpha[i], beta[i])
        if best < threshold:
            break
    return Run(float(best), nfev, nfev)


class _Counted:
    """fn as scipy calls it, counting the calls and keeping the best value: the solvers' own
    result reports the final population or state, the protocol the best value ever seen."""

    def __init__(self, fn):
        self.fn, self.nfev, self.best = fn, 0, math.inf

    def __call__(self, x):
        value = float(self.fn(x))
        self.nfev += 1
        self.best = min(self.best, value)
        return value


def differential_evolution(fn, grad, bounds, dim, iterations, seed, threshold, agents=8,
                           popsize=5):
    """scipy's DE on QIMAD's budget of agents x iterations values: a population of popsize x dim
    (50 at d=10) costs that many values to start and per generation, so the generations are
    budget // population - 1 (23). No polishing (it would spend values outside the budget)."""
    counted = _Counted(fn)
    population = max(5, popsize * dim)
    optimize.differential_evolution(
        counted, [bounds] * dim, maxiter=agents * iterations // population - 1, popsize=popsize,
        polish=False, rng=seed, callback=lambda intermediate_result: counted.best < threshold)
    return Run(counted.best, counted.nfev, 0)


def dual_annealing(fn, grad, bounds, dim, iterations, seed, threshold, agents=8):
    """scipy's dual annealing on QIMAD's budget (maxfun = agents x iterations) without its local
    search, which would spend values beyond maxfun."""
    counted = _Counted(fn)
    optimize.dual_annealing(
        counted, [bounds] * dim, maxfun=agents * iterations, no_local_search=True, rng=seed,
        callback=lambda x, f, context: counted.best < threshold)
    return Run(counted.best, counted.nfev, 0)
