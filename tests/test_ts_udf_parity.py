"""The Spark applyInPandas path gives the same numbers as calling the pandas functions directly."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from shikong.config import TimeSeriesSettings
from shikong.jobs.forecast_arima import forecast_config, forecasts
from shikong.timeseries import forecast_series


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
