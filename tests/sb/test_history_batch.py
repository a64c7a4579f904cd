"""A batch's history (`callback=` on a batch of problems: BatchHistoryPoint, one entry per
problem): problem b's entries are the points its own call (seed + b) gives, on both
backends, both reductions of a batch (dense problems of one size, and a list of sizes) and
with early stopping firing at different points; a callback may stop the batch."""

import warnings

import pytest
import torch

import sb_native as sb
from tests.helpers import NATIVE_ONLY

BACKENDS = ["torch", pytest.param("native", marks=NATIVE_ONLY)]
RUN = dict(agents=6, max_steps=400, seed=5, verbose=False, sampling_period=20,
           convergence_threshold=5, dtype=torch.float64)


def integer_problems(sizes, seed=0):
    """(Q, l) of integer weights, so energies, values and their means are exact sums."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randint(-3, 4, (n, n), generator=g).double(),
             torch.randint(-3, 4, (n,), generator=g).double()) for n in sizes]


def rows(history):
    return [(p.step, p.best, p.mean, p.frozen) for p in history]


def own_histories(problems, sense, domain, **options):
    """Each problem's history from its own call, seed + b."""
    histories = []
    for b, (Q, linear) in enumerate(problems):
        history = sb.History()
        getattr(sb, sense)(Q, linear, domain=domain, callback=history,
                           **{**RUN, **options, "seed": RUN["seed"] + b})
        histories.append(history)
    return histories


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sense", ["minimize", "maximize"])
@pytest.mark.parametrize("domain,sizes", [("spin", [12, 12, 12]), ("binary", [12, 12, 12]),
                                          ("int2", [12, 12, 12]), ("spin", [5, 12, 9]),
                                          ("binary", [1, 7, 12, 3])])
def test_each_problems_points_are_its_own_runs(backend, sense, domain, sizes):
    """Early stopping on: a problem's own run stops when its agents froze, the batch goes on
    while another problem runs, and the problem's later entries keep its frozen values."""
    problems = integer_problems(sizes)
    history = sb.History()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(sb, sense)([sb.build_model(Q, linear, dtype=torch.float64)
                            for Q, linear in problems], domain=domain, backend=backend,
                           callback=history, **RUN)
        own = own_histories(problems, sense, domain, backend=backend)
    assert all(isinstance(point, sb.BatchHistoryPoint) for point in history)
    for b, alone in enumerate(own):
        mine = rows(history.problem(b))
        assert mine[:len(alone)] == rows(alone), b
        last = rows(alone)[-1][1:]
        assert all(row[1:] == last for row in mine[len(alone):]), b
    assert len(history) == max(len(alone) for alone in own)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_callback_stops_the_batch(backend):
    """Returning True at step 60 gives every problem its max_steps=60 run."""
    Q = torch.stack([Q for Q, _ in integer_problems([10, 10, 10], seed=1)])
    options = dict(RUN, early_stopping=False, best_only=False, backend=backend)
    steps = []

    def stop_at_60(point):
        steps.append(point.step)
        return point.step == 60

    stopped = sb.minimize(Q, domain="spin", callback=stop_at_60, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fixed = sb.minimize(Q, domain="spin", **dict(options, max_steps=60))
    assert steps == [20, 40, 60]
    assert all(torch.equal(a, b) for a, b in zip(stopped, fixed))


def test_last_point_is_the_returned_values():
    """No early stopping: the last entries are the returned values' best and mean."""
    problems = integer_problems([8, 8], seed=2)
    history = sb.History()
    _, values = sb.maximize(torch.stack([Q for Q, _ in problems]),
                            torch.stack([linear for _, linear in problems]), domain="binary",
                            callback=history, **dict(RUN, early_stopping=False,
                                                     best_only=False, max_steps=100))
    assert history.steps == [20, 40, 60, 80, 100]
    assert list(history[-1].best) == values.amax(dim=1).tolist()
    assert list(history[-1].mean) == values.mean(dim=1).tolist()
