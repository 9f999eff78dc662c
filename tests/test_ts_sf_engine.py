"""The optional statsforecast engine (parity with direct calls, fallbacks, config, threads)
and the forecast job's engine check and task sizing."""

from __future__ import annotations

import dataclasses
import importlib.util
import time

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from shikong.config import ConfigError, TimeSeriesSettings, config_from_dict
from shikong.timeseries import (
    ForecastConfig,
    distributed,
    forecast_array,
    forecast_config,
    forecast_series,
    series_partitions,
    sf_engine,
)
from shikong.timeseries.backtest import BacktestConfig, backtest_series

H = 28

# statsforecast's own optimiser notes on the direct reference calls are not test failures
pytestmark = pytest.mark.filterwarnings("ignore:possible convergence problem:UserWarning")


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


def _weekly(n: int = 240, seed: int = 0, level: float = 60.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    pattern = np.array([0.0, 2.0, 4.0, 3.0, 1.0, -4.0, -6.0]) * 2.0
    return level + 0.02 * t + pattern[t % 7] + rng.normal(0, 2.0, n)


def _frame(y: np.ndarray, sid: str = "S1") -> pd.DataFrame:
    ds = pd.date_range("2024-01-01", periods=len(y)).date
    return pd.DataFrame({"series_id": sid, "ds": ds, "y_clean": y, "y_obs": y, "available": True})


def _spiky() -> np.ndarray:
    y = _weekly(150, seed=4)
    y[100] = 1e6
    return y


SF = ForecastConfig(horizon=H, target_col="y_clean", engine="statsforecast")
#: Parity tests compare against the model on the raw series: no Hampel pre-cleaning.
SF_RAW = dataclasses.replace(SF, preclean=False)
needs_sf = pytest.mark.skipif(
    importlib.util.find_spec("statsforecast") is None,
    reason="optional statsforecast not installed (pip install '.[statsforecast]')",
)


# --------------------------------------------------------------------------- config


def test_engine_setting_is_validated_and_names_the_key():
    assert TimeSeriesSettings().engine == "statsmodels"
    assert config_from_dict({"timeseries": {"engine": "statsforecast"}}, env={}).timeseries.engine
    with pytest.raises(ConfigError, match=r"^timeseries\.engine: must be 'statsmodels' or"):
        config_from_dict({"timeseries": {"engine": "prophet"}}, env={})
    with pytest.raises(ValueError, match="engine must be one of"):
        ForecastConfig(engine="prophet")
    assert forecast_config(TimeSeriesSettings(engine="statsforecast")).engine == "statsforecast"


def test_missing_package_fails_on_the_driver_not_per_series(monkeypatch):
    def missing():
        raise ImportError("no statsforecast")

    monkeypatch.setattr(sf_engine, "load", missing)
    with pytest.raises(ConfigError, match=r"^timeseries\.engine: 'statsforecast' needs"):
        distributed._require_engine(TimeSeriesSettings(engine="statsforecast"))
    distributed._require_engine(TimeSeriesSettings())  # statsmodels needs nothing extra
    # in a worker, a missing engine is a set-up error: it must not become seasonal naive
    with pytest.raises(ImportError):
        forecast_array(_weekly(), SF)


# --------------------------------------------------------------------------- parity


def _direct(model, y: np.ndarray) -> dict[str, np.ndarray]:
    return model.fit(y).predict(h=H, level=[80, 95])


@needs_sf
def test_udf_function_equals_direct_autoarima():
    from statsforecast.arima import arima_string
    from statsforecast.models import AutoARIMA

    y = _weekly(seed=1)
    out = forecast_series(_frame(y), SF_RAW)
    model = AutoARIMA(season_length=7, approximation=True)
    want = _direct(model, y)
    assert (out["reason"] == "ok").all()
    assert out["model"].iloc[0] == " ".join(arima_string(model.model_).split())
    pairs = {"yhat": "mean", "lo80": "lo-80", "hi80": "hi-80", "lo95": "lo-95", "hi95": "hi-95"}
    for col, key in pairs.items():
        np.testing.assert_allclose(out[col].to_numpy(), want[key], rtol=1e-9)
    assert len(out) == H and (out["lo95"] <= out["lo80"]).all()
    assert (out["hi80"] <= out["hi95"]).all()


@needs_sf
def test_autoarima_failure_falls_back_to_direct_autoets(monkeypatch):
    from statsforecast.models import AutoETS

    def broken(*_a, **_k):
        raise RuntimeError("arima blew up")

    monkeypatch.setattr(sf_engine, "autoarima", broken)
    y = _weekly(seed=2)
    fc = forecast_array(y, SF_RAW)
    model = AutoETS(season_length=7)
    want = _direct(model, y)
    assert fc.reason == "sarima_failed" and fc.model == model.model_["method"]
    np.testing.assert_allclose(fc.yhat, want["mean"], rtol=1e-9)
    np.testing.assert_allclose(fc.hi95, want["hi-95"], rtol=1e-9)

    monkeypatch.setattr(sf_engine, "autoets", broken)
    fc = forecast_array(y, SF_RAW)
    assert fc.reason == "sarima_failed;ets_failed" and fc.model == "seasonal_naive"


@needs_sf
@pytest.mark.parametrize(
    ("y", "reason", "model_prefix"),
    [
        (np.zeros(100), "all_zero", "seasonal_naive"),
        (_weekly(30, seed=3), "too_short", "ETS("),
        (_spiky(), "ok", "ARIMA("),
    ],
    ids=["all-zero", "too-short-uses-autoets", "huge-outlier"],
)
def test_same_routing_as_statsmodels_engine(y, reason, model_prefix):
    fc = forecast_array(y, SF)
    assert fc.reason == reason and fc.model.startswith(model_prefix)
    assert np.isfinite(fc.yhat).all() and (fc.yhat >= 0).all() and fc.yhat.max() < 200


@needs_sf
def test_missing_days_are_interpolated_for_statsforecast():
    y = _weekly(seed=5)
    y[[30, 31, 100]] = np.nan
    fc = forecast_array(y, SF)
    assert fc.reason == "ok" and np.isfinite(fc.hi95).all()


@needs_sf
def test_backtest_runs_through_the_same_metrics():
    df = _frame(_weekly(260, seed=6))
    res = backtest_series(df, BacktestConfig(folds=2, forecast=SF, actual_col="y_obs"))
    chosen = res.metrics[res.metrics["model"] == "chosen"]
    assert len(chosen) == 2 and chosen["model_spec"].str.startswith("ARIMA(").all()
    assert np.isfinite(chosen["mase"]).all()


@needs_sf
def test_engine_computes_on_one_thread():
    """CPU time never exceeds wall time: no thread pool or process pool behind the call."""
    y = _weekly(730, seed=7)
    sf_engine.autoarima(y, H, 7)  # import outside the measurement
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(3):
        sf_engine.autoarima(y, H, 7)
        sf_engine.autoets(y, H, 7)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    assert cpu <= 1.05 * wall + 0.02, (cpu, wall)


# --------------------------------------------------------------------------- partitions


@pytest.mark.parametrize(
    ("n_series", "parallelism", "expected"),
    # 10,000 series on 2 cores: 313 tasks of 32 series, capped at MAX_TASKS_PER_SLOT (16)
    # per core; past the cap the groups grow instead (series_groups).
    [(2000, 4, 63), (120, 4, 8), (3, 4, 3), (0, 4, 1), (10_000, 2, 32)],
)
def test_series_partitions_balance_tasks(n_series, parallelism, expected):
    assert series_partitions(n_series, parallelism) == expected
