"""Stage ``policy_fusion``: the fusion model's quantiles -> a policy and replay per stock
point, beside the SARIMA-driven ones (gold).

The chain: hot spots (Gi*) of the cells each warehouse ships to -> the fusion model's
quantile forecast per SKU x warehouse (``gold.demand_predictions``) -> safety stock,
reorder point, order-up-to level, EOQ and a replay of the last weeks. The policy and the
replay are the SARIMA-driven stage's own code (:mod:`shikong.decisions`), on the same
stock points, history, stock snapshots, prices and replay weeks; only the forecast rows
differ: the median per day as the expected demand and the service-level quantile as the
spread (:mod:`shikong.decisions.fusion_policy` states the lead-time assumption), scaled
by one factor so that the lead-time quantile covers the service level on the validation
split (split conformal, :func:`calibrated_spread`; the model's own bands can be too wide
or too narrow at the lead-time level). The
policy's ``normal`` method is used whatever ``decisions.method`` says: it is the one that
reads the forecast's own distribution (``empirical`` resamples history errors instead).

Rows go to ``gold.inventory_policy`` and ``gold.policy_simulation`` with
``forecast_source = 'fusion'`` under the predictions' origin as run date (the day after
the data, the SARIMA forecasts' run date too); each stage replaces only its own source's
rows. The replay keeps only the policy row: the naive rule's row is the SARIMA replay's.
The stage returns naive vs SARIMA-driven vs fusion-driven on the stock points all three
replayed (:func:`shikong.decisions.policy_comparison`).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd
from pyspark.sql import functions as F

from shikong.decisions import (
    POLICY_SCHEMA,
    SIMULATION_SCHEMA,
    SOURCE_FUSION,
    SimulationConfig,
    fusion_policy_forecasts,
    lead_time_spread,
    make_policy_fn,
    make_simulation_fn,
    policy_comparison,
    policy_config,
    policy_inputs,
    stock_point_prices,
    summary_lines,
)
from shikong.frames import default_parallelism, first_row, to_pandas
from shikong.io import fs
from shikong.io.checkpoints import CheckpointFiles
from shikong.io.shards import read_arrays, shard_files
from shikong.stages import ml_inputs as ml
from shikong.stages.context import StageContext, step
from shikong.timeseries import NO_CATEGORY
from shikong.training.inference import quantile_names
from shikong.training.loop import load_checkpoint, predict

log = logging.getLogger(__name__)

#: The stock-point level the fusion model's series (SKU x warehouse) belong to.
LEVEL = "sku_warehouse"


def _empty() -> pd.DataFrame:
    return policy_comparison(pd.DataFrame())


def calibrated_spread(ctx: StageContext, model_run_id: str | None) -> float:
    """The factor on the model's sigmas that makes its lead-time quantile cover the
    service level on the validation split (:func:`shikong.decisions.lead_time_spread`).

    The model that scored the predictions forecasts the validation windows in the driver
    (a few thousand examples: as ``evaluate_models`` does with the test split); the lead
    time is ``decisions.lead_time_days``, the stock feed's default.
    """
    d = ctx.cfg.decisions
    reg = ml.chosen_model(ctx, "demand", model_run_id)
    model, _, payload = load_checkpoint(reg["path"], CheckpointFiles())
    levels = [float(q) for q in payload["data_meta"]["quantiles"]]
    val = read_arrays(shard_files(fs.join(ml.data_dir(ctx, "demand"), "val")))
    q = np.maximum(predict(model, val, outputs=("quantiles",))["quantiles"], 0.0)
    actual = val["y_fut"].astype(np.float64)
    days = min(d.lead_time_days, actual.shape[1])
    c, n = lead_time_spread(
        actual,
        q[..., levels.index(0.5)],
        q[..., levels.index(d.service_level)],
        days=days,
        service_level=d.service_level,
    )
    log.info(
        "policy_fusion: sigma factor %.3f from %d validation windows of %d days "
        "(split conformal at service level %.2f)",
        c,
        n,
        days,
        d.service_level,
    )
    return c


def run(ctx: StageContext) -> pd.DataFrame:
    """Fusion-driven policy and replay per SKU x warehouse, beside the SARIMA-driven ones.

    Returns:
        Naive vs SARIMA-driven vs fusion-driven over the common stock points (pairs, fill
        rate, stock-out days, average inventory, total cost); empty when there is nothing
        to compare (logged with the reason).
    """
    spark, cat, d = ctx.spark, ctx.catalog, ctx.cfg.decisions
    with step("policy_fusion") as done:
        series = ctx.read("silver.sku_daily")
        level = first_row(series.select("level").limit(1))[0]
        preds = cat.read_if_exists(spark, "gold.demand_predictions")
        if level != LEVEL or preds is None:
            why = (
                f"stock points are {level!r}, the fusion model's series SKU x warehouse"
                if level != LEVEL
                else "no gold.demand_predictions (run infer first)"
            )
            log.warning("policy_fusion: no fusion-driven policy: %s", why)
            done(0)
            return _empty()
        latest = first_row(preds.groupBy("origin").agg(F.max("step")).orderBy(F.desc("origin")))
        run_date, horizon = latest[0], latest[1]
        preds = preds.where(F.col("origin") == F.lit(run_date))
        median, upper = quantile_names([0.5, d.service_level])
        missing = [c for c in (median, upper) if c not in preds.columns]
        if missing:
            raise ValueError(
                f"policy_fusion: gold.demand_predictions has no {missing} (the model's "
                f"quantiles must include 0.5 and decisions.service_level {d.service_level}): "
                "run training_data, train and infer again"
            )
        if horizon < d.lead_time_days + d.review_days:
            log.info(
                "policy_fusion: the model forecasts %d days, the policy looks %d ahead "
                "(lead time + review): the last days repeat the horizon's mean day",
                horizon,
                d.lead_time_days + d.review_days,
            )

        # Fusion series -> the stock points' own series ids (silver.sku_daily).
        model_keys = ctx.read("silver.sku_warehouse_daily").select(
            F.col("series_id").alias("_model_series"), "sku", "warehouse_id"
        )
        point_keys = series.select("series_id", "sku", "warehouse_id").distinct()
        points = point_keys.join(model_keys.distinct(), ["sku", "warehouse_id"])
        model_run = first_row(preds.select("model_run_id").limit(1))[0]
        forecasts = fusion_policy_forecasts(
            preds.withColumnRenamed("series_id", "_model_series").join(
                F.broadcast(points.select("_model_series", "series_id")), "_model_series"
            ),
            median_col=median,
            upper_col=upper,
            service_level=d.service_level,
            spread=calibrated_spread(ctx, model_run),
        )
        stacked = policy_inputs(
            forecasts,
            series.join(F.broadcast(points.select("series_id")), "series_id", "left_semi"),
            cat.read_if_exists(spark, "bronze.inventory"),
            stock_point_prices(
                ctx.read("bronze.products"),
                ctx.read("bronze.order_lines"),
                item_col="sku",
                no_category=NO_CATEGORY,
            ),
        )
        stacked = stacked.repartition(
            max(2, default_parallelism(spark)), "sku", "warehouse_id"
        ).cache()

        pc = dataclasses.replace(policy_config(d), method="normal")
        sc = SimulationConfig(weeks=d.simulation_weeks)
        stamp = [
            F.lit(run_date).alias("run_date"),
            F.lit(level).alias("level"),
            F.lit(SOURCE_FUSION).alias("forecast_source"),
        ]
        scope = {"run_date": run_date, "forecast_source": SOURCE_FUSION}
        policy = (
            stacked.groupBy("sku", "warehouse_id")
            .applyInPandas(make_policy_fn(pc), POLICY_SCHEMA)
            .select("*", *stamp)
        )
        cat.write(spark, "gold.inventory_policy", policy, scope=scope)
        sim = (
            stacked.groupBy("sku", "warehouse_id")
            .applyInPandas(make_simulation_fn(pc, sc), SIMULATION_SCHEMA)
            .where(F.col("policy") == "policy")
            .select("*", *stamp)
        )
        cat.write(spark, "gold.policy_simulation", sim, scope=scope)
        stacked.unpersist()
        replays = to_pandas(
            ctx.read("gold.policy_simulation").where(F.col("run_date") == F.lit(run_date))
        )
        if not (replays["forecast_source"] != SOURCE_FUSION).any():
            log.warning(
                "policy_fusion: no SARIMA-driven replay of %s to compare with (run forecast "
                "and policy on the same data)",
                run_date,
            )
        summary = policy_comparison(replays)
        done(int(summary["pairs"].max()) if len(summary) else 0)
    for line in summary_lines(summary):
        log.info("%s", line)
    return summary
