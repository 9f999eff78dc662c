"""Per-series cleaning: calendar completion, Hampel outliers, gap filling, normalisation.

The grouped entry point is :func:`make_clean_fn`; the function it returns takes all rows of
ONE series (``series_id``, ``ds``, ``y``, optional ``available``) and returns one row per
calendar day following :func:`clean_schema` (``CLEAN_SCHEMA`` for the default config)::

    fn = make_clean_fn(CleanConfig(fill_method="seasonal"))
    out = sdf.groupBy("series_id").applyInPandas(fn, clean_schema(cfg))

Missing days are days absent from the input, days with ``available == False`` (stock-out
or feed down: y is unknown, not zero), null values and, by default, negative values. A
recorded 0 on an available day is a true zero and is kept.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from scipy.interpolate import Akima1DInterpolator, CubicSpline, PchipInterpolator
from statsmodels.tsa.seasonal import STL

from shikong.frames import conform, ddl, empty_frame
from shikong.timeseries._common import (
    as_timestamp,
    daily_frame,
    fill_linear,
    first_series_id,
    quiet,
    require_columns,
    to_date_objects,
    to_timestamps,
)
from shikong.timeseries.smoothing import SmoothConfig, smoothing_features, smoothing_fields

logger = logging.getLogger(__name__)

FillMethod = Literal["linear", "polynomial", "spline", "seasonal", "stl"]
FILL_METHODS: tuple[str, ...] = ("linear", "polynomial", "spline", "seasonal", "stl")
SPLINE_KINDS: tuple[str, ...] = ("cubic", "pchip", "akima")
OUTLIER_REPLACEMENTS: tuple[str, ...] = ("median", "fill")
NormMethod = Literal["minmax", "zscore"]

#: Consistency constant turning a MAD into a standard deviation under normality.
MAD_TO_SIGMA = 1.4826

# Reasons a day is missing (``missing_reason`` column), first that applies.
ABSENT_DAY = "absent_day"
UNAVAILABLE = "unavailable"
NULL_VALUE = "null_value"
NEGATIVE_VALUE = "negative_value"


@dataclass(frozen=True)
class CleanConfig:
    """Configuration of :func:`clean_series` / :func:`make_clean_fn`.

    Attributes:
        start: First calendar day; default the series' first date. Rows before it are dropped.
        end: Last calendar day; default the series' last date. Rows after it are dropped.
        detect_outliers: Run the Hampel filter.
        hampel_window: Full length of the centred Hampel window in days (odd, >= 3).
        n_sigmas: Threshold in robust standard deviations (1.4826 * MAD).
        hampel_min_periods: Minimum observed values in a window for its centre to be judged.
        min_scale: Floor of the robust scale in y units. With sparse sales the MAD of a
            window is often 0 and textbook Hampel would flag every sale; a floor of one unit
            keeps ordinary small sales. Set 0 for the textbook filter.
        two_sided: Flag low outliers too; ``False`` flags only spikes.
        skip_outliers_adi: Skip outlier detection when the average demand interval
            (observed days per non-zero day) exceeds this: on intermittent demand the
            window median is 0 and every sale would be flagged. ``None`` never skips.
        outlier_replacement: ``median`` replaces a flagged value by its window median
            (textbook Hampel); ``fill`` treats it as missing and uses ``fill_method``.
        fill_method: ``linear``, ``polynomial``, ``spline``, ``seasonal`` or ``stl``.
        poly_degree: Degree of the local polynomial (uses the degree+1 nearest known days).
        spline_kind: ``cubic`` (not-a-knot CubicSpline), ``pchip`` or ``akima``.
        season: Season length in days used by ``seasonal``/``stl`` filling.
        seasonal_neighbours: Same-weekday known values taken on EACH side by ``seasonal``.
        clip_min: Lower bound applied to the cleaned values (0 for demand); ``None`` = none.
        negative_is_missing: Treat negative recorded values as missing (returns/corrections).
        smoothing: Smoothing features to add; ``None`` adds none.
    """

    start: _dt.date | None = None
    end: _dt.date | None = None
    detect_outliers: bool = True
    hampel_window: int = 15
    n_sigmas: float = 3.0
    hampel_min_periods: int = 5
    min_scale: float = 1.0
    two_sided: bool = True
    skip_outliers_adi: float | None = 1.32
    outlier_replacement: str = "median"
    fill_method: str = "linear"
    poly_degree: int = 2
    spline_kind: str = "cubic"
    season: int = 7
    seasonal_neighbours: int = 2
    clip_min: float | None = 0.0
    negative_is_missing: bool = True
    smoothing: SmoothConfig | None = field(default_factory=SmoothConfig)

    def __post_init__(self) -> None:
        if self.hampel_window < 3 or self.hampel_window % 2 == 0:
            raise ValueError(f"hampel_window must be odd and >= 3, got {self.hampel_window}")
        if not self.n_sigmas > 0:
            raise ValueError(f"n_sigmas must be > 0, got {self.n_sigmas}")
        if not 1 <= self.hampel_min_periods <= self.hampel_window:
            raise ValueError(
                f"hampel_min_periods must be in [1, hampel_window], got {self.hampel_min_periods}"
            )
        if self.min_scale < 0:
            raise ValueError(f"min_scale must be >= 0, got {self.min_scale}")
        if self.outlier_replacement not in OUTLIER_REPLACEMENTS:
            raise ValueError(
                f"outlier_replacement must be one of {OUTLIER_REPLACEMENTS}, "
                f"got {self.outlier_replacement!r}"
            )
        if self.fill_method not in FILL_METHODS:
            raise ValueError(f"fill_method must be one of {FILL_METHODS}, got {self.fill_method!r}")
        if self.poly_degree < 1:
            raise ValueError(f"poly_degree must be >= 1, got {self.poly_degree}")
        if self.spline_kind not in SPLINE_KINDS:
            raise ValueError(f"spline_kind must be one of {SPLINE_KINDS}, got {self.spline_kind!r}")
        if self.season < 2:
            raise ValueError(f"season must be >= 2, got {self.season}")
        if self.seasonal_neighbours < 1:
            raise ValueError(f"seasonal_neighbours must be >= 1, got {self.seasonal_neighbours}")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")


# --------------------------------------------------------------------------- calendar


def complete_calendar(
    df: pd.DataFrame,
    start: _dt.date | None = None,
    end: _dt.date | None = None,
    *,
    negative_is_missing: bool = True,
) -> pd.DataFrame:
    """One row per day of ``[start, end]`` with the missing-value diagnosis.

    Args:
        df: One series with ``ds``, ``y`` and optionally ``available``.
        start: First day; default the first date in ``df``.
        end: Last day; default the last date in ``df``.
        negative_is_missing: Treat negative values as missing.

    Returns:
        Columns ``ds`` (Timestamp), ``y_raw`` (recorded value, NaN when no row), ``y_obs``
        (value usable as an observation, NaN when missing), ``is_missing`` and
        ``missing_reason`` (None when observed).
    """
    require_columns(df, ("ds", "y"), "complete_calendar")
    lo, hi = as_timestamp(start), as_timestamp(end)
    rows = df
    if lo is not None or hi is not None:
        ts = to_timestamps(df["ds"])
        keep = np.ones(len(df), dtype=bool)
        if lo is not None:
            keep &= np.asarray(ts >= lo)
        if hi is not None:
            keep &= np.asarray(ts <= hi)
        rows = df.loc[keep]
    day = daily_frame(rows, "y", start=lo, end=hi)
    y_obs = day["value"].to_numpy(dtype=float).copy()
    negative = np.isfinite(y_obs) & (y_obs < 0)
    if negative_is_missing:
        y_obs[negative] = np.nan
    reason = np.full(len(day), None, dtype=object)
    # later assignments win, so write the reasons from least to most specific
    reason[negative & negative_is_missing] = NEGATIVE_VALUE
    reason[day["null_value"].to_numpy()] = NULL_VALUE
    reason[day["unavailable"].to_numpy()] = UNAVAILABLE
    reason[~day["present"].to_numpy()] = ABSENT_DAY
    return pd.DataFrame(
        {
            "ds": day.index,
            "y_raw": day["recorded"].to_numpy(dtype=float),
            "y_obs": y_obs,
            "is_missing": ~np.isfinite(y_obs),
            "missing_reason": reason,
        }
    )


# --------------------------------------------------------------------------- outliers


@dataclass(frozen=True)
class HampelResult:
    """Output of :func:`hampel`.

    Attributes:
        is_outlier: Boolean flags.
        median: Rolling median of the centred window (NaN when the window had no value).
        scale: Robust scale ``max(1.4826 * MAD, min_scale)`` of the window.
    """

    is_outlier: np.ndarray
    median: np.ndarray
    scale: np.ndarray


def hampel(
    y: np.ndarray,
    window: int = 15,
    n_sigmas: float = 3.0,
    *,
    min_periods: int = 5,
    min_scale: float = 0.0,
    two_sided: bool = True,
) -> HampelResult:
    """Hampel filter (rolling median / MAD) over a centred window of calendar days.

    NaNs (missing days) are ignored inside windows; the window is truncated at the series
    ends. A value is an outlier when ``|y - median| > n_sigmas * max(1.4826 * MAD,
    min_scale)`` and its window holds at least ``min_periods`` observed values.

    Args:
        y: Values by day, NaN where missing.
        window: Full odd window length.
        n_sigmas: Threshold in robust standard deviations.
        min_periods: Minimum observed values in the window.
        min_scale: Floor of the robust scale.
        two_sided: Also flag values far below the median.

    Returns:
        The flags, rolling medians and scales.
    """
    y = np.asarray(y, dtype=float)
    n = y.size
    if n == 0:
        empty = np.zeros(0)
        return HampelResult(np.zeros(0, dtype=bool), empty, empty)
    half = window // 2
    padded = np.pad(y, half, mode="constant", constant_values=np.nan)
    win = sliding_window_view(padded, window)
    count = np.isfinite(win).sum(axis=1)
    with quiet():
        med = np.nanmedian(win, axis=1)
        mad = np.nanmedian(np.abs(win - med[:, None]), axis=1)
    scale = np.maximum(MAD_TO_SIGMA * mad, min_scale)
    dev = y - med
    with quiet():
        big = np.abs(dev) > n_sigmas * scale if two_sided else dev > n_sigmas * scale
    flags = np.isfinite(y) & (count >= min_periods) & np.nan_to_num(big, nan=False).astype(bool)
    return HampelResult(flags, med, scale)


# --------------------------------------------------------------------------- filling


def newton_interpolate(x: np.ndarray, y: np.ndarray, t: float) -> float:
    """Evaluate the interpolating polynomial through ``(x, y)`` at ``t`` (Newton form).

    Divided differences are taken on ``x - t`` so that the evaluation point is the origin,
    which keeps the Horner step well conditioned for day numbers in the thousands.

    Args:
        x: Distinct abscissae.
        y: Ordinates.
        t: Evaluation point.

    Returns:
        The polynomial value at ``t``.
    """
    xs = np.asarray(x, dtype=float) - t
    coef = np.asarray(y, dtype=float).copy()
    n = xs.size
    for j in range(1, n):
        coef[j:] = (coef[j:] - coef[j - 1 : n - 1]) / (xs[j:] - xs[: n - j])
    value = coef[-1]
    for k in range(n - 2, -1, -1):
        value = value * (0.0 - xs[k]) + coef[k]
    return float(value)


def nearest_known(known_pos: np.ndarray, t: float, k: int) -> np.ndarray:
    """The ``k`` known positions closest to ``t``; ties go to the earlier position.

    Args:
        known_pos: Sorted positions of known values.
        t: Target position.
        k: How many to take (fewer when fewer are known).

    Returns:
        The chosen positions, sorted ascending.
    """
    k = min(k, known_pos.size)
    i = int(np.searchsorted(known_pos, t))
    cand = known_pos[max(0, i - k) : i + k]
    order = np.argsort(np.abs(cand - t), kind="stable")
    return np.sort(cand[order[:k]])


def _fill_polynomial(
    y: np.ndarray, known: np.ndarray, targets: np.ndarray, degree: int
) -> np.ndarray:
    out = y.copy()
    kp = np.flatnonzero(known)
    for t in targets:
        sel = nearest_known(kp, float(t), degree + 1)
        out[t] = newton_interpolate(sel, y[sel], float(t))
    return out


def _fill_spline(y: np.ndarray, known: np.ndarray, targets: np.ndarray, kind: str) -> np.ndarray:
    out = y.copy()
    kp = np.flatnonzero(known)
    kv = y[kp]
    if kp.size < 2 or targets.size == 0:
        return out
    if kind == "cubic":
        f = CubicSpline(kp, kv, bc_type="not-a-knot")
    elif kind == "pchip":
        f = PchipInterpolator(kp, kv)
    elif kp.size < 3:
        # Akima needs 3 knots; with 2 any of these is the straight line
        f = PchipInterpolator(kp, kv)
    else:
        f = Akima1DInterpolator(kp, kv)
    out[targets] = f(targets)
    return out


def _fill_seasonal(y: np.ndarray, known: np.ndarray, season: int, neighbours: int) -> np.ndarray:
    out = y.copy()
    n = y.size
    for t in np.flatnonzero(~known):
        vals: list[float] = []
        for direction in (-1, 1):
            found = 0
            j = t + direction * season
            while 0 <= j < n and found < neighbours:
                if known[j]:
                    vals.append(y[j])
                    found += 1
                j += direction * season
        if vals:
            out[t] = float(np.mean(vals))
    # a weekday never observed has no seasonal neighbour: fall back to the linear path
    return fill_linear(out)


def _fill_stl(y: np.ndarray, known: np.ndarray, season: int) -> np.ndarray:
    base = fill_linear(np.where(known, y, np.nan))
    if y.size < 2 * season + 1 or known.sum() < 2 * season:
        return base
    with quiet():
        seasonal = STL(base, period=season, robust=True).fit().seasonal
    deseason = np.where(known, y - seasonal, np.nan)
    return fill_linear(deseason) + seasonal


def fill_missing(
    y: np.ndarray,
    method: str = "linear",
    *,
    poly_degree: int = 2,
    spline_kind: str = "cubic",
    season: int = 7,
    seasonal_neighbours: int = 2,
) -> np.ndarray:
    """Fill NaNs of a daily series.

    Interior gaps use ``method``. Leading/trailing gaps are outside the known range, where
    polynomials and splines extrapolate wildly, so ``linear``, ``polynomial`` and ``spline``
    hold the nearest known value there; ``seasonal`` and ``stl`` use their own rule.

    * ``linear``: ``np.interp`` between the neighbouring known days.
    * ``polynomial``: interpolating polynomial (Newton form) through the ``poly_degree + 1``
      known days nearest to the gap day (ties to the earlier day).
    * ``spline``: ``CubicSpline`` (not-a-knot), ``PchipInterpolator`` or ``Akima1DInterpolator``
      through all known days.
    * ``seasonal``: mean of up to ``seasonal_neighbours`` known same-weekday values on each
      side (``season`` days apart); linear where a weekday has no known value.
    * ``stl``: robust STL seasonal component of a linearly pre-filled series; the
      deseasonalised known values are interpolated linearly and the seasonal part added
      back.

    Args:
        y: Values by day, NaN where missing.
        method: One of :data:`FILL_METHODS`.
        poly_degree: Degree for ``polynomial``.
        spline_kind: Kind for ``spline``.
        season: Season length for ``seasonal``/``stl``.
        seasonal_neighbours: Same-weekday neighbours per side for ``seasonal``.

    Returns:
        A new array; all-NaN when ``y`` has no known value.

    Raises:
        ValueError: On an unknown method.
    """
    if method not in FILL_METHODS:
        raise ValueError(f"fill method must be one of {FILL_METHODS}, got {method!r}")
    y = np.asarray(y, dtype=float)
    known = np.isfinite(y)
    if known.all() or not known.any():
        return y.copy()
    pos = np.arange(y.size)
    kp = pos[known]
    inside = (pos > kp[0]) & (pos < kp[-1])
    if method == "linear":
        return fill_linear(y)
    if method == "seasonal":
        return _fill_seasonal(y, known, season, seasonal_neighbours)
    if method == "stl":
        return _fill_stl(y, known, season)
    targets = np.flatnonzero(inside & ~known)
    if method == "polynomial":
        out = _fill_polynomial(y, known, targets, poly_degree)
    else:
        out = _fill_spline(y, known, targets, spline_kind)
    # hold the nearest known value beyond the first/last observation
    out[pos < kp[0]] = y[kp[0]]
    out[pos > kp[-1]] = y[kp[-1]]
    return out


# --------------------------------------------------------------------------- normalisation


@dataclass(frozen=True)
class NormParams:
    """Normalisation parameters of one series (population std, ``ddof=0``)."""

    min: float
    max: float
    mean: float
    std: float


NORM_PARAMS_FIELDS: tuple[tuple[str, str], ...] = (
    ("norm_min", "double"),
    ("norm_max", "double"),
    ("norm_mean", "double"),
    ("norm_std", "double"),
)


def normalisation_params(y: np.ndarray) -> NormParams:
    """Min, max, mean and population std of the finite values (NaN when none)."""
    v = np.asarray(y, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return NormParams(math.nan, math.nan, math.nan, math.nan)
    return NormParams(float(v.min()), float(v.max()), float(v.mean()), float(v.std(ddof=0)))


def normalise(y: np.ndarray, params: NormParams, method: NormMethod) -> np.ndarray:
    """Scale values with ``params``; a degenerate range/std maps every value to 0.

    Args:
        y: Values.
        params: From :func:`normalisation_params`.
        method: ``minmax`` -> ``(y - min) / (max - min)``; ``zscore`` -> ``(y - mean) / std``.

    Returns:
        The normalised values.
    """
    y = np.asarray(y, dtype=float)
    if method == "minmax":
        rng = params.max - params.min
        return (y - params.min) / rng if rng > 0 else np.where(np.isfinite(y), 0.0, np.nan)
    if method == "zscore":
        if params.std > 0:
            return (y - params.mean) / params.std
        return np.where(np.isfinite(y), 0.0, np.nan)
    raise ValueError(f"method must be 'minmax' or 'zscore', got {method!r}")


def denormalise(
    values: np.ndarray | pd.Series | float,
    params: NormParams | pd.DataFrame | pd.Series | dict[str, float],
    method: NormMethod,
) -> np.ndarray:
    """Invert :func:`normalise` (e.g. for forecasts made on a normalised series).

    Args:
        values: Normalised values (array, Series or scalar). Interval bounds are denormalised
            the same way since both maps are affine and increasing.
        params: A :class:`NormParams`, or a row/frame/dict with the ``norm_min``,
            ``norm_max``, ``norm_mean``, ``norm_std`` columns of the cleaned output (a frame
            must be aligned row by row with ``values``).
        method: ``minmax`` or ``zscore``.

    Returns:
        Values in the original units, as a float array.
    """
    v = np.asarray(values, dtype=float)
    if isinstance(params, NormParams):
        p = {
            "norm_min": params.min,
            "norm_max": params.max,
            "norm_mean": params.mean,
            "norm_std": params.std,
        }
    else:
        p = params  # type: ignore[assignment]
    if method == "minmax":
        lo = np.asarray(p["norm_min"], dtype=float)
        return v * (np.asarray(p["norm_max"], dtype=float) - lo) + lo
    if method == "zscore":
        return v * np.asarray(p["norm_std"], dtype=float) + np.asarray(p["norm_mean"], dtype=float)
    raise ValueError(f"method must be 'minmax' or 'zscore', got {method!r}")


# --------------------------------------------------------------------------- schema + grouped fn

_BASE_FIELDS: tuple[tuple[str, str], ...] = (
    ("series_id", "string"),
    ("ds", "date"),
    ("y_raw", "double"),
    ("y_obs", "double"),
    ("y_clean", "double"),
    ("is_missing", "boolean"),
    ("missing_reason", "string"),
    ("is_outlier", "boolean"),
    ("is_imputed", "boolean"),
    ("y_minmax", "double"),
    ("y_zscore", "double"),
    *NORM_PARAMS_FIELDS,
)


def clean_fields(cfg: CleanConfig | None = None) -> tuple[tuple[str, str], ...]:
    """``(name, type)`` pairs of the output of :func:`clean_series` for ``cfg``."""
    cfg = cfg or CleanConfig()
    extra = smoothing_fields(cfg.smoothing) if cfg.smoothing is not None else ()
    return _BASE_FIELDS + tuple(extra)


def clean_schema(cfg: CleanConfig | None = None) -> str:
    """Spark DDL schema of the cleaned output for ``cfg`` (columns depend on MA windows).

    Args:
        cfg: The config the grouped function was built with; default config when None.

    Returns:
        The DDL string to pass to ``applyInPandas``.
    """
    return ddl(clean_fields(cfg))


#: DDL of the cleaned output for the default :class:`CleanConfig`.
CLEAN_SCHEMA: str = clean_schema(CleanConfig())


def is_intermittent(y: np.ndarray, adi_threshold: float | None) -> bool:
    """Mostly zero days: observed days per non-zero day above ``adi_threshold``."""
    if adi_threshold is None:
        return False
    obs = y[np.isfinite(y)]
    nonzero = int(np.count_nonzero(obs))
    return obs.size > 0 and (nonzero == 0 or obs.size / nonzero > adi_threshold)


def clean_days(
    y_obs: np.ndarray, is_missing: np.ndarray, cfg: CleanConfig, *, smooth: bool = True
) -> dict[str, np.ndarray | float]:
    """The cleaned columns of one series' complete calendar (:func:`clean_series` and the
    panel of :mod:`~shikong.timeseries.panel` share it, so both give the same values).

    Args:
        y_obs: Usable observations by day, NaN when missing.
        is_missing: The days to fill (missing in the calendar).
        cfg: Configuration.
        smooth: Add the smoothing features (the panel computes them for many series at once).

    Returns:
        ``y_clean``, ``is_outlier``, ``is_imputed``, ``y_minmax``, ``y_zscore``, the four
        norm parameters (scalars) and the smoothing features.
    """
    intermittent = is_intermittent(y_obs, cfg.skip_outliers_adi)
    if cfg.detect_outliers and not intermittent:
        hres = hampel(
            y_obs,
            cfg.hampel_window,
            cfg.n_sigmas,
            min_periods=cfg.hampel_min_periods,
            min_scale=cfg.min_scale,
            two_sided=cfg.two_sided,
        )
        is_outlier = hres.is_outlier
    else:
        hres = None
        is_outlier = np.zeros(y_obs.size, dtype=bool)

    work = y_obs.copy()
    if hres is not None and cfg.outlier_replacement == "median":
        work[is_outlier] = hres.median[is_outlier]
        to_fill = is_missing
    else:
        work[is_outlier] = np.nan
        to_fill = is_missing | is_outlier

    y_clean = fill_missing(
        work,
        cfg.fill_method,
        poly_degree=cfg.poly_degree,
        spline_kind=cfg.spline_kind,
        season=cfg.season,
        seasonal_neighbours=cfg.seasonal_neighbours,
    )
    if cfg.clip_min is not None:
        y_clean = np.where(np.isfinite(y_clean), np.maximum(y_clean, cfg.clip_min), y_clean)
    params = normalisation_params(y_clean)
    cols: dict[str, np.ndarray | float] = {
        "y_clean": y_clean,
        "is_outlier": is_outlier,
        "is_imputed": to_fill & np.isfinite(y_clean),
        "y_minmax": normalise(y_clean, params, "minmax"),
        "y_zscore": normalise(y_clean, params, "zscore"),
        "norm_min": params.min,
        "norm_max": params.max,
        "norm_mean": params.mean,
        "norm_std": params.std,
    }
    if smooth and cfg.smoothing is not None:
        cols.update(smoothing_features(y_clean, cfg.smoothing, intermittent=intermittent))
    return cols


def clean_series(df: pd.DataFrame, cfg: CleanConfig | None = None) -> pd.DataFrame:
    """Clean one series: calendar, outliers, gap filling, normalisation, smoothing.

    The input is never modified.

    Args:
        df: All rows of ONE series: ``series_id``, ``ds``, ``y`` and optionally ``available``.
        cfg: Configuration; defaults to :class:`CleanConfig()`.

    Returns:
        One row per calendar day with the columns of :func:`clean_schema`. ``y_raw`` is the
        recorded value (NaN on absent days), ``y_obs`` the usable observation (NaN when
        missing), ``y_clean`` the outlier-treated, gap-filled, clipped value. ``is_imputed``
        marks days whose ``y_clean`` was produced by the fill method (missing days, and
        outliers when ``outlier_replacement == "fill"``); Hampel median replacements are
        marked by ``is_outlier`` only. Norm parameters are repeated on every row.

    Raises:
        ValueError: When ``ds`` or ``y`` is missing from the input.
    """
    cfg = cfg or CleanConfig()
    require_columns(df, ("ds", "y"), "clean_series")
    fields = clean_fields(cfg)
    sid = first_series_id(df)
    cal = complete_calendar(df, cfg.start, cfg.end, negative_is_missing=cfg.negative_is_missing)
    n = len(cal)
    if n == 0:
        return empty_frame(fields, nullable=False)

    y_obs = cal["y_obs"].to_numpy(dtype=float)
    is_missing = cal["is_missing"].to_numpy(dtype=bool)
    out = pd.DataFrame(
        {
            "series_id": np.full(n, sid, dtype=object),
            "ds": to_date_objects(pd.DatetimeIndex(cal["ds"])),
            "y_raw": cal["y_raw"].to_numpy(dtype=float),
            "y_obs": y_obs,
            **clean_days(y_obs, is_missing, cfg),
            "is_missing": is_missing,
            "missing_reason": cal["missing_reason"].to_numpy(dtype=object),
        }
    )
    n_missing, n_outliers = int(out["is_missing"].sum()), int(out["is_outlier"].sum())
    logger.debug("cleaned %s: %d days, %d missing, %d outliers", sid, n, n_missing, n_outliers)
    return conform(out, fields, nullable=False)


def make_clean_fn(cfg: CleanConfig | None = None) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Build the grouped cleaning function for ``applyInPandas``.

    Args:
        cfg: Configuration captured by the returned closure (frozen, so safe to ship to
            executors).

    Returns:
        ``fn(pdf) -> pdf`` producing :func:`clean_schema(cfg) <clean_schema>` columns.
    """
    cfg = cfg or CleanConfig()

    def _clean(pdf: pd.DataFrame) -> pd.DataFrame:
        return clean_series(pdf, cfg)

    return _clean
