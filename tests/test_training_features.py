"""Spark feature transforms of the deep models against pandas/numpy oracles (inline data)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from shikong.training import (
    DemandExampleConfig,
    RecoExampleConfig,
    TimeSplit,
    build_vocab,
    demand_examples,
    recommender_examples,
    time_split,
)
from shikong.training.features import (
    cell_dynamics,
    demand_example_frame,
    events_with_location,
    order_line_geo,
    reco_example_frame,
    series_context,
    sku_warehouse_daily,
    split_condition,
    standardize_array,
    standardizer_stats,
    warehouse_dynamics,
)

D = dt.date(2024, 1, 1)


T0 = pd.Timestamp("2024-03-01")
EVENT_COLUMNS = ["event_id", "session_id", "customer_id", "event_ts", "event_type", "sku"]


def _events(n: int) -> pd.DataFrame:
    """Sessions of three events (two views, then a purchase) of four customers, hourly."""
    rows = [
        (f"e{i}", f"s{i // 3}", f"u{i % 4}", T0 + pd.Timedelta(hours=i),
         "view" if i % 3 else "purchase", f"k{i % 5}", -20.0, -45.0)
        for i in range(n)
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=[*EVENT_COLUMNS, "lat", "lon"])


def _lines_and_orders(spark):
    orders = pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
            "order_date": [D, D, D + dt.timedelta(days=2), D + dt.timedelta(days=3), D, D],
            "warehouse_id": ["W1", "W2", "W1", "W1", "W1", None],
            "uf": ["SP", "RJ", "SP", None, "SP", "SP"],
            "h3_r6": ["c1", "c2", "c1", "c3", "c9", "c1"],
            "delivery_km": [10.0, 20.0, 30.0, 5.0, 50.0, 1.0],
        }
    )
    lines = pd.DataFrame(
        {
            "order_id": ["o1", "o1", "o2", "o3", "o4", "o5", "o6"],
            "sku": ["A", "B", "A", "A", "A", "B", "A"],
            "quantity": [2, 1, 5, 4, 7, 1, 9],
        }
    )
    return spark.createDataFrame(lines), spark.createDataFrame(orders)


def test_sku_warehouse_daily_and_context_match_pandas(spark) -> None:
    lines, orders = _lines_and_orders(spark)
    lg = order_line_geo(lines, orders, cell_col="h3_r6")
    got = sku_warehouse_daily(lg, max_series=2).toPandas().sort_values(["series_id", "ds"])
    # oracle: pandas join + groupby, the two busiest series, complete calendar with zeros
    pl = lines.toPandas().merge(orders.toPandas(), on="order_id").dropna(subset=["warehouse_id"])
    totals = pl.groupby(["sku", "warehouse_id"])["quantity"].sum().sort_values(ascending=False)
    assert list(totals.index[:2]) == [("A", "W1"), ("A", "W2")]
    days = pd.date_range(D, D + dt.timedelta(days=3)).date  # o6 (no warehouse) is dropped
    expected = []
    for sku, wh in totals.index[:2]:
        daily = pl[(pl.sku == sku) & (pl.warehouse_id == wh)].groupby("order_date")["quantity"]
        for d in days:
            expected.append((f"{sku}|{wh}", d, float(daily.sum().get(d, 0.0))))
    exp = pd.DataFrame(expected, columns=["series_id", "ds", "y"]).sort_values(["series_id", "ds"])
    assert got[["series_id", "ds", "y"]].values.tolist() == exp.values.tolist()

    series = spark.createDataFrame(got)
    products = spark.createDataFrame(pd.DataFrame({"sku": ["A", "B"], "category": ["x", "y"]}))
    warehouses = spark.createDataFrame(
        pd.DataFrame({"warehouse_id": ["W1", "W2"], "state": ["SP", "RJ"]})
    )
    ctx = series_context(series, lg, products, warehouses).toPandas().set_index("series_id")
    # busiest delivery cell of A from W1: c1 (o1, o3) over c3 (o4); region = the warehouse's
    assert ctx.loc["A|W1", "cell"] == "c1" and ctx.loc["A|W1", "region"] == "SP"
    assert ctx.loc["A|W1", "log_km"] == pytest.approx(np.log1p((10.0 + 30.0 + 5.0) / 3))
    assert ctx.loc["A|W2", "category"] == "x" and ctx.loc["A|W2", "region"] == "RJ"
    assert ctx.loc["A|W2", "warehouse_id"] == "W2"


def test_cell_dynamics_available_only_after_the_pooled_weeks(spark) -> None:
    hot = spark.createDataFrame(
        pd.DataFrame(
            {
                "period": ["2024-01-01", "2024-01-08"],
                "cell": ["c1", "c1"],
                "resolution": [6, 6],
                "orders": [3, 0],
                "gi_z": [2.5, -1.0],
            }
        )
    )
    start = (pd.Timestamp("2024-01-01") - pd.Timestamp("1970-01-01")).days
    for weeks in (0, 1):
        got = cell_dynamics(hot, resolution=6, lookahead_weeks=weeks).toPandas()
        assert list(got["available_day"]) == [start + 7 * (1 + weeks), start + 7 * (2 + weeks)]
        assert list(got["log_orders"]) == pytest.approx([np.log1p(3), 0.0])


def test_warehouse_dynamics_weigh_the_cells_gi_by_the_warehouses_orders(spark) -> None:
    lines, orders = _lines_and_orders(spark)
    lg = order_line_geo(lines, orders, cell_col="h3_r6")
    # 2024-01-01 is a Monday: every order of the fixture falls in that week. c9 has no
    # statistic (a suppressed small cell): out of the mean, counted in the orders.
    hot = spark.createDataFrame(
        pd.DataFrame(
            {
                "period": ["2024-01-01"] * 3 + ["2023-12-25"],
                "cell": ["c1", "c2", "c3", "c1"],
                "resolution": [6, 6, 6, 6],
                "orders": [5, 1, 1, 2],
                "gi_z": [3.0, -0.5, 1.0, 9.0],
            }
        )
    )
    got = (
        warehouse_dynamics(hot, lg, resolution=6, lookahead_weeks=1)
        .toPandas()
        .set_index("warehouse_id")
    )
    # oracle: W1's orders that week are o1, o3 (c1), o4 (c3), o5 (c9); o2 (W2) goes to c2
    day = (pd.Timestamp("2024-01-01") - pd.Timestamp("1970-01-01")).days + 14
    assert set(got.index) == {"W1", "W2"} and (got["available_day"] == day).all()
    assert got.loc["W1", "gi_z"] == pytest.approx((2 * 3.0 + 1 * 1.0) / 3)
    assert got.loc["W1", "hot_share"] == pytest.approx(2 / 4)
    assert got.loc["W1", "log_orders"] == pytest.approx(np.log1p(4))
    assert got.loc["W2", "gi_z"] == pytest.approx(-0.5) and got.loc["W2", "hot_share"] == 0.0


def test_standardizer_matches_numpy_and_ignores_nan(spark) -> None:
    x = np.array([[1.0, np.nan, 5.0], [3.0, 2.0, 5.0], [8.0, 4.0, 5.0]], dtype=np.float32)
    df = spark.createDataFrame(
        pd.DataFrame({"v": [list(map(float, r)) for r in x]}), "v array<float>"
    )
    mean, std = standardizer_stats(df, "v", 3)
    assert mean == pytest.approx(np.nanmean(x, axis=0), rel=1e-6)
    assert std[:2] == pytest.approx(np.nanstd(x, axis=0)[:2], rel=1e-5)
    assert std[2] == 1.0  # constant component
    z = np.stack(df.transform(standardize_array("v", mean, std)).toPandas()["v"].to_list())
    expected = np.nan_to_num((x - np.array(mean)) / np.array(std), nan=0.0)
    np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-6)


def test_example_frames_equal_the_pandas_builders(spark) -> None:
    rng = np.random.default_rng(0)
    ds = pd.date_range("2024-01-01", periods=40, freq="D")
    series = pd.concat(
        [
            pd.DataFrame(
                {"series_id": f"s{i}", "sku": f"k{i}", "ds": ds.date, "y": rng.poisson(3, 40)}
            )
            for i in range(3)
        ]
    ).astype({"y": float})
    cfg = DemandExampleConfig(window=7, horizon=3, stride=2, value_col="y")
    got = demand_example_frame(
        spark.createDataFrame(series), cfg, context=None, dynamic=None
    ).toPandas()
    exp = demand_examples(series, cfg)
    got = got.sort_values(["series_id", "day0"]).reset_index(drop=True)
    assert list(got["day0"]) == list(exp["day0"])
    np.testing.assert_array_equal(np.stack(got["y_hist"]), np.stack(exp["y_hist"]))

    events = _events(24)
    vocab = build_vocab([f"k{i}" for i in range(5)])
    rcfg = RecoExampleConfig(max_len=4)
    got_r = reco_example_frame(spark.createDataFrame(events), vocab, rcfg, n_buckets=3).toPandas()
    exp_r = recommender_examples(events, vocab, rcfg)
    key = ["customer_id", "session_id"]
    got_r = got_r.sort_values(key).reset_index(drop=True)
    exp_r = exp_r.sort_values(key).reset_index(drop=True)
    assert list(got_r["cut_s"]) == list(exp_r["cut_s"])
    np.testing.assert_array_equal(np.stack(got_r["hist_items"]), np.stack(exp_r["hist_items"]))

    split = TimeSplit(int(exp_r["cut_s"].median()), int(exp_r["cut_s"].median()) + 3600)
    parts = time_split(exp_r, split, start_col="cut_s", end_col="cut_s")
    sdf = spark.createDataFrame(got_r[["cut_s"]])
    for name in ("train", "val", "test"):
        cond = split_condition(split, name, start_col="cut_s", end_col="cut_s")
        assert sdf.where(cond).count() == len(parts[name])


def test_serving_examples_hold_the_last_events_before_the_cut() -> None:
    from shikong.training import recommender_score_examples

    t = T0
    events = _events(40)
    vocab = build_vocab([f"k{i}" for i in range(5)])
    cut = t + pd.Timedelta(hours=30)
    cut_s = int((cut - pd.Timestamp("1970-01-01")).total_seconds())
    got = recommender_score_examples(events, vocab, RecoExampleConfig(max_len=4), cut_s=cut_s)
    got = got.set_index("customer_id")
    before = events[events["event_ts"] < cut].sort_values("event_ts")
    for cust, g in before.groupby("customer_id"):  # oracle: plain pandas tail
        assert list(got.loc[cust, "hist_items"]) == list(vocab.item_index(g["sku"].iloc[-4:]))
        last = int((g["event_ts"].iloc[-1] - pd.Timestamp("1970-01-01")).total_seconds())
        assert got.loc[cust, "hist_last_s"] == last
    assert (got["target_item"] == 0).all() and (got["cut_s"] == cut_s).all()


def test_events_with_location_cells_are_the_spatial_h3_cells(spark) -> None:
    from pyspark.sql import functions as F
    from sedona.spark.sql import st_constructors as stc
    from sedona.spark.sql import st_functions as stf

    geo = pd.DataFrame(
        {
            "customer_id": ["u0", "u1", "u2", "u3"],
            "uf": ["SP", "RJ", "SP", None],
            "lat": [-23.55, -22.91, None, 0.0],
            "lon": [-46.63, -43.17, -46.0, 0.0],
            "nearest_warehouse_km": [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0], [7.0], []],
        }
    )
    events = spark.createDataFrame(_events(8))
    customers = spark.createDataFrame(geo)
    got = events_with_location(events, customers, h3_resolution=7, n_wh=3).toPandas()
    # oracle: the expression the builder used before it shared spatial.features.h3_cell
    old = customers.select(
        "customer_id",
        F.when(
            F.col("lat").isNotNull() & F.col("lon").isNotNull(),
            F.lower(
                F.hex(
                    F.element_at(
                        stf.ST_H3CellIDs(stc.ST_Point("lon", "lat"), F.lit(7), F.lit(True)), 1
                    )
                )
            ),
        ).alias("cell"),
    ).toPandas()
    want = dict(zip(old["customer_id"], old["cell"], strict=True))
    assert len(got) == 8 and got["cell"].notna().any()
    for cust, cell in zip(got["customer_id"], got["cell"], strict=True):
        assert cell == want[cust] or (cell is None and want[cust] is None)
    assert want["u2"] is None and len(want["u0"]) == 15
    u0 = got[got["customer_id"] == "u0"].iloc[0]
    assert u0["region"] == "SP" and list(u0["wh_km"]) == [1.0, 2.0, 3.0]
