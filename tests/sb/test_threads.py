"""Several Python threads at once (issue 19, item 5).

A run captures its environment when it starts and a preset's environment is a context
variable (sb_native/_env.py), so threads solving at once get exactly the results of the same
calls made one after another; the native ops release the GIL, so other threads run meanwhile.

Every thread is joined under a timeout: a deadlock fails the test instead of hanging the run.
"""

import contextvars
import math
import threading
import time
from typing import Callable, List, Sequence

import pytest
import torch

import sb_native as sb
from sb_native.engine import ops
from tests.helpers import NATIVE_ONLY

JOIN_SECONDS = 60.0


def run_in_threads(jobs: Sequence[Callable[[], object]]) -> List[object]:
    """Each job in its own thread, all released at once by a barrier; their results in order.
    A job's exception is raised here; a thread still alive after JOIN_SECONDS fails."""
    barrier = threading.Barrier(len(jobs))
    results: List[object] = [None] * len(jobs)
    errors: List[BaseException] = []

    def work(index: int, job: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=JOIN_SECONDS)
            results[index] = job()
        except BaseException as err:  # reported by the test's thread below
            errors.append(err)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(i, job), daemon=True)
               for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + JOIN_SECONDS
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish"
    if errors:
        raise errors[0]
    return results


def ising(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    J = torch.randn(n, n, generator=g, dtype=torch.float64)
    J = (J + J.t()) / 2
    J.fill_diagonal_(0)
    return J


J40 = ising(40, seed=5)
SOLVE = dict(domain="spin", agents=16, best_only=False, verbose=False, seed=3)


def solve(**kwargs):
    return sb.minimize(J40, **{**SOLVE, **kwargs})


# Four ways to set the environment of the same problem and seed, each giving its own result:
# if a thread saw another's settings, its result would be another's.
PRESET_DENSE = sb.presets.Preset(mode="discrete", agents=16, max_steps=300, time_step=0.25)
PRESET_SLOW = sb.presets.Preset(mode="ballistic", agents=16, max_steps=400, time_step=0.5)


def with_preset(preset, ready=None):
    def job():
        with preset.environment():
            if ready is not None:  # every thread's block is open before any run starts
                ready.wait(timeout=JOIN_SECONDS)
            return [solve(max_steps=preset.max_steps, mode=preset.mode, early_stopping=False)
                    for _ in range(2)]
    return job


def with_set_env_in_preset(ready=None):
    """set_env inside a preset's block: the block's own (heated) environment."""
    def job():
        with PRESET_DENSE.environment():
            sb.set_env(heat_coefficient=0.2, pressure_slope=0.004)
            if ready is not None:
                ready.wait(timeout=JOIN_SECONDS)
            return [solve(max_steps=300, mode="discrete", heated=True, early_stopping=False)
                    for _ in range(2)]
    return job


def with_global_env(ready=None):
    """No block: the process-wide environment (the defaults here)."""
    def job():
        if ready is not None:
            ready.wait(timeout=JOIN_SECONDS)
        return [solve(max_steps=300, early_stopping=False) for _ in range(2)]
    return job


PRESET_BATCH = sb.presets.Preset(mode="ballistic", agents=16, max_steps=250, time_step=0.3)
BATCH = torch.stack([J40, ising(40, seed=6), ising(40, seed=7)])


def with_preset_batch(ready=None):
    """A batch of problems (one run for all: sb_native/core/batch.py) in a preset's block."""
    def job():
        with PRESET_BATCH.environment():
            if ready is not None:
                ready.wait(timeout=JOIN_SECONDS)
            return [sb.minimize(BATCH, **{**SOLVE, **PRESET_BATCH.solver_kwargs()})
                    for _ in range(2)]
    return job


def environment_jobs(ready=None):
    return [with_preset(PRESET_DENSE, ready), with_preset(PRESET_SLOW, ready),
            with_set_env_in_preset(ready), with_global_env(ready), with_preset_batch(ready)]


@pytest.fixture
def default_env():
    sb.reset_env()
    yield
    sb.reset_env()


def test_concurrent_minimize_equals_sequential(default_env, one_thread):
    """Five threads, each in its own environment (four presets' blocks, one of them with a
    set_env inside, one batch of problems; one thread in the global environment), all blocks
    open at once, two runs each: the sequential calls' results, bit for bit."""
    sequential = [job() for job in environment_jobs()]
    assert sb.get_env() == {"time_step": 0.1, "pressure_slope": 0.01, "heat_coefficient": 0.06}
    # Each environment leads to its own spins (problem 0 of the batch is J40 too): a leak
    # between threads would show.
    firsts = [result[0][0] for result in sequential[:-1]] + [sequential[-1][0][0][0]]
    for i in range(len(firsts)):
        for j in range(i):
            assert not torch.equal(firsts[i], firsts[j]), (i, j)
    ready = threading.Barrier(len(sequential), timeout=JOIN_SECONDS)
    concurrent = run_in_threads(environment_jobs(ready))
    for seq, conc in zip(sequential, concurrent):
        for (seq_vectors, seq_values), (vectors, values) in zip(seq, conc):
            assert torch.equal(vectors, seq_vectors)
            assert torch.equal(values, seq_values)
    assert sb.get_env() == {"time_step": 0.1, "pressure_slope": 0.01, "heat_coefficient": 0.06}


def test_preset_is_invisible_to_other_threads(default_env):
    seen = []
    with PRESET_DENSE.environment():
        inside = sb.get_env()
        # A thread started inside the block starts with an empty context (the standard
        # semantics of context variables): it sees the global environment, unless its
        # target runs in a copy of the block's context.
        context = contextvars.copy_context()
        run_in_threads([lambda: seen.append(sb.get_env()),
                        lambda: context.run(lambda: seen.append(sb.get_env()))])
    assert inside == {"time_step": 0.25, "pressure_slope": PRESET_DENSE.pressure_slope,
                      "heat_coefficient": 0.06}
    assert sorted(seen, key=lambda env: env["time_step"]) == [
        {"time_step": 0.1, "pressure_slope": 0.01, "heat_coefficient": 0.06}, inside]


def test_set_env_during_a_run_does_not_change_it(default_env, one_thread):
    """Another thread's set_env loop while a run goes on: the run keeps the environment it
    started with."""
    sb.set_env(time_step=0.2, pressure_slope=0.004)
    run = dict(max_steps=1500, mode="discrete", early_stopping=False, agents=32)
    points: List[int] = []

    def record(point):
        points.append(point.step)
        return False

    reference = solve(callback=record, **run)
    assert len(points) == 30  # the callback does not stop it: one point every 50 steps
    sb.set_env(time_step=0.5)  # sanity: the environment matters to this run
    assert not torch.equal(solve(callback=record, **run)[0], reference[0])
    sb.set_env(time_step=0.2)

    started, flipped, finished = threading.Event(), threading.Event(), threading.Event()
    flips = [0]
    flips_seen: List[int] = []

    def callback(point):
        if not started.is_set():  # the run's first point: it goes on once set_env has run
            started.set()
            assert flipped.wait(timeout=JOIN_SECONDS)
        flips_seen.append(flips[0])
        return False

    def flipper():
        assert started.wait(timeout=JOIN_SECONDS)
        while not finished.is_set():
            flips[0] += 1
            sb.set_env(time_step=0.05 + 0.01 * (flips[0] % 40), pressure_slope=0.02,
                       heat_coefficient=0.3)
            flipped.set()
            time.sleep(0)  # hand the GIL over: the run's Python parts go on too

    def runner():
        try:
            return solve(callback=callback, **run)
        finally:
            finished.set()
            started.set()  # a run that failed early must not leave the flipper waiting

    result = run_in_threads([runner, flipper])[0]
    assert len(flips_seen) == 30 and flips_seen[0] > 0  # set_env ran while the run went on
    assert torch.equal(result[0], reference[0])
    assert torch.equal(result[1], reference[1])
    assert sb.get_env()["heat_coefficient"] == 0.3  # set_env stays process-wide


def rastrigin(w: torch.Tensor) -> torch.Tensor:
    return 10 * w.numel() + (w ** 2 - 10 * torch.cos(2 * math.pi * w)).sum()


def qimad_job(index: int):
    """Optimizer index on its own model: step_batched or step(closure) (the native session
    where the extension has it), 20 steps; its best losses and final weights."""
    def job():
        g = torch.Generator().manual_seed(100 + index)
        weights = torch.nn.Parameter(4 * torch.rand(6, generator=g, dtype=torch.float64) - 2)
        optimizer = sb.QIMADTorch([weights], num_agents=6, seed=index, total_steps=20)
        if index % 2:
            best = [optimizer.step_batched(rastrigin) for _ in range(20)]
        else:
            def closure():
                optimizer.zero_grad()
                loss = rastrigin(weights)
                loss.backward()
                return loss
            best = [optimizer.step(closure) for _ in range(20)]
        return best, weights.detach().clone()
    return job


def test_concurrent_qimad_steps_equal_sequential(one_thread):
    sequential = [qimad_job(i)() for i in range(4)]
    concurrent = run_in_threads([qimad_job(i) for i in range(4)])
    for (seq_best, seq_weights), (best, weights) in zip(sequential, concurrent):
        assert best == seq_best
        assert torch.equal(weights, seq_weights)


class Counter:
    """A Python loop in its own thread: how often it ran, and its longest pause, between
    start() and stop(). Its longest pause is at least as long as any stretch of time
    another thread holds the GIL."""

    def __init__(self) -> None:
        self.count, self.longest = 0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now
            self.count += 1

    def start(self) -> None:
        self._thread.start()
        while self.count == 0:  # running before the measured call starts
            time.sleep(0.001)
        self.count, self.longest = 0, 0.0

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(JOIN_SECONDS)
        assert not self._thread.is_alive()


def timed(call: Callable[[], object]) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


@NATIVE_ONLY
def test_native_sb_call_releases_the_gil(one_thread):
    """One sb_run call of ~0.5 s (a single op call: minimize's chunks of ~0.1 s would let
    other threads in between calls even if a call held the GIL). The custom op is called
    through torch.ops, whose operator call (invokeOperatorFromPython in torch's
    pybind_utils) releases the GIL around the kernel."""
    n, agents = 600, 64
    J = ising(n, seed=8).float()
    g = torch.Generator().manual_seed(9)
    position = 2 * torch.rand(n, agents, generator=g) - 1
    momentum = 2 * torch.rand(n, agents, generator=g) - 1

    def call(steps: int) -> Callable[[], None]:
        return lambda: ops.sb_run(J, position, momentum, 0, steps, 0.1, 0.01, 0.1, 0.0,
                                  False, backend="native")

    per_step = timed(call(40)) / 40
    steps = max(40, min(20_000, int(0.5 / per_step)))
    counter = Counter()
    counter.start()
    try:
        seconds = timed(call(steps))
    finally:
        counter.stop()
    assert seconds > 0.1, f"the call took {seconds:.3f} s: too short to tell"
    assert counter.count > 5_000, (counter.count, seconds)
    assert counter.longest < seconds / 4, (counter.longest, seconds)


@NATIVE_ONLY
def test_native_qimad_step_releases_the_gil(one_thread):
    """QIMADTorch.step(closure) on the native session with a large parameter and a trivial
    closure: nearly all of a step is the native qimad_step."""
    weights = torch.nn.Parameter(torch.zeros(1_000_000))
    optimizer = sb.QIMADTorch([weights], num_agents=8, seed=0, backend="native")

    def closure():
        optimizer.zero_grad()
        loss = torch.zeros((), requires_grad=True)
        loss.backward()
        return loss

    optimizer.step(closure)  # builds the swarm and the session
    assert optimizer._runtime is not None
    if optimizer._runtime.session is None:
        pytest.skip("this build of the extension has no QimadSession")
    counter = Counter()
    counter.start()
    try:
        seconds = [timed(lambda: optimizer.step(closure)) for _ in range(6)]
    finally:
        counter.stop()
    assert counter.longest < min(seconds) / 4, (counter.longest, seconds)
