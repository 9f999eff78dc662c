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
# # Quick start: what is in a shikong lakehouse
#
# shikong turns an e-commerce platform's raw orders, events, inventory and locations into
# Delta tables: validated **bronze** rows, **silver** working tables and **gold** features,
# forecasts and decisions. This notebook opens a lakehouse that `shikong run` has already
# built (the small demo world: 12 warehouses, 5,000 customers, 90 days) and looks around:
#
# 1. one Spark session with Sedona and Delta, built from a config profile;
# 2. every table, its row count, and whether it is *published* or *restricted*;
# 3. what ingest accepted and rejected;
# 4. orders per day;
# 5. how the stages that wrote all this are run.
#
# Set `SHIKONG_LAKEHOUSE` to the lakehouse before starting the kernel, e.g. after
# `shikong run --config small --lakehouse /tmp/small-lakehouse`. The notebook only reads.

# %%
import dataclasses
import os
import shutil
import tempfile

import pandas as pd
import plotly.graph_objects as go
from pyspark.sql import functions as F

from shikong.config import load_config
from shikong.io.catalog import TABLES, Catalog
from shikong.session import build_session
from shikong.stages import registry

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
pd.set_option("display.width", 140)
spark.version, cfg.paths.lakehouse

# %% [markdown]
# ## The tables
#
# `Catalog.list_tables` finds every Delta table under the lakehouse and counts its rows;
# the catalogue (`shikong.io.catalog.TABLES`) says what each one is. Tables are either
# **published** (they may leave the lakehouse: ids pseudonymised, coordinates coarsened to
# an H3 cell, cells with fewer than 5 customers removed) or **restricted** (raw data and
# working tables, with the reason). Notebooks that run inside the lakehouse may read
# restricted tables; anything shown from them here is an aggregate.

# %%
tables = pd.DataFrame(
    [
        {
            "table": t.name,
            "rows": t.rows,
            "version": t.version,
            "published": TABLES[t.name].published if t.name in TABLES else None,
            "what": TABLES[t.name].description if t.name in TABLES else "",
        }
        for t in catalog.list_tables(spark)
    ]
).sort_values("table", ignore_index=True)
tables

# %%
tables.groupby(tables["table"].str.split(".").str[0]).agg(
    tables=("table", "size"), rows=("rows", "sum"), published=("published", "sum")
)

# %% [markdown]
# Why a restricted table stays restricted, in the catalogue's own words:

# %%
pd.DataFrame(
    [
        {"table": name, "restricted because": spec.restricted_reason}
        for name, spec in TABLES.items()
        if not spec.published and name in set(tables["table"])
    ]
)

# %% [markdown]
# ## What ingest accepted and rejected
#
# Every raw row is either accepted into bronze or quarantined with a reason code;
# `ops.run_log` keeps the tally per landing file. The check below is the ingest contract:
# rows in = rows accepted + rows rejected, for every file.

# %%
run_log = catalog.read(spark, "ops.run_log").where(F.col("job") == "ingest")
per_source = (
    run_log.where(F.col("source_file") != "*")  # "*" rows are the stage's own status rows
    .groupBy("source")
    .agg(
        F.count("*").alias("files"),
        F.sum("rows_in").alias("rows_in"),
        F.sum("rows_accepted").alias("accepted"),
        F.sum("rows_rejected").alias("rejected"),
    )
    .orderBy("source")
    .toPandas()
)
assert (per_source["rows_in"] == per_source["accepted"] + per_source["rejected"]).all()
per_source

# %%
reasons = (
    catalog.read(spark, "bronze.quarantine")
    .groupBy("source", "reason")
    .count()
    .orderBy("source", F.desc("count"))
    .toPandas()
)
reasons.pivot(index="reason", columns="source", values="count").fillna(0).astype(int)

# %% [markdown]
# ## Orders per day
#
# Aggregate in Spark, bring only the small result to pandas: 90 days x 4 statuses here,
# whatever the size of `bronze.orders`.

# %%
daily = (
    catalog.read(spark, "bronze.orders")
    .groupBy("order_date", "status")
    .count()
    .orderBy("order_date")
    .toPandas()
)
per_day = daily.pivot(index="order_date", columns="status", values="count").fillna(0)
per_day.describe().round(1)

# %%
fig = go.Figure(
    [go.Bar(x=per_day.index, y=per_day[status], name=status) for status in per_day.columns]
)
fig.update_layout(
    barmode="stack",
    title="Orders per day by status (bronze.orders)",
    xaxis_title="order date",
    yaxis_title="orders",
    height=380,
)
fig

# %% [markdown]
# The weekly rhythm of the generated world: mean orders per weekday.

# %%
weekday = per_day.sum(axis=1).groupby(pd.to_datetime(per_day.index).day_name()).mean()
weekday.reindex(
    ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
).round(1).rename("mean orders")

# %% [markdown]
# ## Running the stages
#
# Every table above was written by one stage of the registry
# (`shikong.stages.registry.STAGES`); a stage depends on the earlier stages that write what
# it reads.

# %%
pd.DataFrame(
    [
        {
            "stage": s.name,
            "job": s.job,
            "reads": ", ".join(s.reads),
            "writes": ", ".join(s.writes),
            "deep model": s.models,
        }
        for s in registry.STAGES
    ]
)

# %% [markdown]
# From a shell (not run here: this notebook only reads):
#
# ```bash
# # the whole small world: generate, ingest, every stage (a few minutes on a laptop)
# shikong run --config small --lakehouse /tmp/small-lakehouse
# # re-run some stages only, e.g. after changing spatial settings in conf/small.yaml
# shikong run --config small --lakehouse /tmp/small-lakehouse --only spatial series forecast
# # one stage on its own, and the table list printed above
# shikong spatial --config small --lakehouse /tmp/small-lakehouse
# shikong tables --config small --lakehouse /tmp/small-lakehouse
# ```
#
# Next: `02_spatial_analysis` (joins, grids, hot spots, clusters),
# `03_forecasting_and_inventory` and `04_deep_models`.

# %%
spark.stop()
shutil.rmtree(scratch, ignore_errors=True)
