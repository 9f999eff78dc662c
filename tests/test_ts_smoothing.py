"""Smoothing features against pandas / statsmodels / PyWavelets called directly."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import pywt
from statsmodels.tsa.holtwinters import ExponentialSmoothing, SimpleExpSmoothing
from threadpoolctl import threadpool_limits

from shikong.timeseries import (
    CleanConfig,
    SmoothConfig,
    clean_series,
    holt_winters,
    moving_averages,
    simple_exp_smoothing,
    smoothing_features,
    wavelet_approximation,
    wavelet_denoise,
)


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


def _y(n: int = 140, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 30.0 + 0.05 * t + 6.0 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 2, n)


@pytest.mark.parametrize(
    ("windows", "min_periods", "center"),
    [((7, 14, 28), 1, False), ((3, 5), 3, False), ((7,), 1, True)],
    ids=["trailing", "min-periods", "centred"],
)
def test_moving_averages_match_pandas(windows, min_periods, center):
    y = _y()
    got = moving_averages(y, windows, min_periods=min_periods, center=center)
    for w in windows:
        exp = pd.Series(y).rolling(w, min_periods=min_periods, center=center).mean()
        np.testing.assert_allclose(got[f"ma_{w}"], exp.to_numpy(), rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("alpha", [None, 0.3], ids=["estimated", "fixed"])
def test_ses_matches_statsmodels(alpha):
    y = _y()
    model = SimpleExpSmoothing(y, initialization_method="estimated")
    res = model.fit() if alpha is None else model.fit(smoothing_level=alpha, optimized=True)
    np.testing.assert_allclose(simple_exp_smoothing(y, alpha), res.level, rtol=1e-10)


@pytest.mark.parametrize(
    ("trend", "damped", "seasonal"),
    [("add", True, "add"), (None, False, "add"), ("add", False, None), ("add", True, "mul")],
    ids=["damped-add-add", "season-only", "holt", "mul-season"],
)
def test_holt_winters_matches_statsmodels(trend, damped, seasonal):
    y = _y()
    res = ExponentialSmoothing(
        y,
        trend=trend,
        damped_trend=damped,
        seasonal=seasonal,
        seasonal_periods=7 if seasonal else None,
        initialization_method="estimated",
    ).fit()
    got = holt_winters(y, trend=trend, damped=damped, seasonal=seasonal, season=7)
    np.testing.assert_allclose(got, res.fittedvalues, rtol=1e-8)


def test_holt_winters_degenerate_cases_are_nan():
    assert np.isnan(holt_winters(np.array([1.0, 2.0]))).all()
    y = _y()
    y[3] = 0.0
    assert np.isnan(holt_winters(y, seasonal="mul")).all()


@pytest.mark.parametrize(
    ("wavelet", "level", "mode"),
    [("db4", 3, "soft"), ("haar", 2, "soft"), ("sym5", None, "hard")],
    ids=["db4-3", "haar-2", "sym5-max-hard"],
)
def test_wavelet_denoise_matches_pywt(wavelet, level, mode):
    y = _y(141)
    w = pywt.Wavelet(wavelet)
    lev = pywt.dwt_max_level(y.size, w.dec_len) if level is None else level
    coeffs = pywt.wavedec(y, w, level=lev)
    sigma = np.median(np.abs(coeffs[-1])) / 0.6745
    thr = sigma * math.sqrt(2 * math.log(y.size))
    shrunk = [coeffs[0]] + [pywt.threshold(c, thr, mode=mode) for c in coeffs[1:]]
    expected = pywt.waverec(shrunk, w)[: y.size]
    got = wavelet_denoise(y, wavelet, level, threshold_mode=mode)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got.size == y.size
    # denoising must actually remove high-frequency energy
    assert np.std(np.diff(got)) < np.std(np.diff(y))


def test_wavelet_approximation_matches_pywt():
    y = _y()
    coeffs = pywt.wavedec(y, "db4", level=3)
    expected = pywt.waverec([coeffs[0]] + [np.zeros_like(c) for c in coeffs[1:]], "db4")
    np.testing.assert_allclose(wavelet_approximation(y, "db4", 3), expected[: y.size])


def test_wavelet_too_short_is_nan_and_level_is_clipped():
    assert np.isnan(wavelet_denoise(np.arange(5.0), "db4", 3)).all()
    y = _y(40)
    max_level = pywt.dwt_max_level(40, pywt.Wavelet("db2").dec_len)
    np.testing.assert_allclose(wavelet_denoise(y, "db2", 10), wavelet_denoise(y, "db2", max_level))


def test_features_in_clean_output_equal_direct_calls():
    y = _y(70)
    df = pd.DataFrame({"series_id": "S", "ds": pd.date_range("2024-03-01", periods=70), "y": y})
    cfg = CleanConfig(detect_outliers=False, smoothing=SmoothConfig(ma_windows=(7, 28)))
    out = clean_series(df, cfg)
    feats = smoothing_features(y, cfg.smoothing)
    for name, values in feats.items():
        np.testing.assert_allclose(out[name].to_numpy(), values, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ma_windows": (7, 7)}, "ma_windows must be distinct"),
        ({"ma_windows": (0,)}, "ma_windows must be distinct positive"),
        ({"wavelet": "db99x"}, "wavelet must be a discrete"),
        ({"hw_seasonal": "mult"}, "hw_seasonal must be"),
        ({"ses_alpha": 1.5}, r"ses_alpha must be in \(0, 1\]"),
        ({"threshold_mode": "garrote"}, "threshold_mode must be"),
    ],
    ids=["dup-window", "zero-window", "wavelet", "hw-seasonal", "alpha", "threshold"],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SmoothConfig(**kwargs)
