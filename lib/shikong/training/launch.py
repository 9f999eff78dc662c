"""One launcher for the training loop: in-process / local processes, Spark's
``TorchDistributor``, or Horovod — the same :class:`~shikong.training.loop.TrainResult` back.

* ``local``: ``num_processes == 1`` runs :func:`~shikong.training.loop.train` in this
  process; more start that many processes with ``torch.multiprocessing`` (gloo on CPU) on
  a free localhost port and return rank 0's result.
* ``torch_distributor``: ``pyspark.ml.torch.distributor.TorchDistributor`` (needs an active
  SparkSession). The train function is passed BY REFERENCE (:func:`distributor_entry`,
  a module-level function of the installed ``shikong`` package): cloudpickle then stores
  only its module and name, and the torchrun children import ``shikong`` themselves. With
  ``local_mode=True`` the children are ``sys.executable`` processes on the driver started
  with the driver's environment; :func:`launch` adds the folder holding ``shikong`` to
  their ``PYTHONPATH`` so a non-installed checkout works too. With ``local_mode=False`` the
  processes run inside Spark barrier tasks on the executors, whose Python must have
  ``shikong`` installed (ship the wheel) and whose shard folders must be on shared storage.
  Every local torchrun rank writes TorchDistributor's single output file, so in local mode
  rank 0 also hands its result back through the ``results`` exchange (a private file).
* ``horovod``: :func:`horovod_entry` (again passed by reference) runs in every Horovod
  process with the Gloo controller; it calls ``hvd.init()`` and trains through a
  :class:`~shikong.training.loop.HorovodComm` (``hvd.DistributedOptimizer`` over the named
  parameters, rank 0's parameters broadcast first). With an active SparkSession the
  processes are started by ``horovod.spark.run``, one Spark task each (so the session needs
  ``num_processes`` free task slots, and the executors' Python needs ``shikong`` and
  Horovod installed); without one, by ``horovod.runner.run`` on localhost, whose children
  get the folder holding ``shikong`` on their ``PYTHONPATH`` like the TorchDistributor
  children. Horovod returns every rank's return value to the launcher; rank 0's is the
  result. ``horovod.spark.run`` needs only pyspark, pyarrow and numpy, so it works without
  Horovod's ``[spark]`` extra (whose petastorm and ``pyarrow<11`` pins serve the Spark
  Estimators, which are not used, and would break pyspark 4 / numpy 2): install Horovod
  with ``scripts/install_horovod.sh``. Without Horovod importable the backend raises
  :class:`HorovodUnavailableError`.

Storage is injected (:mod:`shikong.training.protocols`): ``checkpoints``, a
:class:`~shikong.training.protocols.CheckpointStore` (e.g.
:class:`shikong.io.checkpoints.CheckpointFiles`), is needed with ``checkpoint_dir`` or
``resume_from``; ``results``, a :class:`~shikong.training.protocols.ResultExchange` (e.g.
:class:`shikong.io.train_results.ResultFiles`), by the backends whose processes cannot
return a value (``local`` with several processes, ``torch_distributor`` in local mode).
Both travel to the ranks as arguments of the entry functions, so they must be picklable
instances of module-level classes.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shikong.models import ModelConfig
from shikong.training.comm import HorovodComm
from shikong.training.loop import TrainConfig, TrainResult, check_checkpoint_store, train
from shikong.training.protocols import CheckpointStore, ResultExchange, TrainData

log = logging.getLogger(__name__)

BACKENDS = ("local", "torch_distributor", "horovod")


class HorovodUnavailableError(RuntimeError):
    """``backend="horovod"`` was asked for but Horovod is not importable."""


def free_port() -> int:
    """A free TCP port on localhost (for ``MASTER_PORT``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _read_result(results: ResultExchange, location: str) -> TrainResult:
    result = results.read(location)
    if not isinstance(result, TrainResult):
        raise RuntimeError(f"rank 0 left a {type(result).__name__} at {location}, not a result")
    return result


def local_worker(
    rank: int,
    world_size: int,
    port: int,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    data_paths: TrainData,
    result_path: str,
    results: ResultExchange,
    checkpoints: CheckpointStore | None = None,
) -> None:
    """One process of the ``local`` backend (``torch.multiprocessing.spawn`` target); rank
    0 writes its result to ``result_path`` through ``results``."""
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    # One host: keep gloo on loopback instead of whatever interface the hostname maps to.
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    os.environ["RANK"] = str(rank)
    os.environ["LOCAL_RANK"] = str(rank)
    os.environ["WORLD_SIZE"] = str(world_size)
    result = train(
        model_cfg, train_cfg, data_paths, rank=rank, world_size=world_size, checkpoints=checkpoints
    )
    if rank == 0:
        results.write(result_path, result)


def distributor_entry(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    data_paths: TrainData,
    result_path: str | None = None,
    results: ResultExchange | None = None,
    checkpoints: CheckpointStore | None = None,
) -> TrainResult | None:
    """The function TorchDistributor runs in every torchrun process.

    Reads ``RANK``/``WORLD_SIZE`` set by torchrun, trains, and on rank 0 writes the result to
    ``result_path`` through ``results`` (local mode) and returns it; other ranks return
    ``None``.
    """
    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    result = train(
        model_cfg, train_cfg, data_paths, rank=rank, world_size=world_size, checkpoints=checkpoints
    )
    if rank != 0:
        return None
    if result_path:
        if results is None:
            raise ValueError("result_path given without a results exchange")
        results.write(result_path, result)
    return result


def horovod_entry(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    data_paths: TrainData,
    checkpoints: CheckpointStore | None = None,
) -> TrainResult | None:
    """The function every Horovod process runs (``horovod.spark.run``/``horovod.runner.run``).

    Initialises Horovod, trains with rank and world size from Horovod, and returns the
    result on rank 0 (``None`` elsewhere, so only one copy of the weights travels back).
    """
    import horovod.torch as hvd

    hvd.init()
    try:
        result = train(
            model_cfg, train_cfg, data_paths, comm=HorovodComm(hvd), checkpoints=checkpoints
        )
    finally:
        hvd.shutdown()
    return result if result.rank == 0 else None


def _package_root() -> str:
    import shikong

    return str(Path(shikong.__file__).resolve().parents[1])


@contextmanager
def _package_on_pythonpath() -> Iterator[None]:
    """Child processes started meanwhile can import ``shikong`` even from a checkout."""
    old_path = os.environ.get("PYTHONPATH")
    root = _package_root()
    os.environ["PYTHONPATH"] = os.pathsep.join([root, *([old_path] if old_path else [])])
    try:
        yield
    finally:
        if old_path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old_path


def _run_local(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    data_paths: TrainData,
    num_processes: int,
    checkpoints: CheckpointStore | None,
    results: ResultExchange | None,
) -> TrainResult:
    if num_processes == 1:
        return train(
            model_cfg, train_cfg, data_paths, rank=0, world_size=1, checkpoints=checkpoints
        )
    import torch.multiprocessing as mp

    results = _need_results(results, "backend='local' with num_processes > 1")
    with results.slot() as path:
        args = (num_processes, free_port(), model_cfg, train_cfg, data_paths, path, results)
        mp.spawn(local_worker, args=(*args, checkpoints), nprocs=num_processes, join=True)
        return _read_result(results, path)


def _need_results(results: ResultExchange | None, what: str) -> ResultExchange:
    if results is None:
        raise ValueError(
            f"{what} hands rank 0's result back through a file: pass "
            "results=shikong.io.train_results.ResultFiles()"
        )
    return results


def _run_torch_distributor(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    data_paths: TrainData,
    num_processes: int,
    local_mode: bool,
    checkpoints: CheckpointStore | None,
    results: ResultExchange | None,
) -> TrainResult:
    from pyspark.ml.torch.distributor import TorchDistributor
    from pyspark.sql import SparkSession

    if SparkSession.getActiveSession() is None:
        raise RuntimeError(
            "backend='torch_distributor' needs an active SparkSession (build_session)"
        )
    distributor = TorchDistributor(
        num_processes=num_processes, local_mode=local_mode, use_gpu=train_cfg.use_gpu
    )
    args = (model_cfg, train_cfg, data_paths)
    if not local_mode:
        result = distributor.run(distributor_entry, *args, None, None, checkpoints)
        if not isinstance(result, TrainResult):
            raise RuntimeError(f"TorchDistributor returned {type(result).__name__}, not a result")
        return result

    results = _need_results(results, "backend='torch_distributor' with local_mode=True")
    with _package_on_pythonpath(), results.slot() as path:
        distributor.run(distributor_entry, *args, path, results, checkpoints)
        return _read_result(results, path)


@functools.lru_cache(maxsize=1)
def horovod_unavailable_reason() -> str | None:
    """Why ``horovod.torch`` cannot be loaded here, or ``None`` when it can.

    Checked in a child process: the Horovod extension must never be loaded into the
    driver, because OR-Tools' native library segfaults when it is imported into a
    process that already holds ``horovod.torch`` (the other order works). Only the
    training ranks load it.
    """
    proc = subprocess.run(  # noqa: S603 - our own interpreter, a fixed snippet
        [sys.executable, "-c", "import horovod.torch"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode == 0:
        return None
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit status {proc.returncode}"


def _run_horovod(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    data_paths: TrainData,
    num_processes: int,
    checkpoints: CheckpointStore | None,
) -> TrainResult:
    reason = horovod_unavailable_reason()
    if reason is not None:
        raise HorovodUnavailableError(
            f"backend='horovod' needs Horovod built with PyTorch, not importable here "
            f"({reason}); build it with scripts/install_horovod.sh, or use "
            "backend='torch_distributor' or 'local' (same TrainResult)"
        )
    from pyspark.sql import SparkSession

    args = (model_cfg, train_cfg, data_paths, checkpoints)
    if SparkSession.getActiveSession() is not None:
        import horovod.spark

        log.info("horovod: %d processes as Spark tasks (horovod.spark.run)", num_processes)
        results = horovod.spark.run(
            horovod_entry, args=args, num_proc=num_processes, use_gloo=True, verbose=0
        )
    else:
        import horovod.runner

        log.info("horovod: no SparkSession; %d local processes (horovod.runner.run)", num_processes)
        with _package_on_pythonpath():
            results = horovod.runner.run(
                horovod_entry,
                args=args,
                num_proc=num_processes,
                hosts=f"localhost:{num_processes}",
                use_gloo=True,
            )
    result = results[0] if results else None
    if not isinstance(result, TrainResult):
        raise RuntimeError(f"Horovod rank 0 returned {type(result).__name__}, not a TrainResult")
    return result


def launch(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    data_paths: TrainData,
    *,
    backend: str = "local",
    num_processes: int = 1,
    local_mode: bool = True,
    checkpoints: CheckpointStore | None = None,
    results: ResultExchange | None = None,
) -> TrainResult:
    """Train with the chosen backend; every backend returns rank 0's :class:`TrainResult`.

    Args:
        model_cfg: Model config.
        train_cfg: Training config (``batch_size`` is global, so results are comparable
            across ``num_processes``).
        data_paths: The examples, e.g. :class:`shikong.io.shards.DataPaths` (write at
            least ``num_processes`` shards per split).
        backend: ``local``, ``torch_distributor`` or ``horovod``.
        num_processes: Training processes.
        local_mode: TorchDistributor only: processes on the driver (``True``) or in Spark
            barrier tasks on the executors (``False``).
        checkpoints: Checkpoint store, needed with ``checkpoint_dir`` or ``resume_from``
            (e.g. :class:`shikong.io.checkpoints.CheckpointFiles`).
        results: Result exchange, needed by ``local`` with several processes and by
            ``torch_distributor`` in local mode (e.g.
            :class:`shikong.io.train_results.ResultFiles`).

    Returns:
        The result, ``backend`` set to the backend used.

    Raises:
        ValueError: Unknown backend, ``num_processes < 1``, or a store or exchange the
            settings need is missing.
        HorovodUnavailableError: ``horovod`` without Horovod installed.
        RuntimeError: ``torch_distributor`` without an active SparkSession, or a backend
            that returned no rank-0 result.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend: one of {BACKENDS}, got {backend!r}")
    if num_processes < 1:
        raise ValueError("num_processes must be >= 1")
    check_checkpoint_store(train_cfg, checkpoints)
    args = (model_cfg, train_cfg, data_paths, num_processes)
    if backend == "local":
        result = _run_local(*args, checkpoints, results)
    elif backend == "torch_distributor":
        result = _run_torch_distributor(*args, local_mode, checkpoints, results)
    else:
        result = _run_horovod(*args, checkpoints)
    return dataclasses.replace(result, backend=backend)
