"""Per-series time-series logic as plain pandas functions for Spark ``applyInPandas``.

Each ``make_*_fn(cfg)`` returns ``fn(pdf) -> pdf`` for ONE series (all rows of one key);
pair it with the matching DDL schema::

    sdf.groupBy("series_id").applyInPandas(make_clean_fn(ccfg), clean_schema(ccfg))
    clean.groupBy("series_id").applyInPandas(make_forecast_fn(fcfg), FORECAST_SCHEMA)
    clean.groupBy("series_id").applyInPandas(make_backtest_fn(bcfg), BACKTEST_SCHEMA)

The per-series modules do not import pyspark. Their functions are pure, deterministic and
single-threaded as long as the BLAS pools are limited to one thread (set
``OMP_NUM_THREADS=1``, ``OPENBLAS_NUM_THREADS=1``, ``MKL_NUM_THREADS=1`` on the executors).

Two modules are Spark transforms (``DataFrame -> DataFrame``, nothing read or written):
:mod:`~shikong.timeseries.series` builds the daily series rows from order lines and stock
snapshots, :mod:`~shikong.timeseries.distributed` runs the forecaster and the backtest over
many series (:func:`forecasts`, :func:`backtests`, configured from the ``timeseries``
settings by :func:`forecast_config` / :func:`backtest_config`).
"""

from shikong.timeseries.backtest import (
    BACKTEST_FORECAST_SCHEMA,
    BACKTEST_SCHEMA,
    MODEL_BASELINE,
    MODEL_CHOSEN,
    BacktestConfig,
    BacktestResult,
    backtest_series,
    fold_train_ends,
    make_backtest_fn,
    make_backtest_forecast_fn,
)
from shikong.timeseries.baselines import (
    croston_forecast,
    ets_forecast,
    naive_forecast,
    seasonal_naive_forecast,
)
from shikong.timeseries.cleaning import (
    CLEAN_SCHEMA,
    FILL_METHODS,
    CleanConfig,
    HampelResult,
    NormParams,
    clean_schema,
    clean_series,
    complete_calendar,
    denormalise,
    fill_missing,
    hampel,
    make_clean_fn,
    newton_interpolate,
    normalisation_params,
    normalise,
)
from shikong.timeseries.distributed import (
    GROUP_COL,
    INPUT_COLUMNS,
    SERIES_PER_GROUP,
    SERIES_PER_TASK,
    backtest_config,
    backtests,
    cleaned,
    forecast_config,
    forecasts,
    series_groups,
    series_partitions,
)
from shikong.timeseries.forecast import (
    ARIMA_SCHEMA,
    FORECAST_SCHEMA,
    forecast_array,
    forecast_series,
    make_forecast_fn,
    make_origin_forecast_fn,
)
from shikong.timeseries.forecast_types import ForecastConfig, SeriesForecast
from shikong.timeseries.metrics import (
    aggregate_metrics,
    bias,
    evaluate,
    family_metrics,
    interval_coverage,
    mase,
    overall_metrics,
    seasonal_naive_scale,
    smape,
    wape,
)
from shikong.timeseries.order_search import (
    has_weekly_seasonality,
    kpss_needs_difference,
    seasonal_strength,
)
from shikong.timeseries.sarima import DEFAULT_CANDIDATES, SarimaSpec, fit_sarimax
from shikong.timeseries.series import (
    LEVEL_KEYS,
    NO_CATEGORY,
    availability,
    clean_config,
    daily_sales,
    series_frame,
    series_id,
)
from shikong.timeseries.smoothing import (
    SmoothConfig,
    holt_winters,
    moving_averages,
    simple_exp_smoothing,
    smoothing_features,
    wavelet_approximation,
    wavelet_denoise,
)

__all__ = [
    "ARIMA_SCHEMA",
    "BACKTEST_FORECAST_SCHEMA",
    "BACKTEST_SCHEMA",
    "CLEAN_SCHEMA",
    "DEFAULT_CANDIDATES",
    "FILL_METHODS",
    "FORECAST_SCHEMA",
    "GROUP_COL",
    "INPUT_COLUMNS",
    "LEVEL_KEYS",
    "NO_CATEGORY",
    "MODEL_BASELINE",
    "MODEL_CHOSEN",
    "SERIES_PER_GROUP",
    "SERIES_PER_TASK",
    "BacktestConfig",
    "BacktestResult",
    "CleanConfig",
    "ForecastConfig",
    "HampelResult",
    "NormParams",
    "SarimaSpec",
    "SeriesForecast",
    "SmoothConfig",
    "aggregate_metrics",
    "availability",
    "backtest_config",
    "backtest_series",
    "backtests",
    "bias",
    "clean_config",
    "cleaned",
    "clean_schema",
    "clean_series",
    "complete_calendar",
    "croston_forecast",
    "daily_sales",
    "denormalise",
    "ets_forecast",
    "evaluate",
    "family_metrics",
    "fill_missing",
    "fit_sarimax",
    "fold_train_ends",
    "forecast_array",
    "forecast_config",
    "forecast_series",
    "forecasts",
    "hampel",
    "has_weekly_seasonality",
    "holt_winters",
    "interval_coverage",
    "kpss_needs_difference",
    "make_backtest_fn",
    "make_backtest_forecast_fn",
    "make_clean_fn",
    "make_forecast_fn",
    "make_origin_forecast_fn",
    "mase",
    "moving_averages",
    "naive_forecast",
    "newton_interpolate",
    "normalisation_params",
    "normalise",
    "overall_metrics",
    "seasonal_naive_forecast",
    "seasonal_naive_scale",
    "seasonal_strength",
    "series_frame",
    "series_id",
    "series_groups",
    "series_partitions",
    "simple_exp_smoothing",
    "smape",
    "smoothing_features",
    "wape",
    "wavelet_approximation",
    "wavelet_denoise",
]
