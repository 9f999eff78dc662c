# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Spatial analysis: joins, the H3 grid, hot spots and customer clusters
#
# The `spatial` stage places every order and customer in Brazil with Apache Sedona: the
# state it falls in, its H3 cells, distances to warehouses; then it aggregates demand on an
# H3 grid, finds space-time hot spots with Getis-Ord Gi\* and clusters customers. This
# notebook repeats the core spatial join by hand on a sample, checks it against an
# independent computation, and maps the stage's published results.
#
# Maps use plotly's `Scattermap` / `Choroplethmap` on a blank background
# (`map_style="white-bg"`): no tile server is needed, so they render offline.
#
# **Data access.** `bronze.*` and `silver.*` are *restricted* tables (raw ids, exact
# points). A notebook running inside the lakehouse may read them, as the stages do; what
# this notebook shows from them is aggregated (counts per state or cell). The `gold` tables
# mapped below are *published*: customer ids pseudonymised, coordinates coarsened to the
# centroid of their H3 cell, cells with fewer than 5 customers removed.

# %%
import dataclasses
import json
import os
import shutil
import tempfile

import pandas as pd
import plotly.graph_objects as go
import shapely
from IPython.display import display
from pyspark.sql import functions as F

from shikong.config import load_config
from shikong.geo_resources import load_states
from shikong.io import reference
from shikong.io.catalog import Catalog
from shikong.session import build_session
from shikong.spatial.tables import states_geometry

if not os.environ.get("SHIKONG_LAKEHOUSE"):
    raise RuntimeError(
        "set SHIKONG_LAKEHOUSE to a lakehouse built by `shikong run --config small` "
        "before starting the kernel"
    )
# The profile: `small` unless SHIKONG_CONFIG names another (a name in conf/ or a YAML
# file). The notebook tests pass a copy of the small profile with their own Spark settings
# (local[2], two shuffle partitions) so that this kernel's JVM stays small.
cfg = load_config(os.environ.get("SHIKONG_CONFIG", "small"), env=os.environ)
# A reading session: the scratch Spark writes at start (a checkpoint folder) and the SQL
# warehouse go to a temporary folder, so nothing of this notebook lands in the lakehouse.
# The JVM's console progress bars would otherwise fill the cells' output.
scratch = tempfile.mkdtemp(prefix="shikong-notebook-")
cfg = dataclasses.replace(
    cfg,
    spark=dataclasses.replace(
        cfg.spark,
        conf={
            **cfg.spark.conf,
            "spark.sql.warehouse.dir": f"{scratch}/warehouse",
            "spark.ui.showConsoleProgress": "false",
        },
    ),
    spatial=dataclasses.replace(cfg.spatial, checkpoint_dir=f"{scratch}/checkpoints"),
)
spark = build_session(cfg)
catalog = Catalog(cfg.paths.lakehouse)

# Every map: Brazil on a blank background.
BRAZIL = {"center": {"lat": -15.0, "lon": -52.0}, "zoom": 2.6, "style": "white-bg"}

# %% [markdown]
# State borders for every map: the packaged state polygons (`shikong.geo_resources`) drawn
# as lines.

# %%
states_pd = load_states()
state_shapes = dict(zip(states_pd["uf"], shapely.from_wkt(states_pd["wkt"]), strict=True))


def border_trace() -> go.Scattermap:
    """The state borders as one line trace (rings separated by gaps)."""
    lons: list[float | None] = []
    lats: list[float | None] = []
    for shape in state_shapes.values():
        for ring in shapely.get_exterior_ring(shapely.get_parts(shape)):
            xy = shapely.get_coordinates(ring)
            lons += [*xy[:, 0], None]
            lats += [*xy[:, 1], None]
    return go.Scattermap(
        lon=lons,
        lat=lats,
        mode="lines",
        line={"width": 0.7, "color": "#777"},
        hoverinfo="skip",
        showlegend=False,
    )


# %% [markdown]
# ## 1. A spatial join: orders to states
#
# A 10% sample of `bronze.orders` (chosen by a hash of the order id, so the same orders
# every run) joined to the 27 state polygons with `ST_Contains`. Sedona plans it as a
# spatial join rather than a cross product filtered row by row: here the states are few, so
# it broadcasts them with an R-tree index (`BroadcastIndexJoin` over `SpatialIndex` in the
# physical plan); two large sides would get a partitioned `RangeJoin`.

# %%
sample = (
    catalog.read(spark, "bronze.orders")
    .where(F.col("lat").isNotNull() & F.col("lon").isNotNull())
    .where(F.pmod(F.xxhash64("order_id"), F.lit(10)) == 0)
    .select("order_id", "lat", "lon")
    .withColumn("geom", F.expr("ST_Point(lon, lat)"))
)
states = states_geometry(reference.states(spark))
sample.createOrReplaceTempView("order_sample")
states.createOrReplaceTempView("states")
query = """
    SELECT o.order_id, s.uf, s.region
    FROM order_sample o JOIN states s ON ST_Contains(s.geom, o.geom)
"""
joined = spark.sql(query)
plan = spark.sql(f"EXPLAIN {query}").first()[0]
# A spatial join operator, not a nested loop over every order x state pair.
assert "BroadcastIndexJoin" in plan or "RangeJoin" in plan, plan
print("\n".join(line for line in plan.splitlines() if "Join" in line or "SpatialIndex" in line))

# %%
sedona_uf = joined.select("order_id", "uf").toPandas()
sample_pd = sample.select("order_id", "lat", "lon").toPandas()
per_state = (
    sedona_uf.groupby("uf").size().rename("orders").sort_values(ascending=False).reset_index()
)
print(f"{len(sample_pd):,} sampled orders, {len(sedona_uf):,} inside a state")
per_state.head(10)

# %% [markdown]
# ### An independent check
#
# The same sample, the same polygons, with shapely's vectorised point-in-polygon
# (`shapely.contains_xy`, GEOS) on the driver instead of Sedona (JTS) on the executors.
# Every order must land in the same state, and the orders outside every state (points at
# sea or abroad) must be the same ones; the notebook stops here if they differ.

# %%
shapely_uf = pd.Series(pd.NA, index=sample_pd.index, dtype="string")
for uf, shape in state_shapes.items():
    inside = shapely.contains_xy(shape, sample_pd["lon"].to_numpy(), sample_pd["lat"].to_numpy())
    shapely_uf[inside] = uf
check = sample_pd.assign(shapely_uf=shapely_uf).merge(sedona_uf, on="order_id", how="left")
mismatch = check[check["uf"].fillna("-") != check["shapely_uf"].fillna("-")]
assert mismatch.empty, mismatch.head()
assert len(sedona_uf) == check["shapely_uf"].notna().sum()
pd.DataFrame(
    {
        "sampled": [len(check)],
        "in a state (Sedona)": [check["uf"].notna().sum()],
        "in a state (shapely)": [check["shapely_uf"].notna().sum()],
        "outside every state": [check["uf"].isna().sum()],
        "disagreements": [len(mismatch)],
    }
)

# %% [markdown]
# The stage's own assignment (`silver.orders_geo.uf`) for the same orders: it joins the
# states after subdividing them into small pieces (a grid index), so this also checks the
# stage against the plain join above.

# %%
stage_uf = (
    catalog.read(spark, "silver.orders_geo")
    .join(sample.select("order_id"), "order_id")
    .select("order_id", F.col("uf").alias("stage_uf"))
    .toPandas()
)
versus = check.merge(stage_uf, on="order_id", how="left")
agree = (versus["uf"].fillna("-") == versus["stage_uf"].fillna("-")).mean()
# Subdividing changes the index, not the polygons: the answers must be the same.
assert agree == 1.0, versus[versus["uf"].fillna("-") != versus["stage_uf"].fillna("-")].head()
print(f"stage and notebook agree on {agree:.2%} of the sampled orders")

# %%
fig = go.Figure(
    [
        go.Choroplethmap(
            geojson={
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "id": uf, "geometry": shapely.geometry.mapping(shape)}
                    for uf, shape in state_shapes.items()
                ],
            },
            locations=per_state["uf"],
            z=per_state["orders"],
            colorscale="Blues",
            marker={"line": {"width": 0.5, "color": "#555"}},
            colorbar={"title": "orders"},
            hovertemplate="%{location}: %{z} orders<extra></extra>",
        )
    ]
)
fig.update_layout(
    map=BRAZIL, title="Sampled orders per state (Sedona join)", height=520, margin={"t": 40}
)
fig

# %% [markdown]
# ## 2. The H3 grid
#
# Each order carries its H3 cell at resolution 6 (about 36 km² per hexagon) and 8
# (`silver.orders_geo.h3_r6`, `h3_r8`). Counting orders per cell in Spark and turning each
# cell id back into its hexagon with Sedona's `ST_H3ToGeom` gives a demand map that needs
# no administrative boundary at all. (The published `gold.grid_daily` is the same grid per
# day, with cells of fewer than 5 customers removed.)


# %%
def with_hexagon(df, cell_col: str = "cell"):
    """Add ``geojson``: the H3 cell's hexagon (Sedona takes the id as a 64-bit integer)."""
    return (
        df.withColumn("cell_id", F.conv(F.col(cell_col), 16, 10).cast("bigint"))
        .withColumn("geojson", F.expr("ST_AsGeoJSON(ST_H3ToGeom(array(cell_id))[0])"))
        .drop("cell_id")
    )


def cell_collection(cells: pd.DataFrame, cell_col: str = "cell") -> dict:
    """A GeoJSON FeatureCollection of the cells' hexagons, keyed by cell id."""
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": c, "geometry": json.loads(g)}
            for c, g in zip(cells[cell_col], cells["geojson"], strict=True)
        ],
    }


grid = (
    catalog.read(spark, "silver.orders_geo")
    .where(F.col("h3_r6").isNotNull())
    .groupBy(F.col("h3_r6").alias("cell"))
    .agg(F.count("*").alias("orders"), F.countDistinct("customer_id").alias("customers"))
    .transform(with_hexagon)
    .toPandas()
)
grid.drop(columns="geojson").describe().round(1)

# %%
fig = go.Figure(
    [
        go.Choroplethmap(
            geojson=cell_collection(grid),
            locations=grid["cell"],
            z=grid["orders"].clip(upper=grid["orders"].quantile(0.98)),
            colorscale="YlOrRd",
            marker={"line": {"width": 0}},
            colorbar={"title": "orders"},
            customdata=grid["orders"],
            hovertemplate="%{location}: %{customdata} orders<extra></extra>",
        ),
        border_trace(),
    ]
)
fig.update_layout(
    map=BRAZIL,
    title=f"Orders per H3 cell (resolution 6, {len(grid):,} cells)",
    height=520,
    margin={"t": 40},
)
fig

# %% [markdown]
# ## 3. Hot spots (Getis-Ord Gi\*)
#
# Raw counts only rediscover that cities are big. The stage measures each cell-week's
# *excess* over its own expectation (a Freeman-Tukey residual), then Gi\* compares a cell's
# neighbourhood (its rings up to `k = 2` and the weeks before and after) with the whole
# map: `gi_z` is a z-score, `gi_p_fdr` the p-value after Benjamini-Hochberg, and
# `hotspot_class` says hot or cold at 95 / 99%. `gold.hotspots` is published: cell-weeks
# with fewer than 5 customers are removed after Gi\* is computed on all of them.

# %%
hotspots = catalog.read(spark, "gold.hotspots")
by_week = (
    hotspots.groupBy("period")
    .agg(
        F.count("*").alias("cells"),
        F.sum(F.col("hotspot_class").startswith("hot").cast("int")).alias("hot"),
        F.sum(F.col("hotspot_class").startswith("cold").cast("int")).alias("cold"),
        F.max("gi_z").alias("max_z"),
    )
    .orderBy("period")
    .toPandas()
)
by_week

# %%
# The week with the most hot cells (the strongest one on a tie), as hexagons coloured by z.
week = by_week.sort_values(["hot", "max_z"]).iloc[-1]["period"]
cells = (
    hotspots.where(F.col("period") == week)
    .select("cell", "orders", "expected", "gi_z", "gi_p_fdr", "hotspot_class")
    .transform(with_hexagon)
    .toPandas()
)
limit = max(3.0, cells["gi_z"].abs().max())
fig = go.Figure(
    [
        go.Choroplethmap(
            geojson=cell_collection(cells),
            locations=cells["cell"],
            z=cells["gi_z"],
            zmin=-limit,
            zmax=limit,
            colorscale="RdBu_r",
            marker={"line": {"width": 0.5, "color": "#333"}},
            colorbar={"title": "Gi* z"},
            text=cells["hotspot_class"],
            hovertemplate="%{location}<br>z=%{z:.2f} (%{text})<extra></extra>",
        ),
        border_trace(),
    ]
)
fig.update_layout(
    map=BRAZIL, title=f"Gi* hot and cold spots, week of {week}", height=520, margin={"t": 40}
)
fig

# %%
cells.drop(columns="geojson").sort_values("gi_z", ascending=False).head(10).round(3)

# %% [markdown]
# Global Moran's I of the same excess (one number per run): positive and significant means
# neighbouring cells look alike, which is what makes local hot spots worth looking for.

# %%
catalog.read(spark, "gold.spatial_autocorrelation").toPandas()

# %% [markdown]
# ## 4. Customer clusters
#
# `gold.customer_clusters` holds two clusterings of the customers, computed from their
# exact metric coordinates (EPSG:5880) inside the stage: DBSCAN (dense neighbourhoods of
# 20+ customers within 3 km, on a seeded sample; `-1` is noise) and K-means with k chosen
# by silhouette. The published rows carry pseudonymised ids and H3-centroid coordinates.

# %%
clusters = catalog.read(spark, "gold.customer_clusters")
summary = (
    clusters.groupBy("kmeans_cluster")
    .agg(
        F.count("*").alias("customers"),
        F.avg("lat").alias("mean_lat"),
        F.avg("lon").alias("mean_lon"),
        F.sum((F.col("dbscan_cluster") >= 0).cast("int")).alias("in_a_dbscan_cluster"),
    )
    .orderBy("kmeans_cluster")
    .toPandas()
)
dbscan = (
    clusters.where(F.col("dbscan_sampled"))
    .groupBy(F.when(F.col("dbscan_cluster") < 0, "noise").otherwise("clustered").alias("dbscan"))
    .agg(
        F.count("*").alias("customers"),
        F.countDistinct(F.when(F.col("dbscan_cluster") >= 0, F.col("dbscan_cluster"))).alias(
            "clusters"
        ),
    )
    .toPandas()
)
display(dbscan)
summary.round(2)

# %%
points = clusters.select("lat", "lon", "kmeans_cluster", "dbscan_cluster").toPandas()
fig = go.Figure(
    [border_trace()]
    + [
        go.Scattermap(
            lat=part["lat"],
            lon=part["lon"],
            mode="markers",
            marker={"size": 4, "opacity": 0.6},
            name=f"K-means {k} ({len(part):,})",
        )
        for k, part in points.groupby("kmeans_cluster")
    ]
)
fig.update_layout(
    map=BRAZIL,
    title="Customers by K-means cluster (H3-centroid locations)",
    height=520,
    margin={"t": 40},
)
fig

# %%
spark.stop()
shutil.rmtree(scratch, ignore_errors=True)
