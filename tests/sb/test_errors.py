"""Every public entry point refuses bad arguments before it allocates or runs anything, with
an error naming the argument (issue 19, item 8): integer domains too wide for the dtype,
counts past the ops' int64 (and the stop window's int16), seeds past torch's range, devices
that cannot compute, process_group misuse, solve_within's settings. Where the peer
(simulated-bifurcation 2.0.0) has its own message for a mistake, tests/sb/test_api.py pins it."""

import datetime
import math

import pytest
import torch
import torch.distributed as dist

import sb_native as sb
from sb_native.models import QUBO, Markowitz
from tests.helpers import free_port

QUIET = dict(verbose=False, agents=4, max_steps=20)
Q3 = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, 1.0], [2.0, -1.0, -4.0]])
FLOAT32_LIMIT = "holds integers exactly only up to 2\\*\\*24"
FLOAT64_LIMIT = "holds integers exactly only up to 2\\*\\*53"


def solve(entry, **kwargs):
    """One solve through entry, a public way in, with kwargs over QUIET."""
    kwargs = {**QUIET, **kwargs}
    domain = kwargs.pop("domain", "spin")
    dtype = kwargs.pop("dtype", None)
    if entry == "minimize":
        return sb.minimize(Q3, domain=domain, dtype=dtype, **kwargs)
    if entry == "polynomial":
        return sb.build_model(Q3, dtype=dtype).maximize(domain=domain, **kwargs)
    if entry == "batch":
        return sb.minimize(torch.stack([Q3, Q3]), domain=domain, dtype=dtype, **kwargs)
    if entry == "ising":
        return sb.Ising(Q3, dtype=dtype).minimize(**kwargs)
    return QUBO(Q3, dtype=dtype).minimize(**kwargs)  # a model: its own domain


ENTRIES = ["minimize", "polynomial", "batch", "ising", "model"]
DOMAIN_ENTRIES = ["minimize", "polynomial", "batch"]


# ── integer domains too wide for the dtype ──

@pytest.mark.parametrize("entry", DOMAIN_ENTRIES)
@pytest.mark.parametrize("domain,dtype,limit", [
    ("int100000", None, FLOAT32_LIMIT),  # the example: once an OverflowError
    ("int25", None, FLOAT32_LIMIT),  # rounded silently by the peer
    (["spin", "int30", "binary"], torch.float32, FLOAT32_LIMIT),
    ("int54", torch.float64, FLOAT64_LIMIT),
    ("int600", torch.float64, FLOAT64_LIMIT),
])
def test_integer_domains_past_the_exact_integers_of_the_dtype(entry, domain, dtype, limit):
    name = domain if isinstance(domain, str) else domain[1]
    dtype_name = str(dtype or torch.float32)
    with pytest.raises(ValueError, match=f"domain '{name}' is too wide for {dtype_name}: .*"
                                         f"dtype {dtype_name} {limit}"):
        solve(entry, domain=domain, dtype=dtype)


@pytest.mark.parametrize("dtype,bits", [(torch.float32, 24), (torch.float64, 53)])
def test_the_widest_exact_domain_solves_and_decodes_exactly(dtype, bits):
    polynomial = sb.build_model(torch.tensor([[-1.0]]), dtype=dtype)
    ones = torch.ones((bits, 1), dtype=dtype)
    assert int(polynomial.convert_spins(ones, f"int{bits}")) == 2**bits - 1
    vector, _ = polynomial.minimize(domain=f"int{bits}", seed=0, early_stopping=False,
                                    **QUIET)
    assert float(vector) == int(vector)
    with pytest.raises(ValueError, match=f"domain 'int{bits + 1}' is too wide"):
        polynomial.convert_spins(torch.ones((bits + 1, 1), dtype=dtype), f"int{bits + 1}")


def test_to_ising_keeps_the_finite_range():
    # An Ising form is not a solution: to_ising takes what its finite range allows.
    assert sb.build_model(Q3).to_ising("int25").dimension == 75
    with pytest.raises(ValueError, match="domain 'int64' is too wide for torch.float32: integer "
                                         "domains may have at most 63 bits"):
        sb.build_model(Q3).to_ising("int64")


@pytest.mark.parametrize("call", [
    lambda: Markowitz(torch.eye(3), torch.ones(3), number_of_bits=25).maximize(**QUIET),
    lambda: sb.solve_within(sb.build_model(Q3), 1.0, domain="int25", verbose=False),
    lambda: sb.settings_for(sb.build_model(Q3), domain="int100000"),
], ids=["markowitz", "solve_within", "settings_for"])
def test_integer_domains_past_the_exact_integers_elsewhere(call):
    with pytest.raises(ValueError, match="too wide for torch.float32: .*" + FLOAT32_LIMIT):
        call()


# ── counts, seeds and flags ──

BAD_OPTIONS = [
    (dict(agents=0), ValueError, "agents should be a positive integer, received 0"),
    (dict(agents=-1), ValueError, "agents should be a positive integer"),
    (dict(agents=2.0), TypeError, "agents should be an integer, received 2.0"),
    (dict(agents=True), TypeError, "agents should be an integer, received True"),
    (dict(agents=2**63), ValueError, "agents should be at most 2\\*\\*63 - 1"),
    (dict(max_steps=0), ValueError, "max_steps should be a positive integer"),
    (dict(max_steps=1.5), TypeError, "max_steps should be an integer"),
    (dict(max_steps=True), TypeError, "max_steps should be an integer"),
    (dict(max_steps=2**63), ValueError, "max_steps should be at most 2\\*\\*63 - 1"),
    (dict(sampling_period=0), ValueError, "sampling_period should be a positive integer"),
    (dict(sampling_period=True), TypeError, "sampling_period should be an integer"),
    (dict(sampling_period=2**63), ValueError, "sampling_period should be at most 2\\*\\*63 - 1"),
    (dict(convergence_threshold=True), TypeError, "convergence_threshold should be an integer"),
    (dict(convergence_threshold=2**15), ValueError,
     "convergence_threshold should be less than or equal to 32767"),
    (dict(seed=2**64), ValueError, "seed should be between -2\\*\\*63 and 2\\*\\*64 - 1"),
    (dict(seed=-2**63 - 1), ValueError, "seed should be between -2\\*\\*63 and 2\\*\\*64 - 1"),
    (dict(seed=1.5), TypeError, "seed should be an integer or None"),
    (dict(timeout=math.nan), ValueError, "timeout should be non-negative"),
    (dict(callback=1), TypeError, "Expected callback to be a callable"),
    (dict(polish="yes"), TypeError, "polish should be a boolean"),
]


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("kwargs,error,message", BAD_OPTIONS,
                         ids=[f"{k}={v!r}"[:40] for k, v in (next(iter(c[0].items()))
                                                             for c in BAD_OPTIONS)])
def test_bad_solver_options_name_the_argument(entry, kwargs, error, message):
    with pytest.raises(error, match=message):
        solve(entry, **kwargs)


# ── devices ──

def test_a_device_that_cannot_compute_is_refused():
    with pytest.raises(ValueError, match="device: meta tensors hold no values"):
        sb.minimize(Q3, domain="spin", device="meta", **QUIET)
    # A CUDA device torch does not have: an AssertionError or "invalid device ordinal" at the
    # first allocation otherwise.
    missing = f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"
    for make in (lambda: sb.build_model(Q3, device=missing),
                 lambda: sb.Ising(Q3, device=missing),
                 lambda: sb.build_model(torch.stack([Q3, Q3]), device=missing)):
        with pytest.raises(ValueError, match=f"device '{missing}' is not available"):
            make()


@pytest.mark.parametrize("make,message", [
    (lambda: sb.build_model(Q3.to("meta"), torch.ones(3)), "the quadratic coefficients: meta"),
    (lambda: sb.build_model(Q3, torch.ones(3, device="meta")), "the linear coefficients: meta"),
    (lambda: sb.build_model(torch.zeros(2, 3, 3, device="meta")),
     "problem 0: the quadratic coefficients: meta"),
    (lambda: sb.build_model([Q3, Q3.to("meta")]), "problem 1: the quadratic coefficients: meta"),
    (lambda: sb.Ising(Q3.to("meta")), "J: meta"),
    (lambda: sb.Ising(Q3, torch.ones(3, device="meta")), "h: meta"),
    (lambda: sb.build_model(Q3)(torch.ones(3, device="meta")),
     "value is on meta, the polynomial's coefficients on cpu"),
], ids=["quadratic", "linear", "batch", "batch-list", "ising-J", "ising-h", "value"])
def test_tensors_on_a_device_without_data_name_the_tensor(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("J,h,message", [
    ([[0.0, 1.0], [1.0, 0.0]], None, "J should be a torch.Tensor or a numpy.ndarray, received "
                                     "list"),
    (torch.eye(2), [1.0, 0.0], "h should be a torch.Tensor or a numpy.ndarray, received list"),
])
def test_ising_coefficients_of_another_type(J, h, message):
    with pytest.raises(TypeError, match=message):
        sb.Ising(J, h)


# ── process_group ──

@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("group,error,message", [
    (True, ValueError, "process_group=True needs torch.distributed initialised"),
    ("gloo", TypeError, "process_group should be a torch.distributed ProcessGroup"),
    (object(), TypeError, "process_group should be a torch.distributed ProcessGroup"),
    (1, TypeError, "process_group should be a torch.distributed ProcessGroup"),
    (dist.GroupMember.NON_GROUP_MEMBER, ValueError,
     "process_group: this rank is not a member of the group"),
], ids=["true-uninitialised", "string", "object", "int", "non-member"])
def test_process_group_misuse(entry, group, error, message):
    with pytest.raises(error, match=message):
        solve(entry, process_group=group)


def test_process_group_non_member_in_qimad():
    parameter = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError, match="process_group: this rank is not a member"):
        sb.QIMADTorch([parameter], process_group=dist.GroupMember.NON_GROUP_MEMBER)


@pytest.fixture
def one_rank_group():
    """A gloo group of this process alone (the default group), destroyed after the test."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0,
                            world_size=1, timeout=datetime.timedelta(seconds=30))
    try:
        yield dist.group.WORLD
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="no torch.distributed")
def test_a_group_of_a_destroyed_default_group(one_rank_group):
    dist.destroy_process_group()
    with pytest.raises(ValueError, match="process_group: torch.distributed is not initialised"):
        sb.minimize(Q3, domain="spin", process_group=one_rank_group, **QUIET)


# ── solve_within and its settings ──

@pytest.mark.parametrize("fields,error,message", [
    (dict(mode="quantum"), ValueError, "Unknwown Simulated Bifurcation engine: quantum"),
    (dict(agents=0), ValueError, "agents should be a positive integer"),
    (dict(agents=2.0), TypeError, "agents should be an integer"),
    (dict(max_steps=True), TypeError, "max_steps should be an integer"),
    (dict(time_step=-1), ValueError, "time_step should be a positive number"),
    (dict(time_step=math.inf), ValueError, "time_step should be a positive number"),
    (dict(heated="no"), TypeError, "heated should be a boolean"),
    (dict(polish=None), TypeError, "polish should be a boolean"),
])
def test_settings_name_the_field(fields, error, message):
    base = dict(mode="discrete", agents=4, time_step=0.5, max_steps=100)
    with pytest.raises(error, match=message):
        sb.Settings(**{**base, **fields})
    if "polish" not in fields:  # a preset has the same fields but polish
        with pytest.raises(error, match=message):
            sb.presets.Preset(**{**base, **fields})


@pytest.mark.parametrize("bits", [0, -1, True, 2.5, "2"])
def test_markowitz_number_of_bits(bits):
    """The peer fails on its domain string, for True and 2.5 only at the first solve."""
    with pytest.raises(ValueError, match="number_of_bits should be a positive integer"):
        sb.models.Markowitz(torch.eye(2), torch.ones(2), number_of_bits=bits)


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(settings={"agents": 4}), TypeError, "settings should be a sb_native.Settings or None"),
    (dict(backend="gpu"), ValueError, "backend must be one of"),
    (dict(verbose="no"), TypeError, "verbose should be a boolean"),
    (dict(callback=1), TypeError, "Expected callback to be a callable"),
    (dict(seed=2**64), ValueError, "seed should be between -2\\*\\*63 and 2\\*\\*64 - 1"),
])
def test_solve_within_arguments_name_the_argument(kwargs, error, message):
    with pytest.raises(error, match=message):
        sb.solve_within(sb.build_model(Q3), 1.0, domain="spin", steps=10, max_runs=1,
                        **{"verbose": False, **kwargs})
