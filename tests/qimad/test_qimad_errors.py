"""QIMADTorch's arguments (issue 19, clear errors): each bad value is a ValueError or TypeError
naming the argument when the optimizer is made (or the group added), never an error deep in
a step, a silent truncation or a NaN spreading through the swarm; a closure that returns no
loss is named on both backends."""

import math

import pytest
import torch

import sb_native as sb
from tests.helpers import NATIVE_ONLY

NAN, INF = math.nan, math.inf


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(num_agents=True), ValueError, "num_agents must be a positive int, got True"),
    (dict(num_agents=0), ValueError, "num_agents must be a positive int"),
    (dict(k_eval="2"), ValueError, "k_eval must be None or a positive int, got '2'"),
    (dict(k_eval=2.5), ValueError, "k_eval must be None or a positive int, got 2.5"),
    (dict(total_steps=0), ValueError, "total_steps must be None or a positive int"),
    (dict(total_steps=2.5), ValueError, "total_steps must be None or a positive int"),
    (dict(seed=1.5), TypeError, "seed should be an integer or None"),
    (dict(seed=2**64), ValueError, "seed should be between -2\\*\\*63 and 2\\*\\*64 - 1"),
    (dict(lr=-1), ValueError, "lr must be a finite number >= 0, got -1"),
    (dict(lr=NAN), ValueError, "lr must be a finite number >= 0, got nan"),
    (dict(lr="x"), ValueError, "lr must be a finite number >= 0, got 'x'"),
    (dict(eta=INF), ValueError, "lr must be a finite number >= 0, got inf"),
    (dict(gamma=INF), ValueError, "gamma must be a finite number >= 0"),
    (dict(k=-2), ValueError, "k must be a finite number >= 0"),
    (dict(alpha_lr=NAN), ValueError, "alpha_lr must be a finite number >= 0, got nan"),
    (dict(beta_lr=-0.1), ValueError, "beta_lr must be a finite number >= 0"),
    (dict(min_temp=NAN), ValueError, "min_temp must be a finite number >= 0"),
    (dict(attraction=NAN), ValueError, "attraction must be a finite number >= 0"),
    (dict(topology="star"), ValueError, "topology must be one of"),
    (dict(cooling="fast"), ValueError, "cooling must be one of"),
    (dict(backend="gpu"), ValueError, "backend must be one of"),
    (dict(update_order="random"), ValueError, "update_order must be one of"),
])
def test_constructor_arguments_name_themselves(kwargs, error, message):
    with pytest.raises(error, match=message):
        sb.QIMADTorch([torch.nn.Parameter(torch.ones(3))], **kwargs)


@pytest.mark.parametrize("key,value", [("lr", NAN), ("gamma", -1.0), ("k", INF),
                                       ("alpha_lr", NAN)])
def test_a_group_with_a_bad_number_is_refused_and_not_kept(key, value):
    """alpha_lr=nan used to read "groups must share the swarm settings" (nan != nan)."""
    optimizer = sb.QIMADTorch([torch.nn.Parameter(torch.ones(3))], num_agents=3)
    with pytest.raises(ValueError, match=f"{key} must be a finite number >= 0"):
        optimizer.add_param_group({"params": [torch.nn.Parameter(torch.ones(2))], key: value})
    assert len(optimizer.param_groups) == 1


def test_k_eval_above_the_agents_is_all_of_them():
    optimizer = sb.QIMADTorch([torch.nn.Parameter(torch.ones(3))], num_agents=3, k_eval=7)
    assert optimizer.param_groups[0]["k_eval"] == 3


@pytest.mark.parametrize("backend", ["torch", pytest.param("native", marks=NATIVE_ONLY)])
@pytest.mark.parametrize("loss", ["0.5", None, [1.0]])
def test_a_closure_without_a_loss_is_named(backend, loss):
    weights = torch.nn.Parameter(torch.ones(3))
    optimizer = sb.QIMADTorch([weights], num_agents=3, seed=0, backend=backend)

    def closure():
        optimizer.zero_grad()
        (weights ** 2).sum().backward()
        return loss

    with pytest.raises(TypeError, match="the closure must return the loss, a one-element "
                                        "tensor or a number"):
        optimizer.step(closure)
