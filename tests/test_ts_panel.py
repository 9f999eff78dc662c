"""The panel functions (many series per call) equal the one-series functions, series by
series, on a mix of every routing case; and the fixed-alpha SES equals statsmodels'."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from statsmodels.tsa.holtwinters import SimpleExpSmoothing

from shikong.timeseries import BacktestConfig, CleanConfig, ForecastConfig, backtest_series
from shikong.timeseries.cleaning import clean_series
from shikong.timeseries.forecast import forecast_series
from shikong.timeseries.panel import backtest_panel, clean_panel, daily_panel, forecast_panel
from shikong.timeseries.smoothing import SmoothConfig, ses_fixed_alpha, smoothing_features

START = dt.date(2024, 1, 1)
DAYS = 100


def _mixed(rng: np.random.Generator) -> pd.DataFrame:
    """One frame of series that take every path: dense, intermittent, all zero, constant,
    stock-outs, absent days, duplicate and null rows, a short late series and a null id."""
    days = pd.date_range(START, periods=DAYS, freq="D")
    t = np.arange(DAYS)
    parts = []

    def add(sid, y, available=True, keep=None):
        f = pd.DataFrame({"series_id": sid, "ds": days.date, "y": y, "available": available})
        parts.append(f if keep is None else f[keep])

    add("dense", 20 + 5 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 2, DAYS))
    add("spiky", np.where(t % 37 == 5, 90.0, 8 + rng.poisson(3, DAYS)))
    add("intermittent", rng.poisson(0.15, DAYS).astype(float))
    add("rare", np.where(t % 50 == 3, 1.0, 0.0))
    add("single", np.where(t == 60, 2.0, 0.0))
    add("zero", np.zeros(DAYS))
    add("constant", np.full(DAYS, 4.0))
    stock = np.where((t > 40) & (t < 55), False, True)
    add("stockout", rng.poisson(6, DAYS).astype(float), available=stock)
    add("gaps", rng.poisson(5, DAYS).astype(float), keep=rng.random(DAYS) > 0.2)
    add("late", rng.poisson(4, DAYS).astype(float), keep=t >= DAYS - 20)
    add(None, rng.poisson(2, DAYS).astype(float))
    out = pd.concat(parts, ignore_index=True)
    dupe = out[out["series_id"] == "dense"].head(3).assign(y=1.0)
    nulls = out[out["series_id"] == "gaps"].head(4).assign(y=np.nan)
    negative = out[out["series_id"] == "spiky"].iloc[[10]].assign(y=-3.0)
    return pd.concat([out, dupe, nulls, negative], ignore_index=True).sample(
        frac=1.0, random_state=3
    )


def _per_series(fn, pdf: pd.DataFrame) -> pd.DataFrame:
    outs = [fn(one) for _, one in pdf.groupby("series_id", sort=False, dropna=False)]
    return pd.concat([o for o in outs if len(o)], ignore_index=True)


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.sort_values(keys, na_position="first", kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def mixed() -> pd.DataFrame:
    return _mixed(np.random.default_rng(11))


@pytest.mark.parametrize(
    "cfg",
    [
        pytest.param(
            CleanConfig(start=START, end=START + dt.timedelta(days=DAYS - 1)), id="calendar"
        ),
        pytest.param(CleanConfig(), id="own-span"),
        pytest.param(
            CleanConfig(outlier_replacement="fill", fill_method="seasonal", smoothing=None),
            id="seasonal-fill",
        ),
    ],
)
def test_clean_panel_equals_clean_series(mixed, cfg):
    want = _per_series(lambda one: clean_series(one, cfg), mixed)
    got = clean_panel(mixed, cfg)
    keys = ["series_id", "ds"]
    assert_frame_equal(_sorted(got, keys), _sorted(want, keys), check_exact=False, rtol=1e-12)


def test_forecast_panel_equals_forecast_series(mixed):
    cfg = ForecastConfig(horizon=14, target_col="y")
    want = _per_series(lambda one: forecast_series(one, cfg), mixed)
    got = forecast_panel(mixed, cfg)
    assert set(got["reason"]) >= {"ok", "intermittent", "single_sale", "all_zero", "constant"}
    keys = ["series_id", "step"]
    assert_frame_equal(_sorted(got, keys), _sorted(want, keys), check_exact=False, rtol=1e-9)


def test_backtest_panel_equals_backtest_series(mixed):
    cfg = BacktestConfig(
        folds=2, horizon=14, step=14, forecast=ForecastConfig(target_col="y"), actual_col="y"
    )
    want = _per_series(lambda one: backtest_series(one, cfg).metrics, mixed)
    got = backtest_panel(mixed, cfg)
    keys = ["series_id", "fold", "model"]
    assert_frame_equal(_sorted(got, keys), _sorted(want, keys), check_exact=False, rtol=1e-9)


def test_daily_panel_spans():
    pdf = pd.DataFrame(
        {
            "series_id": ["a", "a", "b", "c"],
            "ds": [dt.date(2024, 1, 3), dt.date(2024, 1, 1), dt.date(2024, 1, 2), None],
            "y": [1.0, 2.0, 3.0, 4.0],
        }
    )
    p = daily_panel(pdf, "y")
    assert list(p.ids) == ["a", "b", "c"]
    assert p.first.tolist() == [0, 1, -1] and p.last.tolist() == [2, 1, -1]
    np.testing.assert_array_equal(p.value[0], [2.0, np.nan, 1.0])
    assert forecast_panel(pdf)["series_id"].unique().tolist() == ["a", "b"]


@pytest.mark.parametrize("rate", [0.05, 0.4, 6.0], ids=["rare", "intermittent", "dense"])
def test_ses_fixed_alpha_matches_statsmodels(rate):
    y = np.random.default_rng(2).poisson(rate, 400).astype(float)
    want = SimpleExpSmoothing(y, initialization_method="estimated").fit(
        smoothing_level=0.1, optimized=True
    )
    np.testing.assert_allclose(ses_fixed_alpha(y, 0.1), want.level, rtol=1e-5, atol=1e-5)


def test_intermittent_smoothing_skips_holt_winters():
    y = np.random.default_rng(4).poisson(0.2, 200).astype(float)
    cfg = SmoothConfig()
    sparse = smoothing_features(y, cfg, intermittent=True)
    dense = smoothing_features(y, cfg)
    assert np.isnan(sparse["hw_fitted"]).all() and np.isfinite(dense["hw_fitted"]).all()
    np.testing.assert_allclose(sparse["ses_level"], ses_fixed_alpha(y, 0.1))
    for name in ("ma_7", "wavelet_denoised", "wavelet_approx"):
        np.testing.assert_array_equal(sparse[name], dense[name])
    # A mostly-zero series has a zero wavelet noise estimate: nothing shrunk, no NaN.
    rare = np.where(np.arange(200) % 50 == 3, 1.0, 0.0)
    np.testing.assert_array_equal(smoothing_features(rare, cfg)["wavelet_denoised"], rare)


def _catalogue(n: int = 30, days: int = 120) -> pd.DataFrame:
    """A catalogue in miniature: mostly intermittent series, one dense, one with stock-outs,
    one single sale (the silver columns the forecast stage reads)."""
    rng = np.random.default_rng(21)
    ds = pd.date_range(START, periods=days, freq="D").date
    rows = []
    for i in range(n):
        y = rng.poisson(rng.uniform(0.02, 0.5), days).astype(float)
        if i == 0:
            y = 12 + 4 * np.sin(2 * np.pi * np.arange(days) / 7) + rng.normal(0, 1, days)
        if i == 1:
            y = np.where(np.arange(days) == 50, 2.0, 0.0)
        obs = np.where((i == 2) & (np.arange(days) % 30 < 4), np.nan, y)
        rows.append(pd.DataFrame({"series_id": f"c{i:02d}", "ds": ds, "y_clean": y, "y_obs": obs}))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("step", ["cleaned", "forecasts", "backtests"])
def test_spark_catalogue_matches_one_series_functions(spark, step):
    from shikong.config import TimeSeriesSettings
    from shikong.timeseries import (
        backtest_config,
        backtests,
        clean_config,
        cleaned,
        forecast_config,
        forecasts,
    )

    pdf = _catalogue()
    ts = TimeSeriesSettings(max_series=0, backtest_folds=2, horizon=14)
    if step == "cleaned":
        raw = pdf.assign(y=pdf["y_obs"].fillna(0.0), available=pdf["y_obs"].notna())
        raw = raw[["series_id", "ds", "y", "available"]]
        cc = clean_config(ts, start=START, end=raw["ds"].max())
        got = cleaned(spark.createDataFrame(raw), cc, n_series=30).toPandas()
        want = _per_series(lambda one: clean_series(one, cc), raw)
        keys = ["series_id", "ds"]
    elif step == "forecasts":
        got = forecasts(spark.createDataFrame(pdf), ts).toPandas()
        want = _per_series(lambda one: forecast_series(one, forecast_config(ts)), pdf)
        assert set(got["reason"]) >= {"ok", "intermittent"}
        keys = ["series_id", "step"]
    else:
        got = backtests(spark.createDataFrame(pdf), ts, n_series=30).toPandas()
        want = _per_series(lambda one: backtest_series(one, backtest_config(ts)).metrics, pdf)
        keys = ["series_id", "fold", "model"]
    assert got["series_id"].nunique() == 30
    assert_frame_equal(
        _sorted(got[list(want.columns)], keys),
        _sorted(want, keys),
        check_dtype=False,
        check_exact=False,
        rtol=1e-9,
    )
