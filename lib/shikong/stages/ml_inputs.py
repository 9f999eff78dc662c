"""What the deep-model stages share: their lakehouse locations and the feature inputs.

``prepare_training_data`` and ``batch_inference`` must build examples in exactly the same
way (same context, same hot-spot features, same location columns); both call the
functions here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F

from shikong.config import AppConfig
from shikong.io import shards
from shikong.stages.context import StageContext
from shikong.training.demand_examples import DemandExampleConfig
from shikong.training.features import (
    events_with_location,
    order_line_geo,
    series_context,
    to_pandas_small,
    warehouse_dynamics,
)
from shikong.training.reco_examples import RecoExampleConfig, Vocab, build_vocab

#: Levels of the demand model's quantile head the evaluation compares with ARIMA (its 80%
#: interval gives 0.1 / 0.9); :func:`quantile_levels` adds the policy's service level.
QUANTILES = (0.1, 0.5, 0.9)
KINDS = ("demand", "recommender")

log = logging.getLogger(__name__)


def quantile_levels(cfg: AppConfig) -> tuple[float, ...]:
    """The demand model's quantile levels: :data:`QUANTILES` and ``decisions.service_level``
    (the fusion-driven policy's reorder point is that quantile of lead-time demand)."""
    return tuple(sorted({*QUANTILES, float(cfg.decisions.service_level)}))


def ml_root(ctx: StageContext) -> str:
    """Location of training shards, checkpoints and model files (``<lakehouse>/ml``)."""
    return ctx.catalog.location("ml")


def data_dir(ctx: StageContext, kind: str) -> str:
    """Shard folder of one model kind (``train``/``val``/``test``/``score`` + ``meta.json``)."""
    return ctx.catalog.location("ml", "training_data", kind)


def read_meta(ctx: StageContext, kind: str) -> dict[str, Any]:
    """``meta.json`` written by ``prepare_training_data``.

    Raises:
        FileNotFoundError: With a hint to run that stage first.
    """
    try:
        return shards.read_meta(data_dir(ctx, kind))
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc}: run prepare_training_data first") from None


def skipped(ctx: StageContext, kind: str) -> str | None:
    """Why ``prepare_training_data`` wrote no examples of ``kind`` (``None``: it did, or
    has not run, which the stages' own checks report)."""
    try:
        reason = read_meta(ctx, kind).get("skipped")
    except FileNotFoundError:
        return None
    return str(reason) if reason else None


def kinds(ctx: StageContext, model: str) -> tuple[str, ...]:
    """The model kinds a stage works on: ``model``, or for ``all`` every kind the data
    allowed (a skipped one is logged with its reason).

    Raises:
        ValueError: When ``model`` names a kind the data did not allow, with the reason.
    """
    if model != "all":
        reason = skipped(ctx, model)
        if reason:
            raise ValueError(f"no {model} model for this data: {reason}")
        return (model,)
    out = []
    for kind in KINDS:
        reason = skipped(ctx, kind)
        if reason:
            log.warning("%s model: not trained, scored or evaluated: %s", kind, reason)
        else:
            out.append(kind)
    return tuple(out)


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


def line_geo(ctx: StageContext) -> DataFrame:
    """Order lines joined to their order's warehouse, state, H3 cell (hot-spot resolution)
    and km."""
    return order_line_geo(
        ctx.read("bronze.order_lines"),
        ctx.read("silver.orders_geo"),
        cell_col=f"h3_r{ctx.cfg.spatial.grid_resolution}",
    )


def demand_inputs(ctx: StageContext, series: DataFrame, lines_geo: DataFrame) -> DemandInputs:
    """Context (warehouse state, busiest delivery cell, category, delivery km) and the
    weekly hot-spot features of each warehouse (:func:`warehouse_dynamics`: the Gi* of the
    cells it ships to, order-weighted).

    Weekly Gi* features join only when ``gold.hotspots`` exists with weekly periods;
    otherwise the model sees the static features alone.
    """
    cfg = ctx.cfg
    ms = cfg.models.demand
    context_df = series_context(
        series, lines_geo, ctx.read("bronze.products"), ctx.read("bronze.warehouses")
    )
    context = to_pandas_small(context_df)
    dynamic = None
    hotspots = ctx.catalog.read_if_exists(ctx.spark, "gold.hotspots")
    if cfg.spatial.hotspot_period == "week" and hotspots is not None:
        warehouses = series.select("warehouse_id").distinct()
        dyn = warehouse_dynamics(
            hotspots,
            lines_geo.join(F.broadcast(warehouses), "warehouse_id"),
            resolution=cfg.spatial.grid_resolution,
            lookahead_weeks=cfg.spatial.hotspot_time_steps,
        )
        dynamic = to_pandas_small(dyn)
    ecfg = DemandExampleConfig(
        window=ms.window,
        horizon=ms.horizon,
        stride=1,
        value_col="y",
        static_numeric=("log_km",),
        dynamic_numeric=("gi_z", "hot_share", "log_orders") if dynamic is not None else (),
        dynamic_key="warehouse_id",
    )
    return DemandInputs(ecfg, context, dynamic)


def reco_example_config(cfg: AppConfig) -> RecoExampleConfig:
    """Example settings of the recommender."""
    return RecoExampleConfig(max_len=cfg.models.recommender.max_len, n_wh=3)


def recent_events(ctx: StageContext) -> tuple[DataFrame, int]:
    """Events of the last ``history_days`` with the customer's location, and the last day."""
    cfg = ctx.cfg
    events = ctx.read("bronze.events")
    last = max_day(events, "event_date")
    first = last - cfg.models.recommender.history_days + 1
    recent = events.where(F.datediff("event_date", F.lit("1970-01-01")) >= first)
    located = events_with_location(
        recent,
        ctx.read("silver.customers_geo"),
        h3_resolution=cfg.spatial.grid_resolution,
        n_wh=reco_example_config(cfg).n_wh,
    )
    return located, last


def vocabulary(ctx: StageContext) -> Vocab:
    """Item and category vocabulary of the catalogue (dimension data, collected)."""
    products = to_pandas_small(ctx.read("bronze.products").select("sku", "category"))
    return build_vocab(products["sku"], products)


def chosen_model(ctx: StageContext, kind: str, run_id: str | None) -> Row:
    """The registry row of the model to use: ``run_id`` or the latest trained.

    Raises:
        ValueError: When no such model was trained.
    """
    reg = ctx.read("gold.model_registry").where(F.col("model_kind") == kind)
    if run_id:
        reg = reg.where(F.col("run_id") == run_id)
    row = reg.orderBy(F.desc("trained_at"), F.desc("run_id")).first()
    if row is None:
        raise ValueError(f"no trained {kind} model{f' with run id {run_id}' if run_id else ''}")
    return row
