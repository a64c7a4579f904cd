"""The scripts in examples/ run with --small and print their result (issue 18)."""

import importlib.util
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT

EXAMPLES = ROOT / "examples"
TORCHRUN = "torchrun_maxcut.py"
CUT = re.compile(r"^cut value: (\d+(?:\.\d+)?) ", re.MULTILINE)


def number(pattern: str, out: str) -> float:
    found = re.search(pattern, out, re.MULTILINE)
    assert found, f"no line matching {pattern!r} in:\n{out}"
    return float(found.group(1))


def check_maxcut(out: str) -> None:
    assert number(CUT.pattern, out) > 0


def check_portfolio(out: str) -> None:
    # Holding nothing scores 0, so the best portfolio of this market scores more.
    assert re.search(r"^lots: \[\d+(, \d+){5}\]$", out, re.MULTILINE), out
    assert number(r"^objective: (-?\d+\.\d+)$", out) > 0


def check_dimod(out: str) -> None:
    if importlib.util.find_spec("dimod") is None:
        assert out.startswith("dimod is not installed") and out.count("\n") == 1
    else:
        assert "SB found the optimum: yes" in out, out


def check_qimad(out: str) -> None:
    before = number(r"^loss before: (\d+\.\d+)$", out)
    assert number(r"^loss after: (\d+\.\d+) ", out) < before


def check_functions(out: str) -> None:
    # Each mean best lies below what a random point of the box scores on average.
    lines = re.findall(r"^(\w+): mean best (\d+\.\d+) .* random point (\d+\.\d+);", out,
                       re.MULTILINE)
    assert [name for name, _, _ in lines] == ["Rastrigin", "Ackley", "Rosenbrock"], out
    for _, best, random_point in lines:
        assert float(best) < float(random_point)


CHECKS = {
    "maxcut_gset.py": check_maxcut,
    "portfolio.py": check_portfolio,
    "qubo_dimod.py": check_dimod,
    "qimad_network.py": check_qimad,
    "qimad_functions.py": check_functions,
}


def child_env() -> dict:
    # PYTHONPATH: `import sb_native` from the tmp dir; one thread, as torchrun's own default,
    # so the children do not fight over this 2-core machine's cores.
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def test_every_example_is_tested():
    scripts = {path.name for path in EXAMPLES.glob("*.py")}
    assert scripts == set(CHECKS) | {TORCHRUN}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_example_runs_small(tmp_path, name):
    done = subprocess.run([sys.executable, str(EXAMPLES / name), "--small"], cwd=tmp_path,
                          env=child_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    CHECKS[name](done.stdout)


def test_torchrun_example_prints_one_result_on_rank_0(tmp_path):
    pytest.importorskip("torch.distributed.run")
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone",
              "--nproc-per-node=2", str(EXAMPLES / TORCHRUN), "--small"]
    done = subprocess.run(launch, cwd=tmp_path, env=child_env(), capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("over 2 ranks)"), done.stdout
    assert float(CUT.match(lines[0]).group(1)) > 0
