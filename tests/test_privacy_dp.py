"""Differentially private counts (privacy.dp_*): OpenDP's calibration against the
textbook scales, the noise against its distribution, the contribution bound against pandas."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from shikong.privacy import (
    NoisyRelease,
    bound_contributions,
    calibrate,
    calibrate_threshold,
    noisy_counts,
    threshold_counts,
)


@pytest.mark.parametrize(
    ("epsilon", "sensitivity"), [(1.0, 1), (0.25, 8), (0.1, 3)], ids=["e1-s1", "e.25-s8", "e.1-s3"]
)
def test_laplace_scale_is_sensitivity_over_epsilon(epsilon: float, sensitivity: int) -> None:
    r = calibrate(mechanism="laplace", epsilon=epsilon, delta=0.0, sensitivity=sensitivity)
    assert r.scale == pytest.approx(sensitivity / epsilon, rel=1e-6)
    assert r.epsilon == pytest.approx(epsilon, rel=1e-6) and r.delta == 0.0


def test_gaussian_spends_what_it_is_given_and_no_more() -> None:
    r = calibrate(mechanism="gaussian", epsilon=0.5, delta=1e-6, sensitivity=4)
    assert r.epsilon <= 0.5 + 1e-9 and r.delta == pytest.approx(1e-6)
    # zCDP of the Gaussian: rho = (sens / scale)^2 / 2, and rho-zCDP implies
    # (rho + 2 sqrt(rho ln(1/delta)), delta)-DP (Bun & Steinke 2016, prop. 1.3): an upper bound.
    rho = (4 / r.scale) ** 2 / 2
    assert r.epsilon <= rho + 2 * math.sqrt(rho * math.log(1 / 1e-6)) + 1e-9
    assert r.epsilon > 0.4  # and not far below it: the search did its job


def _discrete_laplace_var(scale: float) -> float:
    q = math.exp(-1.0 / scale)
    return 2 * q / (1 - q) ** 2


@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
def test_noisy_totals_stay_within_the_mechanisms_error(mechanism: str) -> None:
    n, true = 4000, 1000
    release = calibrate(mechanism=mechanism, epsilon=0.5, delta=1e-6, sensitivity=2)
    var = _discrete_laplace_var(release.scale) if mechanism == "laplace" else release.scale**2
    draws = [np.array(noisy_counts([true] * n, release)) for _ in range(2)]
    for noisy in draws:
        err = noisy - true
        assert noisy.dtype.kind == "i" and (noisy >= 0).all()
        # The total's error: a sum of n independent noises, mean 0, variance n * var.
        assert abs(err.sum()) <= 5 * math.sqrt(n * var)
        # The spread is the mechanism's (5 standard errors of a sample variance).
        assert err.var() == pytest.approx(var, rel=0.25)
    assert not np.array_equal(*draws)  # fresh noise each draw


def test_the_threshold_release_calibrates_and_hides_rare_keys() -> None:
    import opendp.prelude as dp

    r = calibrate_threshold(epsilon=0.5, delta=1e-6, bound=8, per_key=1, floor=5)
    assert r.scale == pytest.approx(8 / 0.5, rel=1e-6) and r.epsilon == pytest.approx(0.5)
    assert r.delta <= 1e-6 and r.threshold >= 5
    # The least threshold: one less would spend more than delta (OpenDP's own map).
    dp.enable_features("contrib")
    domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=int))
    metric = dp.l01inf_distance(dp.absolute_distance(T=int))
    below = dp.m.make_laplace_threshold(domain, metric, scale=r.scale, threshold=r.threshold - 1)
    assert below.map((8, 8, 1))[1] > 1e-6
    counts = {f"big{i}": 10 * r.threshold for i in range(50)} | {f"one{i}": 1 for i in range(500)}
    out = threshold_counts(counts, r)
    assert {k for k in out if k.startswith("big")} == {f"big{i}" for i in range(50)}
    assert not any(k.startswith("one") for k in out)  # each would pass with p < delta
    assert all(v >= r.threshold for v in out.values())
    big = np.array([out[f"big{i}"] for i in range(50)]) - 10 * r.threshold
    assert abs(big.sum()) <= 5 * math.sqrt(50 * 2 * r.scale**2)


def test_release_record_is_what_calibrate_says() -> None:
    r = calibrate(mechanism="laplace", epsilon=0.5, delta=0.0, sensitivity=2)
    assert r == NoisyRelease("laplace", 0.5, 0.0, 2, 4.0)
    with pytest.raises(ValueError):
        calibrate(mechanism="exponential", epsilon=1, delta=0, sensitivity=1)


def test_contributions_are_bounded_per_customer(spark) -> None:
    rows = [(c, i) for c, k in (("a", 1), ("b", 3), ("c", 10)) for i in range(k)]
    df = spark.createDataFrame(rows, "customer_id string, line int")
    got = df.transform(bound_contributions(max_rows=3, key=b"k" * 16)).toPandas()
    want = pd.DataFrame(rows, columns=["customer_id", "line"])
    per = got.groupby("customer_id")["line"].count().to_dict()
    assert per == {"a": 1, "b": 3, "c": 3}
    merged = got.merge(want, how="left", indicator=True)
    assert (merged["_merge"] == "both").all() and not got.duplicated().any()
    again = df.transform(bound_contributions(max_rows=3, key=b"k" * 16)).toPandas()
    other = df.transform(bound_contributions(max_rows=3, key=b"z" * 16)).toPandas()
    key = ["customer_id", "line"]
    assert (
        again.sort_values(key)
        .reset_index(drop=True)
        .equals(got.sort_values(key).reset_index(drop=True))
    )
    c_kept = [set(f[f.customer_id == "c"]["line"]) for f in (got, other)]
    assert [len(s) for s in c_kept] == [3, 3] and c_kept[0] != c_kept[1]  # the key decides


def test_the_spatial_stage_releases_the_grid_with_a_recorded_budget(spark, small_pipeline, cfg):
    """The stage's DP release on the small world: cells chosen by the threshold mechanism
    among the bounded grid's, noisy counts near the exact ones, no exact sums published,
    and a ledger adding up to dp_epsilon."""
    import dataclasses

    from shikong.io.catalog import Catalog
    from shikong.secrets import DEVELOPMENT_KEY
    from shikong.spatial import tables as st
    from shikong.stages import spatial_features
    from shikong.stages.context import StageContext

    world = small_pipeline.cfg
    # A large epsilon so that the small world's cells (a few customers each) get through.
    privacy = dataclasses.replace(world.privacy, dp_epsilon=40.0, dp_max_lines_per_customer=2)
    ctx = StageContext.create(spark, dataclasses.replace(world, privacy=privacy, paths=cfg.paths))
    inputs = spatial_features.extract(StageContext.create(spark, world))
    og = Catalog(world.paths.lakehouse).read(spark, "silver.orders_geo")
    noisy_daily, noisy_cat = spatial_features._dp_grid(ctx, og, inputs)
    bound = bound_contributions(max_rows=2, key=DEVELOPMENT_KEY)
    exact, _ = st.grid_frames(og, inputs.lines, inputs.products, world.spatial, bound=bound)
    keys = ["cell", "order_date"]
    pub = noisy_daily.toPandas()
    assert set(pub.columns) == {*keys, "orders", "customers", "resolution", "month"}
    exact_pdf = exact.toPandas()
    got = pub.merge(exact_pdf, on=keys, how="left", suffixes=("", "_x"))
    assert got["orders_x"].notna().all() and len(got) > 0  # published cells are real cells
    # At scale 0.2 a noise of 2 or more has probability ~e^-10: every cell with >= k + 2
    # customers is released.
    sure = exact_pdf[exact_pdf["customers"] >= privacy.min_cell_customers + 2]
    assert set(map(tuple, sure[keys].astype(str).values)) <= set(
        map(tuple, pub[keys].astype(str).values)
    )
    budget = Catalog(cfg.paths.lakehouse).read(spark, "ops.privacy_budget").toPandas()
    assert len(budget) == 4 and budget["epsilon"].sum() == pytest.approx(40.0)
    sel = budget[budget["column"] == "customers"].iloc[0]
    assert sel["mechanism"] == "laplace-threshold" and sel["delta"] <= privacy.dp_delta
    assert (pub["customers"] >= max(sel["threshold"], privacy.min_cell_customers)).all()
    for col in ("orders", "customers"):
        scale = float(budget[budget["column"] == col]["scale"].iloc[0])
        err = got[col] - got[f"{col}_x"]
        assert abs(err.sum()) <= 5 * math.sqrt(len(got) * 2 * scale**2) + 1, col
    # The category grid: same columns; the small world has no category cell of >= k + 2.
    assert set(noisy_cat.columns) == {
        *keys,
        "category",
        "orders",
        "customers",
        "resolution",
        "month",
    }
    assert set(budget["table"]) == {"gold.grid_daily", "gold.grid_daily_category"}
