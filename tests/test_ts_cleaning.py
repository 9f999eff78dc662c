"""Cleaning: calendar, Hampel, gap filling and normalisation against direct numpy/scipy."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy.interpolate import CubicSpline, PchipInterpolator
from threadpoolctl import threadpool_limits

from shikong.timeseries import (
    CLEAN_SCHEMA,
    FILL_METHODS,
    CleanConfig,
    NormParams,
    SmoothConfig,
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


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    # the suite shares two cores; BLAS pools fighting over them make fits 5-10x slower
    with threadpool_limits(limits=1):
        yield


def _series(n: int = 120, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 20.0 + 5.0 * np.sin(2 * np.pi * t / 7) + 0.05 * t + rng.normal(0, 1, n)


def _frame(y: np.ndarray, start: str = "2024-01-01", sid: str = "A") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "series_id": sid,
            "ds": pd.date_range(start, periods=len(y), freq="D").date,
            "y": y,
            "available": True,
        }
    )


# --------------------------------------------------------------------------- calendar


def test_calendar_missing_semantics_true_zero_kept():
    df = pd.DataFrame(
        {
            "series_id": "A",
            "ds": [dt.date(2024, 1, d) for d in (1, 2, 3, 5, 6, 7)],
            "y": [3.0, 0.0, 4.0, 7.0, np.nan, -2.0],
            "available": [True, True, False, None, True, True],
        }
    )
    cal = complete_calendar(df)
    assert list(cal["ds"]) == list(pd.date_range("2024-01-01", "2024-01-07"))
    np.testing.assert_array_equal(
        cal["y_obs"].to_numpy(), [3.0, 0.0, np.nan, np.nan, 7.0, np.nan, np.nan]
    )
    assert cal["missing_reason"].tolist() == [
        None,
        None,
        "unavailable",
        "absent_day",
        None,
        "null_value",
        "negative_value",
    ]
    # recorded value of the unavailable day survives in y_raw for audit
    assert cal["y_raw"].iloc[2] == 4.0


def test_calendar_explicit_range_pads_and_truncates():
    df = _frame(np.arange(5.0), start="2024-01-03")
    cal = complete_calendar(df, dt.date(2024, 1, 1), dt.date(2024, 1, 5))
    assert len(cal) == 5
    assert cal["missing_reason"].tolist()[:2] == ["absent_day", "absent_day"]
    np.testing.assert_array_equal(cal["y_obs"].to_numpy()[2:], [0.0, 1.0, 2.0])


def test_calendar_duplicate_days_are_summed():
    df = pd.DataFrame({"ds": ["2024-01-01", "2024-01-01", "2024-01-02"], "y": [1.0, 2.0, 5.0]})
    cal = complete_calendar(df)
    np.testing.assert_array_equal(cal["y_obs"].to_numpy(), [3.0, 5.0])


# --------------------------------------------------------------------------- Hampel


def _hampel_reference(y, window, n_sigmas, min_periods, min_scale, two_sided):
    half = window // 2
    flags = np.zeros(y.size, dtype=bool)
    for i in range(y.size):
        w = y[max(0, i - half) : i + half + 1]
        w = w[np.isfinite(w)]
        if not np.isfinite(y[i]) or w.size < min_periods:
            continue
        med = np.median(w)
        scale = max(1.4826 * np.median(np.abs(w - med)), min_scale)
        dev = y[i] - med
        flags[i] = (abs(dev) if two_sided else dev) > n_sigmas * scale
    return flags


@pytest.mark.parametrize(
    ("window", "n_sigmas", "min_periods", "min_scale", "two_sided"),
    [
        (7, 3.0, 3, 0.0, True),
        (15, 3.0, 5, 0.0, True),
        (15, 2.0, 5, 1.0, True),
        (9, 2.5, 4, 0.0, False),
    ],
    ids=["w7", "w15", "w15-floor", "w9-upper-only"],
)
def test_hampel_matches_direct_numpy(window, n_sigmas, min_periods, min_scale, two_sided):
    y = _series(200, seed=3)
    y[[20, 77, 150]] = [60.0, -10.0, 90.0]
    y[[5, 6, 90]] = np.nan
    res = hampel(
        y, window, n_sigmas, min_periods=min_periods, min_scale=min_scale, two_sided=two_sided
    )
    expected = _hampel_reference(y, window, n_sigmas, min_periods, min_scale, two_sided)
    np.testing.assert_array_equal(res.is_outlier, expected)
    assert res.is_outlier[20] and res.is_outlier[150]
    assert res.is_outlier[77] == two_sided


def test_outliers_kept_raw_flagged_and_replaced():
    y = _series(100)
    y[40] = 500.0
    out = clean_series(_frame(y), CleanConfig(smoothing=None))
    row = out.iloc[40]
    assert row["is_outlier"] and row["y_raw"] == 500.0 and row["y_obs"] == 500.0
    assert row["y_clean"] < 40.0
    assert out["is_outlier"].sum() == 1


def test_outlier_replacement_fill_marks_imputed():
    y = _series(100)
    y[40] = 500.0
    out = clean_series(_frame(y), CleanConfig(outlier_replacement="fill", smoothing=None))
    assert out["is_imputed"].iloc[40]
    np.testing.assert_allclose(out["y_clean"].iloc[40], (y[39] + y[41]) / 2)


def test_intermittent_series_skip_outlier_detection():
    y = np.zeros(120)
    y[::9] = [4.0, 6.0, 5.0, 9.0, 3.0, 7.0, 4.0, 8.0, 5.0, 6.0, 4.0, 7.0, 5.0, 6.0]
    df = _frame(y)
    assert not clean_series(df, CleanConfig(smoothing=None))["is_outlier"].any()
    textbook = clean_series(df, CleanConfig(smoothing=None, skip_outliers_adi=None))
    assert textbook["is_outlier"].sum() > 0


# --------------------------------------------------------------------------- filling


def _gappy(n: int = 60, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    y = _series(n, seed)
    gaps = np.array([3, 10, 11, 12, 25, 33, 34, 50])
    yg = y.copy()
    yg[gaps] = np.nan
    return yg, gaps


def test_linear_matches_np_interp():
    yg, gaps = _gappy()
    known = np.flatnonzero(np.isfinite(yg))
    expected = np.interp(gaps, known, yg[known])
    np.testing.assert_allclose(fill_missing(yg, "linear")[gaps], expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("kind", "make"),
    [
        ("cubic", lambda x, y: CubicSpline(x, y, bc_type="not-a-knot")),
        ("pchip", PchipInterpolator),
    ],
    ids=["cubic", "pchip"],
)
def test_spline_matches_scipy(kind, make):
    yg, gaps = _gappy()
    known = np.flatnonzero(np.isfinite(yg))
    expected = make(known, yg[known])(gaps)
    got = fill_missing(yg, "spline", spline_kind=kind)[gaps]
    np.testing.assert_allclose(got, expected, rtol=1e-10)


@pytest.mark.parametrize("degree", [1, 2, 3, 4], ids=lambda d: f"deg{d}")
def test_polynomial_matches_polyfit_on_nearest_points(degree):
    yg, gaps = _gappy()
    known = np.flatnonzero(np.isfinite(yg))
    got = fill_missing(yg, "polynomial", poly_degree=degree)
    for t in gaps:
        # degree+1 nearest known days, ties to the earlier day
        order = np.argsort(np.abs(known - t), kind="stable")
        sel = np.sort(known[order[: degree + 1]])
        coef = np.polyfit(sel - t, yg[sel], degree)
        np.testing.assert_allclose(got[t], np.polyval(coef, 0.0), rtol=1e-8, atol=1e-8)


def test_newton_form_equals_lagrange_polynomial():
    x = np.array([100.0, 101.0, 103.0, 107.0])
    y = np.array([2.0, -1.0, 4.0, 0.5])
    coef = np.polyfit(x - 105.0, y, 3)
    assert newton_interpolate(x, y, 105.0) == pytest.approx(np.polyval(coef, 0.0), rel=1e-10)


def test_seasonal_fill_is_mean_of_same_weekday_neighbours():
    yg, gaps = _gappy(70)
    got = fill_missing(yg, "seasonal", season=7, seasonal_neighbours=2)
    for t in gaps:
        vals = []
        for step in (-7, 7):
            j, found = t + step, 0
            while 0 <= j < yg.size and found < 2:
                if np.isfinite(yg[j]):
                    vals.append(yg[j])
                    found += 1
                j += step
        assert got[t] == pytest.approx(np.mean(vals))


def test_stl_fill_recovers_seasonal_pattern():
    t = np.arange(84)
    pattern = np.array([0.0, 3.0, 5.0, 4.0, 1.0, -6.0, -7.0])
    y = 30.0 + 0.1 * t + pattern[t % 7]
    yg = y.copy()
    gaps = np.array([20, 21, 22, 45, 60])
    yg[gaps] = np.nan
    got = fill_missing(yg, "stl")
    np.testing.assert_allclose(got[gaps], y[gaps], atol=0.5)
    assert np.abs(fill_missing(yg, "linear")[gaps] - y[gaps]).max() > 2.0


@pytest.mark.parametrize("method", FILL_METHODS)
def test_edges_and_no_known_values(method):
    y = np.array([np.nan, np.nan, 2.0, 3.0, np.nan, 5.0, 6.0, np.nan])
    out = fill_missing(y, method, season=2)
    assert np.isfinite(out).all()
    if method in ("linear", "polynomial", "spline"):
        assert out[0] == out[1] == 2.0 and out[-1] == 6.0
    assert np.isnan(fill_missing(np.full(5, np.nan), method)).all()


def test_imputed_flags_and_clip():
    y = _series(60)
    df = _frame(y)
    df.loc[[5, 6], "available"] = False
    df = df.drop(index=[30])
    out = clean_series(df, CleanConfig(fill_method="spline", smoothing=None))
    assert out["is_imputed"].tolist() == out["is_missing"].tolist()
    assert sorted(np.flatnonzero(out["is_missing"].to_numpy())) == [5, 6, 30]
    assert (out["y_clean"] >= 0).all() and out["y_clean"].notna().all()


# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize("method", ["minmax", "zscore"])
def test_normalise_roundtrip_and_columns(method):
    y = _series(50)
    out = clean_series(_frame(y), CleanConfig(detect_outliers=False, smoothing=None))
    col = "y_minmax" if method == "minmax" else "y_zscore"
    back = denormalise(out[col], out, method)
    np.testing.assert_allclose(back, out["y_clean"], rtol=1e-12)
    p = normalisation_params(out["y_clean"].to_numpy())
    assert out["norm_min"].iloc[0] == p.min and out["norm_std"].iloc[0] == p.std
    if method == "minmax":
        assert out[col].min() == 0.0 and out[col].max() == 1.0
    else:
        assert out[col].mean() == pytest.approx(0.0, abs=1e-12)
        assert out[col].std(ddof=0) == pytest.approx(1.0)


def test_normalise_degenerate_and_scalar_denormalise():
    p = normalisation_params(np.array([4.0, 4.0, np.nan]))
    assert p == NormParams(4.0, 4.0, 4.0, 0.0)
    np.testing.assert_array_equal(normalise(np.array([4.0, 4.0]), p, "zscore"), [0.0, 0.0])
    assert denormalise(0.0, p, "minmax") == 4.0
    assert denormalise(0.5, NormParams(0.0, 10.0, 5.0, 2.0), "zscore") == 6.0


# --------------------------------------------------------------------------- grouped fn


def test_output_schema_purity_and_determinism():
    y = _series(90)
    df = _frame(y)
    df.loc[10, "available"] = False
    before = df.copy(deep=True)
    fn = make_clean_fn(CleanConfig(fill_method="seasonal"))
    a, b = fn(df), fn(df)
    pd.testing.assert_frame_equal(df, before)
    pd.testing.assert_frame_equal(a, b)
    names = [part.split()[0] for part in CLEAN_SCHEMA.split(", ")]
    assert list(a.columns) == names
    assert isinstance(a["ds"].iloc[0], dt.date)
    assert a["series_id"].unique().tolist() == ["A"]


def test_schema_follows_config():
    cfg = CleanConfig(smoothing=SmoothConfig(ma_windows=(3,), holt_winters=False, wavelet=None))
    assert clean_schema(cfg).endswith("ma_3 double, ses_level double")
    out = clean_series(_frame(_series(30)), cfg)
    assert list(out.columns)[-2:] == ["ma_3", "ses_level"]


def test_empty_and_all_missing_input():
    empty = _frame(np.array([]))
    assert clean_series(empty).empty
    df = _frame(np.full(10, np.nan))
    out = clean_series(df)
    assert len(out) == 10 and out["is_missing"].all() and out["y_clean"].isna().all()
    assert not out["is_imputed"].any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hampel_window": 4}, "hampel_window must be odd"),
        ({"fill_method": "cubic"}, "fill_method must be one of"),
        ({"spline_kind": "bezier"}, "spline_kind must be one of"),
        ({"poly_degree": 0}, "poly_degree must be >= 1"),
        ({"n_sigmas": 0}, "n_sigmas must be > 0"),
        ({"outlier_replacement": "drop"}, "outlier_replacement must be one of"),
        ({"start": dt.date(2024, 2, 1), "end": dt.date(2024, 1, 1)}, "is after end"),
    ],
    ids=["even-window", "fill-method", "spline-kind", "degree", "sigmas", "replacement", "range"],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CleanConfig(**kwargs)


def test_missing_columns_raise():
    with pytest.raises(ValueError, match="missing column"):
        clean_series(pd.DataFrame({"ds": ["2024-01-01"]}))
