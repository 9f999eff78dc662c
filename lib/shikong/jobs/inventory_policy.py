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

from shikong.config import AppConfig
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
from shikong.io.delta import merge_into
from shikong.jobs.common import first_row, job_main, stage, to_pandas

log = logging.getLogger(__name__)


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
