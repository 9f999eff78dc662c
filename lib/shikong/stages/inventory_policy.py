"""Stage ``inventory_policy``: forecasts + history + latest stock -> policy and replay (gold).

Per stock point (one grouped pandas function each, :mod:`shikong.decisions`): safety
stock, reorder point, order-up-to level and EOQ from the forecast distribution over the
lead time; today's recommended order, days of cover and stock-out risk; and a replay of
the last weeks of actual demand under the policy and a naive rule. Both tables replace the
rows of the forecasts' run date: a pair whose series dropped out keeps no policy there.

A stock point is a SKU at a warehouse that reports stock for it (every SKU x warehouse
series is forecast; the policy covers the pairs in the stock feed), or, where the series
are kept per product category
x warehouse state (real data too sparse per SKU, :data:`STOCK_POINTS`), a category in a
state: then the tables' ``sku`` holds the category and ``warehouse_id`` the state, and
their ``level`` column says so. Without stock snapshots (Olist has none) the policy has
no stock on hand and the replay opens at the order-up-to level.
"""

from __future__ import annotations

import logging
import math

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from shikong.decisions import (
    POLICY_SCHEMA,
    SIMULATION_SCHEMA,
    SOURCE_SARIMA,
    SimulationConfig,
    make_policy_fn,
    make_simulation_fn,
    policy_config,
    policy_inputs,
    simulation_summary,
    stock_point_prices,
    summary_lines,
)
from shikong.frames import default_parallelism, first_row, for_each_group, to_pandas
from shikong.stages.context import StageContext, step
from shikong.timeseries import NO_CATEGORY, series_id

log = logging.getLogger(__name__)

#: Series level -> the (item, location) columns of its stock point.
STOCK_POINTS = {
    "sku_warehouse": ("sku", "warehouse_id"),
    "category_state": ("category", "warehouse_state"),
}

#: Stock points per pandas call of the policy and replay functions (about 4 calls a task on
#: 1,440 points and local[2]).
POINTS_PER_CALL = 64
BUCKET = "_point_bucket"


def stocked_points(
    series: DataFrame, forecasts: DataFrame, inventory: DataFrame
) -> tuple[DataFrame, DataFrame]:
    """The series and forecasts of the SKU x warehouse pairs in the stock feed.

    Every SKU x warehouse series is forecast, but a warehouse reports stock for the SKUs
    it keeps (the default world: its 120 best sellers): the others are not its stock
    points and get no policy (they would start from no stock on hand).
    """
    stocked = inventory.select("sku", "warehouse_id").distinct()
    kept = series.join(F.broadcast(stocked), ["sku", "warehouse_id"], "left_semi")
    ids = stocked.select(series_id("sku_warehouse").alias("series_id"))
    # One pass for the log line: every forecast series, flagged when it is a stock point.
    n_all, n_kept = first_row(
        forecasts.select("series_id")
        .distinct()
        .join(F.broadcast(ids.withColumn("_stocked", F.lit(1))), "series_id", "left")
        .agg(F.count(F.lit(1)), F.count("_stocked"))
    )
    log.info(
        "inventory_policy: %d of %d forecast series are stock points in the stock feed; "
        "the others get no policy",
        n_kept,
        n_all,
    )
    return kept, forecasts.join(F.broadcast(ids), "series_id", "left_semi")


def run(ctx: StageContext) -> pd.DataFrame:
    """Safety stock, reorder points, order quantities and a policy-vs-naive replay.

    Returns:
        The replay summary per policy (fill rate, stock-out days, inventory, cost).
    """
    spark, cat, d = ctx.spark, ctx.catalog, ctx.cfg.decisions
    with step("inventory_policy") as done:
        series = ctx.read("silver.sku_daily")
        level = first_row(series.select("level").limit(1))[0]
        if level not in STOCK_POINTS:
            raise ValueError(
                f"inventory_policy needs series per stock point (timeseries.level: "
                f"{' or '.join(STOCK_POINTS)}), got {level!r}"
            )
        item, location = STOCK_POINTS[level]
        forecasts = ctx.read("gold.forecasts")
        run_date = first_row(forecasts.agg(F.max("run_date")))[0]
        forecasts = forecasts.where(F.col("run_date") == F.lit(run_date))
        inventory = (
            ctx.catalog.read_if_exists(spark, "bronze.inventory")
            if level == "sku_warehouse"
            else None
        )
        if inventory is None:
            log.warning("inventory_policy: no stock snapshots at level %s; none on hand", level)
        else:
            series, forecasts = stocked_points(series, forecasts, inventory)
        stacked = policy_inputs(
            forecasts,
            series,
            inventory,
            stock_point_prices(
                ctx.read("bronze.products"),
                ctx.read("bronze.order_lines"),
                item_col=item,
                no_category=NO_CATEGORY,
            ),
            item_col=item,
            location_col=location,
        )
        # Many stock points per pandas call: a call costs ~10 ms around a point's ~25 ms.
        n_points = stacked.select("sku", "warehouse_id").distinct().count()
        tasks = max(2, default_parallelism(spark))
        buckets = max(tasks, min(n_points, math.ceil(n_points / POINTS_PER_CALL)))
        stacked = (
            stacked.withColumn(BUCKET, F.pmod(F.xxhash64("sku", "warehouse_id"), F.lit(buckets)))
            .repartition(tasks, BUCKET)
            .cache()
        )

        pc = policy_config(d)
        sc = SimulationConfig(weeks=d.simulation_weeks)
        # The SARIMA-driven rows: policy_fusion writes the fusion-driven ones beside them.
        stamp = [
            F.lit(run_date).alias("run_date"),
            F.lit(level).alias("level"),
            F.lit(SOURCE_SARIMA).alias("forecast_source"),
        ]
        scope = {"run_date": run_date, "forecast_source": SOURCE_SARIMA}
        policy = (
            stacked.groupBy(BUCKET)
            .applyInPandas(
                for_each_group(
                    make_policy_fn(pc), POLICY_SCHEMA, keys=("sku", "warehouse_id"), drop=(BUCKET,)
                ),
                POLICY_SCHEMA,
            )
            .select("*", *stamp)
        )
        cat.write(spark, "gold.inventory_policy", policy, scope=scope)
        sim = (
            stacked.groupBy(BUCKET)
            .applyInPandas(
                for_each_group(
                    make_simulation_fn(pc, sc),
                    SIMULATION_SCHEMA,
                    keys=("sku", "warehouse_id"),
                    drop=(BUCKET,),
                ),
                SIMULATION_SCHEMA,
            )
            .select("*", *stamp)
        )
        cat.write(spark, "gold.policy_simulation", sim, scope=scope)
        stacked.unpersist()
        sim_pdf = to_pandas(
            ctx.read("gold.policy_simulation").where(
                (F.col("run_date") == F.lit(run_date))
                & (F.col("forecast_source") == F.lit(SOURCE_SARIMA))
            )
        )
        summary = simulation_summary(sim_pdf)
        done(int(summary["pairs"].sum()) if len(summary) else 0)
    for line in summary_lines(summary):
        log.info("%s", line)
    return summary
