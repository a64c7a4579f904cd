"""The package without its extension: SB_NATIVE_DISABLE=1 forces the pure-torch path, as if
`_C` failed to load. Runs in a subprocess so the extension is never imported there."""

import json
import os
import subprocess
import sys

import torch

import sb_native as sb

SCRIPT = r"""
import json, torch, sb_native as sb
info = sb.backend_info()
Q = torch.tensor([[0.0, 1.0, -2.0], [1.0, 0.0, 0.5], [-2.0, 0.5, 0.0]])
vectors, values = sb.minimize(Q, domain="spin", seed=3, agents=6, max_steps=200,
                              best_only=False, verbose=False)
try:
    sb.minimize(Q, domain="spin", backend="native", verbose=False)
    native_error = None
except RuntimeError as err:
    native_error = str(err)
print(json.dumps({"info": info, "vectors": vectors.tolist(), "values": values.tolist(),
                  "native_error": native_error, "has_C": hasattr(sb, "_C")}))
"""


def test_forced_fallback_matches_torch_backend():
    env = dict(os.environ, SB_NATIVE_DISABLE="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, check=True, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["info"]["native"] is False and result["info"]["cuda"] is False
    assert "SB_NATIVE_DISABLE" in result["info"]["reason"]
    assert result["has_C"] is False
    assert "backend='native' was requested" in result["native_error"]
    assert "SB_NATIVE_DISABLE" in result["native_error"]
    Q = torch.tensor([[0.0, 1.0, -2.0], [1.0, 0.0, 0.5], [-2.0, 0.5, 0.0]])
    vectors, values = sb.minimize(Q, domain="spin", seed=3, agents=6, max_steps=200,
                                  best_only=False, verbose=False, backend="torch")
    assert vectors.tolist() == result["vectors"] and values.tolist() == result["values"]
