"""Stage ``batch_inference``: the chosen models -> ``gold.demand_predictions``,
``gold.recommendations`` and ``gold.buyer_probability``.

The chosen model of a kind is the latest run in ``gold.model_registry`` (or ``--run-id``).
The serving examples are the ``score`` shards that ``prepare_training_data`` builds with
the training examples' code (same context, as-of spatial features, standardiser fitted on
the training split, vocabulary); they are scored with ``mapInPandas``, one model load per
Python worker. Demand: quantile forecasts for the ``horizon`` days after
the last day of every SKU x warehouse series. Recommender: the top-K SKUs of every customer
active in the last ``history_days``, as of the end of the data, and its buyer head's
probability that the customer's next session buys. Predictions replace every origin from
the run's first one on (earlier origins stay as history); recommendations and buyer
probabilities replace the whole table, so a series or customer that dropped out keeps no
stale row.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from pyspark.sql import Row
from pyspark.sql import functions as F

from shikong.frames import first_row
from shikong.io import shards
from shikong.io.catalog import Since
from shikong.io.checkpoints import CheckpointFiles, load_checkpoint
from shikong.privacy import pseudonymise
from shikong.stages import ml_inputs as ml
from shikong.stages.context import StageContext, step
from shikong.training.inference import (
    BUYER_SCHEMA,
    TOPK_SCHEMA,
    make_buyer_scorer,
    make_topk_scorer,
    score_demand,
)
from shikong.training.reco_examples import Vocab

log = logging.getLogger(__name__)


def _data_meta(path: str) -> dict[str, Any]:
    return dict(load_checkpoint(path)["data_meta"])


def _check_same_features(ctx: StageContext, kind: str, model: Row) -> dict[str, Any]:
    """The data meta of the model; refuses serving data prepared for another feature set."""
    trained = _data_meta(model["path"])
    current = ml.read_meta(ctx, kind)
    for key in ("examples", "standardizer", "vocab"):
        if trained.get(key) != current.get(key):
            raise ValueError(
                f"{kind} model {model['run_id']} was trained on other features than the "
                f"prepared serving data ({key} differs): run train_models again or pass --run-id"
            )
    return current


def predict_demand(ctx: StageContext, model: Row) -> int:
    """Forecast every SKU x warehouse series with the demand model; returns rows written."""
    meta = _check_same_features(ctx, "demand", model)
    levels = meta["quantiles"]
    examples = shards.read_spark_split(ctx.spark, ml.data_dir(ctx, "demand"), "score")
    # Origins are days since 1970-01-01 (day0); the first one bounds the replaced scope.
    first = first_row(examples.agg(F.min("day0")))[0]
    since = dt.date.min if first is None else dt.date(1970, 1, 1) + dt.timedelta(days=first)
    preds = (
        score_demand(examples, model["path"], levels, checkpoints=CheckpointFiles())
        .withColumn("model_run_id", F.lit(model["run_id"]))
        .withColumn("run_id", F.lit(ctx.run_id))
    )
    result = ctx.catalog.write(
        ctx.spark, "gold.demand_predictions", preds, scope={"origin": Since(since)}
    )
    return int(result.rows_inserted + result.rows_updated)


def recommend(ctx: StageContext, model: Row) -> int:
    """Top-K recommendations of every recently active customer; returns rows written."""
    meta = _check_same_features(ctx, "recommender", model)
    vocab = Vocab.from_dict(meta["vocab"])
    cut_s = int(meta["score_cut_s"])
    recs = (
        shards.read_spark_split(ctx.spark, ml.data_dir(ctx, "recommender"), "score")
        .mapInPandas(
            make_topk_scorer(
                model["path"],
                vocab.items,
                ctx.cfg.models.recommender.top_k,
                checkpoints=CheckpointFiles(),
            ),
            TOPK_SCHEMA,
        )
        .withColumn("as_of", F.to_date(F.from_unixtime(F.lit(cut_s))))
        .withColumn("model_run_id", F.lit(model["run_id"]))
        .withColumn("run_id", F.lit(ctx.run_id))
        # Published: the serving side recomputes a customer's pseudonym with the same key.
        .transform(pseudonymise(cols=["customer_id"], key=ctx.pseudonym_key))
    )
    result = ctx.catalog.write(ctx.spark, "gold.recommendations", recs)
    buyers = (
        shards.read_spark_split(ctx.spark, ml.data_dir(ctx, "recommender"), "score")
        .mapInPandas(make_buyer_scorer(model["path"], checkpoints=CheckpointFiles()), BUYER_SCHEMA)
        .withColumn("as_of", F.to_date(F.from_unixtime(F.lit(cut_s))))
        .withColumn("model_run_id", F.lit(model["run_id"]))
        .withColumn("run_id", F.lit(ctx.run_id))
        .transform(pseudonymise(cols=["customer_id"], key=ctx.pseudonym_key))
    )
    scored = ctx.catalog.write(ctx.spark, "gold.buyer_probability", buyers)
    return int(
        result.rows_inserted + result.rows_updated + scored.rows_inserted + scored.rows_updated
    )


def run(ctx: StageContext, *, model: str = "all", run_id: str | None = None) -> dict[str, int]:
    """Score the chosen models and write predictions and recommendations.

    Args:
        ctx: Stage context.
        model: ``demand``, ``recommender`` or ``all``.
        run_id: Training run id of the model to use (default: the latest trained).

    Returns:
        Rows written per model kind.
    """
    kinds = ml.kinds(ctx, model)
    out = {}
    with step("batch_inference") as done:
        if "demand" in kinds:
            out["demand"] = predict_demand(ctx, ml.chosen_model(ctx, "demand", run_id))
        if "recommender" in kinds:
            out["recommender"] = recommend(ctx, ml.chosen_model(ctx, "recommender", run_id))
        done(sum(out.values()))
    return out
