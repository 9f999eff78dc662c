"""Job ``batch_inference``: the chosen models -> ``gold.demand_predictions`` and
``gold.recommendations``.

The chosen model of a kind is the latest run in ``gold.model_registry`` (or ``--run-id``).
The serving examples are the ``score`` shards that ``prepare_training_data`` builds with
the training examples' code (same context, as-of spatial features, standardiser fitted on
the training split, vocabulary); they are scored with ``mapInPandas``, one model load per
Python worker. Demand: quantile forecasts for the ``horizon`` days after
the last day of every SKU x region series. Recommender: the top-K SKUs of every customer
active in the last ``history_days``, as of the end of the data. Both tables are MERGEd on
their keys, so a rerun replaces rows instead of adding them.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import Any

from pyspark.sql import Row, SparkSession
from pyspark.sql import functions as F

from shikong.config import AppConfig
from shikong.io import fs
from shikong.io.checkpoints import CheckpointFiles, load_checkpoint
from shikong.io.delta import merge_into
from shikong.jobs import _ml
from shikong.jobs.common import job_main, new_run_id, stage
from shikong.training.inference import (
    TOPK_SCHEMA,
    demand_prediction_schema,
    make_demand_scorer,
    make_topk_scorer,
)
from shikong.training.reco_examples import Vocab

log = logging.getLogger(__name__)


def chosen_model(spark: SparkSession, cfg: AppConfig, kind: str, run_id: str | None) -> Row:
    """The registry row of the model to use: ``run_id`` or the latest trained.

    Raises:
        ValueError: When no such model was trained.
    """
    reg = _ml.load(spark, cfg, "gold", "model_registry").where(F.col("model_kind") == kind)
    if run_id:
        reg = reg.where(F.col("run_id") == run_id)
    row = reg.orderBy(F.desc("trained_at"), F.desc("run_id")).first()
    if row is None:
        raise ValueError(f"no trained {kind} model{f' with run id {run_id}' if run_id else ''}")
    return row


def _data_meta(path: str) -> dict[str, Any]:
    return dict(load_checkpoint(path)["data_meta"])


def _check_same_features(kind: str, model: Row, cfg: AppConfig) -> dict[str, Any]:
    """The data meta of the model; refuses serving data prepared for another feature set."""
    trained = _data_meta(model["path"])
    current = _ml.read_meta(cfg, kind)
    for key in ("examples", "standardizer", "vocab"):
        if trained.get(key) != current.get(key):
            raise ValueError(
                f"{kind} model {model['run_id']} was trained on other features than the "
                f"prepared serving data ({key} differs): run train_models again or pass --run-id"
            )
    return current


def predict_demand(spark: SparkSession, cfg: AppConfig, model: Row, run_id: str) -> int:
    """Forecast every SKU x region series with the demand model; returns rows written."""
    meta = _check_same_features("demand", model, cfg)
    levels = meta["quantiles"]
    preds = (
        spark.read.parquet(fs.join(_ml.data_dir(cfg, "demand"), "score"))
        .mapInPandas(
            make_demand_scorer(model["path"], levels, checkpoints=CheckpointFiles()),
            demand_prediction_schema(levels),
        )
        .withColumn("model_run_id", F.lit(model["run_id"]))
        .withColumn("run_id", F.lit(run_id))
    )
    result = merge_into(
        spark,
        preds,
        cfg.paths.table("gold", "demand_predictions"),
        keys=("series_id", "origin", "ds"),
    )
    return int(result.rows_inserted + result.rows_updated)


def recommend(spark: SparkSession, cfg: AppConfig, model: Row, run_id: str) -> int:
    """Top-K recommendations of every recently active customer; returns rows written."""
    meta = _check_same_features("recommender", model, cfg)
    vocab = Vocab.from_dict(meta["vocab"])
    cut_s = int(meta["score_cut_s"])
    recs = (
        spark.read.parquet(fs.join(_ml.data_dir(cfg, "recommender"), "score"))
        .mapInPandas(
            make_topk_scorer(
                model["path"],
                vocab.items,
                cfg.models.recommender.top_k,
                checkpoints=CheckpointFiles(),
            ),
            TOPK_SCHEMA,
        )
        .withColumn("as_of", F.to_date(F.from_unixtime(F.lit(cut_s))))
        .withColumn("model_run_id", F.lit(model["run_id"]))
        .withColumn("run_id", F.lit(run_id))
    )
    result = merge_into(
        spark, recs, cfg.paths.table("gold", "recommendations"), keys=("customer_id", "rank")
    )
    return int(result.rows_inserted + result.rows_updated)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the batch_inference job."""
    parser.add_argument(
        "--model", choices=[*_ml.KINDS, "all"], default="all", help="which model to score"
    )
    parser.add_argument("--run-id", default=None, help="model run id (default: the latest)")


def run(spark: SparkSession, cfg: AppConfig, args: argparse.Namespace) -> dict[str, int]:
    """Score the chosen models and write predictions and recommendations."""
    run_id = new_run_id()
    kinds = _ml.KINDS if args.model == "all" else (args.model,)
    out = {}
    with stage("batch_inference") as done:
        if "demand" in kinds:
            out["demand"] = predict_demand(
                spark, cfg, chosen_model(spark, cfg, "demand", args.run_id), run_id
            )
        if "recommender" in kinds:
            out["recommender"] = recommend(
                spark, cfg, chosen_model(spark, cfg, "recommender", args.run_id), run_id
            )
        done(sum(out.values()))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit / console entry point."""
    return job_main("batch_inference", add_arguments, run, argv)
