"""Stage ``spatial_features``: bronze -> silver/gold spatial features on Apache Sedona.

Extract bronze orders, lines, customers, warehouses and the packaged Brazil geography;
transform with :mod:`shikong.spatial` (:mod:`shikong.spatial.tables` builds each table);
load through the catalogue, which replaces every table whole: the stage recomputes all
customers, months and periods from all of bronze, so a month whose orders disappeared
leaves nothing behind. Geometry is stored as WKB.

Privacy (README "Privacy"): the silver working tables keep exact points and raw ids
(restricted). Every feature is computed from them first; only then are the published gold
tables protected at load: grid cells, hot-spot cells and state profiles with fewer than
``privacy.min_cell_customers`` distinct customers are removed (Gi* itself is computed on
every cell), and the customer clusters carry pseudonymised ids and H3-centroid
coordinates (``privacy.location_h3_resolution``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from sedona.spark.sql import st_constructors as stc
from sedona.spark.sql import st_functions as stf

from shikong.frames import first_row, to_pandas
from shikong.io import reference
from shikong.io.catalog import spec
from shikong.privacy import (
    NoisyRelease,
    ThresholdRelease,
    bound_contributions,
    calibrate,
    calibrate_threshold,
    coarsen_points,
    noisy_counts,
    pseudonymise,
    suppress_small_cells,
    threshold_counts,
)
from shikong.session import sql_settings, use_checkpoint_dir
from shikong.spatial import clusters, hotspots
from shikong.spatial import features as sf
from shikong.spatial import tables as st
from shikong.stages.context import StageContext, step

log = logging.getLogger(__name__)


def extract(ctx: StageContext, *, layer: str = "bronze") -> st.SpatialInputs:
    """Read the bronze tables of ``layer`` and the packaged geography."""

    def bronze(name: str) -> DataFrame:
        return ctx.catalog.read(ctx.spark, spec(f"bronze.{name}").in_layer(layer))

    return st.SpatialInputs(
        orders=bronze("orders"),
        lines=bronze("order_lines"),
        customers=bronze("customers"),
        warehouses=bronze("warehouses"),
        products=bronze("products"),
        states=st.states_geometry(reference.states(ctx.spark)),
        municipalities=st.municipalities_geometry(reference.municipalities(ctx.spark)),
    )


def _customers_and_orders(
    ctx: StageContext, inputs: st.SpatialInputs, whs: DataFrame
) -> tuple[DataFrame, DataFrame, dict[str, int]]:
    s = ctx.cfg.spatial
    spark, cat = ctx.spark, ctx.catalog
    counts: dict[str, int] = {}
    # One lookup of the 27 states for both joins (customers and orders): the grid index
    # when they are big enough to repay its build, else Sedona's plain broadcast join.
    n_points = inputs.customers.count() + inputs.orders.count()
    states = st.state_lookup(inputs.states, s, n_points=n_points)

    with step("spatial: customers_geo") as done:
        cat.write(
            spark,
            "silver.customers_geo",
            st.customers_geo(inputs.customers, inputs, whs, s, states=states),
        )
        cust_geo = cat.read(spark, "silver.customers_geo")
        counts["silver.customers_geo"] = cust_geo.count()
        done(counts["silver.customers_geo"])

    with step("spatial: orders_geo") as done:
        cat.write(
            spark,
            "silver.orders_geo",
            st.orders_geo(inputs.orders, cust_geo, whs, inputs, s, states=states),
        )
        og = cat.read(spark, "silver.orders_geo")
        stats = first_row(
            og.agg(
                F.count(F.lit(1)).alias("n"),
                F.count(F.when(F.col("uf").isNull(), 1)).alias("no_region"),
                F.count(F.when(~F.col("in_service_area"), 1)).alias("outside_service"),
                F.count(F.when(F.col("warehouse_mismatch"), 1)).alias("mismatch"),
            )
        )
        counts["silver.orders_geo"] = int(stats["n"])
        log.info(
            "orders_geo: %d orders, %d in no state, %d outside every service area, "
            "%d not served by their nearest warehouse",
            stats["n"],
            stats["no_region"],
            stats["outside_service"],
            stats["mismatch"],
        )
        done(int(stats["n"]))
    return cust_geo, og, counts


#: The grid tables of a differentially private release and their keys.
DP_TABLES = {
    "gold.grid_daily": ("cell", "order_date"),
    "gold.grid_daily_category": ("cell", "order_date", "category"),
}


def _dp_table(
    frame: DataFrame, keys: Sequence[str], sel: ThresholdRelease, orders: NoisyRelease
) -> tuple[DataFrame, int]:
    """One grid table released: its cells and ``customers`` by the threshold mechanism, then
    ``orders`` with noise on those cells; the exact sums and means are not published."""
    pdf = to_pandas(frame.select(*keys, "orders", "customers"))
    label = pdf[list(keys)].astype(str).agg("|".join, axis=1)
    chosen = threshold_counts(dict(zip(label, pdf["customers"].astype(int), strict=True)), sel)
    pub = pdf[label.isin(chosen.keys())].copy()
    pub["customers"] = label[pub.index].map(chosen).astype("int64")
    pub["orders"] = noisy_counts(pub["orders"].tolist(), orders)
    schema = T.StructType([frame.schema[c] for c in (*keys, "orders", "customers")])
    out = frame.sparkSession.createDataFrame(pub[[*keys, "orders", "customers"]], schema)
    return out, len(pdf)


def _dp_grid(
    ctx: StageContext, og: DataFrame, inputs: st.SpatialInputs
) -> tuple[DataFrame, DataFrame]:
    """The grid tables as a differentially private release (README "Privacy").

    Each customer's order lines are bounded to ``dp_max_lines_per_customer`` (m), so one
    customer is in at most m cells of a table, moves each cell's ``customers`` by 1 and the
    ``orders`` column by at most m in total. Per table, OpenDP's threshold mechanism
    releases which cells exist and their noisy ``customers`` (threshold >= k, at
    ``dp_delta``), then ``orders`` gets ``dp_mechanism`` noise on those cells: four parts
    sharing ``dp_epsilon`` evenly (sequential composition), each recorded in
    ``ops.privacy_budget`` under a new release id.
    """
    p, s = ctx.cfg.privacy, ctx.cfg.spatial
    m, share = p.dp_max_lines_per_customer, p.dp_epsilon / (2 * len(DP_TABLES))
    sel = calibrate_threshold(
        epsilon=share, delta=p.dp_delta, bound=m, per_key=1, floor=p.min_cell_customers
    )
    orders = calibrate(mechanism=p.dp_mechanism, epsilon=share, delta=p.dp_delta, sensitivity=m)
    bound = bound_contributions(max_rows=m, key=ctx.pseudonym_key)
    daily, by_cat = st.grid_frames(og, inputs.lines, inputs.products, s, bound=bound)
    released, ledger = {}, []
    for (table, keys), frame in zip(DP_TABLES.items(), (daily, by_cat), strict=True):
        out, cells = _dp_table(frame, keys, sel, orders)
        released[table] = out.withColumn("resolution", F.lit(s.grid_resolution)).withColumn(
            "month", F.date_format("order_date", "yyyy-MM")
        )
        ledger += [
            (
                table,
                "customers",
                "laplace-threshold",
                sel.epsilon,
                sel.delta,
                m,
                sel.scale,
                sel.threshold,
                cells,
            ),
            (
                table,
                "orders",
                orders.mechanism,
                orders.epsilon,
                orders.delta,
                m,
                orders.scale,
                None,
                cells,
            ),
        ]
    release_id = uuid.uuid4().hex
    budget = ctx.spark.createDataFrame(
        [(release_id, ctx.run_id, *row) for row in ledger],
        "release_id string, run_id string, table string, column string, mechanism string, "
        "epsilon double, delta double, sensitivity int, scale double, threshold int, cells long",
    ).withColumn("released_at", F.current_timestamp())
    ctx.catalog.write(ctx.spark, "ops.privacy_budget", budget)
    log.info(
        "DP release %s: epsilon %.4g (4 parts), threshold %d, scales %.3g / %.3g",
        release_id,
        p.dp_epsilon,
        sel.threshold,
        sel.scale,
        orders.scale,
    )
    return released["gold.grid_daily"], released["gold.grid_daily_category"]


def _hotspots(ctx: StageContext, grid: DataFrame, og: DataFrame, *, dp: bool = False) -> int:
    """Gi* on every cell of the unsuppressed grid; cells < k customers removed at load.

    ``dp``: ``grid`` is the differentially private release, and Gi* of it is
    post-processing; its cells were chosen by the threshold mechanism, so no exact count
    decides which hot-spot cells are published."""
    s = ctx.cfg.spatial
    spark, cat = ctx.spark, ctx.catalog
    obs = st.hotspot_input(grid, s).cache()
    with sql_settings(spark, hotspots.REQUIRED_SQL_SETTINGS):
        gi = hotspots.getis_ord_gi_star_h3(
            obs,
            cell_col="cell",
            value_col="excess",
            k_ring=s.hotspot_k_ring,
            time_col="period_index",
            time_steps=s.hotspot_time_steps,
        )
    out = gi.select(
        "period",
        "cell",
        F.lit(s.grid_resolution).alias("resolution"),
        "orders",
        "expected",
        "excess",
        "gi_z",
        "gi_p",
        "gi_p_fdr",
        "hotspot_class",
    )
    if not dp:
        out = (
            out.join(st.hotspot_customers(og, s), ["period", "cell"], "left")
            .fillna(0, subset=["customers"])
            .transform(suppress_small_cells(k=ctx.cfg.privacy.min_cell_customers))
            .drop("customers")
        )
    # One task per period: otherwise every task writes a small file into every period.
    cat.write(spark, "gold.hotspots", out.repartition("period"))
    n = cat.read(spark, "gold.hotspots").count()
    cat.write(spark, "gold.spatial_autocorrelation", spark.createDataFrame(st.global_moran(obs, s)))
    obs.unpersist()
    return n


def _clusters(ctx: StageContext, cust_geo: DataFrame) -> int:
    s = ctx.cfg.spatial
    spark, cat = ctx.spark, ctx.catalog
    pts = (
        cust_geo.where(F.col("lat").isNotNull())
        .select("customer_id", stc.ST_GeomFromWKB("geom_wkb").alias("geom"))
        .transform(sf.to_crs(geom_col="geom", out_col="geom_m", target_crs=s.metric_crs))
        .select(
            "customer_id",
            "geom_m",
            stf.ST_X(F.col("geom_m")).alias("x_m"),
            stf.ST_Y(F.col("geom_m")).alias("y_m"),
        )
    )
    # DBSCAN's neighbour pairs grow with the square of local density (a city centre
    # holds thousands of customers within eps), so it runs on a seeded hash sample;
    # customers outside the sample keep a null cluster and dbscan_sampled = false.
    sampled = (
        pts.orderBy(F.xxhash64("customer_id")).limit(s.dbscan_sample) if s.dbscan_sample else pts
    )
    # DBSCAN checkpoints (connected components): on storage every executor reaches.
    use_checkpoint_dir(spark, ctx.cfg.checkpoint_location)
    db = clusters.dbscan_clusters(
        sampled,
        geometry_col="geom_m",
        eps_m=s.dbscan_eps_m,
        min_pts=s.dbscan_min_pts,
        cluster_col="dbscan_cluster",
    ).select("customer_id", "dbscan_cluster", "is_core", F.lit(True).alias("dbscan_sampled"))
    with_db = pts.drop("geom_m").join(db, "customer_id", "left").fillna({"dbscan_sampled": False})
    out, k, sil = clusters.kmeans_by_silhouette(
        with_db,
        x_col="x_m",
        y_col="y_m",
        k_range=(s.kmeans_k_min, s.kmeans_k_max),
        sample=s.kmeans_sample,
    )
    log.info("K-means: k=%d chosen by silhouette %s", k, {kk: round(v, 3) for kk, v in sil.items()})
    # Clusters come from the exact metric points; the published row carries the customer's
    # H3-centroid location and pseudonym instead.
    published = (
        out.drop("x_m", "y_m")
        .join(cust_geo.select("customer_id", "lat", "lon"), "customer_id", "left")
        .transform(
            coarsen_points(
                lat_col="lat", lon_col="lon", resolution=ctx.cfg.privacy.location_h3_resolution
            )
        )
        .transform(pseudonymise(cols=["customer_id"], key=ctx.pseudonym_key))
    )
    cat.write(spark, "gold.customer_clusters", published)
    return cat.read(spark, "gold.customer_clusters").count()


def run(ctx: StageContext, *, layer: str = "bronze") -> dict[str, int]:
    """Spatial features: regions, grids, hot spots and clusters (Sedona) into silver/gold.

    Args:
        ctx: Stage context.
        layer: Bronze layer to read (``bronze``, ``bronze_olist``).

    Returns:
        Row counts per table written.
    """
    s = ctx.cfg.spatial
    spark, cat = ctx.spark, ctx.catalog
    inputs = extract(ctx, layer=layer)
    whs = st.warehouse_points(inputs.warehouses, s).cache()
    cust_geo, og, counts = _customers_and_orders(ctx, inputs, whs)

    with step("spatial: service_zones") as done:
        cat.write(spark, "gold.service_zones", st.service_zones(whs, inputs.states, s))
        repaired = inputs.states.where(~stf.ST_IsValid(F.col("geom"))).count()
        log.info("service_zones: %d state polygons needed ST_MakeValid", repaired)
        counts["gold.service_zones"] = cat.read(spark, "gold.service_zones").count()
        if not counts["gold.service_zones"]:
            # Real sellers (Olist) state no service radius: no zone, and no order in one.
            log.warning("service_zones: no warehouse states a service radius; no zones")
        done(counts["gold.service_zones"])

    k = ctx.cfg.privacy.min_cell_customers
    with step("spatial: grid") as done:
        daily, by_cat = st.grid_frames(og, inputs.lines, inputs.products, s)
        # Hot spots need every cell: the published grid loses its small cells.
        grid = daily.persist(StorageLevel.MEMORY_AND_DISK)
        dp = ctx.cfg.privacy.dp_epsilon > 0
        pub_daily, pub_cat = _dp_grid(ctx, og, inputs) if dp else (grid, by_cat)
        cat.write(spark, "gold.grid_daily", pub_daily.transform(suppress_small_cells(k=k)))
        cat.write(spark, "gold.grid_daily_category", pub_cat.transform(suppress_small_cells(k=k)))
        counts["gold.grid_daily"] = cat.read(spark, "gold.grid_daily").count()
        done(counts["gold.grid_daily"])

    with step("spatial: hotspots") as done:
        counts["gold.hotspots"] = _hotspots(ctx, pub_daily if dp else grid, og, dp=dp)
        grid.unpersist()
        done(counts["gold.hotspots"])

    with step("spatial: clusters") as done:
        counts["gold.customer_clusters"] = _clusters(ctx, cust_geo)
        done(counts["gold.customer_clusters"])

    with step("spatial: region_profiles") as done:
        prof = st.region_profiles_frame(og, inputs.lines, s)
        big = st.state_customers(og).transform(suppress_small_cells(k=k))
        prof = prof[prof["uf"].isin({r["uf"] for r in big.select("uf").collect()})]
        n = min(s.region_clusters, len(prof))
        wide = prof.set_index("uf")
        clustered = (
            clusters.hierarchical_region_profiles(wide, n_clusters=n)
            if n >= 2
            else wide.assign(cluster=0)
        ).reset_index()
        cat.write(spark, "gold.region_profiles", spark.createDataFrame(clustered))
        counts["gold.region_profiles"] = len(clustered)
        done(len(clustered))
    whs.unpersist()
    return counts
