"""What training needs from storage, as small protocols; the caller wires the storage in.

The loop, the launcher and the batch scorers are transforms: they never open files. They
are given objects with these methods instead, implemented in :mod:`shikong.io`:

* :class:`TrainData` -- this rank's rows of a split: :class:`shikong.io.shards.DataPaths`.
* :class:`CheckpointStore` -- save / load checkpoint payloads:
  :class:`shikong.io.checkpoints.CheckpointFiles`.
* :class:`ResultExchange` -- rank 0's result back to the launcher:
  :class:`shikong.io.train_results.ResultFiles`.

The objects travel to every training process (``torch.multiprocessing``, TorchDistributor,
Horovod) and into Spark UDF closures, so implementations must be picklable instances of
module-level classes (pickled by reference, like the rank entry functions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np


class TrainData(Protocol):
    """The training examples, read rank by rank."""

    def rank_arrays(
        self, split: str, rank: int, world_size: int, columns: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """This rank's rows of ``split`` (``train``/``val``/``test``): one array per column
        (array columns 2-D); together the ranks hold every row exactly once."""
        ...


class CheckpointStore(Protocol):
    """Where checkpoint payloads (tensors and plain Python data) are kept.

    Hashable: the batch scorers cache a loaded model per ``(location, store)``.
    """

    def __hash__(self) -> int: ...

    def save(self, location: str, payload: Mapping[str, Any]) -> None:
        """Write ``payload`` to ``location``, replacing what was there."""
        ...

    def load(self, location: str) -> dict[str, Any]:
        """The payload at ``location`` (tensors on the CPU)."""
        ...


class ResultExchange(Protocol):
    """Hands rank 0's result from a training process to the launcher."""

    def slot(self) -> AbstractContextManager[str]:
        """A fresh private location for one result, removed when the block ends."""
        ...

    def write(self, location: str, result: Any) -> None:
        """Store ``result`` at ``location`` (rank 0)."""
        ...

    def read(self, location: str) -> Any:
        """The result written at ``location`` (launcher); raises ``RuntimeError`` when
        none was written."""
        ...


def join(folder: str, name: str) -> str:
    """``folder/name`` for a path or URI (string joining only; nothing is touched)."""
    return f"{folder.rstrip('/')}/{name}"
