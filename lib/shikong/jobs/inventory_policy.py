"""Job ``inventory_policy``: forecasts + history + latest stock -> policy and simulation (gold).

Per SKU x warehouse (one grouped pandas UDF each, see :mod:`shikong.decisions.inventory_policy`
and :mod:`shikong.decisions.inventory_simulation`): safety stock, reorder point, order-up-to
level and EOQ from the forecast distribution over the lead time; today's recommended order,
days of cover and stock-out risk; and a replay of the last weeks of actual demand under the
policy and a naive rule.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from shikong.config import AppConfig, DecisionSettings
from shikong.decisions import (
    POLICY_INPUT_SCHEMA,
    POLICY_SCHEMA,
    SIMULATION_SCHEMA,
    PolicyConfig,
    SimulationConfig,
    column_names,
    make_policy_fn,
    make_simulation_fn,
)
from shikong.io.delta import merge_into
from shikong.jobs.common import first_row, job_main, stage, to_pandas

log = logging.getLogger(__name__)


def policy_config(d: DecisionSettings) -> PolicyConfig:
    """Policy parameters from the config (unit price comes per row from the catalogue)."""
    return PolicyConfig(
        lead_time_days=d.lead_time_days,
        review_days=d.review_days,
        service_level=d.service_level,
        order_cost=d.order_cost,
        holding_rate=d.holding_rate,
        method="empirical" if d.method == "empirical" else "normal",
    )


def policy_inputs(
    forecasts: DataFrame, series: DataFrame, inventory: DataFrame, products: DataFrame
) -> DataFrame:
    """Stack forecast, history and latest-snapshot rows, tagged by ``kind``.

    The result has the columns of ``POLICY_INPUT_SCHEMA``.
    """
    cols = column_names(POLICY_INPUT_SCHEMA)
    keys = series.select("series_id", "sku", "warehouse_id").distinct()
    fc = forecasts.join(F.broadcast(keys), "series_id").withColumn("kind", F.lit("forecast"))
    hist = series.select("sku", "warehouse_id", "ds", F.col("y_obs").alias("y")).withColumn(
        "kind", F.lit("history")
    )
    latest = inventory.groupBy("sku", "warehouse_id").agg(
        F.max("snapshot_date").alias("snapshot_date")
    )
    snap = (
        inventory.join(latest, ["sku", "warehouse_id", "snapshot_date"])
        .join(F.broadcast(keys.select("sku", "warehouse_id")), ["sku", "warehouse_id"])
        .select(
            "sku",
            "warehouse_id",
            F.col("snapshot_date").alias("ds"),
            F.col("on_hand").cast("double"),
            F.col("on_order").cast("double"),
        )
        .withColumn("kind", F.lit("inventory"))
    )
    stacked = fc.unionByName(hist, allowMissingColumns=True).unionByName(
        snap, allowMissingColumns=True
    )
    price = F.broadcast(products.select("sku", F.col("unit_price").alias("_price")))
    stacked = (
        stacked.join(price, "sku", "left").withColumn("unit_price", F.col("_price")).drop("_price")
    )
    for c in cols:
        if c not in stacked.columns:
            stacked = stacked.withColumn(c, F.lit(None))
    return stacked.select(*[F.col(c).cast(t) for c, t in _fields(POLICY_INPUT_SCHEMA)])


def _fields(ddl: str) -> list[tuple[str, str]]:
    return [tuple(part.strip().split(" ", 1)) for part in ddl.split(",")]  # type: ignore[misc]


def simulation_summary(sim: pd.DataFrame) -> pd.DataFrame:
    """Policy vs naive over all SKU x warehouses: fill rate, stock-out days, inventory, cost."""
    return (
        sim.groupby("policy")
        .agg(
            pairs=("sku", "size"),
            fill_rate=("fill_rate", "mean"),
            stockout_days=("stockout_days", "sum"),
            avg_inventory=("avg_inventory", "sum"),
            total_cost=("total_cost", "sum"),
        )
        .reset_index()
    )


def run_inventory_policy(spark: SparkSession, cfg: AppConfig) -> pd.DataFrame:
    """Compute and write the policy and simulation tables; returns the simulation summary."""

    def read(layer: str, name: str) -> DataFrame:
        return spark.read.format("delta").load(cfg.paths.table(layer, name))

    series = read("silver", "sku_daily")
    if "warehouse_id" not in series.columns:
        raise ValueError(
            "inventory_policy needs SKU x warehouse series (timeseries.level: sku_warehouse)"
        )
    forecasts = read("gold", "forecasts")
    run_date = first_row(forecasts.agg(F.max("run_date")))[0]
    forecasts = forecasts.where(F.col("run_date") == F.lit(run_date))
    stacked = policy_inputs(
        forecasts, series, read("bronze", "inventory"), read("bronze", "products")
    )
    stacked = stacked.repartition(
        max(2, spark.sparkContext.defaultParallelism), "sku", "warehouse_id"
    ).cache()

    pc = policy_config(cfg.decisions)
    sc = SimulationConfig(weeks=cfg.decisions.simulation_weeks)
    stamp = F.lit(run_date).alias("run_date")
    policy = (
        stacked.groupBy("sku", "warehouse_id")
        .applyInPandas(make_policy_fn(pc), POLICY_SCHEMA)
        .select("*", stamp)
    )
    merge_into(
        spark,
        policy,
        cfg.paths.table("gold", "inventory_policy"),
        keys=("sku", "warehouse_id", "run_date"),
        partition_by=("run_date",),
    )
    sim = (
        stacked.groupBy("sku", "warehouse_id")
        .applyInPandas(make_simulation_fn(pc, sc), SIMULATION_SCHEMA)
        .select("*", stamp)
    )
    merge_into(
        spark,
        sim,
        cfg.paths.table("gold", "policy_simulation"),
        keys=("sku", "warehouse_id", "policy", "run_date"),
        partition_by=("run_date",),
    )
    stacked.unpersist()
    sim_pdf = to_pandas(
        read("gold", "policy_simulation").where(F.col("run_date") == F.lit(run_date))
    )
    summary = simulation_summary(sim_pdf)
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the inventory_policy job (all settings come from the config)."""


def run(spark: SparkSession, cfg: AppConfig, args: argparse.Namespace) -> pd.DataFrame:
    """Safety stock, reorder points, order quantities and a policy-vs-naive replay."""
    with stage("inventory_policy") as done:
        summary = run_inventory_policy(spark, cfg)
        done(int(summary["pairs"].sum()) if len(summary) else 0)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """spark-submit / console entry point."""
    return job_main("inventory_policy", add_arguments, run, argv)
