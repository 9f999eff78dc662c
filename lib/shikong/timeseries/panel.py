"""Many whole series in one pandas call, as a day x series panel.

A full catalogue is mostly small, intermittent series whose models cost well under a
millisecond; around them, building a pandas frame per series (calendar, conform, the
output frame) costs 10-30 ms. The functions here read a frame of many series once into
arrays (:func:`daily_panel`), run the same one-series array functions on each row (the
routing and models of :func:`~shikong.timeseries.forecast.forecast_array`, the cleaning
of :func:`~shikong.timeseries.cleaning.clean_days`) and build one output frame, so their
output equals the concatenated one-series functions' (checked by the tests):

=====================  ==========================================================
:func:`clean_panel`    ``clean_series`` of every series
:func:`forecast_panel` ``forecast_series`` of every series
:func:`backtest_panel` ``backtest_series(...).metrics`` of every series
=====================  ==========================================================

No pyspark here: :mod:`~shikong.timeseries.distributed` runs them per group of series.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shikong.frames import conform, empty_frame
from shikong.timeseries._common import as_timestamp, require_columns, to_timestamps
from shikong.timeseries.backtest import (
    BACKTEST_FIELDS,
    MODEL_BASELINE,
    MODEL_CHOSEN,
    BacktestConfig,
    clip_nonnegative,
    fold_train_ends,
)
from shikong.timeseries.baselines import seasonal_naive_forecast
from shikong.timeseries.cleaning import (
    ABSENT_DAY,
    NEGATIVE_VALUE,
    NULL_VALUE,
    UNAVAILABLE,
    CleanConfig,
    clean_days,
    clean_fields,
    is_intermittent,
)
from shikong.timeseries.forecast import FORECAST_FIELDS, forecast_array
from shikong.timeseries.forecast_types import ForecastConfig, SeriesForecast
from shikong.timeseries.metrics import evaluate
from shikong.timeseries.sarima import WarmStarts
from shikong.timeseries.smoothing import SmoothConfig, smoothing_features
from shikong.timeseries.vectorised import (
    cheap_forecasts,
    cheap_routes,
    metric_rows,
    seasonal_naive_rows,
    smoothing_rows,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Panel:
    """Several series on one daily calendar (what ``daily_frame`` gives for one series).

    Attributes:
        ids: Series ids, in order of first appearance (``None`` for a null id).
        days: The calendar (midnight timestamps).
        value: (series, day) usable values, NaN when not observed.
        present: A row existed that day.
        unavailable: Every row of that day was flagged ``available == False``.
        null_value: Rows existed and were available but had no value.
        recorded: Sum of the recorded values regardless of availability, NaN when none.
        first: Per series, the day index of its first row in the calendar (-1: none).
        last: Per series, the day index of its last row in the calendar (-1: none).
    """

    ids: np.ndarray
    days: pd.DatetimeIndex
    value: np.ndarray
    present: np.ndarray
    unavailable: np.ndarray
    null_value: np.ndarray
    recorded: np.ndarray
    first: np.ndarray
    last: np.ndarray


def daily_panel(
    pdf: pd.DataFrame,
    value_col: str,
    *,
    key: str = "series_id",
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> Panel:
    """``daily_frame`` of every series of ``pdf`` at once, on a shared calendar.

    Duplicate days are summed over their usable rows as in ``daily_frame``. The calendar
    runs from ``start`` (default: the earliest date of any series) to ``end`` (default: the
    latest); a series' own span is ``first..last``.
    """
    ds = to_timestamps(pdf["ds"])
    val = pd.to_numeric(pdf[value_col], errors="coerce").to_numpy(dtype=float)
    if "available" in pdf.columns:
        unavailable_row = pdf["available"].eq(False).fillna(False).to_numpy(dtype=bool)
    else:
        unavailable_row = np.zeros(len(pdf), dtype=bool)
    codes, ids = pd.factorize(pdf[key].to_numpy(dtype=object), use_na_sentinel=False)
    ids = np.asarray(ids, dtype=object)
    dated = np.asarray(ds.notna())
    lo = start if start is not None else (ds[dated].min() if dated.any() else None)
    hi = end if end is not None else (ds[dated].max() if dated.any() else None)
    days = pd.date_range(lo, hi, freq="D") if lo is not None and hi is not None else None
    shape = (ids.size, 0 if days is None else days.size)
    value = np.full(shape, np.nan)
    recorded = np.full(shape, np.nan)
    present = np.zeros(shape, dtype=bool)
    any_avail = np.zeros(shape, dtype=bool)
    if days is not None and dated.any():
        day = np.full(len(pdf), -1, dtype=np.int64)
        day[dated] = (ds[dated] - days[0]).days.to_numpy()
        keep = dated & (day >= 0) & (day < days.size)
        rows = pd.DataFrame(
            {
                "code": codes[keep],
                "day": day[keep],
                "usable": np.where(unavailable_row | ~np.isfinite(val), np.nan, val)[keep],
                "recorded": val[keep],
                "avail_row": ~unavailable_row[keep],
            }
        )
        g = rows.groupby(["code", "day"], sort=False)
        agg = pd.DataFrame(
            {
                "usable": g["usable"].sum(min_count=1),
                "recorded": g["recorded"].sum(min_count=1),
                "any_avail": g["avail_row"].any(),
            }
        )
        c = agg.index.get_level_values(0).to_numpy()
        d = agg.index.get_level_values(1).to_numpy()
        value[c, d] = agg["usable"].to_numpy(dtype=float)
        recorded[c, d] = agg["recorded"].to_numpy(dtype=float)
        present[c, d] = True
        any_avail[c, d] = agg["any_avail"].to_numpy(dtype=bool)
    has = present.any(axis=1)
    first = np.where(has, np.argmax(present, axis=1), -1)
    last = np.where(has, present.shape[1] - 1 - np.argmax(present[:, ::-1], axis=1), -1)
    return Panel(
        ids=ids,
        days=days if days is not None else pd.DatetimeIndex([]),
        value=value,
        present=present,
        unavailable=present & ~any_avail,
        null_value=present & any_avail & ~np.isfinite(value),
        recorded=recorded,
        first=first,
        last=last,
    )


def _sid(sid: object) -> str | None:
    """A series id as the output holds it (a null id stays null, as in the one-series path)."""
    return None if pd.isna(sid) else str(sid)  # type: ignore[call-overload]


def _dates(days: pd.DatetimeIndex) -> np.ndarray:
    """``datetime.date`` objects, the form Spark hands a ``date`` column to pandas."""
    return np.asarray(days.date, dtype=object)


def _frame(
    columns: dict[str, list[np.ndarray]], fields: tuple[tuple[str, str], ...]
) -> pd.DataFrame:
    """One conformed frame from per-series column pieces (empty frame when none)."""
    if not columns[fields[0][0]]:
        return empty_frame(fields, nullable=False)
    out = pd.DataFrame({name: np.concatenate(columns[name]) for name, _ in fields})
    return conform(out, fields, nullable=False)


def clean_panel(pdf: pd.DataFrame, cfg: CleanConfig | None = None) -> pd.DataFrame:
    """:func:`~shikong.timeseries.cleaning.clean_series` of every series in ``pdf``.

    Args:
        pdf: Rows of one or more whole series (``series_id``, ``ds``, ``y``, optionally
            ``available``). Not modified.
        cfg: Configuration; default :class:`CleanConfig()`.

    Returns:
        The rows of :func:`~shikong.timeseries.cleaning.clean_schema`, series after series.
    """
    cfg = cfg or CleanConfig()
    require_columns(pdf, ("ds", "y"), "clean_panel")
    fields = clean_fields(cfg)
    start, end = as_timestamp(cfg.start), as_timestamp(cfg.end)
    p = daily_panel(pdf, "y", start=start, end=end)
    negative = np.isfinite(p.value) & (p.value < 0)
    y_obs = np.where(negative, np.nan, p.value) if cfg.negative_is_missing else p.value
    # later assignments win, so from least to most specific (as complete_calendar)
    reason = np.full(p.value.shape, None, dtype=object)
    if cfg.negative_is_missing:
        reason[negative] = NEGATIVE_VALUE
    reason[p.null_value] = NULL_VALUE
    reason[p.unavailable] = UNAVAILABLE
    reason[~p.present] = ABSENT_DAY
    dates = _dates(p.days)
    # On a shared calendar the smoothing features of complete series are computed for all
    # of them at once (vectorised); otherwise per series, as clean_series does.
    shared = start is not None and end is not None
    pieces: list[dict[str, np.ndarray | float]] = []
    for i, sid in enumerate(p.ids):
        lo = 0 if start is not None else p.first[i]
        hi = p.days.size - 1 if end is not None else p.last[i]
        if lo < 0 or hi < lo:
            continue  # no dated row (clean_series gives no row either)
        span = slice(lo, hi + 1)
        obs = y_obs[i, span]
        missing = ~np.isfinite(obs)
        pieces.append(
            {
                "series_id": np.full(obs.size, _sid(sid), dtype=object),
                "ds": dates[span],
                "y_raw": p.recorded[i, span],
                "y_obs": obs,
                "is_missing": missing,
                "missing_reason": reason[i, span],
                "intermittent": is_intermittent(obs, cfg.skip_outliers_adi),
                **clean_days(obs, missing, cfg, smooth=not shared),
            }
        )
    if shared and cfg.smoothing is not None and pieces:
        _smooth_pieces(pieces, cfg.smoothing)
    cols: dict[str, list[np.ndarray]] = {name: [] for name, _ in fields}
    for piece in pieces:
        n = piece["y_obs"].size  # type: ignore[union-attr]
        for name, _ in fields:
            v = piece[name]
            cols[name].append(v if isinstance(v, np.ndarray) else np.full(n, v))
    return _frame(cols, fields)


def _smooth_pieces(pieces: list[dict[str, np.ndarray | float]], cfg: SmoothConfig) -> None:
    """Add the smoothing features to equally long cleaned series (in place): complete
    ones together (:func:`~shikong.timeseries.vectorised.smoothing_rows`), the rest one
    by one."""
    y = np.stack([np.asarray(piece["y_clean"], dtype=float) for piece in pieces])
    intermittent = np.array([bool(piece["intermittent"]) for piece in pieces])
    complete = np.isfinite(y).all(axis=1)
    together = smoothing_rows(y[complete], intermittent[complete], cfg)
    rank = np.cumsum(complete) - 1
    for i, piece in enumerate(pieces):
        if complete[i]:
            piece.update({name: values[rank[i]] for name, values in together.items()})
        else:
            piece.update(smoothing_features(y[i], cfg, intermittent=bool(intermittent[i])))


def _complete(p: Panel, *values: np.ndarray) -> np.ndarray:
    """Series that cover the whole calendar with every value finite: the vectorised path."""
    ok = (p.first == 0) & (p.last == p.days.size - 1)
    for v in values:
        ok &= np.isfinite(v).all(axis=1)
    return ok


def _cheap(p: Panel, x: np.ndarray, fast: np.ndarray, cfg: ForecastConfig) -> np.ndarray:
    """Per series, the cheap route's reason of its history ``x`` (None: the one-series path)."""
    reasons = np.full(p.ids.size, None, dtype=object)
    if fast.any():
        reasons[fast] = cheap_routes(x[fast], cfg)
    return reasons


def forecast_panel(pdf: pd.DataFrame, cfg: ForecastConfig | None = None) -> pd.DataFrame:
    """:func:`~shikong.timeseries.forecast.forecast_series` of every series in ``pdf``.

    Complete series on a cheap route (intermittent, all zero, constant) are forecast
    together (:mod:`~shikong.timeseries.vectorised`); the others one by one.

    Args:
        pdf: Rows of one or more whole series (``series_id``, ``ds``, ``cfg.target_col``,
            optionally ``available``). Not modified.
        cfg: Configuration; default :class:`ForecastConfig()`.

    Returns:
        ``horizon`` rows per series with a dated row, following ``FORECAST_SCHEMA``.
    """
    cfg = cfg or ForecastConfig()
    require_columns(pdf, ("ds", cfg.target_col), "forecast_panel")
    p = daily_panel(pdf, cfg.target_col)
    h = cfg.horizon
    steps = np.arange(1, h + 1)
    reasons = _cheap(p, p.value, _complete(p, p.value), cfg)
    cheap = np.array([r is not None for r in reasons], dtype=bool)
    together = cheap_forecasts(p.value[cheap], reasons[cheap], cfg) if cheap.any() else None
    rank = np.cumsum(cheap) - 1
    cols: dict[str, list[np.ndarray]] = {name: [] for name, _ in FORECAST_FIELDS}
    for i, sid in enumerate(p.ids):
        if p.first[i] < 0:
            logger.warning("series %s has no dated rows; no forecast", sid)
            continue
        if together is not None and cheap[i]:
            k = rank[i]
            arrays = [getattr(together, n)[k] for n in ("yhat", "lo80", "hi80", "lo95", "hi95")]
            model, reason = together.model[k], together.reason[k]
        else:
            fc = forecast_array(p.value[i, p.first[i] : p.last[i] + 1], cfg)
            arrays = [fc.yhat, fc.lo80, fc.hi80, fc.lo95, fc.hi95]
            model, reason = fc.model, fc.reason
        ahead = p.days[p.last[i]] + pd.to_timedelta(steps, unit="D")
        piece = {
            "series_id": np.full(h, _sid(sid), dtype=object),
            "ds": _dates(pd.DatetimeIndex(ahead)),
            "step": steps,
            **dict(zip(("yhat", "lo80", "hi80", "lo95", "hi95"), arrays, strict=True)),
            "model": np.full(h, model, dtype=object),
            "reason": np.full(h, reason, dtype=object),
        }
        for name, v in piece.items():
            cols[name].append(v)
    return _frame(cols, FORECAST_FIELDS)


def _metric_record(
    sid: object,
    fold: int,
    origin: object,
    label: str,
    fc: SeriesForecast,
    scores: Mapping[str, object],
) -> dict[str, object]:
    return {
        "series_id": _sid(sid),
        "fold": fold,
        "origin": origin,
        "model": label,
        "model_spec": fc.model,
        "reason": fc.reason,
        **scores,
    }


def backtest_panel(pdf: pd.DataFrame, cfg: BacktestConfig | None = None) -> pd.DataFrame:
    """``backtest_series(...).metrics`` of every series in ``pdf`` (the same folds, warm
    starts, baseline and metrics).

    Complete series (target and actual finite on every day of the calendar) are scored
    together fold by fold: the cheap routes, the seasonal-naive baseline and the metrics
    vectorised, the other routes one series at a time; the rest as ``backtest_series``.

    Args:
        pdf: Rows of one or more whole series with ``ds``, the target and actual columns.
        cfg: Configuration; default :class:`BacktestConfig()`.

    Returns:
        Rows of ``BACKTEST_SCHEMA``: two per scored fold of each series.
    """
    cfg = cfg or BacktestConfig()
    fcfg = dataclasses.replace(cfg.forecast, horizon=cfg.horizon)
    target = fcfg.target_col
    actual_col = cfg.actual_col or target
    require_columns(pdf, ("ds", target, actual_col), "backtest_panel")
    p = daily_panel(pdf, target)
    actual_all = p.value if actual_col == target else daily_panel(pdf, actual_col).value
    fast = _complete(p, p.value, actual_all)
    records: list[dict[str, object]] = []
    chunks: list[pd.DataFrame] = []
    for i in np.flatnonzero(~fast):
        if p.first[i] < 0:
            continue
        span = slice(p.first[i], p.last[i] + 1)
        records += _backtest_one(
            p.ids[i], p.value[i, span], actual_all[i, span], p.days[span], cfg, fcfg
        )
    if fast.any():
        chunks += _backtest_complete(
            p.ids[fast], p.value[fast], actual_all[fast], p.days, cfg, fcfg
        )
    if records:
        chunks.append(pd.DataFrame(records))
    if not chunks:
        return empty_frame(BACKTEST_FIELDS, nullable=False)
    return conform(pd.concat(chunks, ignore_index=True), BACKTEST_FIELDS, nullable=False)


def _backtest_one(
    sid: object,
    y: np.ndarray,
    actual: np.ndarray,
    days: pd.DatetimeIndex,
    cfg: BacktestConfig,
    fcfg: ForecastConfig,
) -> list[dict[str, object]]:
    """The metric rows of one series, as ``backtest_series``."""
    h, season = cfg.horizon, fcfg.season
    warm: WarmStarts = {}
    rows = []
    for fold, end in enumerate(fold_train_ends(y.size, cfg.folds, h, cfg.step)):
        if end < cfg.min_train:
            continue
        train, test, insample = y[:end], actual[end : end + h], actual[:end]
        chosen = forecast_array(train, fcfg, warm if cfg.warm_start else None)
        base = seasonal_naive_forecast(train, h, season, reason="baseline")
        if fcfg.nonnegative:
            base = clip_nonnegative(base)
        for label, fc in ((MODEL_CHOSEN, chosen), (MODEL_BASELINE, base)):
            scores = evaluate(test, fc.yhat, fc.lo80, fc.hi80, fc.lo95, fc.hi95, insample, season)
            rows.append(_metric_record(sid, fold, days[end - 1].date(), label, fc, scores))
    return rows


def _backtest_complete(
    ids: np.ndarray,
    y: np.ndarray,
    actual: np.ndarray,
    days: pd.DatetimeIndex,
    cfg: BacktestConfig,
    fcfg: ForecastConfig,
) -> list[pd.DataFrame]:
    """The metric rows of complete series of equal length, fold by fold."""
    h, season = cfg.horizon, fcfg.season
    warm: list[WarmStarts] = [{} for _ in ids]
    out = []
    sids = np.array([_sid(s) for s in ids], dtype=object)
    for fold, end in enumerate(fold_train_ends(y.shape[1], cfg.folds, h, cfg.step)):
        if end < cfg.min_train:
            continue
        train, test, insample = y[:, :end], actual[:, end : end + h], actual[:, :end]
        origin = days[end - 1].date()
        reasons = cheap_routes(train, fcfg)
        cheap = np.array([r is not None for r in reasons], dtype=bool)
        if cheap.any():
            fc = cheap_forecasts(train[cheap], reasons[cheap], fcfg)
            scores = metric_rows(test[cheap], fc, insample[cheap], season)
            out.append(_chunk(sids[cheap], fold, origin, MODEL_CHOSEN, fc.model, fc.reason, scores))
        slow = []
        for k in np.flatnonzero(~cheap):
            fc1 = forecast_array(train[k], fcfg, warm[k] if cfg.warm_start else None)
            scores1 = evaluate(
                test[k], fc1.yhat, fc1.lo80, fc1.hi80, fc1.lo95, fc1.hi95, insample[k], season
            )
            slow.append(_metric_record(ids[k], fold, origin, MODEL_CHOSEN, fc1, scores1))
        if slow:
            out.append(pd.DataFrame(slow))
        if end >= season:
            base = seasonal_naive_rows(train, h, season, "baseline")
            base = base.clipped() if fcfg.nonnegative else base
            scores = metric_rows(test, base, insample, season)
            out.append(_chunk(sids, fold, origin, MODEL_BASELINE, base.model, base.reason, scores))
        else:
            for j in range(ids.size):
                b = seasonal_naive_forecast(train[j], h, season, reason="baseline")
                b = clip_nonnegative(b) if fcfg.nonnegative else b
                sb = evaluate(test[j], b.yhat, b.lo80, b.hi80, b.lo95, b.hi95, insample[j], season)
                out.append(
                    pd.DataFrame([_metric_record(ids[j], fold, origin, MODEL_BASELINE, b, sb)])
                )
    return out


def _chunk(
    sids: np.ndarray,
    fold: int,
    origin: object,
    label: str,
    model: np.ndarray,
    reason: np.ndarray,
    scores: dict[str, np.ndarray],
) -> pd.DataFrame:
    n = sids.size
    return pd.DataFrame(
        {
            "series_id": sids,
            "fold": np.full(n, fold),
            "origin": np.full(n, origin, dtype=object),
            "model": np.full(n, label, dtype=object),
            "model_spec": model,
            "reason": reason,
            **scores,
        }
    )


def make_panel_fn(
    fn: Callable[[pd.DataFrame, Any], pd.DataFrame], cfg: Any, *, drop: tuple[str, ...] = ()
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """``fn(pdf, cfg)`` as the grouped function of ``applyInPandas`` (dropping ``drop``,
    e.g. the group-key column, first)."""

    def _grouped(pdf: pd.DataFrame) -> pd.DataFrame:
        if drop:
            pdf = pdf.drop(columns=[c for c in drop if c in pdf.columns])
        return fn(pdf, cfg)

    return _grouped
