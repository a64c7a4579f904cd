"""sb_native.plot and the CLI's --plot/--json history/--version: valid PNG files with the
expected axes, drawn with matplotlib's Agg canvas (no screen)."""

import json

import pytest
import torch

import sb_native as sb
from sb_native.cli import main
from tests.interfaces.test_cli import FAST, run

matplotlib = pytest.importorskip("matplotlib")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def gset_file(tmp_path):
    """A 4-cycle with one chord: maximum cut 4."""
    path = tmp_path / "square.txt"
    path.write_text("4 5\n1 2 1\n2 3 1\n3 4 1\n4 1 1\n1 3 1\n")
    return path


def png_size(path):
    """(width, height) of a PNG file, after checking its signature and header chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def seeded_history(backend="torch"):
    history = sb.History()
    sb.minimize(torch.tensor([[0.0, 1.0, -2.0], [1.0, 0.0, 1.0], [-2.0, 1.0, 0.0]]),
                domain="spin", agents=4, max_steps=60, seed=0, verbose=False,
                early_stopping=False, sampling_period=10, backend=backend, callback=history)
    return history


def test_history_figure_has_the_runs_and_axes(tmp_path):
    history = seeded_history()
    path = tmp_path / "history.png"
    figure = sb.plot.history(history, x="steps", title="three spins", path=str(path))
    values, frozen = figure.axes
    assert (values.get_ylabel(), frozen.get_ylabel(), frozen.get_xlabel()) == \
        ("objective", "frozen agents", "steps")
    best = values.get_lines()[0]
    assert list(best.get_xdata()) == history.steps and list(best.get_ydata()) == history.best
    assert figure._suptitle.get_text() == "three spins"
    assert png_size(path) == (840, int(figure.get_figheight() * 120))


def test_histories_share_axes_and_labels(tmp_path):
    runs = {"a": seeded_history(), "b": seeded_history()}
    figure = sb.plot.histories(runs, path=str(tmp_path / "both.svg"))
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert labels == ["a best", "a mean", "b best", "b mean"]
    assert figure.axes[1].get_xlabel() == "seconds"
    assert (tmp_path / "both.svg").read_text().lstrip().startswith("<?xml")


def test_plot_errors():
    with pytest.raises(ValueError, match="x must be 'seconds' or 'steps'"):
        sb.plot.history(seeded_history(), x="time")
    with pytest.raises(ValueError, match="runs is empty"):
        sb.plot.histories({})
    with pytest.raises(TypeError, match=r"runs\['a'\] must be a sb_native.History"):
        sb.plot.histories({"a": [1, 2]})
    with pytest.raises(ValueError, match="log is empty"):
        sb.plot.qimad({"losses": [], "tunnels": [], "temperature": []})
    with pytest.raises(ValueError, match="log lacks tunnels, temperature"):
        sb.plot.qimad({"losses": [[1.0]]})
    with pytest.raises(TypeError, match="log must be a QIMADTorch"):
        sb.plot.qimad(3)


def test_qimad_figure_from_a_tracked_optimizer(tmp_path):
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(4))
    optimizer = sb.QIMADTorch([weight], num_agents=5, seed=0)
    optimizer.enable_tracking()

    def closure():
        return (weight ** 2).sum()

    for _ in range(12):
        optimizer.step(closure)
    log = optimizer.get_log()
    figure = sb.plot.qimad(optimizer, path=str(tmp_path / "qimad.png"))
    losses, tunnels, temperature = figure.axes
    assert [a.get_ylabel() for a in figure.axes] == ["loss", "tunnelling agents", "temperature"]
    assert len(losses.get_lines()) == 5 + 1  # every agent, then the best so far
    best = list(losses.get_lines()[-1].get_ydata())
    assert best[-1] == min(min(step) for step in log["losses"])
    assert [p.get_height() for p in tunnels.patches] == log["tunnels"]
    assert list(temperature.get_lines()[0].get_ydata()) == log["temperature"]
    png_size(tmp_path / "qimad.png")


def test_cli_solve_plot_and_json_history(capsys, gset_file, tmp_path):
    """Without early stopping the last point samples the returned spins: its best is the
    cut printed."""
    path = tmp_path / "run.png"
    status, out, err = run(capsys, "solve", gset_file, "--json", "--plot", path,
                           "--no-early-stopping", *FAST)
    assert status == 0, err
    result = json.loads(out)
    history = result["history"]
    assert set(history) == {"step", "seconds", "best", "mean", "frozen"}
    assert history["step"] == [50 * (k + 1) for k in range(len(history["step"]))]
    assert history["best"][-1] == result["cut"] == 4 and result["plot"] == str(path)
    png_size(path)


def test_cli_bench_plot(capsys, tmp_path):
    path = tmp_path / "bench.png"
    status, out, _ = run(capsys, "bench", "--nodes", "40", "--density", "0.2", "--max-steps",
                         "100", "--agents", "8", "--repeat", "1", "--seed", "1", "--plot", path)
    assert status == 0 and "steps/s" in out
    png_size(path)


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"sb-native {sb.__version__}\n"
