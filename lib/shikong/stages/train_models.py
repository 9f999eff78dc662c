"""Stage ``train_models``: shards -> trained demand and recommender models.

Each model is trained data-parallel by the configured backend (``local``,
``torch_distributor`` or ``horovod``: :func:`shikong.training.launch.launch`) with
checkpoints per epoch, early stopping, a warm-up + cosine schedule and gradient clipping.
The best epoch's weights become ``ml/models/<kind>/<run_id>/model.pt`` (with the data
meta needed at inference); per-epoch metrics go to ``gold.training_metrics`` and MLflow,
and the run to ``gold.model_registry``, from which ``batch_inference`` picks its model.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from pyspark.sql import types as T

from shikong.config import AppConfig
from shikong.io import fs
from shikong.io.checkpoints import CheckpointFiles, save_checkpoint
from shikong.io.shards import DataPaths, shard_files
from shikong.io.tracking import log_training_run, tracking_uri
from shikong.io.train_results import ResultFiles
from shikong.models import DemandModelConfig, ModelConfig, RecommenderConfig, config_to_dict
from shikong.stages import ml_inputs as ml
from shikong.stages.context import StageContext, step
from shikong.training.launch import launch
from shikong.training.loop import TrainConfig, TrainResult

log = logging.getLogger(__name__)

METRICS_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType(), False),
        T.StructField("model_kind", T.StringType(), False),
        T.StructField("epoch", T.IntegerType(), False),
        T.StructField("backend", T.StringType(), True),
        T.StructField("world_size", T.IntegerType(), True),
        T.StructField("train_loss", T.DoubleType(), True),
        T.StructField("val_loss", T.DoubleType(), True),
        T.StructField("lr", T.DoubleType(), True),
        T.StructField("grad_norm", T.DoubleType(), True),
        T.StructField("steps", T.LongType(), True),
        T.StructField("samples", T.LongType(), True),
        T.StructField("seconds", T.DoubleType(), True),
        T.StructField("is_best", T.BooleanType(), True),
        # name/value pairs rather than a map: MERGE compares values, and maps are unordered.
        T.StructField(
            "terms",
            T.ArrayType(
                T.StructType(
                    [
                        T.StructField("name", T.StringType(), False),
                        T.StructField("value", T.DoubleType(), True),
                    ]
                )
            ),
            True,
        ),
    ]
)

REGISTRY_SCHEMA = T.StructType(
    [
        T.StructField("model_kind", T.StringType(), False),
        T.StructField("run_id", T.StringType(), False),
        T.StructField("trained_at", T.TimestampType(), False),
        T.StructField("path", T.StringType(), False),
        T.StructField("backend", T.StringType(), True),
        T.StructField("world_size", T.IntegerType(), True),
        T.StructField("device", T.StringType(), True),
        T.StructField("best_epoch", T.IntegerType(), True),
        T.StructField("best_val_loss", T.DoubleType(), True),
        T.StructField("epochs_run", T.IntegerType(), True),
        T.StructField("stopped_early", T.BooleanType(), True),
        T.StructField("train_rows", T.LongType(), True),
        T.StructField("val_rows", T.LongType(), True),
        T.StructField("seconds", T.DoubleType(), True),
        T.StructField("samples_per_s", T.DoubleType(), True),
        T.StructField("mlflow_run_id", T.StringType(), True),
    ]
)


def model_config(cfg: AppConfig, kind: str, meta: dict[str, Any]) -> ModelConfig:
    """The model config of one kind from the settings and the data meta."""
    if kind == "demand":
        d = cfg.models.demand
        return DemandModelConfig(
            window=d.window,
            horizon=d.horizon,
            quantiles=tuple(meta["quantiles"]),
            n_spatial=len(meta["standardizer"]["mean"]),
            encoder=d.encoder,
            d_model=d.d_model,
            emb_dim=d.emb_dim,
            n_layers=d.n_layers,
            dropout=d.dropout,
        )
    r = cfg.models.recommender
    vocab = meta["vocab"]
    return RecommenderConfig(
        n_items=len(vocab["items"]) + 2,
        n_categories=len(vocab["categories"]) + 1,
        max_len=r.max_len,
        encoder=r.encoder,
        d_model=r.d_model,
        dropout=r.dropout,
        n_wh=meta["examples"]["n_wh"],
        n_gap_buckets=meta["examples"]["n_gap_buckets"],
    )


def train_config(cfg: AppConfig, kind: str, checkpoint_dir: str) -> TrainConfig:
    """Optimisation settings of one kind."""
    ms = cfg.models
    s = ms.demand if kind == "demand" else ms.recommender
    return TrainConfig(
        epochs=s.epochs,
        batch_size=s.batch_size,
        lr=s.lr,
        weight_decay=s.weight_decay,
        patience=s.patience,
        seed=ms.seed,
        checkpoint_dir=checkpoint_dir,
        num_threads=ms.num_threads,
        use_gpu=ms.use_gpu,
    )


def save_model(result: TrainResult, meta: dict[str, Any], path: str) -> None:
    """The best weights, model config and data meta in one file (``load_checkpoint`` reads it;
    plain data and tensors only, so it loads with ``weights_only=True``)."""
    if result.state is None:
        raise ValueError("the training result carries no weights")
    payload = {
        "model_config": dict(result.model_config),
        "model_state": dict(result.state),
        "data_meta": meta,
        "best_epoch": result.best_epoch,
    }
    save_checkpoint(path, payload)


def _data_paths(ctx: StageContext, kind: str) -> DataPaths:
    return DataPaths.under(ml.data_dir(ctx, kind))


class NotEnoughTrainingDataError(ValueError):
    """A split has fewer examples or shards than training processes (ranks)."""


def require_rank_data(kind: str, meta: dict[str, Any], paths: DataPaths, world_size: int) -> None:
    """Check on the driver that every rank will get training and validation data.

    Without it, a split too small for ``world_size`` ranks fails inside every barrier task
    (or Horovod process) only after they are launched, once per rank.

    Raises:
        NotEnoughTrainingDataError: One line naming the model, the split and the fixes.
    """
    rows = meta.get("rows", {})
    for split, folder in (("train", paths.train), ("val", paths.val)):
        n_rows, n_shards = int(rows.get(split, 0)), len(shard_files(folder))
        if min(n_rows, n_shards) < world_size:
            raise NotEnoughTrainingDataError(
                f"{kind} model: {n_rows} {split} examples in {n_shards} shards for "
                f"{world_size} training processes (models.num_processes): generate a larger "
                "or longer world, or lower models.num_processes, then rerun "
                "prepare_training_data"
            )


@dataclasses.dataclass(frozen=True)
class Trained:
    """One trained model: the launcher's result and its rows for the gold tables."""

    result: TrainResult
    metrics: list[dict[str, Any]]
    registry: dict[str, Any]


def train_one(ctx: StageContext, kind: str) -> Trained:
    """Train one model kind as run ``ctx.run_id``, save it and log it to MLflow; its table
    rows are returned."""
    cfg, run_id = ctx.cfg, ctx.run_id
    ms = cfg.models
    meta = ml.read_meta(ctx, kind)
    paths = _data_paths(ctx, kind)
    mcfg = model_config(cfg, kind, meta)
    ckpt = fs.join(ml.ml_root(ctx), "checkpoints", kind, run_id)
    tcfg = train_config(cfg, kind, ckpt)
    result = launch(
        mcfg,
        tcfg,
        paths,
        backend=ms.backend,
        num_processes=ms.num_processes,
        local_mode=ms.local_mode,
        checkpoints=CheckpointFiles(),
        results=ResultFiles(),
    )
    model_path = fs.join(ml.ml_root(ctx), "models", kind, run_id, "model.pt")
    save_model(result, meta, model_path)

    samples = sum(m.samples for m in result.history)
    train_s = sum(m.seconds for m in result.history)
    rate = samples / train_s if train_s > 0 else float("nan")
    epochs = result.metric_records(run_id)
    mlflow_id = log_training_run(
        tracking_uri(ms.mlflow_tracking_uri, cfg.paths.lakehouse),
        experiment=ms.experiment,
        run_name=f"{kind}-{run_id}",
        params={
            "model": config_to_dict(mcfg),
            "train": dataclasses.asdict(tcfg),
            "backend": ms.backend,
            "num_processes": ms.num_processes,
            "data_rows": meta["rows"],
        },
        epochs=[{k: v for k, v in e.items() if k not in ("run_id",)} for e in epochs],
        summary={
            "best_val_loss": result.best_val_loss,
            "best_epoch": result.best_epoch,
            "samples_per_s": rate,
        },
        artifact=model_path,
        tags={"shikong.run_id": run_id, "shikong.model_kind": kind},
    )
    base = {f.name for f in METRICS_SCHEMA.fields} - {"terms"}
    rows = [
        {
            **{k: e[k] for k in base},
            "epoch": int(e["epoch"]),
            "steps": int(e["steps"]),
            "samples": int(e["samples"]),
            "terms": [
                {"name": k, "value": float(v)} for k, v in sorted(e.items()) if k not in base
            ],
        }
        for e in epochs
    ]
    registry = {
        "model_kind": kind,
        "run_id": run_id,
        "trained_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        "path": model_path,
        "backend": result.backend,
        "world_size": result.world_size,
        "device": result.device,
        "best_epoch": result.best_epoch,
        "best_val_loss": float(result.best_val_loss),
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "train_rows": result.train_rows,
        "val_rows": result.val_rows,
        "seconds": float(result.seconds),
        "samples_per_s": float(rate),
        "mlflow_run_id": mlflow_id,
    }
    log.info(
        "%s: best epoch %d of %d, val loss %.4f, %.0f samples/s (%s x%d)",
        kind,
        result.best_epoch,
        result.epochs_run,
        result.best_val_loss,
        rate,
        result.backend,
        result.world_size,
    )
    return Trained(result, rows, registry)


def run(ctx: StageContext, *, model: str = "all") -> dict[str, TrainResult]:
    """Train the deep models data-parallel with the configured backend, as run ``ctx.run_id``.

    The models are recorded in ``gold.training_metrics`` and ``gold.model_registry`` only
    once all of them are trained: a run that fails or is killed half-way registers none
    (its model files and MLflow runs stay as history), so ``batch_inference`` never picks
    a model of an unfinished run.

    Args:
        ctx: Stage context.
        model: ``demand``, ``recommender`` or ``all``.
    """
    spark = ctx.spark
    kinds = ml.kinds(ctx, model)
    world_size = ctx.cfg.models.num_processes
    for kind in kinds:  # every model's data before any is trained
        require_rank_data(kind, ml.read_meta(ctx, kind), _data_paths(ctx, kind), world_size)
    with step("train_models") as done:
        trained = {kind: train_one(ctx, kind) for kind in kinds}
        metrics = [row for t in trained.values() for row in t.metrics]
        registry = [t.registry for t in trained.values()]
        ctx.catalog.write(
            spark, "gold.training_metrics", spark.createDataFrame(metrics, METRICS_SCHEMA)
        )
        ctx.catalog.write(
            spark, "gold.model_registry", spark.createDataFrame(registry, REGISTRY_SCHEMA)
        )
        done(sum(t.result.train_rows for t in trained.values()))
    return {kind: t.result for kind, t in trained.items()}
