"""Smoothing features of one gap-free daily series.

Moving averages (pandas rolling), simple exponential smoothing and Holt-Winters
(``statsmodels.tsa.holtwinters``), and wavelet denoising / approximation (PyWavelets).
Each feature that cannot be computed for a series (too short, failed fit) is all-NaN
rather than an exception, so one odd series never fails a Spark task.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pywt
from scipy.signal import lfilter
from statsmodels.tsa.holtwinters import ExponentialSmoothing, SimpleExpSmoothing

from shikong.timeseries._common import quiet

logger = logging.getLogger(__name__)

#: SES smoothing level on intermittent series (the usual Croston/SBA constant): there the
#: estimated level drifts to an extreme on runs of zeros, and its fit costs ~20 ms a series.
INTERMITTENT_SES_ALPHA = 0.1

#: Noise sigma from the finest detail coefficients: median(|d|) / 0.6745 (Donoho-Johnstone).
MAD_NORMAL = 0.6745


@dataclass(frozen=True)
class SmoothConfig:
    """Which smoothing features to compute and how.

    Attributes:
        ma_windows: Trailing moving-average windows in days; one ``ma_<w>`` column each.
        ma_min_periods: Minimum values for a moving average (shorter windows at the start).
        ma_center: Centre the windows instead of trailing (uses future days: not for
            forecasting features).
        ses: Add ``ses_level`` (smoothed level of simple exponential smoothing).
        ses_alpha: Fixed smoothing level; ``None`` estimates it.
        holt_winters: Add ``hw_fitted`` (one-step-ahead in-sample Holt-Winters fit).
        hw_trend: ``add`` or ``None``.
        hw_damped: Damp the trend.
        hw_seasonal: ``add``, ``mul`` (needs strictly positive data) or ``None``.
        season: Seasonal period in days.
        wavelet: A discrete PyWavelets wavelet name, e.g. ``db4``, ``sym4``, ``haar``.
        wavelet_level: Decomposition level; clipped to the maximum useful level of the
            series; ``None`` uses that maximum.
        wavelet_mode: PyWavelets signal extension mode.
        threshold_mode: ``soft`` (default) or ``hard`` thresholding of detail coefficients.
    """

    ma_windows: tuple[int, ...] = (7, 14, 28)
    ma_min_periods: int = 1
    ma_center: bool = False
    ses: bool = True
    ses_alpha: float | None = None
    holt_winters: bool = True
    hw_trend: str | None = "add"
    hw_damped: bool = True
    hw_seasonal: str | None = "add"
    season: int = 7
    wavelet: str | None = "db4"
    wavelet_level: int | None = 3
    wavelet_mode: str = "symmetric"
    threshold_mode: str = "soft"

    def __post_init__(self) -> None:
        if any(w < 1 for w in self.ma_windows) or len(set(self.ma_windows)) != len(self.ma_windows):
            raise ValueError(f"ma_windows must be distinct positive ints, got {self.ma_windows}")
        if self.ma_min_periods < 1:
            raise ValueError(f"ma_min_periods must be >= 1, got {self.ma_min_periods}")
        if self.ses_alpha is not None and not 0 < self.ses_alpha <= 1:
            raise ValueError(f"ses_alpha must be in (0, 1], got {self.ses_alpha}")
        if self.hw_trend not in (None, "add"):
            raise ValueError(f"hw_trend must be 'add' or None, got {self.hw_trend!r}")
        if self.hw_seasonal not in (None, "add", "mul"):
            raise ValueError(f"hw_seasonal must be 'add', 'mul' or None, got {self.hw_seasonal!r}")
        if self.season < 2:
            raise ValueError(f"season must be >= 2, got {self.season}")
        if self.wavelet is not None and self.wavelet not in pywt.wavelist(kind="discrete"):
            raise ValueError(f"wavelet must be a discrete PyWavelets wavelet, got {self.wavelet!r}")
        if self.wavelet_level is not None and self.wavelet_level < 1:
            raise ValueError(f"wavelet_level must be >= 1, got {self.wavelet_level}")
        if self.wavelet_mode not in pywt.Modes.modes:
            raise ValueError(f"wavelet_mode must be one of {pywt.Modes.modes}")
        if self.threshold_mode not in ("soft", "hard"):
            raise ValueError(
                f"threshold_mode must be 'soft' or 'hard', got {self.threshold_mode!r}"
            )


def smoothing_fields(cfg: SmoothConfig) -> tuple[tuple[str, str], ...]:
    """``(name, type)`` pairs of the features produced for ``cfg``, in output order."""
    fields = [(f"ma_{w}", "double") for w in cfg.ma_windows]
    if cfg.ses:
        fields.append(("ses_level", "double"))
    if cfg.holt_winters:
        fields.append(("hw_fitted", "double"))
    if cfg.wavelet is not None:
        fields += [("wavelet_denoised", "double"), ("wavelet_approx", "double")]
    return tuple(fields)


def moving_averages(
    y: np.ndarray, windows: tuple[int, ...], *, min_periods: int = 1, center: bool = False
) -> dict[str, np.ndarray]:
    """Rolling means for several windows.

    Args:
        y: Values by day.
        windows: Window lengths in days.
        min_periods: Minimum values per window.
        center: Centre the window (default trailing, i.e. causal).

    Returns:
        ``{"ma_<w>": values}`` per window.
    """
    s = pd.Series(np.asarray(y, dtype=float))
    return {
        f"ma_{w}": s.rolling(w, min_periods=min(min_periods, w), center=center).mean().to_numpy()
        for w in windows
    }


def simple_exp_smoothing(y: np.ndarray, alpha: float | None = None) -> np.ndarray:
    """Smoothed level of simple exponential smoothing (level at t includes y_t).

    Args:
        y: Gap-free values.
        alpha: Fixed smoothing level, or ``None`` to estimate it (initial level estimated).

    Returns:
        The level per day; all-NaN when the series is too short or the fit fails.
    """
    y = np.asarray(y, dtype=float)
    if y.size < 2 or not np.isfinite(y).all():
        return np.full(y.size, np.nan)
    try:
        with quiet():
            model = SimpleExpSmoothing(y, initialization_method="estimated")
            # a fixed alpha still lets the initial level be estimated
            fit_kw = {} if alpha is None else {"smoothing_level": alpha, "optimized": True}
            res = model.fit(**fit_kw)
        return np.asarray(res.level, dtype=float)
    except Exception:  # noqa: BLE001 - any statsmodels failure becomes a NaN feature
        logger.warning("SES failed", exc_info=True)
        return np.full(y.size, np.nan)


def ses_fixed_alpha(y: np.ndarray, alpha: float) -> np.ndarray:
    """Simple exponential smoothing with a fixed ``alpha`` and the least-squares initial level.

    The same model as statsmodels' ``SimpleExpSmoothing(y, initialization_method=
    "estimated").fit(smoothing_level=alpha)`` (levels ``l_t = alpha y_t + (1 - alpha)
    l_{t-1}``, the initial level minimising the one-step squared errors), solved in closed
    form: the one-step forecasts are linear in the initial level, so no optimiser is needed.
    The recursion is ``scipy.signal.lfilter``.

    Args:
        y: Gap-free values.
        alpha: Smoothing level in (0, 1].

    Returns:
        The level per day; all-NaN when the series is too short or not gap-free.
    """
    y = np.asarray(y, dtype=float)
    if y.size < 2 or not np.isfinite(y).all():
        return np.full(y.size, np.nan)
    beta = 1.0 - alpha
    zero_start = lfilter([alpha], [1.0, -beta], y)  # levels from an initial level of 0
    weight = beta ** np.arange(y.size)  # how the initial level reaches forecast t
    before = np.concatenate(([0.0], zero_start[:-1]))  # one-step forecasts from level 0
    l0 = float(np.dot(weight, y - before) / np.dot(weight, weight))
    return zero_start + beta * weight * l0


def holt_winters(
    y: np.ndarray,
    *,
    trend: str | None = "add",
    damped: bool = True,
    seasonal: str | None = "add",
    season: int = 7,
) -> np.ndarray:
    """One-step-ahead in-sample Holt-Winters fit (``fittedvalues``, causal).

    Seasonality is dropped when fewer than two full seasons are available; multiplicative
    seasonality needs strictly positive data and otherwise yields NaN.

    Args:
        y: Gap-free values.
        trend: ``add`` or ``None``.
        damped: Damped trend (ignored without trend).
        seasonal: ``add``, ``mul`` or ``None``.
        season: Seasonal period.

    Returns:
        Fitted values per day; all-NaN when the fit is impossible or fails.
    """
    y = np.asarray(y, dtype=float)
    if y.size < 4 or not np.isfinite(y).all():
        return np.full(y.size, np.nan)
    if seasonal is not None and y.size < 2 * season:
        seasonal = None
    if seasonal == "mul" and (y <= 0).any():
        logger.warning("multiplicative Holt-Winters needs y > 0; feature left NaN")
        return np.full(y.size, np.nan)
    try:
        with quiet():
            res = ExponentialSmoothing(
                y,
                trend=trend,
                damped_trend=damped if trend is not None else False,
                seasonal=seasonal,
                seasonal_periods=season if seasonal is not None else None,
                initialization_method="estimated",
            ).fit()
        return np.asarray(res.fittedvalues, dtype=float)
    except Exception:  # noqa: BLE001 - any statsmodels failure becomes a NaN feature
        logger.warning("Holt-Winters failed", exc_info=True)
        return np.full(y.size, np.nan)


def _wavelet_level(n: int, wavelet: pywt.Wavelet, level: int | None) -> int:
    max_level = pywt.dwt_max_level(n, wavelet.dec_len)
    return max_level if level is None else min(level, max_level)


def wavelet_denoise(
    y: np.ndarray,
    wavelet: str = "db4",
    level: int | None = 3,
    *,
    mode: str = "symmetric",
    threshold_mode: str = "soft",
) -> np.ndarray:
    """Wavelet shrinkage with the universal threshold (VisuShrink).

    ``sigma = median(|cD_1|) / 0.6745`` from the finest details, ``lambda = sigma *
    sqrt(2 ln n)``, every detail level thresholded, the approximation kept.

    Args:
        y: Gap-free values.
        wavelet: Discrete wavelet name.
        level: Decomposition level (clipped to ``pywt.dwt_max_level``; None = that maximum).
        mode: Signal extension mode.
        threshold_mode: ``soft`` or ``hard``.

    Returns:
        The denoised series; all-NaN when the series is too short for one level.
    """
    y = np.asarray(y, dtype=float)
    w = pywt.Wavelet(wavelet)
    lev = _wavelet_level(y.size, w, level)
    if lev < 1 or not np.isfinite(y).all():
        return np.full(y.size, np.nan)
    coeffs = pywt.wavedec(y, w, mode=mode, level=lev)
    sigma = float(np.median(np.abs(coeffs[-1]))) / MAD_NORMAL
    thr = sigma * math.sqrt(2.0 * math.log(y.size))
    if thr == 0:
        # A mostly-zero series has a zero noise estimate: nothing to shrink. (PyWavelets'
        # soft threshold of 0 turns exact-zero coefficients into NaN, 0/0.)
        return y.copy()
    # PyWavelets divides by each coefficient's magnitude: exact zeros give x/0 there, which
    # it then clips to a factor of 0; the warning is noise.
    with np.errstate(divide="ignore", invalid="ignore"):
        shrunk = [coeffs[0]] + [pywt.threshold(c, thr, mode=threshold_mode) for c in coeffs[1:]]
    # waverec pads odd lengths by one sample
    return pywt.waverec(shrunk, w, mode=mode)[: y.size]


def wavelet_approximation(
    y: np.ndarray, wavelet: str = "db4", level: int | None = 3, *, mode: str = "symmetric"
) -> np.ndarray:
    """Reconstruction from the level-``level`` approximation coefficients only.

    Args:
        y: Gap-free values.
        wavelet: Discrete wavelet name.
        level: Decomposition level (clipped as in :func:`wavelet_denoise`).
        mode: Signal extension mode.

    Returns:
        The smooth approximation; all-NaN when the series is too short.
    """
    y = np.asarray(y, dtype=float)
    w = pywt.Wavelet(wavelet)
    lev = _wavelet_level(y.size, w, level)
    if lev < 1 or not np.isfinite(y).all():
        return np.full(y.size, np.nan)
    coeffs = pywt.wavedec(y, w, mode=mode, level=lev)
    approx_only = [coeffs[0]] + [np.zeros_like(c) for c in coeffs[1:]]
    return pywt.waverec(approx_only, w, mode=mode)[: y.size]


def smoothing_features(
    y: np.ndarray, cfg: SmoothConfig | None = None, *, intermittent: bool = False
) -> dict[str, np.ndarray]:
    """All configured smoothing features of one gap-free series.

    On an ``intermittent`` series (mostly zero days, see
    :attr:`~shikong.timeseries.cleaning.CleanConfig.skip_outliers_adi`) the level is SES with
    the fixed :data:`INTERMITTENT_SES_ALPHA` (unless ``ses_alpha`` is set) and ``hw_fitted``
    stays NaN: a damped trend and a weekly season are not models of demand that is zero on
    most days, and the Holt-Winters fit costs 0.1-0.4 s a series, most of the cost of
    cleaning a catalogue whose series are mostly intermittent.

    Args:
        y: Gap-free values (a series with NaNs gets NaN model features).
        cfg: Configuration; defaults to :class:`SmoothConfig()`.
        intermittent: The series is intermittent.

    Returns:
        ``{column: values}`` in the order of :func:`smoothing_fields`.
    """
    cfg = cfg or SmoothConfig()
    y = np.asarray(y, dtype=float)
    out = moving_averages(y, cfg.ma_windows, min_periods=cfg.ma_min_periods, center=cfg.ma_center)
    if cfg.ses and intermittent:
        out["ses_level"] = ses_fixed_alpha(y, cfg.ses_alpha or INTERMITTENT_SES_ALPHA)
    elif cfg.ses:
        out["ses_level"] = simple_exp_smoothing(y, cfg.ses_alpha)
    if cfg.holt_winters and intermittent:
        out["hw_fitted"] = np.full(y.size, np.nan)
    elif cfg.holt_winters:
        out["hw_fitted"] = holt_winters(
            y,
            trend=cfg.hw_trend,
            damped=cfg.hw_damped,
            seasonal=cfg.hw_seasonal,
            season=cfg.season,
        )
    if cfg.wavelet is not None:
        out["wavelet_denoised"] = wavelet_denoise(
            y,
            cfg.wavelet,
            cfg.wavelet_level,
            mode=cfg.wavelet_mode,
            threshold_mode=cfg.threshold_mode,
        )
        out["wavelet_approx"] = wavelet_approximation(
            y, cfg.wavelet, cfg.wavelet_level, mode=cfg.wavelet_mode
        )
    return out
