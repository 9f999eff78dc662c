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
# # The deep models
#
# Four stages after the decisions train and use two PyTorch models:
#
# * the **demand fusion model** forecasts daily units of the busiest SKU x warehouse series
#   (a temporal encoder plus region/H3 embeddings and the warehouse's order-weighted Gi\*
#   and distance features, with a quantile head: q10, q50, q90 and the service level's q95);
# * the **location-aware recommender** ranks SKUs for recently active customers from their
#   behaviour sequence, place and distances to warehouses.
#
# `prepare_training_data` writes time-split shards (restricted: raw ids), `train_models`
# trains with the configured backend (a local process, Spark's TorchDistributor or Horovod)
# and records every epoch (`gold.training_metrics`) and model (`gold.model_registry`),
# `batch_inference` scores (`gold.demand_predictions`, `gold.recommendations`) and
# `evaluate_models` compares both with baselines on the test split
# (`gold.model_evaluation`). All five tables are published (recommendations carry
# pseudonymised customer ids). This notebook reads them; it trains nothing.

# %%
import dataclasses
import os
import shutil
import tempfile

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from pyspark.sql import Window
from pyspark.sql import functions as F

from shikong.config import load_config
from shikong.io.catalog import Catalog
from shikong.session import build_session

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

# %% [markdown]
# ## 1. The model registry
#
# One row per trained model: where the file is, how it was trained (backend, processes,
# device), the best epoch and its validation loss, throughput, and the MLflow run. The
# scoring stage uses the latest model of each kind; so does this notebook.

# %%
registry = catalog.read(spark, "gold.model_registry").toPandas()
latest = registry.sort_values("trained_at").groupby("model_kind").tail(1).set_index("model_kind")
latest[
    [
        "run_id",
        "backend",
        "world_size",
        "device",
        "epochs_run",
        "best_epoch",
        "best_val_loss",
        "train_rows",
        "val_rows",
        "samples_per_s",
    ]
].round(3)

# %% [markdown]
# ## 2. Training curves
#
# Train and validation loss per epoch of the latest run of each model (pinball loss for
# demand, in-batch softmax cross-entropy plus the buyer head for the recommender). The
# best epoch, the one kept, is marked.

# %%
runs = [(kind, row.run_id) for kind, row in latest.iterrows()]
curves = (
    catalog.read(spark, "gold.training_metrics")
    .where(F.struct("model_kind", "run_id").isin([F.struct(F.lit(k), F.lit(r)) for k, r in runs]))
    .select("model_kind", "epoch", "train_loss", "val_loss", "lr", "is_best", "seconds")
    .orderBy("model_kind", "epoch")
    .toPandas()
)
kinds = sorted(curves["model_kind"].unique())
fig = make_subplots(rows=1, cols=len(kinds), subplot_titles=kinds)
for col, kind in enumerate(kinds, start=1):
    one = curves[curves["model_kind"] == kind]
    best = one[one["is_best"]]
    for name, color in (("train_loss", "#1f77b4"), ("val_loss", "#ff7f0e")):
        fig.add_trace(
            go.Scatter(
                x=one["epoch"],
                y=one[name],
                name=name,
                line={"color": color},
                legendgroup=name,
                showlegend=col == 1,
            ),
            row=1,
            col=col,
        )
    fig.add_trace(
        go.Scatter(
            x=best["epoch"],
            y=best["val_loss"],
            mode="markers",
            marker={"size": 12, "symbol": "star", "color": "crimson"},
            name="best epoch",
            showlegend=col == 1,
        ),
        row=1,
        col=col,
    )
    fig.update_xaxes(title_text="epoch", row=1, col=col)
fig.update_layout(title="Loss per epoch (latest run of each model)", height=400)
fig

# %% [markdown]
# The registry and the epoch log are written separately; they must tell the same story:
# the registered best epoch is the one flagged `is_best`, and its validation loss is the
# lowest of the run.

# %%
for kind, row in latest.iterrows():
    one = curves[curves["model_kind"] == kind]
    assert len(one) == row["epochs_run"], kind
    assert one.loc[one["is_best"], "epoch"].tolist() == [row["best_epoch"]], kind
    assert abs(one["val_loss"].min() - row["best_val_loss"]) < 1e-9, kind
curves.groupby("model_kind").agg(
    epochs=("epoch", "size"),
    first_val=("val_loss", "first"),
    best_val=("val_loss", "min"),
    seconds=("seconds", "sum"),
).round(3)

# %% [markdown]
# ## 3. Evaluation against baselines
#
# `gold.model_evaluation` scores each model on the test split, the days after every
# training and validation target:
#
# * demand: the fusion model vs the seasonal-naive forecast vs a per-series ARIMA, by
#   pinball loss and WAPE (lower is better) and 80% interval coverage (0.8 is right);
# * recommender: the model vs global popularity vs item co-occurrence, by Recall, NDCG and
#   hit rate at 10 (higher is better).

# %%
evaluation = (
    catalog.read(spark, "gold.model_evaluation")
    .where(
        F.struct("model_kind", "model_run_id").isin([F.struct(F.lit(k), F.lit(r)) for k, r in runs])
    )
    .toPandas()
)
tables = {
    kind: part.pivot(index="model", columns="metric", values="value")
    for kind, part in evaluation.groupby("model_kind")
}
tables["demand"].round(3)

# %%
tables["recommender"].round(3)

# %%
fig = make_subplots(rows=1, cols=2, subplot_titles=["demand", "recommender"])
for col, kind in enumerate(["demand", "recommender"], start=1):
    table = tables[kind]
    for model in table.index:
        fig.add_trace(
            go.Bar(x=table.columns, y=table.loc[model], name=f"{kind}: {model}"),
            row=1,
            col=col,
        )
fig.update_layout(title="Test-split metrics: models and baselines", barmode="group", height=420)
fig

# %% [markdown]
# ## 4. Demand predictions
#
# The fusion model's forecast from the day after the data, for every SKU x warehouse series
# (stock point): the median (q50) and the 10%-90% band. Below, the busiest series with its
# last eight weeks of history (`silver.sku_warehouse_daily`, the model's own series).

# %%
predictions = catalog.read(spark, "gold.demand_predictions")
origin = predictions.agg(F.max("origin")).first()[0]
# The current forecast is small (series x horizon days): one trip to pandas.
current = (
    predictions.where(F.col("origin") == origin)
    .select("series_id", "ds", "step", "q10", "q50", "q90")
    .toPandas()
)
# The model's quantile head cannot cross (each quantile is the previous plus a softplus),
# and the scorer clips at zero, which keeps the order: any crossing is a bug.
crossed = current[(current["q10"] > current["q50"]) | (current["q50"] > current["q90"])]
assert crossed.empty, crossed.head()
current.assign(band=current["q90"] - current["q10"]).groupby("step").agg(
    series=("series_id", "size"), units_q50=("q50", "sum"), mean_band=("band", "mean")
).head(7).round(2)

# %%
region_series = catalog.read(spark, "silver.sku_warehouse_daily")
busiest = (
    region_series.where(F.col("series_id").isin(sorted(current["series_id"].unique())))
    .groupBy("series_id")
    .agg(F.sum("y").alias("units"))
    .orderBy(F.desc("units"), "series_id")
    .first()["series_id"]
)
history = (
    region_series.where(F.col("series_id") == busiest)
    .select("ds", "y")
    .orderBy("ds")
    .toPandas()
    .tail(56)
)
fan = current[current["series_id"] == busiest].sort_values("ds")
fig = go.Figure(
    [
        go.Scatter(
            x=pd.concat([fan["ds"], fan["ds"][::-1]]),
            y=pd.concat([fan["q90"], fan["q10"][::-1]]),
            fill="toself",
            fillcolor="rgba(44,160,44,0.25)",
            line={"width": 0},
            name="q10-q90",
            hoverinfo="skip",
        ),
        go.Scatter(x=fan["ds"], y=fan["q50"], name="q50", line={"color": "green"}),
        go.Scatter(x=history["ds"], y=history["y"], name="observed", line={"color": "black"}),
    ]
)
fig.update_layout(
    title=f"{busiest}: fusion-model forecast from {origin}",
    xaxis_title="day",
    yaxis_title="units",
    height=420,
)
fig

# %% [markdown]
# ## 5. Recommendations
#
# The current top-K SKUs of every recently active customer (ids pseudonymised). Each
# customer's list is ranked 1..K without gaps, by non-increasing score.

# %%
recommendations = catalog.read(spark, "gold.recommendations")
by_customer = Window.partitionBy("customer_id").orderBy("rank")
broken = (
    recommendations.withColumn("expected_rank", F.row_number().over(by_customer))
    .withColumn("previous_score", F.lag("score").over(by_customer))
    .where((F.col("rank") != F.col("expected_rank")) | (F.col("score") > F.col("previous_score")))
    .count()
)
assert broken == 0, f"{broken} recommendation rows out of rank order"
recommendations.agg(
    F.countDistinct("customer_id").alias("customers"),
    F.max("rank").alias("k"),
    F.countDistinct("sku").alias("distinct_skus"),
    F.min("as_of").alias("as_of"),
).toPandas()

# %%
top_skus = (
    recommendations.groupBy("sku")
    .agg(
        F.count("*").alias("lists"),
        F.sum((F.col("rank") == 1).cast("int")).alias("ranked_first"),
        F.avg("rank").alias("mean_rank"),
    )
    .orderBy(F.desc("lists"))
    .limit(15)
    .toPandas()
)
fig = go.Figure(go.Bar(x=top_skus["sku"], y=top_skus["lists"], name="in top-K lists"))
fig.update_layout(
    title="The 15 SKUs in the most recommendation lists",
    yaxis_title="customers",
    height=380,
)
fig

# %%
spark.stop()
shutil.rmtree(scratch, ignore_errors=True)
