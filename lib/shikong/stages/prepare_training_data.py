"""Stage ``prepare_training_data``: lakehouse tables -> time-split Parquet shards per model.

Demand: ``silver.sku_warehouse_daily`` (the busiest SKU x warehouse series, i.e. stock
points, written here) cut into sliding windows with the warehouse's state, the series'
busiest delivery H3 cell and category as ids, the series' delivery distance and, as of
each origin, the warehouse's weekly hot-spot features: the Gi* z-scores of the cells it
ships to, order-weighted, the share of its orders in hot spots and its orders. Recommender: one
example per (customer, session) from the last ``history_days`` of ``bronze.events`` with
the customer's state, H3 cell and nearest-warehouse distances.

A fourth folder, ``score``, holds the serving examples that ``batch_inference`` scores:
each series' last window (forecasting the days after the data) and each customer active
in the window as of the end of the data.

Splits are by time with no leakage: training targets end on or before ``train_end``,
validation targets lie in ``(train_end, val_end]``, test targets after ``val_end`` (the
last ``test_days``). Demand test examples start at ``eval_origins`` non-overlapping
origins so the evaluation can compare the same cells with ARIMA. Standardisation is fitted
on the training split. Every split is written by the executors as ``num_shards`` Parquet
files (training ranks read their own shards with pyarrow); ``meta.json`` holds the rest.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import functions as F

from shikong.io import fs, shards
from shikong.stages import ml_inputs as ml
from shikong.stages.context import StageContext, step
from shikong.training.common import TimeSplit
from shikong.training.features import (
    demand_example_frame,
    demand_score_frame,
    reco_example_frame,
    reco_score_frame,
    sku_warehouse_daily,
    split_condition,
    standardize_array,
    standardizer_stats,
)

log = logging.getLogger(__name__)
SECONDS_PER_DAY = 86_400


def prepare_demand(ctx: StageContext) -> dict[str, Any]:
    """Write ``silver.sku_warehouse_daily``, the demand shards and ``meta.json``; returns
    the meta."""
    ms, dm = ctx.cfg.models, ctx.cfg.models.demand
    lines_geo = ml.line_geo(ctx).persist(StorageLevel.MEMORY_AND_DISK)
    ctx.catalog.write(
        ctx.spark,
        "silver.sku_warehouse_daily",
        sku_warehouse_daily(lines_geo, max_series=dm.max_series),
    )
    series = ctx.read("silver.sku_warehouse_daily")
    inputs = ml.demand_inputs(ctx, series, lines_geo)
    lines_geo.unpersist()
    last = ml.max_day(series, "ds")
    split = TimeSplit.last_days(last, val_days=ms.val_days, test_days=ms.test_days)
    first_test = split.val_end + 1
    origins = [
        first_test + k * dm.horizon
        for k in range(dm.eval_origins)
        if first_test + (k + 1) * dm.horizon - 1 <= last
    ]
    if not origins:
        raise ValueError(
            f"models.test_days ({ms.test_days}) is shorter than models.demand.horizon "
            f"({dm.horizon}): no test origin fits"
        )
    ex = demand_example_frame(
        series, inputs.example_cfg, context=inputs.context, dynamic=inputs.dynamic
    ).persist(StorageLevel.MEMORY_AND_DISK)
    # Training origins on a grid aligned with the test origins, every `stride` days.
    on_grid = ((F.lit(first_test) - F.col("day0")) % dm.stride) == 0
    cond = {
        n: split_condition(split, n, start_col="day0", end_col="target_end")
        for n in ("train", "val", "test")
    }
    splits = {
        "train": ex.where(cond["train"] & on_grid),
        "val": ex.where(cond["val"] & on_grid),
        "test": ex.where(cond["test"] & F.col("day0").isin(origins)),
    }
    width = inputs.example_cfg.n_spatial
    mean, std = standardizer_stats(splits["train"], "spatial_num", width)
    scale = standardize_array("spatial_num", mean, std)
    # The serving set: each series' window before the day after the data (batch_inference).
    splits["score"] = demand_score_frame(
        series, inputs.example_cfg, context=inputs.context, dynamic=inputs.dynamic
    )
    root = ml.data_dir(ctx, "demand")
    rows = shards.write_spark_splits(
        {k: v.transform(scale) for k, v in splits.items()}, root, ms.num_shards
    )
    ex.unpersist()
    meta = {
        "kind": "demand",
        "examples": asdict(inputs.example_cfg),
        "split": asdict(split),
        "standardizer": {"column": "spatial_num", "mean": mean, "std": std},
        "rows": rows,
        "series": series.select("series_id").distinct().count(),
        "last_day": last,
        "test_origins": origins,
        "quantiles": list(ml.quantile_levels(ctx.cfg)),
    }
    shards.write_meta(root, meta)
    log.info("demand examples: %s (standardiser on %d features)", rows, width)
    return meta


def prepare_recommender(ctx: StageContext) -> dict[str, Any]:
    """Write the recommender shards and ``meta.json``; returns the meta.

    Without behaviour events (real data such as Olist's has none) there are no sessions
    to learn from: the meta records why, no shards are written, and the later model
    stages leave the recommender out (:func:`shikong.stages.ml_inputs.kinds`).
    """
    ms = ctx.cfg.models
    root = ml.data_dir(ctx, "recommender")
    if not ctx.catalog.exists(ctx.spark, "bronze.events"):
        # The examples are browsing sessions. Purchases alone could only teach a
        # customer's next order: how many customers have one is logged with the reason.
        repeat = (
            ctx.read("bronze.orders")
            .groupBy("customer_id")
            .count()
            .where(F.col("count") >= 2)
            .count()
        )
        reason = (
            "no behaviour events (bronze.events) to build sessions from; "
            f"{repeat} customer(s) have two orders or more"
        )
        log.warning("recommender: %s", reason)
        if fs.exists(root):
            fs.delete(root)  # an earlier run's shards are not this data's
        meta: dict[str, Any] = {"kind": "recommender", "skipped": reason, "rows": {}}
        shards.write_meta(root, meta)
        return meta
    events, last = ml.recent_events(ctx)
    vocab = ml.vocabulary(ctx)
    rcfg = ml.reco_example_config(ctx.cfg)
    ex = reco_example_frame(events, vocab, rcfg).persist(StorageLevel.MEMORY_AND_DISK)
    # Cut times are seconds: a day d ends at (d + 1) * 86400 - 1.
    split = TimeSplit(
        train_end=(last - ms.test_days - ms.val_days + 1) * SECONDS_PER_DAY - 1,
        val_end=(last - ms.test_days + 1) * SECONDS_PER_DAY - 1,
    )
    splits = {
        n: ex.where(split_condition(split, n, start_col="cut_s", end_col="cut_s"))
        for n in ("train", "val", "test")
    }
    # The serving set: every active customer as of the end of the data (batch_inference).
    cut_s = (last + 1) * SECONDS_PER_DAY
    splits["score"] = reco_score_frame(events, vocab, rcfg, cut_s=cut_s)
    rows = shards.write_spark_splits(splits, root, ms.num_shards)
    ex.unpersist()
    meta = {
        "kind": "recommender",
        "examples": asdict(rcfg),
        "split": asdict(split),
        "vocab": vocab.to_dict(),
        "rows": rows,
        "last_day": last,
        "score_cut_s": cut_s,
    }
    shards.write_meta(root, meta)
    log.info("recommender examples: %s (%d items)", rows, vocab.n_items)
    return meta


def run(ctx: StageContext, *, model: str = "all") -> dict[str, Any]:
    """Build the time-split training shards of the deep models.

    Args:
        ctx: Stage context.
        model: ``demand``, ``recommender`` or ``all``.

    Returns:
        The ``meta.json`` content per model kind.
    """
    out: dict[str, Any] = {}
    kinds = ml.KINDS if model == "all" else (model,)
    with step("prepare_training_data") as done:
        if "demand" in kinds:
            out["demand"] = prepare_demand(ctx)
        if "recommender" in kinds:
            out["recommender"] = prepare_recommender(ctx)
        done(sum(n for m in out.values() for k, n in m["rows"].items() if k != "score"))
    return out
