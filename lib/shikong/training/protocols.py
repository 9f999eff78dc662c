"""What training needs from storage, as small protocols; the caller wires the storage in.

The loop, the launcher and the batch scorers are transforms: they never open files. They
are given objects with these methods instead, implemented in :mod:`shikong.io`:

* :class:`TrainData` -- this rank's rows of a split: :class:`shikong.io.shards.DataPaths`.

The objects travel to every training process (``torch.multiprocessing``, TorchDistributor,
Horovod) and into Spark UDF closures, so implementations must be picklable instances of
module-level classes (pickled by reference, like the rank entry functions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class TrainData(Protocol):
    """The training examples, read rank by rank."""

    def rank_arrays(
        self, split: str, rank: int, world_size: int, columns: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """This rank's rows of ``split`` (``train``/``val``/``test``): one array per column
        (array columns 2-D); together the ranks hold every row exactly once."""
        ...
