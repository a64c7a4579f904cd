"""What QIMADTorch reports and saves: the per-step records and log (the reference's
diagnostics API) and its checkpoints (state_dict, load_state_dict)."""

from typing import Dict, List, Optional

import torch

from ._groups import take_eta
from ._owner import SwarmOwner
from ._state import SwarmRuntime, SwarmState


class Records:
    """QIMADTorch's diagnostics and checkpoints (its base class: they read its swarm)."""

    _swarm: Optional[SwarmState]  # QIMADTorch's, reset by load_state_dict
    _runtime: Optional[SwarmRuntime]

    def _finish_step(self: SwarmOwner, losses: List[float], fates: torch.Tensor,
                     temp: float) -> None:
        """Keeps this step's losses and logs the step when tracking."""
        self._last_agent_losses = losses  # the caller's fresh list
        if self._track:
            assert self._swarm is not None  # a step has run
            self._log["losses"].append(list(losses))
            self._log["tunnels"].append(fates.tolist().count(2))
            self._log["alphas"].append(self._swarm.alpha.tolist())
            self._log["betas"].append(self._swarm.beta.tolist())
            self._log["temperature"].append(temp)
            b = self._buckets[0]
            self._log["diversity"].append(float(b.theta[:, :b.bounds[1]].var(dim=0).mean()))

    # ── Diagnostics (the reference's API) ────────────────────────────────────

    def get_agent_losses(self: SwarmOwner) -> list:
        """Losses of all agents at the last step (cached values for agents not evaluated).

        >>> import torch, sb_native as sb
        >>> weights = torch.nn.Parameter(torch.tensor([2.0, -1.0]))
        >>> optimizer = sb.QIMADTorch([weights], num_agents=4, seed=0)
        >>> _ = optimizer.step_batched(lambda w: (w ** 2).sum())
        >>> optimizer.get_agent_losses()  # every agent starts at the model's weights
        [5.0, 5.0, 5.0, 5.0]
        """
        return list(self._last_agent_losses)

    def enable_tracking(self: SwarmOwner) -> None:
        """Log every following step (get_log; sb_native.plot.qimad draws it).

        >>> import torch, sb_native as sb
        >>> weights = torch.nn.Parameter(torch.tensor([2.0, -1.0]))
        >>> optimizer = sb.QIMADTorch([weights], num_agents=4, seed=0)
        >>> optimizer.enable_tracking()
        >>> for _ in range(3):
        ...     _ = optimizer.step_batched(lambda w: (w ** 2).sum())
        >>> log = optimizer.get_log()
        >>> sorted(log), len(log["losses"]), len(log["losses"][0])
        (['alphas', 'betas', 'diversity', 'losses', 'temperature', 'tunnels'], 3, 4)
        """
        self._track = True

    def reset_log(self: SwarmOwner) -> None:
        """Empty the log (tracking stays as it is).

        >>> import torch, sb_native as sb
        >>> weights = torch.nn.Parameter(torch.tensor([2.0, -1.0]))
        >>> optimizer = sb.QIMADTorch([weights], num_agents=4, seed=0)
        >>> optimizer.enable_tracking()
        >>> _ = optimizer.step_batched(lambda w: (w ** 2).sum())
        >>> optimizer.reset_log()
        >>> optimizer.get_log()["losses"]
        []
        """
        self._log: Dict[str, list] = {"losses": [], "diversity": [], "tunnels": [], "alphas": [],
                                      "betas": [], "temperature": []}

    def get_log(self: SwarmOwner) -> dict:
        """A copy of the log, one entry per tracked step: losses (every agent's), diversity
        (the swarm's mean variance over the first bucket's first parameter), tunnels
        (tunnelling agents), alphas and betas (the agents' Bloch angles) and temperature.
        See enable_tracking for an example."""
        return {k: list(v) for k, v in self._log.items()}

    # ── Checkpoints ──────────────────────────────────────────────────────────

    def state_dict(self: SwarmOwner) -> dict:
        """The torch.optim state dict (per parameter: its swarm, RMS state and best weights)
        plus "qimad": step, losses, stagnation, angles, topology and the generator state.

        >>> import torch, sb_native as sb
        >>> weights = torch.nn.Parameter(torch.tensor([2.0, -1.0]))
        >>> optimizer = sb.QIMADTorch([weights], num_agents=4, seed=0)
        >>> _ = optimizer.step_batched(lambda w: (w ** 2).sum())
        >>> sorted(optimizer.state_dict())
        ['param_groups', 'qimad', 'state']
        """
        out = torch.optim.Optimizer.state_dict(self)  # type: ignore[arg-type]
        if self._swarm is not None:
            out["qimad"] = self._swarm.to_dict(self._last_agent_losses)
            shard = self._shard_of()
            if shard is not None:  # a rank of a sharded swarm saves its agents' rows only
                out["qimad"]["shard"] = [*shard, self.param_groups[0]["num_agents"]]
        return out

    def load_state_dict(self: SwarmOwner, state_dict: dict) -> None:
        """Restore a state_dict() (the swarm too, when it was saved after a step), so the run
        continues as the saved one would have; the optimizer must hold the same parameters.

        >>> import torch, sb_native as sb
        >>> weights = torch.nn.Parameter(torch.tensor([2.0, -1.0]))
        >>> optimizer = sb.QIMADTorch([weights], num_agents=4, seed=0)
        >>> _ = optimizer.step_batched(lambda w: (w ** 2).sum())
        >>> copy = torch.nn.Parameter(weights.detach().clone())
        >>> resumed = sb.QIMADTorch([copy], num_agents=4, seed=0)
        >>> resumed.load_state_dict(optimizer.state_dict())
        >>> loss = lambda w: (w ** 2).sum()
        >>> resumed.step_batched(loss) == optimizer.step_batched(loss)
        True

        A rank of a swarm sharded over a process group (update_order='synchronous') saves its
        agents' rows: load it on the same rank of a group of the same size. A whole swarm's
        state_dict loads on every rank, each taking its rows.
        """
        state_dict = dict(state_dict)
        saved = state_dict.pop("qimad", None)
        shard, n = self._shard_of(), self.param_groups[0]["num_agents"]
        if saved is not None and saved.get("shard") is not None and (
                shard is None or list(saved["shard"]) != [*shard, n]):
            lo, hi, total = saved["shard"]
            where = (f"agents [0, {n}) of {n} in one process" if shard is None else
                     f"agents [{shard[0]}, {shard[1]}) of {n}")
            raise ValueError(
                f"this state_dict holds agents [{lo}, {hi}) of a swarm of {total} sharded over "
                f"a process group, and this optimizer holds {where}: load each rank's "
                "state_dict on the same rank of a group of the same size")
        torch.optim.Optimizer.load_state_dict(self, state_dict)  # type: ignore[arg-type]
        for g in self.param_groups:  # groups saved before a key existed take its default
            take_eta(g)
            for key, value in self.defaults.items():
                g.setdefault(key, value)
        if saved is None:
            self._swarm = None
            self._runtime = None
            self.state.clear()
            return
        loaded = {p: dict(self.state[p]) for p in self._trainable()}
        self._build_buckets()  # fresh flat buffers; self.state now views them
        # A whole swarm's checkpoint on a rank of a sharded one: the positions whole, the RMSProp
        # averages of the rank's agents.
        whole = shard is not None and saved is not None and saved.get("shard") is None
        lo, hi = shard if shard is not None and whole else (0, n)
        for b in self._buckets:
            for p, positions in zip(b.params, b.views(b.theta)):
                st = loaded[p]
                (positions if whole else self.state[p]["swarm"]).copy_(st["swarm"])
                self.state[p]["square_avg"].copy_(st["square_avg"][lo:hi])
                self.state[p]["best"].copy_(st["best"])
        self._gather_pending = shard is not None and not whole
        self._swarm = SwarmState.from_dict(saved, self._trainable()[0].device)
        self._last_agent_losses = list(saved["last_agent_losses"])
        self._runtime = self._build_runtime()
