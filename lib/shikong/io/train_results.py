"""Rank 0's training result handed back to the launcher through a private file.

Some launcher backends cannot return a value from the training processes (local
``torch.multiprocessing`` ranks; TorchDistributor in local mode, where every torchrun rank
writes the one output file), so rank 0 pickles its result to a location the launcher
made and reads back when the processes have finished. :class:`ResultFiles` is that
exchange (the ``ResultExchange`` protocol of :mod:`shikong.training.protocols`).
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from shikong.io import fs


@dataclass(frozen=True)
class ResultFiles:
    """Results as pickles in a temporary folder of this machine.

    Stateless and picklable by reference, so the same object goes to every rank.

    Attributes:
        prefix: Prefix of the temporary folder's name.
    """

    prefix: str = "shikong-train-"

    @contextmanager
    def slot(self) -> Iterator[str]:
        """A fresh location for one result; it and its folder are removed on exit."""
        with tempfile.TemporaryDirectory(prefix=self.prefix) as tmp:
            yield fs.join(tmp, "result.pkl")

    def write(self, location: str, result: Any) -> None:
        """Pickle ``result`` to ``location`` (atomically: the reader never sees half)."""
        with fs.open_output(location) as f:
            f.write(pickle.dumps(result))

    def read(self, location: str) -> Any:
        """The result rank 0 wrote.

        Raises:
            RuntimeError: When nothing was written (training ended without a result).
        """
        if not fs.is_file(location):
            raise RuntimeError(f"training finished without a rank-0 result at {location}")
        with fs.open_input(location) as f:
            data = f.read()
        return pickle.loads(data)  # noqa: S301 - our own file, written by rank 0 just now
