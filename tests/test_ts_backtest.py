"""Rolling-origin backtest: fold layout, baseline rows, and accuracy on a seasonal series."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from shikong.timeseries import (
    BACKTEST_FORECAST_SCHEMA,
    BACKTEST_SCHEMA,
    BacktestConfig,
    CleanConfig,
    ForecastConfig,
    aggregate_metrics,
    backtest_series,
    clean_series,
    fold_train_ends,
    make_backtest_fn,
    make_backtest_forecast_fn,
)


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


def _seasonal(n: int, seed: int, noise: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    pattern = np.array([0.0, 2.0, 4.0, 3.0, 1.0, -4.0, -6.0]) * 10 / 6
    return 50.0 + 0.01 * t + pattern[t % 7] + rng.normal(0, noise, n)


def _frame(y: np.ndarray, sid: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"series_id": sid, "ds": pd.date_range("2023-01-01", periods=len(y)).date, "y": y}
    )


def _names(schema: str) -> list[str]:
    return [part.split()[0] for part in schema.split(", ")]


@pytest.mark.parametrize(
    ("n", "folds", "horizon", "step", "expected"),
    [
        (200, 3, 28, 28, [116, 144, 172]),
        (100, 2, 7, 14, [79, 93]),
        (40, 3, 28, 28, [-44, -16, 12]),
    ],
    ids=["default", "short-step", "too-short"],
)
def test_fold_train_ends(n, folds, horizon, step, expected):
    assert fold_train_ends(n, folds, horizon, step) == expected


def test_chosen_model_beats_seasonal_naive_on_noisy_seasonal_series():
    results = pd.concat(
        [backtest_series(_frame(_seasonal(308, seed), f"s{seed}")).metrics for seed in range(3)],
        ignore_index=True,
    )
    assert len(results) == 3 * 3 * 2
    agg = aggregate_metrics(results).set_index("model")
    assert agg.loc["chosen", "mase"] < 0.9 * agg.loc["seasonal_naive", "mase"]
    assert agg.loc["chosen", "wape"] < agg.loc["seasonal_naive", "wape"]
    assert (results.loc[results["model"] == "chosen", "reason"] == "ok").all()
    assert 0.6 <= agg.loc["chosen", "coverage80"] <= 1.0
    assert agg.loc["chosen", "coverage95"] >= 0.8


def test_metrics_and_detail_frames_follow_schemas():
    y = _seasonal(150, 1)
    df = _frame(y, "x")
    cfg = BacktestConfig(folds=2, horizon=14, step=7)
    before = df.copy(deep=True)
    metrics = make_backtest_fn(cfg)(df)
    detail = make_backtest_forecast_fn(cfg)(df)
    pd.testing.assert_frame_equal(df, before)
    assert list(metrics.columns) == _names(BACKTEST_SCHEMA)
    assert list(detail.columns) == _names(BACKTEST_FORECAST_SCHEMA)
    assert metrics["fold"].tolist() == [0, 0, 1, 1]
    assert metrics["model"].tolist() == ["chosen", "seasonal_naive"] * 2
    last_day = dt.date(2023, 1, 1) + dt.timedelta(days=149)
    assert metrics["origin"].tolist()[-1] == last_day - dt.timedelta(days=14)
    assert detail["ds"].max() == last_day and len(detail) == 2 * 2 * 14
    # baseline yhat = last week of the training window, repeated
    base0 = detail[(detail["fold"] == 0) & (detail["model"] == "seasonal_naive")]
    train_end = 150 - 14 - 7
    np.testing.assert_allclose(base0["yhat"].to_numpy()[:7], y[train_end - 7 : train_end])
    np.testing.assert_allclose(base0["actual"].to_numpy(), y[train_end : train_end + 14])


def test_scoring_on_observed_days_only():
    raw = _seasonal(120, 2)
    df = _frame(raw, "m")
    df["available"] = True
    df.loc[[100, 101, 110], "available"] = False
    clean = clean_series(df, CleanConfig(smoothing=None))
    cfg = BacktestConfig(
        folds=1,
        horizon=28,
        forecast=ForecastConfig(target_col="y_clean"),
        actual_col="y_obs",
    )
    m = backtest_series(clean, cfg).metrics
    assert m["n"].tolist() == [25, 25]


def test_short_series_skips_folds_and_never_raises():
    m = backtest_series(_frame(_seasonal(45, 3), "short")).metrics
    assert m["fold"].unique().tolist() == [2]
    assert set(m["model"]) == {"chosen", "seasonal_naive"}
    assert backtest_series(_frame(np.array([1.0, 2.0]), "tiny")).metrics.empty


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"folds": 0}, "folds must be >= 1"),
        ({"horizon": 0}, "horizon must be >= 1"),
        ({"step": 0}, "step must be >= 1"),
        ({"min_train": 0}, "min_train must be >= 1"),
    ],
    ids=["folds", "horizon", "step", "min-train"],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BacktestConfig(**kwargs)
