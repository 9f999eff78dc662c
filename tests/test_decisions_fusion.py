"""The fusion model's quantiles as the policy's forecast distribution, and the three-policy
comparison, against numpy/pandas oracles (inline data)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from shikong.decisions import (
    PolicyConfig,
    compute_policy,
    daily_sigma_from_quantiles,
    fusion_policy_forecasts,
    lead_time_spread,
    policy_comparison,
)

D0 = dt.date(2024, 3, 1)

#: Daily medians and service-level quantiles per case (the model's q50 and q<SL>).
CASES = {
    "steady": ([4.0] * 8, [7.0] * 8, 0.95),
    "varying": (
        [1.0, 2.0, 0.0, 5.0, 3.0, 2.5, 4.0, 6.0],
        [3.0, 2.5, 1.0, 9.0, 4.0, 6.0, 4.5, 8.0],
        0.95,
    ),
    "crossing-days-have-no-spread": ([2.0, 3.0] * 4, [1.5, 5.0] * 4, 0.95),
    "other-service-level": ([3.0, 1.0] * 4, [4.0, 2.5] * 4, 0.9),
}


def _predictions(spark, median: list[float], upper: list[float]):
    n = len(median)
    pdf = pd.DataFrame(
        {
            "series_id": "A|W1",
            "ds": [D0 + dt.timedelta(days=i) for i in range(n)],
            "step": np.arange(1, n + 1, dtype=np.int32),
            "q50": median,
            "qsl": upper,
        }
    )
    return spark.createDataFrame(pdf)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_fusion_quantiles_become_bands_the_policy_reads_back(spark, case: str) -> None:
    median, upper, sl = CASES[case]
    got = (
        fusion_policy_forecasts(
            _predictions(spark, median, upper), median_col="q50", upper_col="qsl", service_level=sl
        )
        .toPandas()
        .sort_values("step")
    )
    # oracle: the normal through the median whose SL-quantile is the model's
    m, u = np.asarray(median), np.asarray(upper)
    sigma = np.maximum(u - m, 0.0) / norm.ppf(sl)
    np.testing.assert_allclose(got["yhat"], m)
    for lo, hi, p in (("lo80", "hi80", 0.9), ("lo95", "hi95", 0.975)):
        np.testing.assert_allclose(got[lo], m - norm.ppf(p) * sigma, atol=1e-12)
        np.testing.assert_allclose(got[hi], m + norm.ppf(p) * sigma, atol=1e-12)
    np.testing.assert_allclose(daily_sigma_from_quantiles(m, u, sl), sigma)

    # The same policy code as the SARIMA-driven policy (normal method, independent days):
    # ROP = sum of the lead-time medians + root-sum-square of the daily SL excesses.
    lead, review = 7, 1
    cfg = PolicyConfig(lead_time_days=lead, review_days=review, service_level=sl)
    forecast = got.assign(sku="A", warehouse_id="W1")
    history = pd.DataFrame(
        {"sku": "A", "warehouse_id": "W1", "ds": [D0 - dt.timedelta(days=1)], "y": [1.0]}
    )
    inventory = pd.DataFrame(
        {"sku": "A", "warehouse_id": "W1", "ds": [D0 - dt.timedelta(days=1)], "on_hand": [0.0]}
    )
    row = compute_policy(forecast, history, inventory, cfg).iloc[0]
    gap = np.maximum(u - m, 0.0)
    assert row["method"] == "normal"
    assert row["lead_time_demand"] == pytest.approx(m[:lead].sum())
    assert row["safety_stock"] == pytest.approx(np.sqrt((gap[:lead] ** 2).sum()))
    assert row["reorder_point"] == pytest.approx(m[:lead].sum() + np.sqrt((gap[:lead] ** 2).sum()))
    assert row["order_up_to"] == pytest.approx(m.sum() + np.sqrt((gap**2).sum()))
    assert row["mean_daily_demand"] == pytest.approx(m.mean())


def test_spread_scales_every_sigma(spark) -> None:
    median, upper, sl = CASES["varying"]
    plain, wide = (
        fusion_policy_forecasts(
            _predictions(spark, median, upper),
            median_col="q50",
            upper_col="qsl",
            service_level=sl,
            spread=c,
        )
        .toPandas()
        .sort_values("step")
        for c in (1.0, 0.6)
    )
    np.testing.assert_allclose(wide["yhat"], plain["yhat"])
    np.testing.assert_allclose(wide["hi80"] - wide["yhat"], 0.6 * (plain["hi80"] - plain["yhat"]))
    with pytest.raises(ValueError, match="spread"):
        fusion_policy_forecasts(
            _predictions(spark, median, upper),
            median_col="q50",
            upper_col="qsl",
            service_level=sl,
            spread=-1.0,
        )


def _coverage(actual, median, upper, days: int, c: float) -> float:
    """Share of windows whose lead-time demand is within sum(median) + c * RSS(excess)."""
    a, m, u = actual[:, :days], median[:, :days], upper[:, :days]
    bound = m.sum(axis=1) + c * np.sqrt((np.maximum(u - m, 0.0) ** 2).sum(axis=1))
    return float(np.mean(a.sum(axis=1) <= bound))


@pytest.mark.parametrize(
    ("true_sd", "claimed_sd"),
    [(2.0, 2.0), (2.0, 4.0), (3.0, 1.5)],
    ids=["calibrated", "bands-twice-too-wide", "bands-half-too-narrow"],
)
def test_lead_time_spread_is_the_conformal_factor(true_sd: float, claimed_sd: float) -> None:
    rng = np.random.default_rng(11)
    n, h, days, sl = 4000, 14, 7, 0.95
    mean = rng.uniform(5.0, 20.0, size=(n, 1)) * np.ones((n, h))
    actual = mean + rng.normal(0.0, true_sd, size=(n, h))
    upper = mean + norm.ppf(sl) * claimed_sd
    c, used = lead_time_spread(actual, mean, upper, days=days, service_level=sl)
    assert used == n
    # oracle 1: the factor is the smallest that covers ceil((n+1) SL) windows
    k = int(np.ceil((n + 1) * sl))
    assert _coverage(actual, mean, upper, days, c) >= k / n
    assert _coverage(actual, mean, upper, days, c * (1 - 1e-9)) < k / n
    # oracle 2: independent normal days -> c = true / claimed sigma (sampling error only)
    assert c == pytest.approx(true_sd / claimed_sd, rel=0.06)


def _full(rows: int, *values: float) -> tuple[np.ndarray, ...]:
    return tuple(np.full((rows, 7), v) for v in values)


#: (actual, median, upper, factor wanted)
SPREAD_EDGES = {
    # every window at or below the medians: no spread needed
    "never-above-median": (*_full(40, 1.0, 2.0, 3.0), 0.0),
    # above the median with no spread anywhere: no finite factor, the model's own (1)
    "no-spread": (*_full(40, 3.0, 2.0, 2.0), 1.0),
    # too few windows to calibrate from
    "few-windows": (*_full(10, 9.0, 2.0, 3.0), 1.0),
}


@pytest.mark.parametrize("case", list(SPREAD_EDGES), ids=list(SPREAD_EDGES))
def test_lead_time_spread_edges(case: str) -> None:
    actual, median, upper, want = SPREAD_EDGES[case]
    assert lead_time_spread(actual, median, upper, days=7, service_level=0.95)[0] == want


def test_lead_time_spread_leaves_out_windows_with_missing_days() -> None:
    actual = np.full((50, 7), 1.0)
    actual[:5, 3] = np.nan
    c, used = lead_time_spread(actual, actual, actual + 1.0, days=7, service_level=0.95)
    assert (c, used) == (0.0, 45)


def test_sigma_needs_an_upper_service_level() -> None:
    with pytest.raises(ValueError, match="service_level"):
        daily_sigma_from_quantiles([1.0], [2.0], 0.5)


def _sim(rows: list[tuple]) -> pd.DataFrame:
    cols = ["sku", "warehouse_id", "policy", "forecast_source", "fill_rate", "stockout_days"]
    return pd.DataFrame(rows, columns=[*cols, "avg_inventory", "total_cost"])


def test_comparison_keeps_the_stock_points_every_policy_replayed() -> None:
    sim = _sim(
        [
            ("A", "W1", "policy", "sarima", 0.90, 3, 10.0, 100.0),
            ("A", "W1", "naive", "sarima", 0.80, 5, 8.0, 90.0),
            ("A", "W1", "policy", "fusion", 0.95, 1, 12.0, 95.0),
            ("B", "W1", "policy", "sarima", 1.00, 0, 20.0, 200.0),
            ("B", "W1", "naive", "sarima", 0.70, 9, 5.0, 50.0),
            ("B", "W1", "policy", "fusion", 0.99, 0, 15.0, 150.0),
            # no fusion forecast for C: out of every row
            ("C", "W2", "policy", "sarima", 0.10, 40, 1.0, 1.0),
            ("C", "W2", "naive", "sarima", 0.20, 30, 1.0, 1.0),
            # a naive row of the fusion replay is not the compared one
            ("A", "W1", "naive", "fusion", 0.00, 99, 0.0, 0.0),
        ]
    )
    got = policy_comparison(sim).set_index("policy")
    assert list(got.index) == ["naive", "sarima", "fusion"]
    # oracle: plain pandas over A and B
    fusion_naive = (sim.policy == "naive") & (sim.forecast_source == "fusion")
    ab = sim[sim["sku"].isin(["A", "B"]) & ~fusion_naive]
    for label, part in (
        ("naive", ab[ab.policy == "naive"]),
        ("sarima", ab[(ab.policy == "policy") & (ab.forecast_source == "sarima")]),
        ("fusion", ab[(ab.policy == "policy") & (ab.forecast_source == "fusion")]),
    ):
        assert got.loc[label, "pairs"] == 2
        assert got.loc[label, "fill_rate"] == pytest.approx(part["fill_rate"].mean())
        assert got.loc[label, "stockout_days"] == part["stockout_days"].sum()
        assert got.loc[label, "avg_inventory"] == pytest.approx(part["avg_inventory"].sum())
        assert got.loc[label, "total_cost"] == pytest.approx(part["total_cost"].sum())


def test_comparison_without_fusion_rows_is_sarima_vs_naive() -> None:
    sim = _sim(
        [
            ("A", "W1", "policy", "sarima", 0.9, 3, 10.0, 100.0),
            ("A", "W1", "naive", "sarima", 0.8, 5, 8.0, 90.0),
        ]
    )
    got = policy_comparison(sim)
    assert list(got["policy"]) == ["naive", "sarima"]
    assert list(got["total_cost"]) == [90.0, 100.0]
    assert policy_comparison(sim.iloc[0:0]).empty
