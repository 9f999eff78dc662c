"""Differentially private counts (privacy.dp_*): OpenDP's calibration against the
textbook scales, the noise against its distribution, the contribution bound against pandas."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from shikong.privacy import NoisyRelease, add_noise, bound_contributions, calibrate


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
def test_noisy_totals_stay_within_the_mechanisms_error(spark, mechanism: str) -> None:
    n, true = 4000, 1000
    release = calibrate(mechanism=mechanism, epsilon=0.5, delta=1e-6, sensitivity=2)
    df = spark.createDataFrame([(i, true, true) for i in range(n)], "cell int, a long, b long")
    out = df.transform(add_noise(cols=["a", "b"], release=release)).toPandas()
    var = _discrete_laplace_var(release.scale) if mechanism == "laplace" else release.scale**2
    for col in ("a", "b"):
        err = out[col] - true
        assert err.dtype.kind == "i" and (out[col] >= 0).all()
        # The total's error: a sum of n independent noises, mean 0, variance n * var.
        assert abs(err.sum()) <= 5 * math.sqrt(n * var), col
        # The spread is the mechanism's (5 standard errors of a sample variance).
        assert err.var() == pytest.approx(var, rel=0.25), col
    assert not out["a"].equals(out["b"])  # independent draws per column


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
    assert np.all([len(s) == 3 for s in c_kept])


def test_the_spatial_stage_releases_the_grid_with_a_recorded_budget(spark, small_pipeline, cfg):
    """The stage's DP release on the small world: the noisy grid has the bounded grid's
    cells, totals within the mechanism's error, and the ledger adds up to dp_epsilon."""
    import dataclasses

    from shikong.io.catalog import Catalog
    from shikong.privacy import bound_contributions
    from shikong.secrets import DEVELOPMENT_KEY
    from shikong.spatial import tables as st
    from shikong.stages import spatial_features
    from shikong.stages.context import StageContext

    world = small_pipeline.cfg
    privacy = dataclasses.replace(world.privacy, dp_epsilon=2.0, dp_max_lines_per_customer=4)
    ctx = StageContext.create(spark, dataclasses.replace(world, privacy=privacy, paths=cfg.paths))
    inputs = spatial_features.extract(StageContext.create(spark, world))
    og = Catalog(world.paths.lakehouse).read(spark, "silver.orders_geo")
    noisy_daily, noisy_cat = spatial_features._dp_grid(ctx, og, inputs)
    bound = bound_contributions(max_rows=4, key=DEVELOPMENT_KEY)
    exact_daily, _ = st.grid_frames(og, inputs.lines, inputs.products, world.spatial, bound=bound)
    keys = ["cell", "order_date"]
    got = noisy_daily.toPandas().merge(exact_daily.toPandas(), on=keys, suffixes=("", "_x"))
    assert len(got) == noisy_daily.count() == exact_daily.count() > 100
    budget = Catalog(cfg.paths.lakehouse).read(spark, "ops.privacy_budget").toPandas()
    assert len(budget) == 4 and budget["epsilon"].sum() == pytest.approx(2.0)
    assert set(budget["sensitivity"]) == {4} and set(budget["cells"]) >= {len(got)}
    scale = float(budget["scale"].iloc[0])
    assert scale == pytest.approx(4 / 0.5)
    var = _discrete_laplace_var(scale)
    k = np.arange(-int(60 * scale), int(60 * scale) + 1)
    q = math.exp(-1.0 / scale)
    pk = (1 - q) / (1 + q) * q ** np.abs(k)  # the discrete Laplace's probabilities
    for col in ("orders", "customers"):
        true = got[f"{col}_x"].to_numpy()
        # The expected error of max(0, true + noise), exactly; clamping (1-Lipschitz) only
        # shrinks the variance, so the unclamped one bounds the total's spread.
        bias = np.array([(np.maximum(0, t + k) * pk).sum() - t for t in true])
        err = got[col].to_numpy() - true
        assert abs(err.sum() - bias.sum()) <= 5 * math.sqrt(len(got) * var), col
        assert (err >= -true).all() and (err != 0).any()
    assert noisy_cat.count() > 0
