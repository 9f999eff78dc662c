"""Metrics against hand-computed values, and their aggregation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from shikong.timeseries import (
    aggregate_metrics,
    bias,
    evaluate,
    family_metrics,
    interval_coverage,
    mase,
    seasonal_naive_scale,
    smape,
    wape,
)

ACTUAL = np.array([10.0, 0.0, 5.0, np.nan, 4.0])
FCAST = np.array([8.0, 0.0, 7.0, 3.0, 5.0])
# usable days: (10, 8), (0, 0), (5, 7), (4, 5) -> errors f - a = -2, 0, 2, 1


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (smape, 100 * (2 * 2 / 18 + 0.0 + 2 * 2 / 12 + 2 * 1 / 9) / 4),
        (wape, (2 + 0 + 2 + 1) / (10 + 0 + 5 + 4)),
        (bias, (-2 + 0 + 2 + 1) / 4),
    ],
    ids=["smape", "wape", "bias"],
)
def test_point_metrics_by_hand(fn, expected):
    assert fn(ACTUAL, FCAST) == pytest.approx(expected)


def test_mase_scale_by_hand():
    insample = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 3.0, 2.0, np.nan, 8.0])
    # lag-7 pairs: (3-1), (2-2), (nan-3) skipped, (8-4) -> |2|, 0, 4 -> mean 2
    assert seasonal_naive_scale(insample, 7) == pytest.approx(2.0)
    assert mase(ACTUAL, FCAST, insample, 7) == pytest.approx((5 / 4) / 2.0)


def test_coverage_by_hand():
    lo = np.array([9.0, 0.0, 5.5, 0.0, np.nan])
    hi = np.array([11.0, 1.0, 8.0, 9.0, 6.0])
    # usable: day0 in, day1 in, day2 out (5 < 5.5); day3 actual NaN; day4 bound NaN
    assert interval_coverage(ACTUAL, lo, hi) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        (wape, (np.zeros(3), np.ones(3))),
        (mase, (np.ones(3), np.ones(3), np.full(10, 2.0), 7)),
        (mase, (np.ones(3), np.ones(3), np.ones(5), 7)),
        (smape, (np.full(2, np.nan), np.ones(2))),
        (bias, (np.array([]), np.array([]))),
    ],
    ids=[
        "wape-zero-actuals",
        "mase-zero-scale",
        "mase-short-insample",
        "smape-no-days",
        "bias-empty",
    ],
)
def test_undefined_metrics_are_nan(fn, args):
    assert math.isnan(fn(*args))


def test_smape_zero_zero_is_exact():
    assert smape(np.zeros(3), np.zeros(3)) == 0.0


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shapes differ"):
        wape(np.ones(3), np.ones(4))


def test_evaluate_sums_are_consistent():
    lo, hi = FCAST - 1, FCAST + 1
    m = evaluate(ACTUAL, FCAST, lo, hi, lo - 5, hi + 5, np.arange(20.0), 7)
    assert m["n"] == 4
    assert m["sum_abs_error"] == 5.0 and m["sum_abs_actual"] == 19.0 and m["sum_error"] == 1.0
    assert m["wape"] == pytest.approx(5 / 19) and m["mae"] == pytest.approx(5 / 4)
    assert m["scale"] == 7.0 and m["mase"] == pytest.approx(5 / 4 / 7)
    assert m["coverage95"] == 1.0


def test_aggregate_metrics_by_hand():
    rows = pd.DataFrame(
        {
            "series_id": ["a", "a", "b", "a", "b"],
            "model": ["chosen", "chosen", "chosen", "seasonal_naive", "seasonal_naive"],
            "fold": [0, 1, 0, 0, 0],
            "n": [10, 10, 20, 10, 20],
            "mase": [1.0, 3.0, 0.5, 2.0, np.nan],
            "smape": [10.0, 20.0, 30.0, 40.0, 50.0],
            "sum_abs_error": [5.0, 5.0, 10.0, 8.0, 12.0],
            "sum_abs_actual": [50.0, 50.0, 100.0, 50.0, 100.0],
            "sum_error": [1.0, -1.0, 4.0, 2.0, 2.0],
            "coverage80": [0.8, 0.6, 0.9, 1.0, 0.5],
            "coverage95": [1.0, 1.0, 1.0, 1.0, 1.0],
        }
    )
    out = aggregate_metrics(rows).set_index("model")
    chosen = out.loc["chosen"]
    # per-series MASE: a = mean(1, 3) = 2, b = 0.5 -> overall 1.25
    assert chosen["mase"] == pytest.approx(1.25)
    assert chosen["smape"] == pytest.approx((15.0 + 30.0) / 2)
    assert chosen["wape"] == pytest.approx(20 / 200)
    assert chosen["bias"] == pytest.approx(4 / 40)
    assert chosen["coverage80"] == pytest.approx((8 + 6 + 18) / 40)
    assert chosen["n_series"] == 2 and chosen["n_points"] == 40
    # a NaN per-series MASE is left out of the mean
    assert out.loc["seasonal_naive", "mase"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="missing column"):
        aggregate_metrics(rows.drop(columns=["sum_error"]))


def test_family_metrics_groups_naive_with_the_chosen_family():
    rows = pd.DataFrame(
        {
            "series_id": ["a", "a", "b", "a", "a", "b"],
            "model": ["chosen"] * 3 + ["seasonal_naive"] * 3,
            "model_spec": ["SARIMA(1,1,1)(0,0,0,0)+c", "SARIMA(0,1,1)(1,0,1,7)", "SBA"]
            + ["seasonal_naive"] * 3,
            "fold": [0, 1, 0, 0, 1, 0],
            "n": [10] * 6,
            "mase": [1.0, 3.0, 0.5, 2.0, 4.0, 1.5],
            "smape": [10.0] * 6,
            "sum_abs_error": [5.0, 5.0, 10.0, 8.0, 12.0, 20.0],
            "sum_abs_actual": [50.0, 50.0, 100.0, 50.0, 50.0, 100.0],
            "sum_error": [0.0] * 6,
            "coverage80": [0.8] * 6,
            "coverage95": [1.0] * 6,
        }
    )
    out = family_metrics(rows).set_index(["family", "model"])
    assert sorted(out.index) == [
        ("SARIMA", "chosen"),
        ("SARIMA", "seasonal_naive"),
        ("SBA", "chosen"),
        ("SBA", "seasonal_naive"),
    ]
    # SARIMA covers series a, folds 0 and 1, for both models.
    assert out.loc[("SARIMA", "chosen"), "mase"] == pytest.approx(2.0)
    assert out.loc[("SARIMA", "chosen"), "wape"] == pytest.approx(10 / 100)
    assert out.loc[("SARIMA", "seasonal_naive"), "mase"] == pytest.approx(3.0)
    assert out.loc[("SARIMA", "seasonal_naive"), "wape"] == pytest.approx(20 / 100)
    assert out.loc[("SBA", "seasonal_naive"), "wape"] == pytest.approx(20 / 100)
    assert out["n_series"].to_dict() == {k: 1 for k in out.index}
