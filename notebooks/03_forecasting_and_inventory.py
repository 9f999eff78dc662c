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
# # Forecasting and inventory
#
# Three stages turn orders into stock decisions:
#
# * `series` builds one cleaned daily demand series per SKU x warehouse
#   (`silver.sku_daily`: raw, observed and cleaned values, outlier and imputation flags);
# * `forecast` fits a model per series (SARIMA from a pruned order search, with SBA for
#   intermittent series and ETS or naive fallbacks) and forecasts 28 days with 80% and 95%
#   intervals (`gold.forecasts`), then backtests it on rolling origins against the seasonal
#   naive forecast (`gold.forecast_metrics`);
# * `policy` derives safety stock, reorder point and order quantity from the forecasts and
#   the latest inventory snapshot (`gold.inventory_policy`) and replays the last weeks of
#   demand under that policy and under a naive one (`gold.policy_simulation`).
#
# All of these tables are published: they hold no customer data.

# %%
import dataclasses
import os
import shutil
import tempfile

import numpy as np
import pandas as pd
import plotly.graph_objects as go
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
# ## 1. The forecasts
#
# `gold.forecasts` keeps every run date as history; the latest run is the current plan.
# Each row is one series x day ahead, with the model that produced it and why that model
# (`reason`: `ok`, `intermittent`, `too_short`...).

# %%
forecasts_all = catalog.read(spark, "gold.forecasts")
run_date = forecasts_all.agg(F.max("run_date")).first()[0]
forecasts = forecasts_all.where(F.col("run_date") == run_date)
(
    forecasts.where(F.col("step") == 1)
    .groupBy(F.regexp_extract("model", r"^[A-Za-z]+", 0).alias("model family"), "reason")
    .count()
    .orderBy(F.desc("count"))
    .toPandas()
)

# %% [markdown]
# ### A fan chart of the busiest series
#
# The busiest SKU x warehouse series by observed units, its last eight weeks of history
# and the 28-day forecast with its 80% and 95% intervals.

# %%
series = catalog.read(spark, "silver.sku_daily")
busiest = (
    series.groupBy("series_id")
    .agg(F.sum("y_obs").alias("units"))
    .orderBy(F.desc("units"), "series_id")
    .first()["series_id"]
)
history = (
    series.where(F.col("series_id") == busiest)
    .select("ds", "y_obs", "y_clean", "is_outlier", "is_imputed")
    .orderBy("ds")
    .toPandas()
    .tail(56)
)
fan = forecasts.where(F.col("series_id") == busiest).orderBy("ds").toPandas()
fan[["ds", "yhat", "lo80", "hi80", "lo95", "hi95", "model"]].head()


# %%
def band(lo: pd.Series, hi: pd.Series, x: pd.Series, name: str, color: str) -> go.Scatter:
    """A closed interval band: along the upper bound, back along the lower one."""
    return go.Scatter(
        x=pd.concat([x, x[::-1]]),
        y=pd.concat([hi, lo[::-1]]),
        fill="toself",
        fillcolor=color,
        line={"width": 0},
        name=name,
        hoverinfo="skip",
    )


fig = go.Figure(
    [
        band(fan["lo95"], fan["hi95"], fan["ds"], "95% interval", "rgba(31,119,180,0.15)"),
        band(fan["lo80"], fan["hi80"], fan["ds"], "80% interval", "rgba(31,119,180,0.3)"),
        go.Scatter(x=fan["ds"], y=fan["yhat"], name=f"forecast ({fan['model'].iloc[0]})"),
        go.Scatter(x=history["ds"], y=history["y_obs"], name="observed", line={"color": "black"}),
    ]
)
fig.update_layout(
    title=f"{busiest}: history and 28-day forecast (run {run_date})",
    xaxis_title="day",
    yaxis_title="units",
    height=420,
)
fig

# %% [markdown]
# ## 2. Backtests: better than seasonal naive?
#
# `gold.forecast_metrics` scores the chosen model and the seasonal-naive forecast (the
# same weekday last week) on the same rolling origins (`fold`), each over 28 days. MASE
# divides the mean absolute error by the in-sample MAE of the seasonal-naive forecast:
# below 1 beats that naive forecast's in-sample error. WAPE is pooled over series
# (sum of absolute errors / sum of actuals); coverage is the share of days inside the
# interval (nominal 80% and 95%).

# %%
metrics = catalog.read(spark, "gold.forecast_metrics").where(F.col("run_date") == run_date)
metrics.groupBy("model").agg(
    F.count("*").alias("series_folds"),
    F.avg("mase").alias("mean_mase"),
    F.percentile_approx("mase", 0.5).alias("median_mase"),
    (F.sum("sum_abs_error") / F.sum("sum_abs_actual")).alias("wape"),
    F.avg("coverage80").alias("coverage80"),
    F.avg("coverage95").alias("coverage95"),
).orderBy("model").toPandas().round(3)

# %%
paired = (
    metrics.groupBy("series_id", "fold")
    .pivot("model", ["chosen", "seasonal_naive"])
    .agg(F.first("mase"))
    .toPandas()
    .dropna()
)
wins = (paired["chosen"] < paired["seasonal_naive"]).mean()
top = float(np.nanmax(paired[["chosen", "seasonal_naive"]].to_numpy()))
fig = go.Figure(
    [
        go.Scatter(
            x=paired["seasonal_naive"],
            y=paired["chosen"],
            mode="markers",
            text=paired["series_id"] + " fold " + paired["fold"].astype(str),
            name="series x fold",
        ),
        go.Scatter(x=[0, top], y=[0, top], mode="lines", line={"dash": "dot"}, name="equal"),
    ]
)
fig.update_layout(
    title=f"MASE per series and fold: the chosen model wins {wins:.0%} of them (below the line)",
    xaxis_title="seasonal naive MASE",
    yaxis_title="chosen model MASE",
    height=450,
)
fig

# %% [markdown]
# ### An independent check of the MASE
#
# Recompute the seasonal-naive rows from the series alone, in plain pandas: for each
# series and origin, forecast the 28 days after the origin by repeating the last week of
# the cleaned series (`y_clean`, clipped at 0), score it on the observed values (`y_obs`;
# days without an observation are skipped), and scale by the in-sample MAE of the lag-7
# forecast on the observed values up to the origin (undefined, NaN, when that is 0). The
# notebook stops here if any series-fold differs from the table.

# %%
# The backtest scores as many days as the forecasts run ahead; the season is the profile's.
HORIZON = int(forecasts.agg(F.max("step")).first()[0])
SEASON = cfg.timeseries.season
history_pd = (
    series.select("series_id", "ds", "y_obs", "y_clean").toPandas().sort_values(["series_id", "ds"])
)
naive_pd = (
    metrics.where(F.col("model") == "seasonal_naive")
    .select("series_id", "fold", "origin", "mase", "mae", "scale")
    .toPandas()
)


def seasonal_naive_mase(one: pd.DataFrame, origin) -> tuple[float, float, float]:
    """(MAE, scale, MASE) of the seasonal-naive forecast made at ``origin``."""
    train = one[one["ds"] <= origin]
    test = one[one["ds"] > origin].head(HORIZON)
    last_week = train["y_clean"].interpolate(limit_direction="both").to_numpy()[-SEASON:]
    yhat = np.clip(np.resize(last_week, len(test)), 0.0, None)
    seen = test["y_obs"].notna().to_numpy()
    mae = float(np.mean(np.abs(test["y_obs"].to_numpy()[seen] - yhat[seen])))
    obs = train["y_obs"].to_numpy()
    scale = float(np.nanmean(np.abs(obs[SEASON:] - obs[:-SEASON])))
    return mae, scale, mae / scale if scale > 0 else np.nan


by_series = dict(iter(history_pd.groupby("series_id")))
ours = pd.DataFrame(
    [
        (r.series_id, r.fold, *seasonal_naive_mase(by_series[r.series_id], r.origin))
        for r in naive_pd.itertuples()
    ],
    columns=["series_id", "fold", "mae_pandas", "scale_pandas", "mase_pandas"],
)
compared = naive_pd.merge(ours, on=["series_id", "fold"])
assert len(compared) == len(naive_pd) > 0
for col in ("mae", "scale", "mase"):
    assert np.allclose(compared[col], compared[f"{col}_pandas"], equal_nan=True), col
compared[["series_id", "fold", "mase", "mase_pandas", "scale", "scale_pandas"]].head()

# %% [markdown]
# ## 3. Inventory policy
#
# For each SKU x warehouse: the forecast demand over the lead time (7 days) plus a safety
# stock for a 95% service level gives the reorder point (ROP); with `method: empirical`
# (the small profile) the spread comes from bootstrapped forecast errors. When the
# inventory position (on hand + on order, from the latest snapshot) is at or below the ROP,
# the policy orders max(EOQ, order-up-to level - position) today.

# %%
policy = catalog.read(spark, "gold.inventory_policy").where(F.col("run_date") == run_date)
policy_pd = policy.select(
    "sku",
    "warehouse_id",
    "mean_daily_demand",
    "safety_stock",
    "reorder_point",
    "eoq",
    "inventory_position",
    "order_qty",
    "days_of_cover",
    "stockout_risk",
).toPandas()
due = policy_pd[policy_pd["order_qty"] > 0]
# The pairs closest to their reorder point first (a negative gap orders today).
closest = policy_pd.assign(gap=policy_pd["inventory_position"] - policy_pd["reorder_point"])
print(f"{len(due)} of {len(policy_pd)} pairs order today")
closest.sort_values("gap").head(8).round(2)

# %%
fig = go.Figure(
    [
        go.Scatter(
            x=policy_pd["reorder_point"],
            y=policy_pd["inventory_position"],
            mode="markers",
            marker={"color": np.where(policy_pd["order_qty"] > 0, "crimson", "steelblue")},
            text=policy_pd["sku"] + " @ " + policy_pd["warehouse_id"],
            name="pairs",
        ),
        go.Scatter(
            x=[0, policy_pd["reorder_point"].max()],
            y=[0, policy_pd["reorder_point"].max()],
            mode="lines",
            line={"dash": "dot"},
            name="position = reorder point",
        ),
    ]
)
fig.update_layout(
    title="Inventory position vs reorder point (red: order today)",
    xaxis_title="reorder point (units)",
    yaxis_title="inventory position (units)",
    height=420,
)
fig

# %% [markdown]
# ## 4. Replaying the policy
#
# `gold.policy_simulation` replays the observed demand of the last weeks, day by day with
# lost sales, under the policy above and under a naive rule on the same review days:
# reorder two weeks of the trailing four-week mean demand when the position would not last
# until the next delivery (no safety stock, no forecast). Fill rate = units served / units
# demanded.

# %%
simulation = catalog.read(spark, "gold.policy_simulation").where(F.col("run_date") == run_date)
simulation.groupBy("policy").agg(
    F.count("*").alias("pairs"),
    (F.sum("units_served") / F.sum("total_demand")).alias("fill_rate"),
    F.sum("stockout_days").alias("stockout_days"),
    F.avg("avg_inventory").alias("avg_inventory"),
    F.sum("total_cost").alias("total_cost"),
    F.sum("lost_units").alias("lost_units"),
).orderBy("policy").toPandas().round(3)

# %% [markdown]
# ### An independent check of the fill rates
#
# The demand each replay served is the observed demand of its days: summing `y_obs` of
# `silver.sku_daily` over each pair's simulated days in pandas must give the table's
# `total_demand`, and served / demand its `fill_rate`.

# %%
sim_pd = simulation.select(
    "sku",
    "warehouse_id",
    "forecast_source",
    "policy",
    "start_date",
    "end_date",
    "total_demand",
    "units_served",
    "fill_rate",
).toPandas()
demand_pd = series.select("sku", "warehouse_id", "ds", "y_obs").toPandas()
window = sim_pd.merge(demand_pd, on=["sku", "warehouse_id"])
window = window[(window["ds"] >= window["start_date"]) & (window["ds"] <= window["end_date"])]
# one replay per stock point, policy and forecast source (SARIMA- and fusion-driven)
keys = ["sku", "warehouse_id", "forecast_source", "policy"]
demand = window.groupby(keys)["y_obs"].sum().rename("demand_pandas")
sim_check = sim_pd.merge(demand.reset_index(), on=keys)
assert len(sim_check) == len(sim_pd) > 0
assert np.allclose(sim_check["total_demand"], sim_check["demand_pandas"])
fill_pandas = np.where(
    sim_check["demand_pandas"] > 0, sim_check["units_served"] / sim_check["demand_pandas"], 1.0
)
assert np.allclose(sim_check["fill_rate"], fill_pandas)
sim_check.pivot_table(
    index=["sku", "warehouse_id"], columns="policy", values="fill_rate"
).describe()

# %%
spark.stop()
shutil.rmtree(scratch, ignore_errors=True)
