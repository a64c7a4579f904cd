"""The sb-native command line: solve / info / bench, exit codes, one-line errors, --output."""

import itertools
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch

import sb_native
from sb_native import io as sio
from sb_native.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[2]
EDGES = [(1, 2, 3), (1, 3, -1), (2, 4, 2), (3, 4, 1), (4, 5, -2), (5, 6, 4), (6, 7, 1),
         (7, 8, 2), (1, 8, -3), (2, 7, 1), (3, 6, 2)]
FAST = ["--agents", "32", "--max-steps", "1500", "--seed", "0", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


def run(capsys, *argv):
    status = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def gset_file(tmp_path):
    path = tmp_path / "small.txt"
    path.write_text(f"8 {len(EDGES)}\n" + "".join(f"{i} {j} {w}\n" for i, j, w in EDGES))
    return path


@pytest.fixture
def qubo_matrix():
    return torch.triu(torch.from_numpy(
        np.random.default_rng(7).integers(-5, 6, (7, 7)).astype(np.float64)))


def best_cut():
    spins = np.array(list(itertools.product([-1, 1], repeat=8)))
    return max(sum(w for i, j, w in EDGES if s[i - 1] != s[j - 1]) for s in spins)


def qubo_energy(Q, bits):
    x = torch.tensor(bits, dtype=torch.float64)
    return float(x @ Q @ x)


def test_solve_gset_json_finds_the_optimum(capsys, gset_file):
    status, out, err = run(capsys, "solve", gset_file, "--json", *FAST)
    assert status == 0, err
    result = json.loads(out)
    total = sum(w for _, _, w in EDGES)
    assert result["format"] == "gset" and result["nodes"] == 8 and result["edges"] == len(EDGES)
    assert result["cut"] == best_cut()
    assert result["ising_energy"] == total - 2 * result["cut"]
    assert result["backend"] == ("native" if sb_native.backend_info()["native"] else "torch")
    assert result["settings"]["agents"] == 32 and result["settings"]["seed"] == 0


def test_solve_gset_output_file_holds_the_cut(capsys, gset_file, tmp_path):
    output = tmp_path / "cut.txt"
    status, out, _ = run(capsys, "solve", gset_file, "--output", output, "--mode", "discrete",
                         "--heated", *FAST)
    assert status == 0
    cut_line = next(line for line in out.splitlines() if line.startswith("cut "))
    reported = float(cut_line.split()[1])
    lines = output.read_text().splitlines()
    assert lines[0].startswith("# sb-native solution of") and len(lines) == 9
    side = {int(k): int(v) for k, v in (line.split() for line in lines[1:])}
    assert sorted(side) == list(range(1, 9)) and set(side.values()) <= {-1, 1}
    assert sum(w for i, j, w in EDGES if side[i] != side[j]) == reported
    assert f"solution written to {output}" in out


def test_output_is_written_atomically(capsys, gset_file, tmp_path, monkeypatch):
    """--output goes to a temporary file renamed over the target: an interrupted write leaves
    the previous file whole and no temporary behind; a finished one leaves only the file."""
    folder = tmp_path / "out"
    folder.mkdir()
    output = folder / "cut.txt"
    output.write_text("the previous solution\n")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(capsys, "solve", gset_file, "--output", output, *FAST)
    assert output.read_text() == "the previous solution\n"
    assert sorted(p.name for p in folder.iterdir()) == ["cut.txt"]
    monkeypatch.undo()
    assert run(capsys, "solve", gset_file, "--output", output, *FAST)[0] == 0
    assert output.read_text().startswith("# sb-native solution of")
    assert sorted(p.name for p in folder.iterdir()) == ["cut.txt"]


def test_solve_qubo_finds_the_minimum_and_writes_bits(capsys, tmp_path, qubo_matrix):
    path = tmp_path / "p.qubo"
    sio.write_qubo(path, qubo_matrix)
    output = tmp_path / "x.txt"
    status, out, _ = run(capsys, "solve", path, "--json", "--dtype", "float64", "-o", output,
                         *FAST)
    assert status == 0
    result = json.loads(out)
    minimum = min(qubo_energy(qubo_matrix, bits) for bits in itertools.product([0, 1], repeat=7))
    assert result["format"] == "qubo" and result["energy"] == minimum
    bits = [int(line.split()[1]) for line in output.read_text().splitlines()[1:]]
    assert [int(line.split()[0]) for line in output.read_text().splitlines()[1:]] == list(range(7))
    assert qubo_energy(qubo_matrix, bits) == result["energy"]


def test_solve_detects_format_from_content_and_obeys_format(capsys, tmp_path, gset_file):
    disguised = tmp_path / "problem.dat"
    disguised.write_text("c a qubo\np qubo 0 2 2 1\n0 0 1\n1 1 1\n0 1 -3\n")
    status, out, _ = run(capsys, "solve", disguised, "--json", *FAST)
    assert status == 0 and json.loads(out)["energy"] == -1.0  # x = (1, 1)
    status, _, err = run(capsys, "solve", gset_file, "--format", "qubo", *FAST)
    assert status == 1 and "small.txt:1: entry before the program line" in err


def test_solve_timeout_and_no_early_stopping(capsys, gset_file):
    status, out, err = run(capsys, "solve", gset_file, "--json", "--max-steps", "none",
                           "--timeout", "0.2", "--no-early-stopping", "--agents", "4", "--quiet")
    assert status == 0, err
    settings = json.loads(out)["settings"]
    assert settings["max_steps"] is None and settings["timeout"] == 0.2
    assert settings["early_stopping"] is False


@pytest.mark.parametrize("argv, status, message", [
    (["solve", "{missing}"], 1, "{missing}: No such file or directory"),
    (["solve", "{bad}"], 1, "{bad}:3: node id 9 out of range 1..3"),
    (["solve", "{good}", "--agents", "0"], 2,
     "argument --agents: expected a positive integer, got '0'"),
    (["solve", "{good}", "--max-steps", "many"], 2, "argument --max-steps"),
    (["solve", "{good}", "--timeout", "-1"], 2, "argument --timeout: expected a positive number"),
    (["solve", "{good}", "--mode", "quantum"], 2, "argument --mode: invalid choice: 'quantum'"),
    (["solve", "{good}", "--max-steps", "none", "--no-early-stopping"], 1,
     "No stopping criterion provided."),
    (["solve"], 2, "the following arguments are required: file"),
    (["bench", "--density", "2"], 1, "--density must be in (0, 1], got 2.0"),
    (["bench", "--max-steps", "none"], 1, "bench needs a step count"),
    (["fly"], 2, "invalid choice: 'fly'"),
])
def test_bad_input_gives_one_line_and_an_exit_status(capsys, tmp_path, argv, status, message):
    paths = {"missing": tmp_path / "absent.txt", "bad": tmp_path / "bad.txt",
             "good": tmp_path / "good.txt"}
    paths["bad"].write_text("3 2\n1 2 1\n1 9 1\n")
    paths["good"].write_text("2 1\n1 2 1\n")
    argv = [arg.format(**paths) for arg in argv]
    code, out, err = run(capsys, *argv)
    assert code == status
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("sb-native: error: ")
    assert message.format(**paths) in err


@pytest.mark.skipif(sb_native.backend_info()["native"], reason="native extension is loaded")
def test_native_backend_unavailable_is_an_error(capsys, gset_file):
    status, _, err = run(capsys, "solve", gset_file, "--backend", "native", *FAST)
    assert status == 1 and "native extension is unavailable" in err


def test_info(capsys):
    status, out, _ = run(capsys, "info", "--json")
    assert status == 0
    info = json.loads(out)
    assert info["sb_native"] == sb_native.__version__ and info["torch"] == torch.__version__
    assert info["native"] == sb_native.backend_info()["native"]
    assert info["cuda_available"] == torch.cuda.is_available()
    assert info["threads"] == torch.get_num_threads()
    assert set(info["optional"]) == {"dimod", "networkx", "dwave-samplers", "scipy"}
    status, out, _ = run(capsys, "info")
    assert status == 0 and "native extension:" in out and "CPU threads:" in out


def test_bench_generated_and_file(capsys, gset_file):
    status, out, _ = run(capsys, "bench", "--nodes", "40", "--density", "0.2", "--max-steps",
                         "20", "--agents", "8", "--repeat", "1", "--seed", "1", "--json")
    assert status == 0
    result = json.loads(out)
    backends = [row["backend"] for row in result["results"]]
    assert backends == (["native", "torch"] if sb_native.backend_info()["native"] else ["torch"])
    assert all(row["best_s"] > 0 and row["steps_per_s"] > 0 for row in result["results"])
    assert ("speedup" in result["results"][0]) == (len(backends) == 2)
    status, out, _ = run(capsys, "bench", gset_file, "--backend", "torch", "--max-steps", "20",
                         "--agents", "8", "--repeat", "1")
    assert status == 0 and "torch" in out and "small.txt" in out


def test_help_exits_zero(capsys):
    status, out, _ = run(capsys, "solve", "--help")
    assert status == 0 and "--max-steps" in out and "--backend" in out


def test_python_dash_m_subprocess(tmp_path, gset_file):
    command = [sys.executable, "-m", "sb_native", "solve", str(gset_file), "--json", *FAST]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # as the one_thread fixture, for the child
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["cut"] == best_cut()
    bad = tmp_path / "bad.txt"
    bad.write_text("2 1\n1 2 x\n")
    done = subprocess.run([sys.executable, "-m", "sb_native", "solve", str(bad)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == f"sb-native: error: {bad}:2: weight must be a number, got 'x'\n"


@pytest.mark.parametrize("split", ["agents", "rows"])
def test_torchrun_distributed_prints_one_result(tmp_path, gset_file, split):
    """Two ranks share the agents or the variables (each reads its rows of the file); rank 0
    alone prints, the cut of one process's run."""
    pytest.importorskip("torch.distributed.run")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["solve", str(gset_file), "--json", "--mode", "discrete", *FAST]
    one = subprocess.run([sys.executable, "-m", "sb_native", *args], capture_output=True,
                         text=True, cwd=ROOT, timeout=120, env=env)
    assert one.returncode == 0, one.stderr
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone",
              "--nproc-per-node=2", "-m", "sb_native", *args, "--distributed", split]
    two = subprocess.run(launch, capture_output=True, text=True, cwd=ROOT, timeout=180, env=env)
    assert two.returncode == 0, two.stderr
    lines = two.stdout.strip().splitlines()
    assert len(lines) == 1
    single, shared = json.loads(one.stdout), json.loads(lines[0])
    assert shared["ranks"] == 2 and single["ranks"] == 1 and shared["distributed"] == split
    assert shared["cut"] == single["cut"] == best_cut()
    assert shared["ising_energy"] == single["ising_energy"] and shared["edges"] == single["edges"]
    # The history too (integer weights, dSB: exact), wall time aside.
    for key in ("step", "best", "mean", "frozen"):
        assert shared["history"][key] == single["history"][key], key


def test_distributed_outside_torchrun_is_an_error(capsys, gset_file, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    status, out, err = run(capsys, "solve", gset_file, "--distributed", "agents", *FAST)
    assert status == 1 and out == ""
    assert "--distributed needs a torchrun launch" in err


def test_solve_folder_batches_and_equals_each_file_alone(capsys, tmp_path, qubo_matrix):
    folder = tmp_path / "problems"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for k in range(3):  # G-set files of different sizes, and qbsolv files between them
        n = 6 + 2 * k
        edges = [(i, j, int(rng.integers(1, 4))) for i in range(1, n + 1)
                 for j in range(i + 1, n + 1) if rng.random() < 0.5]
        (folder / f"g{k}.txt").write_text(
            f"{n} {len(edges)}\n" + "".join(f"{i} {j} {w}\n" for i, j, w in edges))
        sio.write_qubo(folder / f"q{k}.qubo", qubo_matrix + k)
    options = ["--agents", "8", "--max-steps", "300", "--seed", "4", "--quiet"]
    status, out, _ = run(capsys, "solve", folder, "--json", "-o", tmp_path / "sol", *options)
    assert status == 0
    lines = [json.loads(line) for line in out.splitlines()]
    files = sorted(str(p) for p in folder.iterdir())
    assert [line["file"] for line in lines] == files
    for b, line in enumerate(lines):
        assert line["batch_index"] == b and line["batch_size"] == 3
        assert line["settings"]["seed"] == 4 + b
        alone = ["--agents", "8", "--max-steps", "300", "--seed", str(4 + b), "--quiet"]
        status, single, _ = run(capsys, "solve", line["file"], "--json",
                                "-o", tmp_path / "alone.txt", *alone)
        expected = json.loads(single)
        label = "cut" if line["format"] == "gset" else "energy"
        assert line[label] == expected[label]
        # Each problem's history: its own run's points (wall time aside) and then, while
        # other problems run, its frozen values.
        own = expected["history"]
        for column in ("step", "best", "mean", "frozen"):
            assert line["history"][column][:len(own[column])] == own[column], column
        assert (tmp_path / "alone.txt").read_text().splitlines()[1:] == \
            pathlib.Path(line["output"]).read_text().splitlines()[1:]


def test_json_history_without_early_stopping_on_request(capsys, gset_file):
    options = ["--json", "--no-early-stopping", "--agents", "8", "--max-steps", "200",
               "--seed", "0", "--quiet"]
    status, out, _ = run(capsys, "solve", gset_file, *options)
    assert status == 0 and "history" not in json.loads(out)
    status, out, _ = run(capsys, "solve", gset_file, "--history", *options)
    result = json.loads(out)
    assert status == 0 and result["history"]["step"] == [50, 100, 150, 200]
    assert result["history"]["best"][-1] == result["cut"]


def test_solve_several_files_plots_every_history(capsys, tmp_path, gset_file):
    pytest.importorskip("matplotlib")
    image = tmp_path / "runs.png"
    status, out, _ = run(capsys, "solve", gset_file, gset_file, "--plot", image, *FAST)
    assert status == 0 and f"histories drawn to {image}" in out
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_solve_several_files_text_and_errors(capsys, tmp_path, gset_file):
    status, out, _ = run(capsys, "solve", gset_file, gset_file, *FAST)
    assert status == 0 and out.count("cut") == 2 and "2 problems" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    status, _, err = run(capsys, "solve", empty)
    assert status == 1 and "no problem files in" in err
    status, _, err = run(capsys, "solve", gset_file, gset_file, "--distributed", "agents")
    assert status == 1 and "--distributed solves one problem file" in err


def test_solve_time_limit_json(capsys, gset_file):
    status, out, err = run(capsys, "solve", gset_file, "--json", "--time-limit", "0.3",
                           "--seed", "4", "--agents", "16")
    assert status == 0, err
    result = json.loads(out)
    assert result["cut"] == best_cut() and result["time_limit"] == 0.3
    assert result["runs"] >= 1 and 0 < result["found_s"] <= result["solve_s"]
    settings = result["settings"]
    assert settings["agents"] == 16 and settings["seed"] == 4  # given, the rest by class
    assert settings["mode"] == "discrete" and settings["polish"] is True


def test_solve_time_limit_text_and_output(capsys, gset_file, tmp_path):
    solution = tmp_path / "cut.txt"
    status, out, err = run(capsys, "solve", gset_file, "--time-limit", "0.2", "-o", solution)
    assert status == 0, err
    assert f"cut {best_cut()} found at" in out and "runs of up to" in out
    lines = solution.read_text().splitlines()
    assert lines[0].endswith(f"cut {best_cut()}") and len(lines) == 9


@pytest.mark.parametrize("extra,message", [
    (["--timeout", "1"], "--timeout does not go with --time-limit"),
    (["--max-steps", "none"], "--max-steps cannot be 'none' with --time-limit"),
    (["--time-limit", "0"], "expected a positive number of seconds"),
])
def test_solve_time_limit_errors(capsys, gset_file, extra, message):
    status, _, err = run(capsys, "solve", gset_file, "--time-limit", "0.2", *extra)
    assert status in (1, 2) and message in err


def test_solve_time_limit_takes_one_file(capsys, gset_file, tmp_path):
    status, _, err = run(capsys, "solve", gset_file, gset_file, "--time-limit", "0.2")
    assert status == 1 and "--time-limit solves one problem file; got 2 problems" in err


def test_solve_polish(capsys, gset_file):
    status, out, err = run(capsys, "solve", gset_file, "--json", "--polish", *FAST)
    assert status == 0, err
    assert json.loads(out)["settings"]["polish"] is True
