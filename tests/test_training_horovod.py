"""The Horovod backend: 2-process training through ``horovod.spark.run`` stays in sync, takes
the same optimisation path as DDP and lands close to 1-process training with the same
global batch; without a SparkSession ``horovod.runner.run`` trains, checkpoints and resumes.

Skipped (with the reason in the report) when Horovod is not importable; build it with
``scripts/install_horovod.sh``. The error raised without Horovod is tested in
test_training.py, which runs either way.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from shikong.io.checkpoints import CheckpointFiles  # noqa: E402
from shikong.io.shards import DataPaths, read_rank_arrays  # noqa: E402
from shikong.io.train_results import ResultFiles  # noqa: E402
from shikong.training.launch import horovod_unavailable_reason, launch  # noqa: E402

# Probed in a child process, never imported here (see horovod_unavailable_reason); a build
# whose extension fails to load skips like a missing one.
_REASON = horovod_unavailable_reason()
pytestmark = [
    pytest.mark.horovod,
    pytest.mark.skipif(
        _REASON is not None,
        reason=f"Horovod not installed ({_REASON}); build it with scripts/install_horovod.sh",
    ),
]
from shikong.training.loop import (  # noqa: E402
    TrainConfig,
    TrainResult,
    load_checkpoint,
    param_digest,
    predict,
)
from test_training import TINY, build_demand_paths  # noqa: E402 - same data and model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def demand_paths(tmp_path_factory: pytest.TempPathFactory) -> DataPaths:
    return build_demand_paths(tmp_path_factory.mktemp("demand"))


def assert_same_shape(result: TrainResult, reference: TrainResult) -> None:
    """Same fields, value types, metric rows and weights as another backend's result."""
    for f in dataclasses.fields(TrainResult):
        got, want = getattr(result, f.name), getattr(reference, f.name)
        assert type(got) is type(want), f.name
    assert result.state is not None and reference.state is not None
    assert {k: v.shape for k, v in result.state.items()} == {
        k: v.shape for k, v in reference.state.items()
    }
    rows, ref_rows = result.metric_records("r"), reference.metric_records("r")
    assert [sorted(r) for r in rows] == [sorted(r) for r in ref_rows]
    assert {r["backend"] for r in rows} == {result.backend}


def test_horovod_spark_two_processes_in_sync_like_ddp_and_one_process(
    spark, demand_paths: DataPaths
) -> None:
    tcfg = TrainConfig(epochs=3, batch_size=32, lr=5e-3, seed=2)
    one = launch(TINY, tcfg, demand_paths, backend="local", num_processes=1)
    ddp = launch(TINY, tcfg, demand_paths, backend="local", num_processes=2, results=ResultFiles())
    hvd = launch(TINY, tcfg, demand_paths, backend="horovod", num_processes=2)

    assert hvd.backend == "horovod" and hvd.world_size == 2 and hvd.rank == 0
    assert len(hvd.rank_digests) == 2
    assert hvd.rank_digests[0] == hvd.rank_digests[1] == hvd.param_digest  # ranks in sync
    model = hvd.load_model()
    assert param_digest(model) == hvd.param_digest  # the returned weights are rank 0's
    assert hvd.train_rows == one.train_rows and hvd.val_rows == one.val_rows
    assert [m.steps for m in hvd.history] == [m.steps for m in one.history]
    assert [m.samples for m in hvd.history] == [m.samples for m in one.history]

    # Same global batch as one process: close, within the DDP test's tolerance.
    for a, b in zip(one.history, hvd.history, strict=True):
        assert b.val_loss == pytest.approx(a.val_loss, rel=0.05)
        assert b.train_loss == pytest.approx(a.train_loss, rel=0.05)
    assert hvd.history[-1].val_loss < hvd.history[0].val_loss
    # Same world size as DDP: the same shards, seeds, averaged and clipped gradients, LR
    # schedule and optimiser steps, so the curves agree to rounding.
    for a, b in zip(ddp.history, hvd.history, strict=True):
        assert b.train_loss == pytest.approx(a.train_loss, rel=1e-4)
        assert b.val_loss == pytest.approx(a.val_loss, rel=1e-4)
        assert b.grad_norm == pytest.approx(a.grad_norm, rel=1e-4)
        assert b.lr == pytest.approx(a.lr, rel=1e-9)
    assert hvd.best_epoch == ddp.best_epoch and hvd.epochs_run == ddp.epochs_run

    assert_same_shape(hvd, ddp)
    arrays = read_rank_arrays(demand_paths.val, 0, 1, list(model.batch_keys))
    out = predict(model, arrays, batch_size=256)
    assert all(np.isfinite(v).all() for v in out.values())


def test_horovod_runner_without_spark_checkpoints_and_resumes(
    demand_paths: DataPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyspark.sql import SparkSession

    # No active session: the launcher falls back to horovod.runner.run on localhost.
    monkeypatch.setattr(SparkSession, "getActiveSession", classmethod(lambda cls: None))
    base = {"epochs": 2, "batch_size": 32, "lr": 3e-3, "seed": 5, "max_steps_per_epoch": 4}
    ckpt = tmp_path / "ckpt"
    full = launch(
        TINY,
        TrainConfig(**base, checkpoint_dir=str(ckpt)),
        demand_paths,
        backend="horovod",
        num_processes=2,
        checkpoints=CheckpointFiles(),
    )
    assert full.backend == "horovod" and full.world_size == 2
    assert full.rank_digests[0] == full.rank_digests[1]
    assert [m.steps for m in full.history] == [4, 4]
    assert {"best.pt", "epoch-000.pt", "epoch-001.pt"} <= {p.name for p in ckpt.iterdir()}
    _, cfg, payload = load_checkpoint(str(ckpt / "epoch-000.pt"), CheckpointFiles())
    assert cfg == TINY and len(payload["rng_state"]) == 2  # one RNG state per rank
    assert full.checkpoint == str(ckpt / "best.pt")

    # Resuming after epoch 0 (optimiser state broadcast from rank 0) ends where the
    # uninterrupted run ended.
    resumed = launch(
        TINY,
        TrainConfig(**base, resume_from=str(ckpt / "epoch-000.pt")),
        demand_paths,
        backend="horovod",
        num_processes=2,
        checkpoints=CheckpointFiles(),
    )
    assert [m.val_loss for m in resumed.history] == [m.val_loss for m in full.history]
    assert resumed.param_digest == full.param_digest
    assert resumed.rank_digests[0] == resumed.rank_digests[1]
    assert all(math.isfinite(m.train_loss) for m in resumed.history)
