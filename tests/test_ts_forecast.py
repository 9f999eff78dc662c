"""Forecasting: statsmodels parity, pruned search, warm starts and never-raising fallbacks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.statespace.sarimax import SARIMAX
from threadpoolctl import threadpool_limits

import shikong.timeseries.forecast as fmod
import shikong.timeseries.order_search as search
import shikong.timeseries.sarima as sarima
from shikong.timeseries import (
    DEFAULT_CANDIDATES,
    FORECAST_SCHEMA,
    ForecastConfig,
    SarimaSpec,
    croston_forecast,
    forecast_array,
    forecast_series,
    has_weekly_seasonality,
    make_forecast_fn,
    seasonal_naive_forecast,
)
from shikong.timeseries.arma_mle import (
    Layout,
    concentrated_loglike,
    constrain,
    difference,
    fit_differenced,
    profile_loglike,
)

H = 28
#: How much lower than statsmodels' optimum the innovations fit's log-likelihood may be (AIC
#: 0.05): the two optimisers stop by the same relative tolerance on flat ridges.
LLF_TOL = 0.025


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(limits=1):
        yield


def _seasonal(n: int = 280, seed: int = 0, noise: float = 3.0, level: float = 50.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    pattern = np.array([0.0, 2.0, 4.0, 3.0, 1.0, -4.0, -6.0]) * 10 / 6
    return level + pattern[t % 7] + rng.normal(0, noise, n)


def _frame(y: np.ndarray, sid: str = "S1", start: str = "2024-01-01") -> pd.DataFrame:
    return pd.DataFrame({"series_id": sid, "ds": pd.date_range(start, periods=len(y)).date, "y": y})


def _fixed(spec: SarimaSpec, **kw) -> ForecastConfig:
    return ForecastConfig(
        candidates=(spec,),
        seasonality_test=False,
        differencing_by_tests=False,
        preclean=False,
        nonnegative=False,
        intermittent_method=None,
        **kw,
    )


# --------------------------------------------------------------------------- parity


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.EstimationWarning")
@pytest.mark.parametrize(
    "spec",
    [
        SarimaSpec((1, 1, 1), (1, 0, 1, 7)),
        SarimaSpec((0, 1, 1), (0, 1, 1, 7)),
        SarimaSpec((1, 0, 1), (0, 0, 0, 0), trend="c"),
    ],
    ids=lambda s: s.name,
)
def test_fixed_order_equals_direct_sarimax(spec):
    y = _seasonal(200, seed=4)
    fc = forecast_array(y, _fixed(spec, simple_differencing=False))
    res = SARIMAX(
        y,
        order=spec.order,
        seasonal_order=spec.statsmodels_seasonal_order,
        trend=spec.trend,
        concentrate_scale=True,
    ).fit(method="lbfgs", maxiter=50, disp=False)
    assert res.mle_retvals["converged"]
    pred = res.get_forecast(H)
    ci80, ci95 = pred.conf_int(alpha=0.2), pred.conf_int(alpha=0.05)
    assert fc.model == spec.name and fc.reason == "ok"
    np.testing.assert_allclose(fc.yhat, pred.predicted_mean, rtol=1e-9)
    np.testing.assert_allclose(fc.lo80, ci80[:, 0], rtol=1e-9)
    np.testing.assert_allclose(fc.hi80, ci80[:, 1], rtol=1e-9)
    np.testing.assert_allclose(fc.lo95, ci95[:, 0], rtol=1e-9)
    np.testing.assert_allclose(fc.hi95, ci95[:, 1], rtol=1e-9)


def test_simple_differencing_path_equals_direct_filter_in_levels():
    spec = SarimaSpec((0, 1, 1), (0, 1, 1, 7))
    y = _seasonal(200, seed=5)
    fc = forecast_array(y, _fixed(spec, simple_differencing=True, fast_likelihood=False))
    fit = SARIMAX(
        y,
        order=spec.order,
        seasonal_order=spec.seasonal_order,
        simple_differencing=True,
        concentrate_scale=True,
    ).fit(method="lbfgs", maxiter=50, disp=False)
    levels = SARIMAX(
        y, order=spec.order, seasonal_order=spec.seasonal_order, concentrate_scale=True
    ).filter(fit.params)
    pred = levels.get_forecast(H)
    np.testing.assert_allclose(fc.yhat, pred.predicted_mean, rtol=1e-9)
    np.testing.assert_allclose(fc.hi95, pred.conf_int(alpha=0.05)[:, 1], rtol=1e-9)


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.EstimationWarning")
@pytest.mark.parametrize(
    "spec",
    [
        SarimaSpec((1, 0, 1), (0, 1, 1, 7)),
        SarimaSpec((1, 1, 1), (1, 0, 1, 7)),
        SarimaSpec((1, 0, 0), (1, 0, 0, 7), trend="c"),
        SarimaSpec((1, 0, 1), trend="c"),
    ],
    ids=lambda s: s.name,
)
def test_innovations_likelihood_equals_kalman_filter(spec):
    y = _seasonal(300, seed=11) + 0.02 * np.arange(300)
    model = SARIMAX(
        y,
        order=spec.order,
        seasonal_order=spec.statsmodels_seasonal_order,
        trend=spec.trend,
        simple_differencing=True,
        concentrate_scale=True,
    )
    lay = Layout.of(spec.order, spec.statsmodels_seasonal_order, spec.trend)
    w = difference(y, lay)
    rng = np.random.default_rng(0)
    for _ in range(5):  # random stationary/invertible points, not only the optimum
        params = constrain(rng.normal(0, 1, lay.k_params), lay)
        if spec.trend:
            params[0] = 3.0
        kalman = model.loglike(params)
        assert concentrated_loglike(w, params, lay) == pytest.approx(kalman, rel=1e-9)
        # the profiled intercept is the best one for these ARMA parameters
        best, intercept = profile_loglike(w, params, lay)
        if spec.trend:
            assert best >= kalman - 1e-9
            at = params.copy()
            at[0] = intercept
            assert best == pytest.approx(model.loglike(at), rel=1e-9)
        else:
            assert best == pytest.approx(kalman, rel=1e-9)
        # the truncated-autocovariance kernels equal statsmodels' public innovations
        assert concentrated_loglike(w, params, lay, fast=False) == pytest.approx(
            concentrated_loglike(w, params, lay, fast=True), rel=1e-12
        )
    # Same optimiser from the same start. Where the likelihood rises towards the unit circle
    # (the first spec: an AR root -> 1 absorbs the drift) the two stop at different points
    # of a flat ridge, and whether either reports convergence depends on the floating-point
    # order of the BLAS kernels, so no optimiser status is checked. What holds on every CPU:
    # the optimum is at least as good as statsmodels' up to LLF_TOL, and statsmodels scores
    # it the same.
    sm = model.fit(method="lbfgs", maxiter=50, disp=False, cov_type="none")
    fast = fit_differenced(y, lay, model.start_params, maxiter=50)
    assert fast is not None
    assert fast.llf >= sm.llf - LLF_TOL
    assert fast.llf == pytest.approx(model.loglike(fast.params), rel=1e-9)
    assert fast.aic == pytest.approx(-2 * fast.llf + 2 * sm.df_model, rel=1e-12)


def test_candidate_with_its_maximum_on_the_unit_circle_is_used():
    """The drift of this series, which SARIMA(1,0,1)(0,1,1,7) has no constant for, pushes its
    AR root to 1. The unbounded fit may stop by maxiter on the ridge (CPU-dependent); the
    boxed retry must still deliver a usable fit rather than a fallback to ETS."""
    spec = SarimaSpec((1, 0, 1), (0, 1, 1, 7))
    y = _seasonal(300, seed=11) + 0.02 * np.arange(300)
    fc = forecast_array(y, _fixed(spec))
    assert fc.reason == "ok" and fc.model == spec.name
    assert np.isfinite(fc.yhat).all() and np.all(fc.lo95 < fc.yhat) and np.all(fc.yhat < fc.hi95)


@pytest.mark.parametrize(
    ("spec", "slope"),
    [
        (SarimaSpec((1, 0, 1), (0, 1, 1, 7)), 0.0),
        (SarimaSpec((1, 0, 0), (0, 1, 1, 7), trend="c"), 0.05),
    ],
    ids=["no-drift", "drift"],
)
def test_fast_and_kalman_paths_give_the_same_forecast(spec, slope):
    y = _seasonal(250, seed=12) + slope * np.arange(250)
    fast = forecast_array(y, _fixed(spec, fast_likelihood=True))
    kalman = forecast_array(y, _fixed(spec, fast_likelihood=False))
    assert fast.model == kalman.model == spec.name and fast.reason == kalman.reason == "ok"
    np.testing.assert_allclose(fast.yhat, kalman.yhat, rtol=1e-4)
    np.testing.assert_allclose(fast.hi95, kalman.hi95, rtol=1e-4)


def test_missing_days_use_the_kalman_filter(monkeypatch):
    calls: list[bool] = []
    real = sarima.fit_differenced

    def spy(*a, **k):
        calls.append(True)
        return real(*a, **k)

    monkeypatch.setattr(sarima, "fit_differenced", spy)
    spec = SarimaSpec((0, 1, 1), (0, 1, 1, 7))
    y = _seasonal(200, seed=13)
    assert forecast_array(y, _fixed(spec)).reason == "ok" and calls
    calls.clear()
    y[[40, 90, 91]] = np.nan
    fc = forecast_array(y, _fixed(spec))
    assert fc.reason == "ok" and np.isfinite(fc.yhat).all() and not calls


def test_drift_carries_over_from_differenced_to_levels():
    """A constant on seasonally differenced data is a drift: the levels filter with the
    same parameters forecasts what integrating the differenced forecast gives."""
    spec = SarimaSpec((1, 0, 0), (0, 1, 1, 7), trend="c")
    y = _seasonal(300, seed=14) + 0.08 * np.arange(300)
    fit = SARIMAX(
        y,
        order=spec.order,
        seasonal_order=spec.seasonal_order,
        trend="c",
        simple_differencing=True,
        concentrate_scale=True,
    ).fit(method="lbfgs", maxiter=50, disp=False)
    w = fit.get_forecast(H).predicted_mean
    levels = list(y)
    for h in range(H):
        levels.append(levels[-7] + w[h])
    mean, _ = sarima.sarimax_forecast_arrays(y, spec, fit.params, H)
    np.testing.assert_allclose(mean, levels[-H:], rtol=1e-6)
    assert mean[-7:].mean() - y[-7:].mean() > 0.08 * H * 0.5  # the trend is extrapolated


def _record_fits(monkeypatch) -> list[str]:
    """Names of the candidates fitted from now on (the real fits still run)."""
    calls: list[str] = []
    real = search.fit_candidate_once

    def spy(y, spec, **kw):
        calls.append(spec.name)
        return real(y, spec, **kw)

    monkeypatch.setattr(search, "fit_candidate_once", spy)
    return calls


def test_drift_is_decided_on_the_cheapest_order(monkeypatch):
    calls = _record_fits(monkeypatch)
    rng = np.random.default_rng(15)
    trending = _seasonal(400, seed=15) + 0.2 * np.arange(400) + np.cumsum(rng.normal(0, 0.3, 400))
    fc = forecast_array(trending)
    assert fc.reason == "ok" and fc.model.endswith("+c"), fc.model
    # the pair (cheapest order, both ways) then the other order only with the winning trend
    assert len(calls) == 3 and calls[0] + "+c" == calls[1]
    assert calls[2].endswith("+c")


# --------------------------------------------------------------------------- search


def test_default_search_picks_seasonal_model_and_gate_works():
    y = _seasonal(280)
    assert has_weekly_seasonality(y)
    noise = 50 + np.random.default_rng(1).normal(0, 3, 280)
    assert not has_weekly_seasonality(noise)
    fc = forecast_array(y)
    assert (
        fc.reason == "ok" and fc.model.startswith("SARIMA") and not fc.model.endswith("(0,0,0,0)")
    )
    fc_noise = forecast_array(noise)
    assert fc_noise.model.endswith("(0,0,0,0)+c") or fc_noise.model.endswith("(0,0,0,0)")
    # intervals nest and contain the point forecast
    assert np.all(fc.lo95 <= fc.lo80) and np.all(fc.lo80 <= fc.yhat)
    assert np.all(fc.yhat <= fc.hi80) and np.all(fc.hi80 <= fc.hi95)


def test_pruned_search_fits_fewer_candidates_than_grid(monkeypatch):
    calls: list[tuple[str, bool]] = []
    real = search.fit_candidate_once

    def spy(y, spec, **kw):
        calls.append((spec.name, kw["start_params"] is not None))
        return real(y, spec, **kw)

    monkeypatch.setattr(search, "fit_candidate_once", spy)
    y = _seasonal(280)
    forecast_array(y)
    assert 1 <= len(calls) <= 4 < len(DEFAULT_CANDIDATES)


def test_warm_starts_are_reused_across_calls(monkeypatch):
    calls: list[tuple[str, bool]] = []
    real = search.fit_candidate_once

    def spy(y, spec, **kw):
        calls.append((spec.name, kw["start_params"] is not None))
        return real(y, spec, **kw)

    monkeypatch.setattr(search, "fit_candidate_once", spy)
    y = _seasonal(280)
    warm: dict = {}
    forecast_array(y[:-28], warm=warm)
    assert warm and not any(w for _, w in calls)
    calls.clear()
    forecast_array(y, warm=warm)
    assert calls and calls[0][1], "second origin must start from the cached parameters"


def test_non_convergence_falls_back_to_ets():
    cfg = ForecastConfig(maxiter=1, warm_maxiter=1)
    fc = forecast_array(_seasonal(200), cfg)
    assert fc.reason == "sarima_failed" and fc.model.startswith("ETS")


# --------------------------------------------------------------------------- fallbacks


def _spiky() -> np.ndarray:
    y = _seasonal(200, seed=7)
    y[150] = 1e6
    return y


def _nan_heavy() -> np.ndarray:
    y = _seasonal(200, seed=8)
    y[np.random.default_rng(8).random(200) < 0.7] = np.nan
    return y


def _intermittent() -> np.ndarray:
    rng = np.random.default_rng(9)
    return np.where(rng.random(200) < 0.15, rng.integers(1, 6, 200), 0).astype(float)


@pytest.mark.parametrize(
    ("y", "reason", "model_prefix"),
    [
        (np.full(20, np.nan), "empty", "zero"),
        (np.array([4.0]), "too_short", "naive"),
        (
            np.array([3.0, 5.0, 4.0, 6.0, 5.0, 7.0, 6.0, 8.0, 7.0, 9.0]),
            "too_short",
            "seasonal_naive",
        ),
        (_seasonal(30, seed=3), "too_short", "ETS"),
        (np.zeros(100), "all_zero", "seasonal_naive"),
        (np.full(100, 5.0), "constant", "seasonal_naive"),
        (_nan_heavy(), "nan_heavy", "ETS"),
        (_intermittent(), "intermittent", "SBA"),
        (np.where(np.arange(100) == 40, 3.0, 0.0), "single_sale", "mean"),
        (_spiky(), "ok", "SARIMA"),
    ],
    ids=[
        "all-nan",
        "one-point",
        "ten-points",
        "thirty-days",
        "all-zero",
        "constant",
        "nan-heavy",
        "intermittent",
        "single-sale",
        "huge-outlier",
    ],
)
def test_crafted_series_route_and_never_raise(y, reason, model_prefix):
    fc = forecast_array(y, ForecastConfig(horizon=H))
    assert fc.reason == reason
    assert fc.model.startswith(model_prefix)
    for arr in (fc.yhat, fc.lo80, fc.hi80, fc.lo95, fc.hi95):
        assert arr.shape == (H,) and np.isfinite(arr).all() and (arr >= 0).all()
    assert np.all(fc.lo95 <= fc.yhat + 1e-9) and np.all(fc.yhat <= fc.hi95 + 1e-9)


def test_huge_outlier_does_not_leak_into_forecast():
    fc = forecast_array(_spiky())
    assert fc.yhat.max() < 100 and fc.hi95.max() < 150


def test_constant_and_zero_values():
    np.testing.assert_array_equal(forecast_array(np.full(60, 5.0)).yhat, 5.0)
    zero = forecast_array(np.zeros(60))
    assert zero.yhat.max() == 0 and zero.hi95.max() == 0
    assert forecast_array(np.array([4.0])).yhat[0] == 4.0


def test_unexpected_error_is_caught(monkeypatch):
    def boom(*_a, **_k):
        raise RuntimeError("boom")

    monkeypatch.setattr(fmod, "_route", boom)
    fc = forecast_array(_seasonal(60))
    assert fc.reason == "error:RuntimeError" and fc.model == "seasonal_naive"


def test_forecasts_never_negative():
    y = np.maximum(_seasonal(200, level=4.0, noise=3.0), 0.0)
    y[-20:] = np.maximum(y[-20:] - 3, 0)
    fc = forecast_array(y)
    assert (fc.yhat >= 0).all() and (fc.lo95 >= 0).all()


def test_seasonal_naive_and_sba_by_hand():
    y = np.arange(14, dtype=float)
    fc = seasonal_naive_forecast(y, 9, 7)
    np.testing.assert_array_equal(fc.yhat, [7, 8, 9, 10, 11, 12, 13, 7, 8])
    # errors are all 7 -> sigma 7, second week sqrt(2) wider
    assert fc.hi80[7] - fc.yhat[7] == pytest.approx(np.sqrt(2) * (fc.hi80[0] - fc.yhat[0]))
    sba = croston_forecast(np.array([0, 0, 4, 0, 0, 0, 2, 0], dtype=float), 3, alpha=0.5)
    # size 4 -> 3, interval 3 -> 3.5 (4-day gap), SBA factor 1 - 0.25
    np.testing.assert_allclose(sba.yhat, 0.75 * 3 / 3.5)


# --------------------------------------------------------------------------- grouped fn


def test_forecast_frame_schema_dates_and_purity():
    y = _seasonal(120)
    df = _frame(y)
    df = df.drop(index=[50, 51])  # calendar gaps are missing days, not dropped days
    df["available"] = True
    df.loc[60, "available"] = False
    before = df.copy(deep=True)
    fn = make_forecast_fn(ForecastConfig(horizon=14))
    out = fn(df)
    pd.testing.assert_frame_equal(df, before)
    pd.testing.assert_frame_equal(out, fn(df))
    names = [part.split()[0] for part in FORECAST_SCHEMA.split(", ")]
    assert list(out.columns) == names
    assert out["ds"].iloc[0] == dt.date(2024, 1, 1) + dt.timedelta(days=120)
    assert out["step"].tolist() == list(range(1, 15))
    assert set(out["series_id"]) == {"S1"}


def test_target_column_and_empty_frame():
    df = _frame(_seasonal(60)).rename(columns={"y": "y_clean"})
    out = forecast_series(df, ForecastConfig(target_col="y_clean", horizon=7))
    assert len(out) == 7
    assert forecast_series(df.iloc[:0], ForecastConfig(target_col="y_clean")).empty
    with pytest.raises(ValueError, match="missing column"):
        forecast_series(df, ForecastConfig())


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: ForecastConfig(horizon=0), "horizon must be >= 1"),
        (lambda: ForecastConfig(candidates=()), "candidates must not be empty"),
        (lambda: ForecastConfig(intermittent_method="tsb"), "intermittent_method must be"),
        (lambda: ForecastConfig(min_obs=7), "min_obs must be >= 2"),
        (lambda: ForecastConfig(max_nan_frac=1.5), r"max_nan_frac must be in \[0, 1\]"),
        (lambda: SarimaSpec((1, 2, 1), trend="c"), r"trend 'c' needs d \+ D <= 1"),
        (lambda: SarimaSpec((1, -1, 1)), "order must be 3 non-negative"),
        (lambda: SarimaSpec((1, 0, 1), (1, 0, 1, 1)), "seasonal period must be >= 2"),
    ],
    ids=[
        "horizon",
        "no-candidates",
        "intermittent",
        "min-obs",
        "nan-frac",
        "trend-diff",
        "negative-order",
        "period",
    ],
)
def test_bad_config_raises(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_drift_decision_only_prunes_orders_offered_both_ways(monkeypatch):
    """Without the (d, D) tests every group is searched: the pair's verdict must not drop
    the orders that exist only with a constant (d = D = 0) or only without (d + D = 2)."""
    calls = _record_fits(monkeypatch)
    cfg = ForecastConfig(seasonality_test=False, differencing_by_tests=False, patience=None)
    forecast_array(_seasonal(200, seed=16), cfg)
    fitted = set(calls)
    only_c = {c.name for c in DEFAULT_CANDIDATES if sum(c.differencing) == 0}
    only_plain = {c.name for c in DEFAULT_CANDIDATES if sum(c.differencing) == 2}
    assert only_c <= fitted and only_plain <= fitted
    # orders offered both ways: one variant only, except the deciding pair
    both_ways = [c for c in DEFAULT_CANDIDATES if sum(c.differencing) == 1]
    assert len(fitted & {c.name for c in both_ways}) == len(both_ways) // 2 + 1
