"""What QIMADTorch's method groups in _records.py, _ranks.py and _vectorised.py read of the
optimizer: the self type of those methods (mypy's protocol for mixins), which QIMADTorch
satisfies."""

from typing import Any, Callable, Dict, List, Optional, Protocol, Set, Tuple

import torch

from ._state import SwarmRuntime, SwarmState
from ._swarm import _Bucket


class SwarmOwner(Protocol):
    param_groups: List[Dict[str, Any]]
    defaults: Dict[str, Any]
    state: Any  # torch.optim.Optimizer's per-parameter state
    _swarm: Optional[SwarmState]
    _runtime: Optional[SwarmRuntime]
    _buckets: List[_Bucket]
    _group: Any  # the torch.distributed group, or None
    _sequential: bool
    _gather_pending: bool  # a sharded checkpoint's other ranks' positions are still to come
    _track: bool
    _log: Dict[str, list]
    _last_agent_losses: list

    def _trainable(self) -> List[torch.Tensor]: ...

    def _build_buckets(self) -> None: ...

    def _build_runtime(self) -> SwarmRuntime: ...

    def _begin_step(self) -> List[int]: ...

    def _rows(self, rows: List[int], device) -> torch.Tensor: ...

    def _step_rows(self, evaluate: Callable, name: str) -> float: ...

    def _take_rows(self, evaluate: Callable, name: str, rows: List[int],
                   losses: List[float]) -> None: ...

    def _step_shared(self, evaluate: Callable, rows: List[int]) -> float: ...

    def _evaluate(self, closure: Callable, rows: List[int], losses: List[float]) -> None: ...

    def _update(self, rows: List[int], losses: List[float],
                unfit: Optional[Set[int]] = None) -> float: ...

    def _shard_of(self) -> Optional[Tuple[int, int]]: ...

    def _gather_positions(self) -> None: ...

    def _share_blocks(self, buffers: List[torch.Tensor]) -> None: ...
