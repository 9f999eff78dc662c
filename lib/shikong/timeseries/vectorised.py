"""The cheap routes of the forecaster, their backtest metrics and the smoothing features,
vectorised across series: one numpy operation for a whole (series x day) matrix.

A full catalogue is mostly intermittent series (the default world: 23,204 of 23,239
SKU x warehouse series sell on fewer than 1 day in 1.32). Each of them costs well under a
millisecond of arithmetic, so a Python call per series and per fold is most of the cost;
here one call serves every such series of a pandas group. Every function equals its
one-series counterpart row by row (tests compare them):

==========================  ===========================================================
:func:`cheap_routes`        the routing rules of ``forecast_array`` that end in SBA /
                            Croston (``intermittent``), the mean (``single_sale``) or
                            seasonal naive (``all_zero``, ``constant``)
:func:`croston_rows`        ``baselines.croston_forecast``
:func:`seasonal_naive_rows` ``baselines.seasonal_naive_forecast``
:func:`metric_rows`         ``metrics.evaluate``
:func:`smoothing_rows`      ``smoothing.smoothing_features`` (moving averages, fixed-alpha
                            SES and wavelets; statsmodels' fits stay per series)
==========================  ===========================================================

Only complete rows qualify: every value finite (a series with a missing day goes through
the one-series path, which skips or interpolates it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pywt
from scipy.signal import lfilter

from shikong.timeseries.forecast_types import (
    ALL_ZERO,
    CONSTANT,
    INTERMITTENT,
    MODEL_MEAN,
    MODEL_SNAIVE,
    SINGLE_SALE,
    Z80,
    Z95,
    ForecastConfig,
)
from shikong.timeseries.smoothing import (
    INTERMITTENT_SES_ALPHA,
    MAD_NORMAL,
    SmoothConfig,
    holt_winters,
    simple_exp_smoothing,
)

#: Quantile levels of Croston's interval errors (lo95, lo80, hi80, hi95), as the one-series path.
_ERROR_LEVELS = (0.025, 0.10, 0.90, 0.975)


@dataclass(frozen=True)
class Rows:
    """Forecasts of several series: (series, step) arrays and one model name per series."""

    yhat: np.ndarray
    lo80: np.ndarray
    hi80: np.ndarray
    lo95: np.ndarray
    hi95: np.ndarray
    model: np.ndarray
    reason: np.ndarray

    def clipped(self) -> Rows:
        """Point forecasts and bounds clipped at 0 (``ForecastConfig.nonnegative``)."""
        z = np.maximum
        return Rows(
            z(self.yhat, 0.0),
            z(self.lo80, 0.0),
            z(self.hi80, 0.0),
            z(self.lo95, 0.0),
            z(self.hi95, 0.0),
            self.model,
            self.reason,
        )


def _from_sigma(yhat: np.ndarray, sigma: np.ndarray, model: str, reason: str) -> Rows:
    n = yhat.shape[0]
    return Rows(
        yhat,
        yhat - Z80 * sigma,
        yhat + Z80 * sigma,
        yhat - Z95 * sigma,
        yhat + Z95 * sigma,
        np.full(n, model, dtype=object),
        np.full(n, reason, dtype=object),
    )


def cheap_routes(x: np.ndarray, cfg: ForecastConfig) -> np.ndarray:
    """Per complete row, the reason ``forecast_array`` gives it when that reason is one of
    the cheap routes (``all_zero``, ``constant``, ``intermittent``, ``single_sale``), else
    ``None`` (the one-series path). ``x`` is the history the forecaster sees (rows finite)."""
    if cfg.max_history is not None and x.shape[1] > cfg.max_history:
        x = x[:, -cfg.max_history :]
    n = x.shape[1]
    out = np.full(x.shape[0], None, dtype=object)
    if n == 0:
        return out
    zero = (x == 0).all(axis=1)
    constant = ~zero & (n > 1) & (np.ptp(x, axis=1) == 0)
    # nan_heavy cannot apply to a complete row
    nonzero = np.count_nonzero(x, axis=1)
    # (a row without a positive value gets Croston's zero forecast: left to that path)
    intermittent = ~zero & ~constant & (nonzero >= 2) & (x > 0).any(axis=1)
    single = ~zero & ~constant & (nonzero == 1) & (n > cfg.adi_threshold)
    if cfg.intermittent_method is None:
        intermittent[:] = False
        single[:] = False
    else:
        intermittent &= n / np.maximum(nonzero, 1) > cfg.adi_threshold
    out[single] = SINGLE_SALE
    # the seasonal naive of the one-series path needs a season of history
    out[zero & (n >= cfg.season)] = ALL_ZERO
    out[constant & (n >= cfg.season)] = CONSTANT
    out[intermittent] = INTERMITTENT
    return out


def croston_rows(x: np.ndarray, horizon: int, *, alpha: float, variant: str, reason: str) -> Rows:
    """``croston_forecast`` of complete rows, each with a non-zero value."""
    r, n = x.shape
    factor = 1.0 - alpha / 2.0 if variant == "sba" else 1.0
    positive = x > 0
    first = np.argmax(positive, axis=1)
    rows = np.arange(r)
    size = x[rows, first].astype(float)
    interval = first + 1.0
    since = np.ones(r)
    fitted = np.full((r, n), np.nan)
    for t in range(n):
        active = t > first
        if not active.any():
            continue
        fitted[:, t] = np.where(active, factor * size / interval, np.nan)
        up = active & positive[:, t]
        size = np.where(up, size + alpha * (x[:, t] - size), size)
        interval = np.where(up, interval + alpha * (since - interval), interval)
        since = np.where(up, 1.0, np.where(active, since + 1.0, since))
    rate = factor * size / interval
    yhat = np.repeat(rate[:, None], horizon, axis=1)
    name = "SBA" if variant == "sba" else "Croston"
    err = x - fitted
    n_err = np.isfinite(err).sum(axis=1)
    q = np.full((len(_ERROR_LEVELS), r), np.nan)
    many = n_err >= 2
    if many.any():
        q[:, many] = np.nanquantile(err[many], _ERROR_LEVELS, axis=1)
    q[:2] = np.minimum(q[:2], 0.0)  # bounds never exclude the rate (as the one-series path)
    q[2:] = np.maximum(q[2:], 0.0)
    out = Rows(
        yhat,
        yhat + q[1][:, None],
        yhat + q[2][:, None],
        yhat + q[0][:, None],
        yhat + q[3][:, None],
        np.full(r, name, dtype=object),
        np.full(r, reason, dtype=object),
    )
    if not many.all():
        few = _from_sigma(yhat, np.sqrt(rate)[:, None] * np.ones(horizon), name, reason)
        out = _where_rows(~many, few, out)
    return out


def _where_rows(mask: np.ndarray, a: Rows, b: Rows) -> Rows:
    """Rows of ``a`` where ``mask``, else of ``b``."""
    m = mask[:, None]
    return Rows(
        np.where(m, a.yhat, b.yhat),
        np.where(m, a.lo80, b.lo80),
        np.where(m, a.hi80, b.hi80),
        np.where(m, a.lo95, b.lo95),
        np.where(m, a.hi95, b.hi95),
        np.where(mask, a.model, b.model),
        np.where(mask, a.reason, b.reason),
    )


def seasonal_naive_rows(x: np.ndarray, horizon: int, season: int, reason: str) -> Rows:
    """``seasonal_naive_forecast`` of complete rows at least one season long."""
    steps = np.arange(horizon)
    yhat = x[:, -season:][:, steps % season]
    err = x[:, season:] - x[:, :-season]
    if err.shape[1] >= 2:
        sigma = np.sqrt(np.mean(err**2, axis=1))
    else:
        sigma = np.sqrt(np.maximum(np.mean(x, axis=1), 0.0))
    return _from_sigma(yhat, sigma[:, None] * np.sqrt(steps // season + 1.0), MODEL_SNAIVE, reason)


def cheap_forecasts(x: np.ndarray, reasons: np.ndarray, cfg: ForecastConfig) -> Rows:
    """Forecasts of the rows whose :func:`cheap_routes` reason is set (all of ``x``'s rows)."""
    if cfg.max_history is not None and x.shape[1] > cfg.max_history:
        x = x[:, -cfg.max_history :]
    h = cfg.horizon
    sba = reasons == INTERMITTENT
    snaive = seasonal_naive_rows(x, h, cfg.season, "")
    out = Rows(
        snaive.yhat.copy(),
        snaive.lo80.copy(),
        snaive.hi80.copy(),
        snaive.lo95.copy(),
        snaive.hi95.copy(),
        snaive.model.copy(),
        np.asarray(reasons, dtype=object),
    )
    if sba.any():
        method = cfg.intermittent_method or "sba"
        c = croston_rows(x[sba], h, alpha=cfg.croston_alpha, variant=method, reason=INTERMITTENT)
        for name in ("yhat", "lo80", "hi80", "lo95", "hi95"):
            getattr(out, name)[sba] = getattr(c, name)
        out.model[sba] = c.model
    single = reasons == SINGLE_SALE
    if single.any():
        m = _from_sigma(
            np.repeat(np.mean(x[single], axis=1)[:, None], h, axis=1),
            np.repeat(np.std(x[single], axis=1)[:, None], h, axis=1),
            MODEL_MEAN,
            SINGLE_SALE,
        )
        for name in ("yhat", "lo80", "hi80", "lo95", "hi95"):
            getattr(out, name)[single] = getattr(m, name)
        out.model[single] = m.model
    return out.clipped() if cfg.nonnegative else out


def metric_rows(
    actual: np.ndarray, fc: Rows, insample: np.ndarray, season: int
) -> dict[str, np.ndarray]:
    """``metrics.evaluate`` of complete rows (actual, forecast and bounds all finite)."""
    a, f = actual, fc.yhat
    e = f - a
    ae = np.abs(a - f)
    h = a.shape[1]
    if insample.shape[1] > season:
        scale = np.mean(np.abs(insample[:, season:] - insample[:, :-season]), axis=1)
    else:
        scale = np.full(a.shape[0], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        mae_ae = np.mean(ae, axis=1)
        mase = np.where(scale > 0, mae_ae / scale, np.nan)
        den = np.abs(a) + np.abs(f)
        terms = np.divide(2.0 * ae, den, out=np.zeros_like(den), where=den > 0)
        sum_abs_actual = np.sum(np.abs(a), axis=1)
        sum_abs_error = np.sum(np.abs(e), axis=1)
        wape = np.where(sum_abs_actual == 0, np.nan, np.sum(ae, axis=1) / sum_abs_actual)
    return {
        "n": np.full(a.shape[0], h),
        "mase": mase,
        "smape": 100.0 * np.mean(terms, axis=1),
        "wape": wape,
        "bias": np.mean(f - a, axis=1),
        "coverage80": np.mean((a >= fc.lo80) & (a <= fc.hi80), axis=1),
        "coverage95": np.mean((a >= fc.lo95) & (a <= fc.hi95), axis=1),
        "mae": np.mean(np.abs(e), axis=1),
        "scale": scale,
        "sum_abs_error": sum_abs_error,
        "sum_abs_actual": sum_abs_actual,
        "sum_error": np.sum(e, axis=1),
    }


def _ses_fixed_rows(y: np.ndarray, alpha: float) -> np.ndarray:
    """``smoothing.ses_fixed_alpha`` of complete rows (at least two days)."""
    beta = 1.0 - alpha
    zero_start = lfilter([alpha], [1.0, -beta], y, axis=1)
    weight = beta ** np.arange(y.shape[1])
    before = np.concatenate([np.zeros((y.shape[0], 1)), zero_start[:, :-1]], axis=1)
    l0 = ((y - before) @ weight) / np.dot(weight, weight)
    return zero_start + beta * weight[None, :] * l0[:, None]


def _wavelets(y: np.ndarray, cfg: SmoothConfig) -> tuple[np.ndarray, np.ndarray]:
    """``wavelet_denoise`` and ``wavelet_approximation`` of complete rows."""
    r, n = y.shape
    w = pywt.Wavelet(cfg.wavelet)
    max_level = pywt.dwt_max_level(n, w.dec_len)
    lev = max_level if cfg.wavelet_level is None else min(cfg.wavelet_level, max_level)
    if lev < 1:
        nan = np.full((r, n), np.nan)
        return nan, nan.copy()
    coeffs = pywt.wavedec(y, w, mode=cfg.wavelet_mode, level=lev, axis=1)
    sigma = np.median(np.abs(coeffs[-1]), axis=1) / MAD_NORMAL
    thr = sigma * math.sqrt(2.0 * math.log(n))
    shrunk = [coeffs[0]]
    for c in coeffs[1:]:
        if cfg.threshold_mode == "soft":
            # PyWavelets' soft threshold, c * max(1 - thr / |c|, 0), for each row's threshold
            with np.errstate(divide="ignore", invalid="ignore"):
                keep = np.clip(1.0 - thr[:, None] / np.abs(c), 0.0, None)
            shrunk.append(c * keep)
        else:
            shrunk.append(
                np.stack(
                    [pywt.threshold(ci, ti, mode="hard") for ci, ti in zip(c, thr, strict=True)]
                )
            )
    denoised = pywt.waverec(shrunk, w, mode=cfg.wavelet_mode, axis=1)[:, :n]
    # the one-series function returns the series itself when its threshold is 0
    denoised = np.where((thr > 0)[:, None], denoised, y)
    approx = [coeffs[0]] + [np.zeros_like(c) for c in coeffs[1:]]
    return denoised, pywt.waverec(approx, w, mode=cfg.wavelet_mode, axis=1)[:, :n]


def smoothing_rows(
    y: np.ndarray, intermittent: np.ndarray, cfg: SmoothConfig
) -> dict[str, np.ndarray]:
    """``smoothing_features`` of complete rows (moving averages, SES and wavelets for all
    rows at once; the statsmodels fits of the non-intermittent rows one by one)."""
    r, n = y.shape
    frame = pd.DataFrame(y.T)
    out = {
        f"ma_{w}": frame.rolling(w, min_periods=min(cfg.ma_min_periods, w), center=cfg.ma_center)
        .mean()
        .to_numpy()
        .T
        for w in cfg.ma_windows
    }
    dense = np.flatnonzero(~intermittent)
    if cfg.ses:
        ses = np.full((r, n), np.nan)
        if intermittent.any() and n >= 2:
            alpha = cfg.ses_alpha or INTERMITTENT_SES_ALPHA
            ses[intermittent] = _ses_fixed_rows(y[intermittent], alpha)
        for i in dense:
            ses[i] = simple_exp_smoothing(y[i], cfg.ses_alpha)
        out["ses_level"] = ses
    if cfg.holt_winters:
        hw = np.full((r, n), np.nan)
        for i in dense:
            hw[i] = holt_winters(
                y[i],
                trend=cfg.hw_trend,
                damped=cfg.hw_damped,
                seasonal=cfg.hw_seasonal,
                season=cfg.season,
            )
        out["hw_fitted"] = hw
    if cfg.wavelet is not None:
        out["wavelet_denoised"], out["wavelet_approx"] = _wavelets(y, cfg)
    return out
