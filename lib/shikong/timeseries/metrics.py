"""Forecast accuracy metrics and their aggregation over series.

Point metrics ignore days whose actual or forecast is NaN (missing / unavailable days are
not evidence of zero demand). Conventions:

* MASE: mean |e| divided by the in-sample MAE of the seasonal-naive forecast (lag
  ``season``, default 7) on the training window; NaN when that scale is 0 or undefined.
* sMAPE: mean of ``2|e| / (|y| + |yhat|)`` in percent (0..200); a day where both are 0
  counts as 0 error.
* WAPE: ``sum|e| / sum|y|``; NaN when ``sum|y| == 0``.
* bias: mean of ``yhat - y`` (positive = over-forecast), in units.
* coverage: share of days with ``lo <= y <= hi`` (days with a NaN bound are skipped).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd


def _pair(actual: np.ndarray, forecast: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype=float)
    f = np.asarray(forecast, dtype=float)
    if a.shape != f.shape:
        raise ValueError(f"actual and forecast shapes differ: {a.shape} vs {f.shape}")
    ok = np.isfinite(a) & np.isfinite(f)
    return a[ok], f[ok]


def seasonal_naive_scale(insample: np.ndarray, season: int = 7) -> float:
    """In-sample MAE of the seasonal-naive forecast ``y[t-season]`` (pairs with NaN skipped).

    Args:
        insample: Training values by day.
        season: Lag.

    Returns:
        The scale, or NaN when no complete pair exists.
    """
    y = np.asarray(insample, dtype=float)
    if y.size <= season:
        return math.nan
    d = y[season:] - y[:-season]
    d = d[np.isfinite(d)]
    return float(np.mean(np.abs(d))) if d.size else math.nan


def mase(actual: np.ndarray, forecast: np.ndarray, insample: np.ndarray, season: int = 7) -> float:
    """Mean absolute scaled error (see module docstring).

    Args:
        actual: Actual values over the horizon.
        forecast: Point forecasts.
        insample: Training values used for the scale.
        season: Seasonal-naive lag of the scale.

    Returns:
        MASE, NaN when undefined.
    """
    a, f = _pair(actual, forecast)
    scale = seasonal_naive_scale(insample, season)
    if a.size == 0 or not scale > 0:
        return math.nan
    return float(np.mean(np.abs(a - f)) / scale)


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Symmetric MAPE in percent (0..200); 0/0 days count as exact."""
    a, f = _pair(actual, forecast)
    if a.size == 0:
        return math.nan
    den = np.abs(a) + np.abs(f)
    terms = np.divide(2.0 * np.abs(a - f), den, out=np.zeros_like(den), where=den > 0)
    return float(100.0 * np.mean(terms))


def wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Weighted absolute percentage error ``sum|e| / sum|y|`` (a ratio, not percent)."""
    a, f = _pair(actual, forecast)
    den = float(np.sum(np.abs(a)))
    if a.size == 0 or den == 0:
        return math.nan
    return float(np.sum(np.abs(a - f)) / den)


def bias(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean error ``mean(yhat - y)``; positive means over-forecasting."""
    a, f = _pair(actual, forecast)
    return float(np.mean(f - a)) if a.size else math.nan


def interval_coverage(actual: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Share of days with ``lo <= actual <= hi`` among days where all three are finite."""
    a = np.asarray(actual, dtype=float)
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    ok = np.isfinite(a) & np.isfinite(lo) & np.isfinite(hi)
    if not ok.any():
        return math.nan
    return float(np.mean((a[ok] >= lo[ok]) & (a[ok] <= hi[ok])))


#: Columns of :func:`evaluate` in order, with Spark types.
METRIC_FIELDS: tuple[tuple[str, str], ...] = (
    ("n", "int"),
    ("mase", "double"),
    ("smape", "double"),
    ("wape", "double"),
    ("bias", "double"),
    ("coverage80", "double"),
    ("coverage95", "double"),
    ("mae", "double"),
    ("scale", "double"),
    ("sum_abs_error", "double"),
    ("sum_abs_actual", "double"),
    ("sum_error", "double"),
)


def evaluate(
    actual: np.ndarray,
    yhat: np.ndarray,
    lo80: np.ndarray,
    hi80: np.ndarray,
    lo95: np.ndarray,
    hi95: np.ndarray,
    insample: np.ndarray,
    season: int = 7,
) -> dict[str, float | int]:
    """All metrics of one forecast, plus the sums needed to aggregate exactly.

    Args:
        actual: Actuals over the horizon (NaN = not observed).
        yhat: Point forecasts.
        lo80: Lower 80% bounds.
        hi80: Upper 80% bounds.
        lo95: Lower 95% bounds.
        hi95: Upper 95% bounds.
        insample: Training values (MASE scale).
        season: Seasonal period of the MASE scale.

    Returns:
        A dict keyed by the names of :data:`METRIC_FIELDS`.
    """
    a, f = _pair(actual, yhat)
    e = f - a
    return {
        "n": int(a.size),
        "mase": mase(actual, yhat, insample, season),
        "smape": smape(actual, yhat),
        "wape": wape(actual, yhat),
        "bias": bias(actual, yhat),
        "coverage80": interval_coverage(actual, lo80, hi80),
        "coverage95": interval_coverage(actual, lo95, hi95),
        "mae": float(np.mean(np.abs(e))) if a.size else math.nan,
        "scale": seasonal_naive_scale(insample, season),
        "sum_abs_error": float(np.sum(np.abs(e))),
        "sum_abs_actual": float(np.sum(np.abs(a))),
        "sum_error": float(np.sum(e)),
    }


def aggregate_metrics(
    results: pd.DataFrame,
    by: Sequence[str] = ("model",),
    *,
    series_col: str = "series_id",
) -> pd.DataFrame:
    """Overall metrics from per-series (and per-fold) results.

    Per series, MASE and sMAPE are first averaged over its folds; the overall MASE/sMAPE
    is the mean of those per-series values (finite ones only). WAPE is ``sum|e| / sum|y|``
    and bias ``sum(e) / n`` over all series and folds; coverage is weighted by ``n``.

    Args:
        results: Rows with ``series_col``, the ``by`` columns, ``n``, ``mase``, ``smape``,
            ``sum_abs_error``, ``sum_abs_actual``, ``sum_error``, ``coverage80``,
            ``coverage95`` (e.g. the backtest output collected to pandas).
        by: Grouping columns, e.g. ``("model",)``.
        series_col: Series key column.

    Returns:
        One row per ``by`` group with ``n_series``, ``n_points``, ``mase``, ``smape``,
        ``wape``, ``bias``, ``coverage80``, ``coverage95``.
    """
    by = list(by)
    needed = {
        series_col,
        "n",
        "mase",
        "smape",
        "sum_abs_error",
        "sum_abs_actual",
        "sum_error",
        "coverage80",
        "coverage95",
        *by,
    }
    missing = needed - set(results.columns)
    if missing:
        raise ValueError(f"aggregate_metrics: missing column(s) {sorted(missing)}")
    rows: list[dict[str, object]] = []
    groups = results.groupby(by, sort=True, dropna=False) if by else [((), results)]
    for key, g in groups:
        key_t = key if isinstance(key, tuple) else (key,)
        per_series = g.groupby(series_col)[["mase", "smape"]].mean()
        n = g["n"].to_numpy(dtype=float)
        n_tot = float(n.sum())
        abs_act = float(g["sum_abs_actual"].sum())

        def weighted(col: str, g: pd.DataFrame = g, n: np.ndarray = n) -> float:
            v = g[col].to_numpy(dtype=float)
            ok = np.isfinite(v) & (n > 0)
            return float(np.sum(v[ok] * n[ok]) / np.sum(n[ok])) if ok.any() else math.nan

        mase_s = per_series["mase"].to_numpy(dtype=float)
        smape_s = per_series["smape"].to_numpy(dtype=float)
        rows.append(
            {
                **dict(zip(by, key_t, strict=True)),
                "n_series": int(per_series.shape[0]),
                "n_points": int(n_tot),
                "mase": float(np.nanmean(mase_s)) if np.isfinite(mase_s).any() else math.nan,
                "smape": float(np.nanmean(smape_s)) if np.isfinite(smape_s).any() else math.nan,
                "wape": float(g["sum_abs_error"].sum()) / abs_act if abs_act > 0 else math.nan,
                "bias": float(g["sum_error"].sum()) / n_tot if n_tot > 0 else math.nan,
                "coverage80": weighted("coverage80"),
                "coverage95": weighted("coverage95"),
            }
        )
    return pd.DataFrame(rows)


def overall_metrics(metrics_pdf: pd.DataFrame) -> pd.DataFrame:
    """Overall backtest table per model (chosen vs seasonal naive) from per-series rows."""
    return aggregate_metrics(metrics_pdf, by=("model",))


def family_metrics(metrics_pdf: pd.DataFrame) -> pd.DataFrame:
    """Backtest table per model family, each next to seasonal naive on the same folds.

    A (series, fold) belongs to the family of the model the job chose there: the model
    spec up to its orders (``SARIMA(1,1,1)(0,0,0,0)+c`` -> ``SARIMA``, ``SBA``, ``ETS`` ...).
    Its seasonal-naive row is grouped with it, so each family's two rows cover the same
    series and folds.

    Args:
        metrics_pdf: Backtest rows (``BACKTEST_SCHEMA``) of models ``chosen`` and
            ``seasonal_naive``.

    Returns:
        :func:`aggregate_metrics` by ``family`` and ``model``.
    """
    chosen = metrics_pdf[metrics_pdf["model"] == "chosen"]
    family = chosen["model_spec"].fillna("unknown").str.extract(r"^([A-Za-z_]+)", expand=False)
    keys = chosen[["series_id", "fold"]].assign(family=family.fillna("unknown").to_numpy())
    grouped = metrics_pdf.merge(keys, on=["series_id", "fold"], how="inner")
    return aggregate_metrics(grouped, by=("family", "model"))
