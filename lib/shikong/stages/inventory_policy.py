"""Stage ``inventory_policy``: forecasts + history + latest stock -> policy and replay (gold).

Per SKU x warehouse (one grouped pandas function each, :mod:`shikong.decisions`): safety
stock, reorder point, order-up-to level and EOQ from the forecast distribution over the
lead time; today's recommended order, days of cover and stock-out risk; and a replay of
the last weeks of actual demand under the policy and a naive rule. Both tables replace the
rows of the forecasts' run date: a pair whose series dropped out keeps no policy there.
"""

from __future__ import annotations

import logging

import pandas as pd
from pyspark.sql import functions as F

from shikong.decisions import (
    POLICY_SCHEMA,
    SIMULATION_SCHEMA,
    SimulationConfig,
    make_policy_fn,
    make_simulation_fn,
    policy_config,
    policy_inputs,
    simulation_summary,
)
from shikong.frames import default_parallelism, first_row, to_pandas
from shikong.stages.context import StageContext, step

log = logging.getLogger(__name__)


def run(ctx: StageContext) -> pd.DataFrame:
    """Safety stock, reorder points, order quantities and a policy-vs-naive replay.

    Returns:
        The replay summary per policy (fill rate, stock-out days, inventory, cost).
    """
    spark, cat, d = ctx.spark, ctx.catalog, ctx.cfg.decisions
    with step("inventory_policy") as done:
        series = ctx.read("silver.sku_daily")
        if "warehouse_id" not in series.columns:
            raise ValueError(
                "inventory_policy needs SKU x warehouse series (timeseries.level: sku_warehouse)"
            )
        forecasts = ctx.read("gold.forecasts")
        run_date = first_row(forecasts.agg(F.max("run_date")))[0]
        forecasts = forecasts.where(F.col("run_date") == F.lit(run_date))
        stacked = policy_inputs(
            forecasts, series, ctx.read("bronze.inventory"), ctx.read("bronze.products")
        )
        stacked = stacked.repartition(
            max(2, default_parallelism(spark)), "sku", "warehouse_id"
        ).cache()

        pc = policy_config(d)
        sc = SimulationConfig(weeks=d.simulation_weeks)
        stamp = F.lit(run_date).alias("run_date")
        scope = {"run_date": run_date}
        policy = (
            stacked.groupBy("sku", "warehouse_id")
            .applyInPandas(make_policy_fn(pc), POLICY_SCHEMA)
            .select("*", stamp)
        )
        cat.write(spark, "gold.inventory_policy", policy, scope=scope)
        sim = (
            stacked.groupBy("sku", "warehouse_id")
            .applyInPandas(make_simulation_fn(pc, sc), SIMULATION_SCHEMA)
            .select("*", stamp)
        )
        cat.write(spark, "gold.policy_simulation", sim, scope=scope)
        stacked.unpersist()
        sim_pdf = to_pandas(
            ctx.read("gold.policy_simulation").where(F.col("run_date") == F.lit(run_date))
        )
        summary = simulation_summary(sim_pdf)
        done(int(summary["pairs"].sum()) if len(summary) else 0)
    for row in summary.itertuples():
        log.info(
            "simulation %-7s pairs=%d fill_rate=%.3f stockout_days=%d avg_inventory=%.0f "
            "total_cost=%.0f",
            row.policy,
            row.pairs,
            row.fill_rate,
            row.stockout_days,
            row.avg_inventory,
            row.total_cost,
        )
    return summary
