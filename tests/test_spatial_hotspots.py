"""Gi* hot spots, BH-FDR and Moran's I against direct numpy implementations of the papers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from statsmodels.stats.multitest import multipletests

from shikong.session import sql_settings
from shikong.spatial.hotspots import (
    GI_OUTPUT_COLUMNS,
    HOTSPOT_CLASSES,
    REQUIRED_SQL_SETTINGS,
    getis_ord_gi_star,
    morans_i,
)

# An 8 x 6 grid of cell centroids, 1 km apart, in EPSG:5880 (metres), near Sao Paulo.
X0, Y0, STEP = 5_000_000.0, 7_400_000.0, 1000.0
NX, NY = 8, 6
BAND = 1500.0  # queen neighbourhood: orthogonal (1 km) and diagonal (1.41 km) cells
HIGH = {(c, r) for c in range(0, 3) for r in range(0, 3)}  # planted high 3 x 3 block
LOW = {(c, r) for c in range(5, 8) for r in range(3, 6)}  # planted low 3 x 3 block


@pytest.fixture(scope="module", autouse=True)
def _gi_settings(spark):
    """The session settings the statistics' plans need (stages set them the same way)."""
    with sql_settings(spark, REQUIRED_SQL_SETTINGS):
        yield


def test_gi_star_refuses_plans_built_under_ansi_mode(spark) -> None:
    df = spark.createDataFrame(_grid()).selectExpr("cell", "orders", "ST_Point(x, y) AS geom")
    with (
        sql_settings(spark, {"spark.sql.ansi.enabled": "true"}),
        pytest.raises(ValueError, match="spark.sql.ansi.enabled"),
    ):
        getis_ord_gi_star(df, geometry_col="geom", value_col="orders", distance_band_m=BAND)


def _grid() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    for r in range(NY):
        for c in range(NX):
            value = 50.0 + rng.normal(0.0, 5.0)
            if (c, r) in HIGH:
                value = 150.0 + rng.normal(0.0, 5.0)
            if (c, r) in LOW:
                value = abs(rng.normal(0.0, 2.0))
            rows.append((f"c{c}r{r}", c, r, X0 + c * STEP, Y0 + r * STEP, value))
    return pd.DataFrame(rows, columns=["cell", "col", "row", "x", "y", "orders"])


def _binary_band(pdf: pd.DataFrame, band: float, *, self_weight: bool) -> np.ndarray:
    xy = pdf[["x", "y"]].to_numpy()
    dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    w = (dist <= band).astype(float)
    if not self_weight:
        np.fill_diagonal(w, 0.0)
    return w


def _gi_star_numpy(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Gi* z-score, Getis & Ord (1995), eq. for G_i^*(d) with j ranging over all n incl. i.

    G_i* = [sum_j w_ij x_j - xbar W_i*] / (S sqrt([n S_1i* - W_i*^2] / (n - 1))),
    W_i* = sum_j w_ij, S_1i* = sum_j w_ij^2, xbar = sum_j x_j / n, S^2 = sum_j x_j^2 / n - xbar^2.
    """
    n = len(x)
    xbar = x.sum() / n
    s = np.sqrt((x**2).sum() / n - xbar**2)
    wi = w.sum(axis=1)
    s1i = (w**2).sum(axis=1)
    return (w @ x - xbar * wi) / (s * np.sqrt((n * s1i - wi**2) / (n - 1)))


def _points(spark, pdf: pd.DataFrame):
    from sedona.spark.sql import st_constructors as stc
    from sedona.spark.sql import st_functions as stf

    sdf = spark.createDataFrame(pdf)
    return sdf.withColumn("geom", stf.ST_SetSRID(stc.ST_Point("x", "y"), 5880))


@pytest.fixture(scope="module")
def grid() -> pd.DataFrame:
    return _grid()


@pytest.fixture(scope="module")
def gi_periods(spark, grid: pd.DataFrame) -> pd.DataFrame:
    """Two periods on the SAME cells: p1 = the grid, p2 = the grid shifted by -100 orders.

    Same coordinates, so any neighbour across periods would show in ``gi_n_neighbors``;
    p2's mean is negative, where Sedona's raw ``Z`` would flip sign.
    """
    both = pd.concat(
        [grid.assign(period="p1"), grid.assign(period="p2", orders=grid["orders"] - 100.0)]
    )
    out = getis_ord_gi_star(
        _points(spark, both),
        geometry_col="geom",
        value_col="orders",
        distance_band_m=BAND,
        partition_cols=["period"],
    )
    assert out.columns == [*both.columns, "geom", *GI_OUTPUT_COLUMNS]
    return out.drop("geom").toPandas()


@pytest.fixture(scope="module")
def gi_result(grid: pd.DataFrame, gi_periods: pd.DataFrame) -> pd.DataFrame:
    p1 = gi_periods[gi_periods["period"] == "p1"]
    return grid[["cell"]].merge(p1, on="cell", how="left", validate="one_to_one")


def test_gi_star_matches_getis_ord_1995(grid: pd.DataFrame, gi_result: pd.DataFrame) -> None:
    w = _binary_band(grid, BAND, self_weight=True)
    expected_z = _gi_star_numpy(grid["orders"].to_numpy(), w)
    np.testing.assert_allclose(gi_result["gi_n_neighbors"], w.sum(axis=1))
    np.testing.assert_allclose(gi_result["gi_z"], expected_z, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        gi_result["gi_p"], 2.0 * norm.sf(np.abs(expected_z)), rtol=1e-6, atol=1e-9
    )


def test_gi_fdr_is_benjamini_hochberg(gi_result: pd.DataFrame) -> None:
    p = gi_result["gi_p"].to_numpy()
    # Direct BH: sort, scale by m / rank, running minimum from the top, cap at 1.
    order = np.argsort(p)
    m = len(p)
    scaled = p[order] * m / np.arange(1, m + 1)
    direct = np.empty(m)
    direct[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    np.testing.assert_allclose(gi_result["gi_p_fdr"], direct, rtol=1e-12, atol=1e-15)
    _, sm_adjusted, _, _ = multipletests(p, method="fdr_bh")
    np.testing.assert_allclose(gi_result["gi_p_fdr"], sm_adjusted, rtol=1e-12, atol=1e-15)


def test_planted_clusters_are_hot_and_cold(gi_result: pd.DataFrame) -> None:
    by_cell = gi_result.set_index("cell")
    assert set(gi_result["hotspot_class"]) <= set(HOTSPOT_CLASSES)
    assert by_cell.loc["c1r1", "hotspot_class"] == "hot_99"  # centre of the high block
    assert by_cell.loc["c6r4", "hotspot_class"] == "cold_99"  # centre of the low block
    high = [f"c{c}r{r}" for c, r in HIGH]
    assert by_cell.loc[high, "hotspot_class"].str.startswith("hot_").all()
    # Every class follows the FDR rule on the sign of z, and nothing far away is flagged.
    for _, row in gi_result.iterrows():
        sign = "hot" if row["gi_z"] > 0 else "cold"
        p = row["gi_p_fdr"]
        want = (
            f"{sign}_99"
            if p <= 0.01
            else f"{sign}_95"
            if p <= 0.05
            else f"{sign}_90"
            if p <= 0.10
            else "not_significant"
        )
        assert row["hotspot_class"] == want, row["cell"]
    assert (by_cell.loc[["c0r5", "c7r0", "c3r4"], "hotspot_class"] == "not_significant").all()


def test_gi_periods_are_separate_cross_sections(gi_periods: pd.DataFrame) -> None:
    p1 = gi_periods[gi_periods["period"] == "p1"].set_index("cell").sort_index()
    p2 = gi_periods[gi_periods["period"] == "p2"].set_index("cell").sort_index()
    assert len(p1) == len(p2) == NX * NY
    # Gi* z is invariant to a shift of the values: a per-period computation gives p2 == p1.
    cols = ["gi_n_neighbors", "gi_z", "gi_p", "gi_p_fdr"]
    np.testing.assert_allclose(p2[cols].to_numpy(), p1[cols].to_numpy(), rtol=0, atol=1e-9)
    assert (p2["hotspot_class"] == p1["hotspot_class"]).all()
    assert p1["gi_n_neighbors"].max() == 9  # queen neighbourhood incl. self, this period only


def test_gi_degenerate_band_gives_null_not_error(spark) -> None:
    pdf = pd.DataFrame(
        {
            "cell": ["a", "b", "c", "d"],
            "x": [0.0, 10.0, 0.0, 10.0],
            "y": [0.0, 0.0, 10.0, 10.0],
            "orders": [1.0, 2.0, 3.0, 4.0],
        }
    )
    ansi_before = spark.conf.get("spark.sql.ansi.enabled", None)
    # A band covering every cell: W_i = n, the variance is 0 and z = 0 / 0.
    out = getis_ord_gi_star(
        _points(spark, pdf), geometry_col="geom", value_col="orders", distance_band_m=1e6
    ).toPandas()
    assert spark.conf.get("spark.sql.ansi.enabled", None) == ansi_before
    assert out[["gi_z", "gi_p", "gi_p_fdr"]].isna().all().all()
    assert (out["hotspot_class"] == "not_significant").all()
    with pytest.raises(ValueError, match="distance_band_m"):
        getis_ord_gi_star(
            _points(spark, pdf), geometry_col="geom", value_col="orders", distance_band_m=0
        )


def test_morans_i_matches_numpy(spark, grid: pd.DataFrame) -> None:
    result = morans_i(
        _points(spark, grid).select("geom", "orders"),
        geometry_col="geom",
        value_col="orders",
        distance_band_m=BAND,
    )
    x = grid["orders"].to_numpy()
    w = _binary_band(grid, BAND, self_weight=False)
    n = len(x)
    z = x - x.mean()
    s0 = w.sum()
    i = n / s0 * (z @ w @ z) / (z @ z)
    s1 = 0.5 * ((w + w.T) ** 2).sum()
    s2 = ((w.sum(axis=1) + w.sum(axis=0)) ** 2).sum()
    ei = -1.0 / (n - 1)
    var_i = (n**2 * s1 - n * s2 + 3 * s0**2) / ((n**2 - 1) * s0**2) - ei**2
    z_i = (i - ei) / np.sqrt(var_i)
    assert result.n == n
    assert result.i == pytest.approx(i, abs=1e-9)
    assert result.expected_i == pytest.approx(ei)
    assert result.z == pytest.approx(z_i, abs=1e-6)
    assert result.p == pytest.approx(2.0 * norm.sf(abs(z_i)), abs=1e-9)
    assert result.i > 0.5 and result.p < 1e-6  # planted blocks: strong positive autocorrelation


@pytest.mark.parametrize(
    ("k_ring", "time_steps"),
    [(1, 0), (2, 0), (1, 1), (2, 2)],
    ids=["ring1", "ring2", "ring1-time1", "ring2-time2"],
)
def test_gi_star_h3_rings_match_numpy(spark, k_ring: int, time_steps: int) -> None:
    import h3

    from shikong.spatial.hotspots import getis_ord_gi_star_h3

    rng = np.random.default_rng(11)
    centre = h3.latlng_to_cell(-23.55, -46.63, 6)
    cells = sorted(h3.grid_disk(centre, 4))
    rows = []
    for t in range(5):
        present = [c for c in cells if rng.random() < 0.8]  # sparse: some cells have no row
        hot = set(h3.grid_disk(present[0], 1)) if t in (2, 3) else set()
        for c in present:
            rows.append((t, f"2024-01-{1 + 7 * t:02d}", c, rng.normal(3.0 if c in hot else 0, 1)))
    pdf = pd.DataFrame(rows, columns=["t", "period", "cell", "v"])
    # time_steps = 0: each period is its own cross-section (period_cols or time index).
    time_args = (
        {"time_col": "t", "time_steps": time_steps} if time_steps else {"period_cols": ["period"]}
    )
    got = (
        getis_ord_gi_star_h3(
            spark.createDataFrame(pdf), cell_col="cell", value_col="v", k_ring=k_ring, **time_args
        )
        .select("period", "cell", "gi_z", "gi_n_neighbors")
        .toPandas()
        .merge(pdf, on=["period", "cell"])
    )
    # Oracle: binary weights from h3.grid_disk within time_steps periods, pooled n/mean/sd.
    x = pdf["v"].to_numpy()
    w = np.zeros((len(pdf), len(pdf)))
    index = {(t, c): i for i, (t, c) in enumerate(zip(pdf["t"], pdf["cell"], strict=True))}
    for (t, c), i in index.items():
        for dt in range(-time_steps, time_steps + 1):
            for nb in h3.grid_disk(c, k_ring):
                if (t + dt, nb) in index:
                    w[i, index[(t + dt, nb)]] = 1.0
    want = pd.DataFrame(
        {
            "period": pdf["period"],
            "cell": pdf["cell"],
            "want": _gi_star_numpy(x, w),
            "n_nb": w.sum(axis=1),
        }
    )
    both = got.merge(want, on=["period", "cell"])
    assert len(both) == len(pdf)
    np.testing.assert_allclose(both["gi_z"], both["want"], atol=1e-6)
    np.testing.assert_array_equal(both["gi_n_neighbors"], both["n_nb"])
    if time_steps:  # the neighbourhood really spans periods
        assert both["n_nb"].max() > len(h3.grid_disk(centre, k_ring))


def test_gi_star_h3_rejects_time_steps_without_time(spark) -> None:
    from shikong.spatial.hotspots import getis_ord_gi_star_h3

    df = spark.createDataFrame([("86a8100c7ffffff", 1.0)], "cell string, v double")
    with pytest.raises(ValueError, match="time_col"):
        getis_ord_gi_star_h3(df, cell_col="cell", value_col="v", k_ring=1, time_steps=1)


def test_hotspot_input_is_a_complete_panel(spark) -> None:
    """Every cell gets a row in every week (0 orders where it had none), weeks numbered."""
    from shikong.config import SpatialSettings
    from shikong.spatial.tables import hotspot_input

    daily = pd.DataFrame(
        {
            "cell": ["a", "a", "a", "b", "b"],
            # Mon 2024-01-01, Sun 2024-01-07 (same week), then the next two weeks.
            "order_date": pd.to_datetime(
                ["2024-01-01", "2024-01-07", "2024-01-15", "2024-01-08", "2024-01-15"]
            ).date,
            "orders": [2, 1, 4, 5, 3],
        }
    )
    got = (
        hotspot_input(spark.createDataFrame(daily), SpatialSettings(hotspot_period="week"))
        .toPandas()
        .set_index(["period", "cell"])
        .sort_index()
    )
    weeks = ["2024-01-01", "2024-01-08", "2024-01-15"]
    assert list(got.index) == [(w, c) for w in weeks for c in ("a", "b")]
    assert got["orders"].tolist() == [3, 0, 0, 5, 4, 3]
    assert got.groupby(level="period")["period_index"].first().diff().dropna().eq(1).all()
    # expected = cell total x week total / grand total; excess = Freeman-Tukey residual.
    cell_total = {"a": 7, "b": 8}
    week_total = {"2024-01-01": 3, "2024-01-08": 5, "2024-01-15": 7}
    want_e = [cell_total[c] * week_total[w] / 15 for w, c in got.index]
    np.testing.assert_allclose(got["expected"], want_e)
    o = got["orders"].to_numpy(float)
    want_x = np.sqrt(o) + np.sqrt(o + 1) - np.sqrt(4 * np.array(want_e) + 1)
    np.testing.assert_allclose(got["excess"], want_x)
