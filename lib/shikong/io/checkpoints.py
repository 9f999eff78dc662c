"""Checkpoint and model files: plain payload dicts saved with ``torch.save``.

A payload holds tensors (weights, optimiser moments, RNG states) and plain Python data
(configs, history, metadata: dicts, lists, tuples, strings, numbers, ``None``), so every
file is read back with ``torch.load(..., weights_only=True)``: loading never runs pickled
code. Locations are URIs or paths (see :mod:`shikong.io.fs`); writes are atomic where the
storage allows (a killed writer leaves the previous file, never half a file).

:class:`CheckpointFiles` is the store the training loop and the batch scorers are given
(the ``CheckpointStore`` protocol of :mod:`shikong.training.protocols`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from shikong.io import fs


def save_checkpoint(uri: str, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` to ``uri`` (parent folders created, replaced atomically)."""
    import torch

    buf = BytesIO()
    torch.save(dict(payload), buf)
    with fs.open_output(str(uri)) as f:
        f.write(buf.getbuffer())


def load_checkpoint(uri: str) -> dict[str, Any]:
    """The payload at ``uri``, tensors on the CPU (``weights_only=True``).

    Raises:
        FileNotFoundError: When there is no file at ``uri``.
    """
    import torch

    uri = str(uri)
    if not fs.is_file(uri):
        raise FileNotFoundError(f"no checkpoint at {uri}")
    with fs.open_input(uri) as f:
        buf = BytesIO(f.read())
    return dict(torch.load(buf, map_location="cpu", weights_only=True))


@dataclass(frozen=True)
class CheckpointFiles:
    """Checkpoints as files (:func:`save_checkpoint`/:func:`load_checkpoint`).

    Stateless, hashable and picklable by reference, so it can be handed to training ranks
    (``torch.multiprocessing``, TorchDistributor, Horovod) and to Spark UDF closures.
    """

    def save(self, location: str, payload: Mapping[str, Any]) -> None:
        """Write a payload to ``location``."""
        save_checkpoint(location, payload)

    def load(self, location: str) -> dict[str, Any]:
        """Read the payload at ``location``."""
        return load_checkpoint(location)
