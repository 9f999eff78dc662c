"""What the deep-model jobs share: folders under the lakehouse and the feature inputs.

``prepare_training_data`` and ``batch_inference`` must build examples in exactly the same
way (same context, same hot-spot features, same location columns); both call the
functions here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from shikong.config import AppConfig
from shikong.io import fs, shards
from shikong.io.delta import table_exists
from shikong.training.demand_examples import DemandExampleConfig
from shikong.training.features import (
    cell_dynamics,
    events_with_location,
    order_line_geo,
    series_context,
    to_pandas_small,
)
from shikong.training.reco_examples import RecoExampleConfig, Vocab, build_vocab

#: Levels of the demand model's quantile head (the ARIMA 80% interval gives 0.1 / 0.9).
QUANTILES = (0.1, 0.5, 0.9)
KINDS = ("demand", "recommender")


def ml_root(cfg: AppConfig) -> str:
    """Folder (path or URI) of training shards, checkpoints and model artefacts."""
    return fs.join(cfg.paths.lakehouse, "ml")


def data_dir(cfg: AppConfig, kind: str) -> str:
    """Shard folder of one model kind (``train``/``val``/``test``/``score`` + ``meta.json``)."""
    return fs.join(ml_root(cfg), "training_data", kind)


def read_meta(cfg: AppConfig, kind: str) -> dict[str, Any]:
    """``meta.json`` written by ``prepare_training_data``.

    Raises:
        FileNotFoundError: With a hint to run the job first.
    """
    try:
        return shards.read_meta(data_dir(cfg, kind))
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc}: run prepare_training_data first") from None


def load(spark: SparkSession, cfg: AppConfig, layer: str, name: str) -> DataFrame:
    """A Delta table of the lakehouse."""
    return spark.read.format("delta").load(cfg.paths.table(layer, name))


def max_day(df: DataFrame, col: str) -> int:
    """Days since 1970-01-01 of the latest date in ``col``."""
    row = df.agg(F.datediff(F.max(col), F.lit("1970-01-01")).alias("d")).first()
    if row is None or row["d"] is None:
        raise ValueError(f"no dates in column {col}")
    return int(row["d"])


@dataclass(frozen=True)
class DemandInputs:
    """Example settings and small side tables of the demand examples."""

    example_cfg: DemandExampleConfig
    context: pd.DataFrame
    dynamic: pd.DataFrame | None


def line_geo(spark: SparkSession, cfg: AppConfig) -> DataFrame:
    """Order lines joined to their order's state, H3 cell (hot-spot resolution) and km."""
    return order_line_geo(
        load(spark, cfg, "bronze", "order_lines"),
        load(spark, cfg, "silver", "orders_geo"),
        cell_col=f"h3_r{cfg.spatial.grid_resolution}",
    )


def demand_inputs(
    spark: SparkSession, cfg: AppConfig, series: DataFrame, lines_geo: DataFrame
) -> DemandInputs:
    """Context (region, busiest H3 cell, category, delivery km) and weekly cell features.

    Weekly Gi* features join only when ``gold.hotspots`` exists with weekly periods;
    otherwise the model sees the static features alone.
    """
    ms = cfg.models.demand
    res = cfg.spatial.grid_resolution
    products = load(spark, cfg, "bronze", "products")
    ctx = series_context(series, lines_geo, products)
    context = to_pandas_small(ctx)
    dynamic = None
    hot_path = cfg.paths.table("gold", "hotspots")
    if cfg.spatial.hotspot_period == "week" and table_exists(spark, hot_path):
        cells = ctx.select("cell").where(F.col("cell").isNotNull()).distinct()
        dyn = cell_dynamics(
            spark.read.format("delta").load(hot_path),
            resolution=res,
            lookahead_weeks=cfg.spatial.hotspot_time_steps,
        )
        dynamic = to_pandas_small(dyn.join(F.broadcast(cells), "cell"))
    ecfg = DemandExampleConfig(
        window=ms.window,
        horizon=ms.horizon,
        stride=1,
        value_col="y",
        static_numeric=("log_km",),
        dynamic_numeric=("gi_z", "log_orders") if dynamic is not None else (),
        dynamic_key="cell",
    )
    return DemandInputs(ecfg, context, dynamic)


def reco_example_config(cfg: AppConfig) -> RecoExampleConfig:
    """Example settings of the recommender."""
    return RecoExampleConfig(max_len=cfg.models.recommender.max_len, n_wh=3)


def recent_events(spark: SparkSession, cfg: AppConfig) -> tuple[DataFrame, int]:
    """Events of the last ``history_days`` with the customer's location, and the last day."""
    events = load(spark, cfg, "bronze", "events")
    last = max_day(events, "event_date")
    first = last - cfg.models.recommender.history_days + 1
    recent = events.where(F.datediff("event_date", F.lit("1970-01-01")) >= first)
    located = events_with_location(
        recent,
        load(spark, cfg, "silver", "customers_geo"),
        h3_resolution=cfg.spatial.grid_resolution,
        n_wh=reco_example_config(cfg).n_wh,
    )
    return located, last


def vocabulary(spark: SparkSession, cfg: AppConfig) -> Vocab:
    """Item and category vocabulary of the catalogue (dimension data, collected)."""
    products = to_pandas_small(load(spark, cfg, "bronze", "products").select("sku", "category"))
    return build_vocab(products["sku"], products)
