"""The jobs after ingest, run on the generated small world and checked against oracles."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import h3
import numpy as np
import pandas as pd
import pytest
import shapely
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from shikong.geo_resources import load_states
from shikong.io.catalog import Catalog, published
from shikong.secrets import DEVELOPMENT_KEY


def _read(spark, cfg, layer: str, name: str) -> pd.DataFrame:
    return Catalog(cfg.paths.lakehouse).read(spark, f"{layer}.{name}").toPandas()


def test_order_regions_match_shapely(spark, small_pipeline):
    cfg = small_pipeline.cfg
    og = _read(spark, cfg, "silver", "orders_geo")[["order_id", "lat", "lon", "uf"]]
    states = load_states()
    polys = shapely.from_wkt(states["wkt"].to_numpy())
    tree = shapely.STRtree(polys)
    pts = shapely.points(og["lon"].to_numpy(), og["lat"].to_numpy())
    pi, gi = tree.query(pts, predicate="intersects")
    hits = pd.DataFrame({"i": pi, "uf": states["uf"].to_numpy()[gi]}).sort_values(["i", "uf"])
    first = hits.drop_duplicates("i").set_index("i")["uf"]
    want = pd.Series(first.reindex(range(len(og))).to_numpy(), index=og.index)
    assert (og["uf"].fillna("-") == want.fillna("-")).all()
    assert og["uf"].isna().sum() > 0  # some demo customers live just off the coast


def _order_lines_with_cells(spark, cfg) -> pd.DataFrame:
    """Bronze order lines with their order's customer, day and H3 cell (the h3 library)."""
    res = cfg.spatial.grid_resolution
    orders = _read(spark, cfg, "bronze", "orders")[
        ["order_id", "customer_id", "lat", "lon", "order_date"]
    ]
    lines = _read(spark, cfg, "bronze", "order_lines")[["order_id", "sku", "quantity"]]
    orders["cell"] = [
        h3.latlng_to_cell(a, b, res) for a, b in zip(orders["lat"], orders["lon"], strict=True)
    ]
    return lines.merge(orders, on="order_id")


def test_grid_daily_matches_pandas_and_h3(spark, small_pipeline):
    """Every cell x day with at least k distinct customers, and only those (the rest are
    suppressed: README "Privacy")."""
    cfg = small_pipeline.cfg
    df = _order_lines_with_cells(spark, cfg)
    want = (
        df.groupby(["cell", "order_date"])
        .agg(
            orders=("order_id", "nunique"),
            units=("quantity", "sum"),
            customers=("customer_id", "nunique"),
        )
        .reset_index()
    )
    want = want[want["customers"] >= cfg.privacy.min_cell_customers].drop(columns="customers")
    want = want.sort_values(["cell", "order_date"]).reset_index(drop=True)
    assert len(want) > 0
    got = _read(spark, cfg, "gold", "grid_daily")[["cell", "order_date", "orders", "units"]]
    got = got.sort_values(["cell", "order_date"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def _gi_star_of_every_cell(spark, cfg) -> pd.DataFrame:
    """Gi* as the stage computes it, before the small cells are suppressed: from the
    restricted order geography, through the same transforms."""
    from shikong.session import sql_settings
    from shikong.spatial import hotspots
    from shikong.spatial import tables as st

    s, cat = cfg.spatial, Catalog(cfg.paths.lakehouse)
    daily, _ = st.grid_frames(
        cat.read(spark, "silver.orders_geo"),
        cat.read(spark, "bronze.order_lines"),
        cat.read(spark, "bronze.products"),
        s,
    )
    with sql_settings(spark, hotspots.REQUIRED_SQL_SETTINGS):
        gi = hotspots.getis_ord_gi_star_h3(
            st.hotspot_input(daily, s),
            cell_col="cell",
            value_col="excess",
            k_ring=s.hotspot_k_ring,
            time_col="period_index",
            time_steps=s.hotspot_time_steps,
        )
        return gi.select("period", "cell", "orders", "gi_z", "hotspot_class").toPandas()


def test_planted_hotspots_are_found(spark, small_pipeline):
    """Precision and recall of hot-cell detection against the generator's ground truth.

    Measured on Gi* of every cell (what the stage computes before it removes the cell x
    weeks with fewer than k customers from the published ``gold.hotspots``: the published
    rows are checked to be exactly those rows, unchanged).

    Planted (the recall set): cell-weeks whose cell centre lies inside a planted spot's
    radius, whose week has at least 4 of its 7 days inside the spot's active window, and
    whose cell had orders that week (``gold.hotspots`` is a complete panel, zero weeks
    included). A detected hot cell-week is correct when a planted spot covers the cell
    (centre within its radius plus one H3 edge length: cells straddling the rim carry part
    of the uplift) on at least one day of that week: the uplift then really raised that
    week's demand, so only detections that no planted uplift touched count as false.
    """
    cfg = small_pipeline.cfg
    res = cfg.spatial.grid_resolution
    hs = _gi_star_of_every_cell(spark, cfg)
    pub = _read(spark, cfg, "gold", "hotspots")
    same = pub.merge(hs, on=["period", "cell"], suffixes=("", "_all"), validate="1:1")
    assert len(same) == len(pub) < len(hs)
    np.testing.assert_allclose(same["gi_z"], same["gi_z_all"], rtol=1e-9, atol=1e-12)
    assert (same["hotspot_class"] == same["hotspot_class_all"]).all()
    truth = pd.read_csv(
        Path(cfg.paths.landing_dir) / "_ground_truth" / "hotspots.csv",
        parse_dates=["start_date", "end_date"],
    )
    edge = h3.average_hexagon_edge_length(res, unit="km")

    def active(min_days: int) -> list[tuple[str, tuple[float, float], float]]:
        out = []
        for r in truth.itertuples():
            for p in hs["period"].unique():
                start = pd.Timestamp(p)
                end = start + pd.Timedelta(days=6)
                overlap = (min(r.end_date, end) - max(r.start_date, start)).days + 1
                if overlap >= min_days:
                    out.append((p, (r.lat, r.lon), r.radius_km))
        return out

    def dist(cell: str, centre: tuple[float, float]) -> float:
        return h3.great_circle_distance(h3.cell_to_latlng(cell), centre, unit="km")

    hot = hs[hs["hotspot_class"].str.startswith("hot")]
    detected = set(zip(hot["period"], hot["cell"], strict=True))
    touched = active(1)
    correct = {
        (p, c)
        for p, c in detected
        if any(p == ap and dist(c, centre) <= rad + edge for ap, centre, rad in touched)
    }
    majority = active(4)
    with_orders = hs[hs["orders"] > 0]
    planted = {
        (p, c)
        for p, c in zip(with_orders["period"], with_orders["cell"], strict=True)
        if any(p == ap and dist(c, centre) <= rad for ap, centre, rad in majority)
    }
    precision = len(correct) / max(len(detected), 1)
    recall = len(detected & planted) / max(len(planted), 1)
    print(
        f"\nhot-cell detection: {len(detected)} detected, {len(planted)} planted, "
        f"precision={precision:.2f} recall={recall:.2f}"
    )
    assert len(planted) >= 50  # the small world plants enough to measure
    assert precision >= 0.8
    assert recall >= 0.8


def test_backtest_beats_seasonal_naive(small_pipeline):
    table = small_pipeline.reports["pipeline"]["forecast"].set_index("model")
    chosen, naive = table.loc["chosen"], table.loc["seasonal_naive"]
    print(
        f"\nbacktest MASE chosen={chosen['mase']:.3f} seasonal_naive={naive['mase']:.3f} "
        f"WAPE chosen={chosen['wape']:.3f} seasonal_naive={naive['wape']:.3f}"
    )
    assert chosen["mase"] < naive["mase"]
    assert chosen["wape"] < naive["wape"]


def test_forecasts_cover_every_series_and_horizon(spark, small_pipeline):
    cfg = small_pipeline.cfg
    fc = _read(spark, cfg, "gold", "forecasts")
    series = _read(spark, cfg, "silver", "sku_daily")["series_id"].nunique()
    assert fc["series_id"].nunique() == series == cfg.timeseries.max_series
    assert (fc.groupby("series_id")["step"].nunique() == cfg.timeseries.horizon).all()
    assert (fc["lo95"] <= fc["lo80"]).all() and (fc["lo80"] <= fc["yhat"]).all()
    assert (fc["yhat"] <= fc["hi80"]).all() and (fc["hi80"] <= fc["hi95"]).all()


def test_policy_simulation_books_balance(spark, small_pipeline):
    sim = _read(spark, small_pipeline.cfg, "gold", "policy_simulation")
    assert set(sim["policy"]) == {"policy", "naive"}
    assert sim["balance_ok"].all()
    pol = _read(spark, small_pipeline.cfg, "gold", "inventory_policy")
    np.testing.assert_allclose(
        pol["reorder_point"], pol["lead_time_demand"] + pol["safety_stock"], rtol=1e-9
    )


def test_every_routed_order_once_and_capacity_respected(spark, small_pipeline):
    cfg = small_pipeline.cfg
    stops = _read(spark, cfg, "gold", "route_stops")
    unrouted = _read(spark, cfg, "gold", "unrouted_orders")
    groups = _read(spark, cfg, "gold", "route_groups")
    assert len(stops) + len(unrouted) == groups["n_orders"].sum()
    ids = pd.concat([stops["order_id"], unrouted["order_id"]])
    assert ids.is_unique
    assert (stops["cum_load"] <= cfg.decisions.vehicle_capacity + 1e-9).all()
    assert (groups["ortools_km"] <= groups["baseline_km"] + 1e-6).all()


def test_forecast_rerun_is_idempotent(spark, small_pipeline):
    from shikong.stages import forecast_arima
    from shikong.stages.context import StageContext

    cfg = small_pipeline.cfg
    before = _read(spark, cfg, "gold", "forecasts").drop(columns="run_id")
    forecast_arima.run(StageContext.create(spark, cfg))
    after = _read(spark, cfg, "gold", "forecasts").drop(columns="run_id")
    key = ["series_id", "run_date", "ds"]
    pd.testing.assert_frame_equal(
        after.sort_values(key).reset_index(drop=True),
        before.sort_values(key).reset_index(drop=True),
    )


@pytest.mark.parametrize("table", ["customers_geo", "orders_geo"], ids=["customers", "orders"])
def test_geometry_is_stored_as_wkb(spark, small_pipeline, table):
    df = _read(spark, small_pipeline.cfg, "silver", table).dropna(subset=["lat"]).head(50)
    geoms = shapely.from_wkb(df["geom_wkb"].map(bytes).to_numpy())
    np.testing.assert_allclose(shapely.get_x(geoms), df["lon"], atol=1e-9)
    np.testing.assert_allclose(shapely.get_y(geoms), df["lat"], atol=1e-9)


def test_global_moran_is_reported(spark, small_pipeline):
    m = _read(spark, small_pipeline.cfg, "gold", "spatial_autocorrelation")
    assert len(m) == 1
    row = m.iloc[0]
    assert row["n"] > 10 and np.isfinite(row["moran_i"]) and 0.0 <= row["p"] <= 1.0
    assert row["expected_i"] == pytest.approx(-1.0 / (row["n"] - 1))


# --- privacy (README "Privacy"): every published table of the small world -----------------


def _published_tables(spark, cfg) -> dict[str, object]:
    cat = Catalog(cfg.paths.lakehouse)
    return {t.qualified: cat.read(spark, t) for t in published() if cat.exists(spark, t)}


def test_published_tables_hold_no_raw_customer_id(spark, small_pipeline):
    cfg = small_pipeline.cfg
    cat = Catalog(cfg.paths.lakehouse)
    raw = (
        cat.read(spark, "bronze.customers")
        .select(F.col("customer_id").alias("v"))
        .union(cat.read(spark, "bronze.orders").select(F.col("customer_id").alias("v")))
        .union(cat.read(spark, "bronze.events").select(F.col("customer_id").alias("v")))
        .where(F.col("v").isNotNull())
        .distinct()
    )
    assert raw.count() > 1000
    tables = _published_tables(spark, cfg)
    assert {
        "gold.grid_daily",
        "gold.grid_daily_category",
        "gold.hotspots",
        "gold.customer_clusters",
        "gold.region_profiles",
        "gold.route_groups",
    } <= set(tables)
    for name, df in tables.items():
        strings = [f.name for f in df.schema.fields if isinstance(f.dataType, StringType)]
        if not strings:
            continue
        values = df.select(F.explode(F.array(*strings)).alias("v")).distinct()
        leaked = values.join(raw, "v", "left_semi").limit(3).collect()
        assert leaked == [], f"{name} holds raw customer ids, e.g. {leaked}"
    # The clusters' ids are the HMAC-SHA256 pseudonyms of real customers (python's hmac).
    ids = {r[0] for r in cat.read(spark, "bronze.customers").select("customer_id").collect()}
    want = {hmac.new(DEVELOPMENT_KEY, i.encode(), hashlib.sha256).hexdigest() for i in ids}
    got = {r[0] for r in tables["gold.customer_clusters"].select("customer_id").collect()}
    assert got and got <= want


def test_published_coordinates_are_no_finer_than_the_h3_precision(spark, small_pipeline):
    cfg = small_pipeline.cfg
    res = cfg.privacy.location_h3_resolution
    cat = Catalog(cfg.paths.lakehouse)
    exact = {
        (round(a, 9), round(b, 9))
        for src in ("bronze.customers", "bronze.orders")
        for a, b in cat.read(spark, src).select("lat", "lon").dropna().collect()
    }
    with_points = []
    for name, df in _published_tables(spark, cfg).items():
        assert not {"x_m", "y_m"} & set(df.columns), f"{name} has metric coordinates"
        if not {"lat", "lon"} <= set(df.columns):
            assert not {"lat", "lon"} & set(df.columns), name
            continue
        with_points.append(name)
        pts = df.select("lat", "lon").dropna().distinct().collect()
        assert pts, name
        cells = set()
        for lat, lon in pts:
            cell = h3.latlng_to_cell(lat, lon, res)
            centre = h3.cell_to_latlng(cell)
            assert h3.great_circle_distance(centre, (lat, lon), unit="m") < 1.0, (name, lat, lon)
            assert (round(lat, 9), round(lon, 9)) not in exact, (name, lat, lon)
            cells.add(cell)
        assert len(cells) == len(pts), f"{name}: two points in one H3 cell"
    assert "gold.customer_clusters" in with_points


def test_no_published_cell_has_fewer_than_k_customers(spark, small_pipeline):
    """Distinct customers counted from bronze (h3 library for the cells)."""
    cfg = small_pipeline.cfg
    k = cfg.privacy.min_cell_customers
    df = _order_lines_with_cells(spark, cfg)
    products = _read(spark, cfg, "bronze", "products")[["sku", "category"]]
    df = df.merge(products, on="sku", how="left")
    day = pd.to_datetime(df["order_date"])
    df["period"] = (day - pd.to_timedelta(day.dt.weekday, unit="D")).dt.strftime("%Y-%m-%d")
    tables = _published_tables(spark, cfg)

    def check(name: str, keys: list[str], rows: pd.DataFrame) -> None:
        n = rows.groupby(keys)["customer_id"].nunique().rename("n").reset_index()
        pub = tables[name].select(*keys).toPandas()
        got = pub[keys].merge(n, on=keys, how="left")
        assert len(got) > 0, name
        assert got["n"].notna().all(), f"{name}: published cells without orders"
        assert (got["n"] >= k).all(), f"{name}: {int((got['n'] < k).sum())} cells below k={k}"

    check("gold.grid_daily", ["cell", "order_date"], df)
    check("gold.grid_daily_category", ["cell", "order_date", "category"], df)
    assert cfg.spatial.hotspot_period == "week"
    check("gold.hotspots", ["period", "cell"], df)
    # States: from the (restricted) order geography, whose states test_order_regions checks.
    og = _read(spark, cfg, "silver", "orders_geo")[["customer_id", "uf"]].dropna()
    profiles = tables["gold.region_profiles"].toPandas()
    per_state = og.groupby("uf")["customer_id"].nunique()
    assert (per_state.reindex(profiles["uf"]) >= k).all()
    assert set(profiles["uf"]) == set(per_state[per_state >= k].index)
