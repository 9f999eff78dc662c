"""The spatial silver/gold tables built from their inputs (pure DataFrame transforms).

The ``spatial_features`` stage reads bronze and the packaged geography, calls these
builders and writes the results; nothing here reads or writes storage.

Tables built:
    silver.orders_geo          one row per order: region, municipality, H3/geohash, metric
                               coordinates, delivery distance, nearest warehouses, flags
    silver.customers_geo       one row per customer: region, nearest municipality, k nearest
                               warehouses
    gold.service_zones         warehouse service areas clipped to state borders (+ area km2)
    gold.grid_daily            per H3 cell x day demand aggregates
    gold.grid_daily_category   the same per category
    gold.hotspots              (input of) Getis-Ord Gi* per cell x period
    gold.spatial_autocorrelation  global Moran's I of the latest period
    gold.region_profiles       weekday demand profile per state
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from sedona.spark.sql import st_constructors as stc
from sedona.spark.sql import st_functions as stf

from shikong.config import SpatialSettings
from shikong.frames import first_row, to_pandas
from shikong.spatial import features as sf
from shikong.spatial import hotspots

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpatialInputs:
    """The inputs of the spatial tables (states and municipalities with ``geom``)."""

    orders: DataFrame
    lines: DataFrame
    customers: DataFrame
    warehouses: DataFrame
    products: DataFrame
    states: DataFrame
    municipalities: DataFrame


def states_geometry(states: DataFrame) -> DataFrame:
    """State rows with WKT (:func:`shikong.io.reference.states`) -> Sedona ``geom`` (WGS84)."""
    return states.withColumn("geom", stc.ST_GeomFromWKT("wkt", 4326)).drop("wkt")


def municipalities_geometry(municipalities: DataFrame) -> DataFrame:
    """Municipality rows with lat/lon -> plus a WGS84 point ``geom``."""
    return municipalities.transform(sf.with_point())


def warehouse_points(warehouses: DataFrame, s: SpatialSettings) -> DataFrame:
    """Warehouses with WGS84 point, metric point and metric service-area buffer."""
    return (
        warehouses.transform(sf.with_point())
        .transform(sf.to_crs(geom_col="geom", out_col="geom_m", target_crs=s.metric_crs))
        .withColumn(
            "service_area_m",
            stf.ST_Buffer(
                F.col("geom_m"), F.coalesce(F.col("service_radius_km"), F.lit(0.0)) * 1000.0
            ),
        )
    )


#: What the state joins look points up in (see :func:`state_lookup`).
StateLookup = DataFrame | sf.RegionIndex | sf.RegionPieces


def state_lookup(
    states: DataFrame, s: SpatialSettings, *, n_points: int | None = None
) -> sf.RegionIndex | sf.RegionPieces:
    """The states' lookup, built once per run and shared by every join: the grid index
    when the joins of the run see at least :data:`~shikong.spatial.features.INDEX_MIN_POINTS`
    points (``n_points``, all joins together; None = unknown), else the subdivided states
    for Sedona's broadcast join."""
    return sf.region_lookup(
        states,
        region_geom_col="geom",
        region_cols=["uf", "region"],
        broadcast_max_rows=s.broadcast_max_pieces,
        max_vertices=s.subdivide_max_vertices,
        n_points=n_points,
    )


def state_of(states: StateLookup, s: SpatialSettings, *, id_col: str) -> sf.Transform:
    """Attach ``uf`` and ``region`` of the state containing the WGS84 point ``geom``.

    The input must also have the ``lon``/``lat`` columns ``geom`` was built from.
    """
    return sf.assign_region(
        states,
        point_col="geom",
        region_geom_col="geom",
        region_cols=["uf", "region"],
        id_cols=[id_col],
        broadcast_max_rows=s.broadcast_max_pieces,
        max_vertices=s.subdivide_max_vertices,
        xy_cols=("lon", "lat"),
    )


def customers_geo(
    customers: DataFrame,
    inputs: SpatialInputs,
    whs: DataFrame,
    s: SpatialSettings,
    *,
    states: StateLookup | None = None,
) -> DataFrame:
    """Customers with state, nearest municipality and the k nearest warehouses.

    ``states`` is the states' lookup from :func:`state_lookup` (default: built here).
    """
    return (
        customers.select("customer_id", "lat", "lon")
        .transform(sf.with_point())
        .transform(state_of(inputs.states if states is None else states, s, id_col="customer_id"))
        .transform(
            sf.nearest(
                inputs.municipalities,
                point_col="geom",
                candidate_geom_col="geom",
                candidate_id_col="ibge_code",
                id_cols=["customer_id"],
                k=1,
                out_prefix="muni",
            )
        )
        .transform(
            sf.nearest(
                whs,
                point_col="geom",
                candidate_geom_col="geom",
                candidate_id_col="warehouse_id",
                id_cols=["customer_id"],
                k=s.nearest_k,
                out_prefix="nearest_wh",
            )
        )
        .join(
            inputs.municipalities.select(
                F.col("ibge_code").alias("muni_id"), "municipality", "municipality_uf"
            ),
            "muni_id",
            "left",
        )
        .select(
            "customer_id",
            "lat",
            "lon",
            "uf",
            "region",
            F.col("muni_id").alias("municipality_ibge"),
            "municipality",
            F.col("muni_km1").alias("municipality_km"),
            F.col("nearest_wh_ids").alias("nearest_warehouse_ids"),
            F.col("nearest_wh_km").alias("nearest_warehouse_km"),
            F.col("nearest_wh_id").alias("nearest_warehouse_id"),
            stf.ST_AsBinary(F.col("geom")).alias("geom_wkb"),
        )
    )


def orders_geo(
    orders: DataFrame,
    cust_geo: DataFrame,
    whs: DataFrame,
    inputs: SpatialInputs,
    s: SpatialSettings,
    *,
    states: StateLookup | None = None,
) -> DataFrame:
    """Per-order spatial features (see module docstring); ``states`` as in customers_geo."""
    study = list(s.study_area_states)
    wh = whs.select("warehouse_id", F.col("geom").alias("wh_geom"))
    base = (
        orders.select(
            "order_id",
            "customer_id",
            "order_ts",
            "order_date",
            "order_month",
            "warehouse_id",
            "lat",
            "lon",
        )
        .transform(sf.with_point())
        .transform(sf.to_crs(geom_col="geom", out_col="geom_m", target_crs=s.metric_crs))
        .transform(state_of(inputs.states if states is None else states, s, id_col="order_id"))
        .transform(
            sf.in_any(
                whs,
                point_col="geom_m",
                area_geom_col="service_area_m",
                id_cols=["order_id"],
                out_col="in_service_area",
            )
        )
        .transform(
            sf.with_grid(
                geom_col="geom", resolutions=s.h3_resolutions, geohash_precision=s.geohash_precision
            )
        )
        .join(F.broadcast(wh), "warehouse_id", "left")
        .transform(sf.with_distance_km(a_col="geom", b_col="wh_geom", out_col="delivery_km"))
    )
    cust = cust_geo.select(
        "customer_id",
        "municipality_ibge",
        "municipality",
        "nearest_warehouse_id",
        "nearest_warehouse_km",
    )
    in_study = F.col("uf").isNotNull() & (F.col("uf").isin(*study) if study else F.lit(True))
    return base.join(cust, "customer_id", "left").select(
        "order_id",
        "customer_id",
        "order_ts",
        "order_date",
        "order_month",
        "warehouse_id",
        "lat",
        "lon",
        "uf",
        "region",
        "municipality_ibge",
        "municipality",
        stf.ST_X(F.col("geom_m")).alias("x_m"),
        stf.ST_Y(F.col("geom_m")).alias("y_m"),
        *[f"h3_r{r}" for r in s.h3_resolutions],
        "geohash",
        "delivery_km",
        "nearest_warehouse_id",
        F.col("nearest_warehouse_km")[0].alias("nearest_warehouse_km"),
        (F.col("warehouse_id") != F.col("nearest_warehouse_id")).alias("warehouse_mismatch"),
        "in_service_area",
        in_study.alias("in_study_area"),
        stf.ST_AsBinary(F.col("geom")).alias("geom_wkb"),
    )


def service_zones(whs: DataFrame, states: DataFrame, s: SpatialSettings) -> DataFrame:
    """Warehouse service areas clipped to state borders, with area in km2 (metric CRS)."""
    st = states.transform(sf.make_valid(geom_col="geom")).transform(
        sf.to_crs(geom_col="geom", out_col="state_m", target_crs=s.metric_crs)
    )
    pairs = whs.select("warehouse_id", "service_area_m").join(
        F.broadcast(st.select("uf", "was_invalid", "state_m")),
        F.expr("ST_Intersects(service_area_m, state_m)"),
    )
    zone = stf.ST_Intersection(F.col("service_area_m"), F.col("state_m"))
    return pairs.select(
        "warehouse_id",
        "uf",
        "was_invalid",
        (stf.ST_Area(zone) / 1e6).alias("area_km2"),
        stf.ST_AsBinary(stf.ST_Transform(zone, F.lit(s.metric_crs), F.lit("EPSG:4326"))).alias(
            "geom_wkb"
        ),
    )


def grid_frames(
    og: DataFrame,
    lines: DataFrame,
    products: DataFrame,
    s: SpatialSettings,
    *,
    bound: Callable[[DataFrame], DataFrame] | None = None,
) -> tuple[DataFrame, DataFrame]:
    """Per cell x day aggregates, overall and per category.

    ``bound`` (a differentially private release) limits the order-line rows each customer
    contributes before anything is aggregated.
    """
    cell = f"h3_r{s.grid_resolution}"
    rows = (
        lines.select("order_id", "sku", "quantity", "unit_price")
        .join(
            og.select("order_id", "customer_id", "order_date", "order_month", cell, "delivery_km"),
            "order_id",
        )
        .join(F.broadcast(products.select("sku", "category")), "sku", "left")
    )
    if bound is not None:
        rows = rows.transform(bound)
    daily = rows.transform(
        sf.cell_daily_aggregates(cell_col=cell, date_col="order_date")
    ).withColumnRenamed(cell, "cell")
    by_cat = rows.transform(
        sf.cell_daily_aggregates(cell_col=cell, date_col="order_date", by=["category"])
    ).withColumnRenamed(cell, "cell")
    month = F.date_format("order_date", "yyyy-MM")
    return (
        daily.withColumn("resolution", F.lit(s.grid_resolution)).withColumn("month", month),
        by_cat.withColumn("resolution", F.lit(s.grid_resolution)).withColumn("month", month),
    )


def hotspot_period(s: SpatialSettings) -> Column:
    """The hot-spot period of a row with ``order_date`` (a week's Monday, a month, ``all``)."""
    if s.hotspot_period == "week":
        return F.date_format(F.date_trunc("week", F.col("order_date")), "yyyy-MM-dd")
    if s.hotspot_period == "month":
        return F.date_format(F.col("order_date"), "yyyy-MM")
    return F.lit("all")


def hotspot_customers(og: DataFrame, s: SpatialSettings) -> DataFrame:
    """Distinct customers per hot-spot ``period`` x ``cell`` (the small-cell count)."""
    return og.groupBy(
        hotspot_period(s).alias("period"), F.col(f"h3_r{s.grid_resolution}").alias("cell")
    ).agg(F.countDistinct("customer_id").alias("customers"))


def state_customers(og: DataFrame) -> DataFrame:
    """Distinct customers per state (``uf``) of the orders: the small-cell count."""
    return (
        og.where(F.col("uf").isNotNull())
        .groupBy("uf")
        .agg(F.countDistinct("customer_id").alias("customers"))
    )


def hotspot_input(grid_daily: DataFrame, s: SpatialSettings) -> DataFrame:
    """Cell x period observations for Gi*: excess demand over the cell's own expectation.

    Raw counts would only rediscover that cities are big. ``expected`` spreads the cell's
    total over periods in proportion to the whole platform's volume in each period, and the
    measure is the Freeman-Tukey residual ``sqrt(o) + sqrt(o + 1) - sqrt(4e + 1)``: roughly
    N(0, 1) for Poisson counts and, unlike ``(o - e) / sqrt(e)``, not inflated in sparse
    cells (a rural cell going from 1 to 5 orders is not a hot spot).

    The panel is complete: every cell with an order anywhere in the run has a row in every
    period, with ``orders = 0`` where it had none. Keeping only the cell-periods with
    orders would condition on ``o >= 1``, which lifts the residual of sparse cells (their
    mean is about +1 where busy cells sit near 0) so that rural neighbourhoods look hot
    and busy city neighbourhoods cold against the pooled mean of Gi*; zero weeks are data.

    ``period_index`` numbers the periods consecutively (weeks or months since 1970) for
    the space-time neighbourhood of :func:`shikong.spatial.hotspots.getis_ord_gi_star_h3`.
    """
    period = hotspot_period(s)
    if s.hotspot_period == "week":
        # 1970-01-05 is a Monday, the first day of Spark's weeks.
        index = F.floor(F.datediff(F.to_date("period"), F.lit("1970-01-05")) / 7)
    elif s.hotspot_period == "month":
        index = (F.substring("period", 1, 4).cast("int") - 1970) * 12 + F.substring(
            "period", 6, 2
        ).cast("int")
    else:
        index = F.lit(0)
    per = grid_daily.groupBy(period.alias("period"), "cell").agg(F.sum("orders").alias("orders"))
    periods = (
        per.groupBy("period")
        .agg(F.sum("orders").alias("period_total"))
        .withColumns(
            {
                "period_index": index.cast("int"),
                "grand": F.sum("period_total").over(Window.partitionBy()),
            }
        )
    )
    cells = per.groupBy("cell").agg(F.sum("orders").alias("cell_total"))
    o, e = F.col("orders").cast("double"), F.col("expected")
    return (
        cells.crossJoin(F.broadcast(periods))
        .join(per, ["period", "cell"], "left")
        .fillna(0, subset=["orders"])
        .withColumn("expected", F.col("cell_total") * F.col("period_total") / F.col("grand"))
        .withColumn("excess", F.sqrt(o) + F.sqrt(o + 1.0) - F.sqrt(4.0 * e + 1.0))
    )


def global_moran(obs: DataFrame, s: SpatialSettings) -> pd.DataFrame:
    """Global Moran's I of the hot-spot measure in the latest period (distance band).

    Only the cells with orders in that period take part: Sedona 1.8 builds distance-band
    weights with an outer self-join that it plans as a nested loop, so the cost grows with
    the square of the cells, and the complete panel of :func:`hotspot_input` holds every
    cell of the run (about 11,000 in the default world instead of a few hundred).
    """
    latest = first_row(obs.agg(F.max("period")))[0]
    cells = obs.where((F.col("period") == F.lit(latest)) & (F.col("orders") > 0)).select(
        "cell",
        "excess",
        stf.ST_Transform(
            stf.ST_Centroid(
                stf.ST_H3ToGeom(F.array(F.conv(F.col("cell"), 16, 10).cast("long")))[0]
            ),
            F.lit("EPSG:4326"),
            F.lit(s.metric_crs),
        ).alias("geom_m"),
    )
    m = hotspots.morans_i(
        cells,
        geometry_col="geom_m",
        value_col="excess",
        distance_band_m=s.moran_band_km * 1000.0,
        id_col="cell",
    )
    log.info(
        "Moran's I (%s, %s): I=%.4f E[I]=%.4f z=%.2f p=%.3g n=%d",
        latest,
        "excess orders",
        m.i,
        m.expected_i,
        m.z,
        m.p,
        m.n,
    )
    return pd.DataFrame(
        [
            {
                "period": latest,
                "measure": "excess_orders",
                "band_km": s.moran_band_km,
                "moran_i": m.i,
                "expected_i": m.expected_i,
                "z": m.z,
                "p": m.p,
                "n": m.n,
            }
        ]
    )


def region_profiles_frame(og: DataFrame, lines: DataFrame, s: SpatialSettings) -> pd.DataFrame:
    """Weekday share of units per state (27 x 7): small enough to collect."""
    units = lines.select("order_id", "quantity").join(
        og.select("order_id", "uf", "order_date"), "order_id"
    )
    prof = to_pandas(
        units.where(F.col("uf").isNotNull())
        .groupBy("uf", F.dayofweek("order_date").alias("dow"))
        .agg(F.sum("quantity").alias("units"))
    )
    wide = prof.pivot(index="uf", columns="dow", values="units").fillna(0.0)
    wide = wide.div(wide.sum(axis=1), axis=0)
    names = {1: "sun", 2: "mon", 3: "tue", 4: "wed", 5: "thu", 6: "fri", 7: "sat"}
    wide.columns = [f"share_{names[int(c)]}" for c in wide.columns]
    return wide.reset_index()
