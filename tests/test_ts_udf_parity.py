"""The Spark applyInPandas path gives the same numbers as calling the pandas functions directly."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from shikong.config import TimeSeriesSettings
from shikong.timeseries import (
    GROUP_COL,
    backtest_config,
    backtests,
    forecast_config,
    forecast_series,
    forecasts,
    make_backtest_fn,
    make_forecast_fn,
    series_groups,
)
from shikong.timeseries._common import for_each_series

# Also run inside the container image (make image-test).
pytestmark = pytest.mark.smoke


@pytest.mark.parametrize(
    "engine",
    [
        "statsmodels",
        pytest.param(
            "statsforecast",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("statsforecast") is None,
                reason="optional statsforecast not installed",
            ),
        ),
    ],
)
def test_forecast_udf_matches_direct_call(spark, engine):
    rng = np.random.default_rng(5)
    days = pd.date_range("2024-01-01", periods=120, freq="D")
    frames = []
    for i, level in enumerate([5.0, 20.0, 0.0]):
        y = (
            level
            + 3 * np.sin(2 * np.pi * np.arange(120) / 7) * (level > 0)
            + rng.normal(0, 1, 120) * (level > 0)
        )
        frames.append(
            pd.DataFrame(
                {
                    "series_id": f"s{i}",
                    "ds": days.date,
                    "y_clean": np.maximum(y, 0),
                    "y_obs": np.maximum(y, 0),
                    "available": True,
                }
            )
        )
    pdf = pd.concat(frames, ignore_index=True)
    ts = TimeSeriesSettings(max_series=0, engine=engine)
    got = forecasts(spark.createDataFrame(pdf), ts).toPandas().sort_values(["series_id", "step"])
    want = pd.concat(
        [forecast_series(g, forecast_config(ts)) for _, g in pdf.groupby("series_id")],
        ignore_index=True,
    ).sort_values(["series_id", "step"])
    cols = ["series_id", "step", "yhat", "lo80", "hi80", "lo95", "hi95", "model", "reason"]
    pd.testing.assert_frame_equal(
        got[cols].reset_index(drop=True),
        want[cols].reset_index(drop=True),
        check_dtype=False,
        rtol=1e-9,
    )
    assert set(got["reason"]) >= {"all_zero"}
    prefix = "SARIMA(" if engine == "statsmodels" else "ARIMA("
    ok = got.loc[got["reason"] == "ok", "model"]
    assert len(ok) and ok.str.startswith(prefix).all()


# --------------------------------------------------------------------------- many series per call


def _series_frame(n: int, days: int = 90, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2024-01-01", periods=days, freq="D").date
    frames = []
    for i in range(n):
        y = 10 + i + 3 * np.sin(2 * np.pi * np.arange(days) / 7) + rng.normal(0, 1, days)
        y = np.maximum(y, 0).round(2)
        frames.append(
            pd.DataFrame(
                {"series_id": f"k{i:02d}", "ds": ds, "y_clean": y, "y_obs": y, "available": True}
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_for_each_series_concatenates_every_series_null_key_included():
    pdf = pd.DataFrame(
        {"series_id": ["a", "a", None, "b", None], "x": [1.0, 2.0, 3.0, 4.0, 5.0], "_g": 0}
    )
    fields = (("series_id", "string"), ("total", "double"), ("n", "int"))
    seen: list[list[str]] = []

    def one(g: pd.DataFrame) -> pd.DataFrame:
        seen.append(list(g.columns))
        return pd.DataFrame(
            {"series_id": [g["series_id"].iloc[0]], "total": [g["x"].sum()], "n": [len(g)]}
        )

    got = for_each_series(one, fields, drop=("_g",))(pdf)
    want = pd.DataFrame({"series_id": ["a", None, "b"], "total": [3.0, 8.0, 4.0], "n": [2, 2, 1]})
    pd.testing.assert_frame_equal(got, want)
    assert seen == [["series_id", "x"]] * 3  # the group key never reaches the series function
    empty = for_each_series(one, fields)(pdf.iloc[:0])
    assert list(empty.columns) == ["series_id", "total", "n"] and empty.empty


def test_series_groups_keep_each_series_whole_in_one_group_and_task(spark):
    from pyspark.sql import functions as F

    pdf = _series_frame(40, days=10)
    grouped = series_groups(spark.createDataFrame(pdf), 40, 2)
    got = (
        grouped.withColumn("task", F.spark_partition_id())
        .groupBy("series_id")
        .agg(
            F.countDistinct(GROUP_COL).alias("groups"),
            F.countDistinct("task").alias("tasks"),
            F.count("*").alias("rows"),
        )
        .toPandas()
    )
    assert len(got) == 40 and (got["groups"] == 1).all() and (got["tasks"] == 1).all()
    assert got["rows"].sum() == len(pdf)
    per_task = grouped.groupBy(F.spark_partition_id()).agg(F.countDistinct(GROUP_COL)).collect()
    # 40 series -> 5 groups of ~8: several series share a pandas call
    assert grouped.select(GROUP_COL).distinct().count() == 5
    assert sum(r[1] for r in per_task) == 5  # no group split across tasks


@pytest.mark.parametrize("stage", ["forecasts", "backtests"])
def test_grouped_stages_match_one_call_per_series(spark, stage):
    pdf = _series_frame(20)
    ts = TimeSeriesSettings(max_series=0, backtest_folds=2, horizon=7)
    if stage == "forecasts":
        got = forecasts(spark.createDataFrame(pdf), ts).toPandas()
        fn = make_forecast_fn(forecast_config(ts))
        keys = ["series_id", "step"]
    else:
        got = backtests(spark.createDataFrame(pdf), ts, n_series=20).toPandas()
        fn = make_backtest_fn(backtest_config(ts))
        keys = ["series_id", "fold", "model"]
    want = pd.concat([fn(g) for _, g in pdf.groupby("series_id")], ignore_index=True)
    assert got["series_id"].nunique() == 20
    pd.testing.assert_frame_equal(
        got.sort_values(keys).reset_index(drop=True)[list(want.columns)],
        want.sort_values(keys).reset_index(drop=True),
        check_dtype=False,
        rtol=1e-9,
    )
