"""Spark transforms that turn lakehouse tables into deep-model examples.

Pure ``DataFrame -> DataFrame`` functions (no reads or writes); the per-series and
per-customer work runs the pandas builders of :mod:`shikong.training.demand_examples` and
:mod:`shikong.training.reco_examples` through
``applyInPandas``, so every example is built on the executors and written as Parquet shards
by the job, never collected to the driver.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from shikong.training.common import TimeSplit
from shikong.training.demand_examples import (
    DEMAND_EXAMPLE_SCHEMA,
    DemandExampleConfig,
    make_demand_examples_fn,
    make_demand_score_fn,
)
from shikong.training.reco_examples import (
    RECO_EXAMPLE_SCHEMA,
    RecoExampleConfig,
    Vocab,
    recommender_examples,
    recommender_score_examples,
)

#: Columns of the SKU x warehouse daily series (``silver.sku_warehouse_daily``).
SERIES_COLUMNS = ("series_id", "sku", "warehouse_id", "ds", "y")


def order_line_geo(
    lines: DataFrame,
    orders_geo: DataFrame,
    *,
    cell_col: str,
    qty_col: str = "quantity",
    region_col: str = "uf",
) -> DataFrame:
    """Order lines with their order's date, shipping warehouse, the customer's region
    (state), H3 cell and delivery km.

    Lines of orders without a warehouse are dropped: they belong to no SKU x warehouse
    series (a customer outside every state keeps a null region and still counts). Persist
    the result when :func:`sku_warehouse_daily`, :func:`series_context` and
    :func:`warehouse_dynamics` all use it (one join instead of three).

    Returns:
        ``order_id``, ``sku``, ``q`` (double), ``ds``, ``warehouse_id``, ``uf``, ``cell``,
        ``delivery_km``.
    """
    orders = orders_geo.select(
        "order_id",
        F.col("order_date").alias("ds"),
        "warehouse_id",
        F.col(region_col).alias("uf"),
        F.col(cell_col).alias("cell"),
        "delivery_km",
    ).where(F.col("warehouse_id").isNotNull())
    return lines.select("order_id", "sku", F.col(qty_col).cast("double").alias("q")).join(
        orders, "order_id"
    )


def sku_warehouse_daily(line_geo: DataFrame, *, max_series: int) -> DataFrame:
    """Daily units of the busiest SKU x warehouse series (the stock points) on a complete
    calendar.

    The series are those of the inventory policy's stock points (``silver.sku_daily`` at
    level ``sku_warehouse`` counts the same lines), so the model's quantiles can drive a
    policy per SKU and warehouse. Days without sales are true zeros (0.0).

    Args:
        line_geo: Output of :func:`order_line_geo`.
        max_series: Series kept, by total units (ties by key).

    Returns:
        :data:`SERIES_COLUMNS`, ``series_id = sku|warehouse_id``.
    """
    keys = ["sku", "warehouse_id"]
    sales = line_geo.groupBy(*keys, "ds").agg(F.sum("q").alias("y"))
    top = (
        sales.groupBy(*keys)
        .agg(F.sum("y").alias("total"))
        .orderBy(F.desc("total"), *keys)
        .limit(max_series)
        .select(*keys)
    )
    bounds = line_geo.agg(F.min("ds").alias("lo"), F.max("ds").alias("hi"))
    calendar = bounds.select(F.explode(F.sequence("lo", "hi")).alias("ds"))
    return (
        top.crossJoin(calendar)
        .join(sales, [*keys, "ds"], "left")
        .select(
            F.concat_ws("|", *keys).alias("series_id"),
            *keys,
            "ds",
            F.coalesce("y", F.lit(0.0)).alias("y"),
        )
    )


def series_context(
    series: DataFrame, line_geo: DataFrame, products: DataFrame, warehouses: DataFrame
) -> DataFrame:
    """Per-series context: the warehouse's state, the busiest delivery cell of the series,
    category, delivery distance, and the warehouse (the key of :func:`warehouse_dynamics`).

    Args:
        series: Output of :func:`sku_warehouse_daily`.
        line_geo: Output of :func:`order_line_geo`.
        products: ``bronze.products`` (``sku``, ``category``).
        warehouses: ``bronze.warehouses`` (``warehouse_id``, ``state``).

    Returns:
        ``series_id``, ``region`` (the warehouse's state), ``cell``, ``category``,
        ``log_km`` (log1p of the mean delivery km of the series' orders), ``warehouse_id``.
    """
    keys = series.select("series_id", "sku", "warehouse_id").distinct()
    joined = line_geo.join(F.broadcast(keys), ["sku", "warehouse_id"])
    km = joined.groupBy("series_id").agg(F.log1p(F.avg("delivery_km")).alias("log_km"))
    cells = (
        joined.where(F.col("cell").isNotNull())
        .groupBy("series_id", "cell")
        .count()
        .groupBy("series_id")
        .agg(F.max_by("cell", F.struct("count", "cell")).alias("cell"))
    )
    state = warehouses.select("warehouse_id", F.col("state").alias("region"))
    return (
        keys.join(F.broadcast(products.select("sku", "category")), "sku", "left")
        .join(F.broadcast(state), "warehouse_id", "left")
        .join(cells, "series_id", "left")
        .join(km, "series_id", "left")
        .select("series_id", "region", "cell", "category", "log_km", "warehouse_id")
    )


def cell_dynamics(hotspots: DataFrame, *, resolution: int, lookahead_weeks: int = 0) -> DataFrame:
    """Weekly hot-spot features per cell: Gi* z-score and log orders of the cell.

    ``available_day`` is the first day the week's statistic is known: the end of the week,
    or of the last later week its statistic pools (space-time Gi* with
    ``lookahead_weeks`` later periods), so joining "as of" an example's origin uses no
    future data.

    Args:
        hotspots: ``gold.hotspots`` (``period`` = week start, ``cell``, ``resolution``,
            ``orders``, ``gi_z``).
        resolution: H3 resolution of the cells.
        lookahead_weeks: Later weeks the statistic of a week depends on.

    Returns:
        ``cell``, ``available_day`` (days since epoch), ``gi_z``, ``log_orders``.
    """
    return hotspots.where(F.col("resolution") == resolution).select(
        "cell",
        (F.datediff(F.to_date("period"), F.lit("1970-01-01")) + 7 * (1 + lookahead_weeks))
        .cast("long")
        .alias("available_day"),
        F.col("gi_z").cast("double").alias("gi_z"),
        F.log1p("orders").cast("double").alias("log_orders"),
    )


#: Gi* z-score above which a cell counts as a hot spot (two-sided 5% level).
HOT_Z = 1.96


def warehouse_dynamics(
    hotspots: DataFrame,
    line_geo: DataFrame,
    *,
    resolution: int,
    lookahead_weeks: int = 0,
    hot_z: float = HOT_Z,
) -> DataFrame:
    """Weekly hot-spot features per warehouse from the cells it ships to, order-weighted.

    For a warehouse and week: the mean Gi* z-score of the cells its orders of that week go
    to, weighted by those orders (cells without a statistic, e.g. suppressed small cells,
    left out of the mean); the share of its orders going to hot spots (``gi_z > hot_z``);
    and log1p of its orders. ``available_day`` is that of :func:`cell_dynamics` (the
    week's orders are known by then too), so the as-of join uses no future data.

    Args:
        hotspots: ``gold.hotspots`` with weekly periods.
        line_geo: Output of :func:`order_line_geo`.
        resolution: H3 resolution of the cells (``line_geo.cell``).
        lookahead_weeks: As for :func:`cell_dynamics`.
        hot_z: Gi* z-score above which a cell is a hot spot.

    Returns:
        ``warehouse_id``, ``available_day``, ``gi_z``, ``hot_share``, ``log_orders``.
    """
    cells = cell_dynamics(hotspots, resolution=resolution, lookahead_weeks=lookahead_weeks)
    week = F.date_trunc("week", F.col("ds").cast("timestamp"))
    available = (F.datediff(F.to_date(week), F.lit("1970-01-01")) + 7 * (1 + lookahead_weeks)).cast(
        "long"
    )
    shipped = (
        line_geo.select("order_id", "warehouse_id", "cell", available.alias("available_day"))
        .distinct()
        .groupBy("warehouse_id", "cell", "available_day")
        .agg(F.count(F.lit(1)).cast("double").alias("n"))
        .join(cells.select("cell", "available_day", "gi_z"), ["cell", "available_day"], "left")
    )
    known = F.col("gi_z").isNotNull()
    weighted_z = F.sum(F.when(known, F.col("n") * F.col("gi_z"))) / F.sum(F.when(known, F.col("n")))
    return shipped.groupBy("warehouse_id", "available_day").agg(
        weighted_z.alias("gi_z"),
        (F.sum(F.when(F.col("gi_z") > hot_z, F.col("n")).otherwise(0.0)) / F.sum("n")).alias(
            "hot_share"
        ),
        F.log1p(F.sum("n")).alias("log_orders"),
    )


def demand_example_frame(
    series: DataFrame,
    cfg: DemandExampleConfig,
    *,
    context: pd.DataFrame | None,
    dynamic: pd.DataFrame | None,
) -> DataFrame:
    """Sliding-window examples of every series (``DEMAND_EXAMPLE_SCHEMA``)."""
    fn = make_demand_examples_fn(cfg, context=context, dynamic=dynamic)
    return (
        series.select("series_id", "sku", "ds", F.col("y").alias(cfg.value_col))
        .groupBy("series_id")
        .applyInPandas(fn, DEMAND_EXAMPLE_SCHEMA)
    )


def demand_score_frame(
    series: DataFrame,
    cfg: DemandExampleConfig,
    *,
    context: pd.DataFrame | None,
    dynamic: pd.DataFrame | None,
    day0: int | None = None,
) -> DataFrame:
    """The forecasting window of every series (``DEMAND_EXAMPLE_SCHEMA``, unknown targets)."""
    fn = make_demand_score_fn(cfg, context=context, dynamic=dynamic, day0=day0)
    return (
        series.select("series_id", "sku", "ds", F.col("y").alias(cfg.value_col))
        .groupBy("series_id")
        .applyInPandas(fn, DEMAND_EXAMPLE_SCHEMA)
    )


def split_condition(split: TimeSplit, name: str, *, start_col: str, end_col: str) -> Column:
    """The Spark filter of one split of :func:`shikong.training.common.time_split`."""
    start, end = F.col(start_col), F.col(end_col)
    if name == "train":
        return end <= split.train_end
    if name == "val":
        return (start > split.train_end) & (end <= split.val_end)
    if name == "test":
        return start > split.val_end
    raise ValueError(f"split: train, val or test, got {name!r}")


def standardizer_stats(
    examples: DataFrame, column: str, width: int
) -> tuple[list[float], list[float]]:
    """Per-component mean and population std of an array column, NaN ignored (fit on train).

    Returns:
        ``(mean, std)`` lists of ``width`` floats; a component with no finite value gets
        mean 0 and std 1, a constant one std 1.
    """
    if width == 0:
        return [], []
    exploded = examples.select(F.posexplode(column).alias("pos", "v")).select(
        "pos", F.when(~F.isnan("v"), F.col("v")).alias("v")
    )
    rows = (
        exploded.groupBy("pos").agg(F.avg("v").alias("m"), F.stddev_pop("v").alias("s")).collect()
    )
    stats = {int(r["pos"]): (r["m"], r["s"]) for r in rows}
    mean = [float(stats.get(i, (None, None))[0] or 0.0) for i in range(width)]
    std = []
    for i in range(width):
        s = stats.get(i, (None, None))[1]
        std.append(float(s) if s is not None and s > 1e-12 else 1.0)
    return mean, std


def standardize_array(column: str, mean: Sequence[float], std: Sequence[float]):  # noqa: ANN201
    """Transform factory: ``(x - mean) / std`` per component, NaN -> 0 (the train mean)."""

    def fn(df: DataFrame) -> DataFrame:
        if not mean:
            return df
        m = F.array(*[F.lit(float(v)) for v in mean])
        s = F.array(*[F.lit(float(v)) for v in std])
        z = F.transform(
            column,
            lambda x, i: F.coalesce(
                F.nanvl((x - F.element_at(m, i + 1)) / F.element_at(s, i + 1), F.lit(None)),
                F.lit(0.0),
            ).cast("float"),
        )
        return df.withColumn(column, z)

    return fn


def _reco_context(pdf: pd.DataFrame) -> pd.DataFrame | None:
    if "region" not in pdf.columns:
        return None
    cols = ["customer_id", "region", "cell", *(["wh_km"] if "wh_km" in pdf.columns else [])]
    return pdf[cols].drop_duplicates("customer_id")


EVENT_COLUMNS = (
    "event_id",
    "session_id",
    "customer_id",
    "event_ts",
    "event_type",
    "sku",
    "lat",
    "lon",
)


def customer_bucket(n_buckets: int) -> Column:
    """Group key putting each customer's whole history into one of ``n_buckets`` groups.

    One pandas call per customer would pay the builder's fixed cost (frame copies, sorts)
    100k times; a bucket holds thousands of customers and the builder loops over them.
    """
    return F.pmod(F.xxhash64("customer_id"), F.lit(n_buckets)).alias("_bucket")


def reco_example_frame(
    events: DataFrame, vocab: Vocab, cfg: RecoExampleConfig, *, n_buckets: int = 64
) -> DataFrame:
    """Session examples per customer (``RECO_EXAMPLE_SCHEMA``).

    ``events`` may carry per-customer ``region``, ``cell`` and ``wh_km`` columns (joined
    from ``silver.customers_geo``); they become the user context of each group, so nothing
    per-customer travels in the closure. Customers are grouped into ``n_buckets``
    (:func:`customer_bucket`).
    """

    def fn(pdf: pd.DataFrame) -> pd.DataFrame:
        ex = recommender_examples(pdf, vocab, cfg, user_context=_reco_context(pdf))
        for col in ("customer_id", "session_id"):
            ex[col] = ex[col].astype(str)
        return ex

    return events.groupBy(customer_bucket(n_buckets)).applyInPandas(fn, RECO_EXAMPLE_SCHEMA)


def reco_score_frame(
    events: DataFrame, vocab: Vocab, cfg: RecoExampleConfig, *, cut_s: int, n_buckets: int = 64
) -> DataFrame:
    """One serving example per customer at ``cut_s`` (``RECO_EXAMPLE_SCHEMA``)."""

    def fn(pdf: pd.DataFrame) -> pd.DataFrame:
        ex = recommender_score_examples(
            pdf, vocab, cfg, cut_s=cut_s, user_context=_reco_context(pdf)
        )
        ex["customer_id"] = ex["customer_id"].astype(str)
        return ex

    return events.groupBy(customer_bucket(n_buckets)).applyInPandas(fn, RECO_EXAMPLE_SCHEMA)


def events_with_location(
    events: DataFrame, customers_geo: DataFrame, *, h3_resolution: int, n_wh: int
) -> DataFrame:
    """Events plus the customer's ``region`` (state), H3 ``cell`` and nearest-warehouse km.

    Args:
        events: ``bronze.events``.
        customers_geo: ``silver.customers_geo`` (``customer_id``, ``uf``, ``lat``, ``lon``,
            ``nearest_warehouse_km``).
        h3_resolution: Resolution of the customer's cell
            (:func:`shikong.spatial.features.h3_cell`).
        n_wh: Warehouse distances kept.
    """
    # Imported here: Sedona's Python functions are only needed on the driver.
    from sedona.spark.sql import st_constructors as stc

    from shikong.spatial.features import h3_cell

    geo = customers_geo.withColumn("_point", stc.ST_Point("lon", "lat")).select(
        "customer_id",
        F.col("uf").alias("region"),
        F.when(
            F.col("lat").isNotNull() & F.col("lon").isNotNull(), h3_cell("_point", h3_resolution)
        ).alias("cell"),
        F.slice("nearest_warehouse_km", 1, n_wh).alias("wh_km"),
    )
    return events.select(*EVENT_COLUMNS).join(geo, "customer_id", "left")


def baseline_counts(train: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Counts behind the recommender baselines, from the training examples.

    Returns:
        ``(popularity, cooccurrence)``: purchases per ``item`` (``n``), and training
        examples per (``h`` in the history, ``t`` = target) with each history item counted
        once per example. Both are bounded by the catalogue size, not the row count.
    """
    buyers = train.where(F.col("target_item") >= 2)
    popularity = buyers.groupBy(F.col("target_item").alias("item")).agg(F.count("*").alias("n"))
    cooc = (
        buyers.select(
            F.explode(F.array_distinct(F.filter("hist_items", lambda x: x >= 2))).alias("h"),
            F.col("target_item").alias("t"),
        )
        .groupBy("h", "t")
        .agg(F.count("*").alias("n"))
    )
    return popularity, cooc


def recency_frequency_counts(train: DataFrame) -> DataFrame:
    """Examples and buyers per recency x frequency cell of the training examples: the
    counts behind the buyer head's baseline
    (:func:`shikong.training.evaluation.recency_frequency_scores`).

    Recency is the time-gap bucket of the newest history event (histories are
    left-padded, so it is the last slot; 0 = no history), frequency the number of events
    in the history window. Bounded by buckets x window length, not by the row count.

    Returns:
        Columns ``recency``, ``frequency``, ``n`` (examples) and ``buyers``.
    """
    return (
        train.select(
            F.coalesce(F.try_element_at("hist_gaps", F.lit(-1)), F.lit(0)).alias("recency"),
            F.size(F.filter("hist_items", lambda x: x != 0)).alias("frequency"),
            F.col("buyer").cast("double").alias("buyer"),
        )
        .groupBy("recency", "frequency")
        .agg(F.count("*").alias("n"), F.sum("buyer").alias("buyers"))
    )


def to_pandas_small(df: DataFrame, limit: int = 2_000_000) -> pd.DataFrame:
    """Collect a small dimension-like frame (context, vocabulary) with a size guard."""
    pdf = df.limit(limit + 1).toPandas()  # one pass, not count() + collect
    if len(pdf) > limit:
        raise ValueError(f"refusing to collect more than {limit} rows to the driver")
    return pdf
