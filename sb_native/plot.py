"""Pictures of a run: SB's history and QIMADTorch's log (matplotlib: `pip install
'sb_native[plot]'`).

Every function returns a matplotlib Figure built without pyplot (no window, no global
state, safe in scripts, servers and threads) and, given `path`, also writes it (PNG, SVG or
PDF by the suffix).

>>> import torch, sb_native as sb
>>> history = sb.History()
>>> Q = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
>>> _ = sb.minimize(Q, domain="spin", agents=4, max_steps=100, seed=0, verbose=False,
...                 callback=history, early_stopping=False, sampling_period=10)
>>> figure = sb.plot.history(history, x="steps")
>>> [axes.get_ylabel() for axes in figure.axes]
['objective', 'frozen agents']
"""

from typing import TYPE_CHECKING, Dict, Literal, Mapping, Optional, Sequence, Union

from .engine.history import History

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .optim import QIMADTorch

__all__ = ["history", "histories", "qimad"]


def _figure(rows: int) -> "Figure":
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError("sb_native.plot needs matplotlib: pip install 'sb_native[plot]'") \
            from err
    figure = Figure(figsize=(7.0, 2.4 * rows + 0.6), layout="constrained")
    figure.subplots(rows, 1, sharex=True)
    return figure


def _save(figure: "Figure", path: Optional[str]) -> "Figure":
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure


def _check_x(x: str) -> None:
    if x not in ("seconds", "steps"):
        raise ValueError(f"x must be 'seconds' or 'steps', got {x!r}")


def histories(runs: Mapping[str, History], *, x: Literal["seconds", "steps"] = "seconds",
              title: Optional[str] = None, path: Optional[str] = None) -> "Figure":
    """Several runs on the same axes (one label each): the best and mean objective value
    at each sampling point, and the frozen agents, against wall time or steps.

    runs: label -> sb_native.History; x: "seconds" or "steps"; title: the figure's title;
    path: also write the figure there (PNG, SVG or PDF by the suffix).

    >>> import torch, sb_native as sb
    >>> Q = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    >>> runs = {mode: sb.History() for mode in ("ballistic", "discrete")}
    >>> for mode, run in runs.items():
    ...     _ = sb.minimize(Q, domain="spin", agents=4, max_steps=100, mode=mode, seed=0,
    ...                     verbose=False, early_stopping=False, sampling_period=10,
    ...                     callback=run)
    >>> figure = sb.plot.histories(runs, x="steps", title="bSB and dSB")
    >>> [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    ['ballistic best', 'ballistic mean', 'discrete best', 'discrete mean']
    >>> figure.axes[1].get_xlabel()
    'steps'
    """
    _check_x(x)
    if not runs:
        raise ValueError("runs is empty: give at least one labelled History")
    figure = _figure(2)
    values, frozen = figure.axes
    for label, run in runs.items():
        if not isinstance(run, History):
            raise TypeError(f"runs[{label!r}] must be a sb_native.History, "
                            f"got {type(run).__name__}")
        xs = run.seconds if x == "seconds" else run.steps
        line, = values.plot(xs, run.best, label=f"{label} best", drawstyle="steps-post")
        values.plot(xs, run.mean, color=line.get_color(), alpha=0.4, linestyle="--",
                    label=f"{label} mean")
        frozen.plot(xs, run.frozen, color=line.get_color(), drawstyle="steps-post",
                    label=label)
    values.set_ylabel("objective")
    values.legend(loc="best", fontsize="small")
    frozen.set_ylabel("frozen agents")
    frozen.set_xlabel("seconds" if x == "seconds" else "steps")
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def history(run: History, *, x: Literal["seconds", "steps"] = "seconds",
            title: Optional[str] = None, path: Optional[str] = None) -> "Figure":
    """One run's history (sb_native.History passed as callback=): best and mean objective
    value, and frozen agents, against wall time or steps. x, title, path: as histories'.

    >>> import os, tempfile, torch, sb_native as sb
    >>> run = sb.History()
    >>> _ = sb.minimize(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), domain="spin", agents=4,
    ...                 max_steps=100, seed=0, verbose=False, early_stopping=False,
    ...                 sampling_period=10, callback=run)
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "history.svg")
    >>> figure = sb.plot.history(run, path=path)
    >>> figure.axes[1].get_xlabel(), os.path.getsize(path) > 0
    ('seconds', True)
    >>> folder.cleanup()
    """
    return histories({"SB": run}, x=x, title=title, path=path)


def qimad(log: Union["QIMADTorch", Dict[str, Sequence]], *, title: Optional[str] = None,
          path: Optional[str] = None) -> "Figure":
    """QIMADTorch's log (an optimizer with enable_tracking(), or its get_log()): every
    agent's loss and the best, the tunnelling jumps per step, and the temperature.
    title, path: as histories'.

    >>> import torch, sb_native as sb
    >>> weights = torch.nn.Parameter(torch.tensor([2.0, -1.0]))
    >>> optimizer = sb.QIMADTorch([weights], num_agents=4, seed=0)
    >>> optimizer.enable_tracking()
    >>> def closure():
    ...     optimizer.zero_grad()
    ...     loss = (weights ** 2).sum()
    ...     loss.backward()
    ...     return loss
    >>> for _ in range(5):
    ...     _ = optimizer.step(closure)
    >>> figure = sb.plot.qimad(optimizer)
    >>> [axes.get_ylabel() for axes in figure.axes]
    ['loss', 'tunnelling agents', 'temperature']
    """
    if not isinstance(log, Mapping):
        if not hasattr(log, "get_log"):
            raise TypeError(f"log must be a QIMADTorch or its get_log(), got "
                            f"{type(log).__name__}")
        log = log.get_log()
    missing = [key for key in ("losses", "tunnels", "temperature") if key not in log]
    if missing:
        raise ValueError(f"log lacks {', '.join(missing)}: pass QIMADTorch.get_log()")
    losses = [list(step) for step in log["losses"]]
    if not losses:
        raise ValueError("log is empty: call enable_tracking() before the steps")
    steps = list(range(1, len(losses) + 1))
    figure = _figure(3)
    loss_axes, tunnel_axes, temperature_axes = figure.axes
    for agent in range(len(losses[0])):
        loss_axes.plot(steps, [step[agent] for step in losses], linewidth=0.6, alpha=0.35,
                       color="tab:blue")
    best: list = []  # the best loss so far, per step
    for step in losses:
        best.append(min([*step, *best[-1:]]))
    loss_axes.plot(steps, best, color="black", linewidth=1.6, label="best so far")
    loss_axes.set_ylabel("loss")
    loss_axes.legend(loc="best", fontsize="small")
    tunnel_axes.bar(steps, log["tunnels"], width=1.0, color="tab:orange")
    tunnel_axes.set_ylabel("tunnelling agents")
    temperature_axes.plot(steps, log["temperature"], color="tab:red")
    temperature_axes.set_ylabel("temperature")
    temperature_axes.set_xlabel("steps")
    if title:
        figure.suptitle(title)
    return _save(figure, path)
