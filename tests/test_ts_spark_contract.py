"""The pandas outputs convert to Arrow exactly as Spark's applyInPandas would (no JVM).

Spark converts each returned column with ``pa.Array.from_pandas(s, mask=s.isnull(),
type=<arrow type of the declared field>, safe=True)`` after its own pandas converter; this
test runs the same conversion for every declared schema.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from shikong.timeseries import (
    BACKTEST_FORECAST_SCHEMA,
    BACKTEST_SCHEMA,
    CLEAN_SCHEMA,
    FORECAST_SCHEMA,
    BacktestConfig,
    CleanConfig,
    ForecastConfig,
    SmoothConfig,
    clean_schema,
    make_backtest_fn,
    make_backtest_forecast_fn,
    make_clean_fn,
    make_forecast_fn,
)

pa = pytest.importorskip("pyarrow")
types = pytest.importorskip("pyspark.sql.types")
pandas_types = pytest.importorskip("pyspark.sql.pandas.types")


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


_SPARK = {
    "string": types.StringType(),
    "date": types.DateType(),
    "double": types.DoubleType(),
    "int": types.IntegerType(),
    "boolean": types.BooleanType(),
}


def _assert_spark_convertible(df: pd.DataFrame, schema: str) -> None:
    fields = [part.split() for part in schema.split(", ")]
    assert list(df.columns) == [name for name, _ in fields]
    for name, typ in fields:
        spark_type = _SPARK[typ]
        arrow_type = pandas_types.to_arrow_type(spark_type)
        conv = getattr(pandas_types, "_create_converter_from_pandas", None)
        series = df[name]
        if conv is not None:
            series = conv(spark_type, timezone="UTC", error_on_duplicated_field_names=False)(series)
        arr = pa.Array.from_pandas(series, mask=series.isnull(), type=arrow_type, safe=True)
        assert len(arr) == len(df)


def _spark_like_input(n: int = 120) -> pd.DataFrame:
    """What a Spark group looks like in pandas: dates as objects, nullable booleans."""
    t = np.arange(n)
    y = 20 + 5 * np.sin(2 * np.pi * t / 7) + np.random.default_rng(0).normal(0, 1, n)
    avail = np.array([True] * n, dtype=object)
    avail[[10, 11]] = False
    avail[12] = None
    df = pd.DataFrame(
        {
            "series_id": "sku-1",
            "ds": [dt.date(2024, 1, 1) + dt.timedelta(days=int(i)) for i in t],
            "y": y,
            "available": avail,
        }
    )
    return df.drop(index=[30, 31]).reset_index(drop=True)


@pytest.mark.parametrize(
    "cfg",
    [CleanConfig(), CleanConfig(fill_method="stl", smoothing=SmoothConfig(ma_windows=(3, 5)))],
    ids=["default", "custom"],
)
def test_clean_output_is_spark_convertible(cfg):
    out = make_clean_fn(cfg)(_spark_like_input())
    _assert_spark_convertible(out, clean_schema(cfg))
    if cfg == CleanConfig():
        assert clean_schema(cfg) == CLEAN_SCHEMA


def test_forecast_and_backtest_outputs_are_spark_convertible():
    df = _spark_like_input()
    _assert_spark_convertible(make_forecast_fn(ForecastConfig(horizon=7))(df), FORECAST_SCHEMA)
    bcfg = BacktestConfig(folds=2, horizon=7, step=7)
    _assert_spark_convertible(make_backtest_fn(bcfg)(df), BACKTEST_SCHEMA)
    _assert_spark_convertible(make_backtest_forecast_fn(bcfg)(df), BACKTEST_FORECAST_SCHEMA)


def test_empty_outputs_are_spark_convertible():
    empty = _spark_like_input().iloc[:0]
    _assert_spark_convertible(make_clean_fn()(empty), CLEAN_SCHEMA)
    _assert_spark_convertible(make_forecast_fn()(empty), FORECAST_SCHEMA)
    _assert_spark_convertible(make_backtest_fn()(empty), BACKTEST_SCHEMA)
