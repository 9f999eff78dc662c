"""Series per category x warehouse state and the policy per stock point, on inline data,
against pandas (the real data's run is tests/test_olist_pipeline.py)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from shikong.decisions import policy_inputs, stock_point_prices
from shikong.timeseries import NO_CATEGORY, daily_sales

D1, D2 = dt.date(2017, 3, 1), dt.date(2017, 3, 2)
LINES = [
    # order_id, sku, order_date, quantity, unit_price
    ("o1", "p1", D1, 2, 10.0),
    ("o1", "p2", D1, 1, 30.0),
    ("o2", "p1", D1, 1, 12.0),
    ("o3", "p3", D2, 4, None),  # p3 has no category, its line no price
    ("o4", "p1", D2, 1, 11.0),  # o4's warehouse has no state: left out of the series
    ("o5", "p2", D2, 3, 20.0),  # o5 has no warehouse: left out
]
ORDERS = [("o1", "W1"), ("o2", "W2"), ("o3", "W2"), ("o4", "W9"), ("o5", None)]
PRODUCTS = [("p1", "toys", 9.0), ("p2", "toys", None), ("p3", None, None), ("p4", "books", 5.0)]
WAREHOUSES = [("W1", "SP"), ("W2", "RJ"), ("W9", None)]


@pytest.fixture(scope="module")
def frames(spark):
    return {
        "lines": spark.createDataFrame(
            LINES, "order_id string, sku string, order_date date, quantity int, unit_price double"
        ),
        "orders": spark.createDataFrame(ORDERS, "order_id string, warehouse_id string"),
        "products": spark.createDataFrame(
            PRODUCTS, "sku string, category string, unit_price double"
        ),
        "warehouses": spark.createDataFrame(WAREHOUSES, "warehouse_id string, state string"),
    }


def _pdf(rows, cols):
    return pd.DataFrame(rows, columns=cols)


def test_category_state_sales_equal_pandas(frames):
    got = (
        daily_sales(
            frames["lines"],
            frames["orders"],
            level="category_state",
            products=frames["products"],
            warehouses=frames["warehouses"],
        )
        .toPandas()
        .sort_values(["category", "warehouse_state", "ds"])
        .reset_index(drop=True)
    )
    lines = _pdf(LINES, ["order_id", "sku", "ds", "quantity", "unit_price"])
    lines = lines.merge(_pdf(ORDERS, ["order_id", "warehouse_id"]), on="order_id")
    lines = lines.merge(_pdf(PRODUCTS, ["sku", "category", "list"]), on="sku", how="left")
    lines = lines.merge(_pdf(WAREHOUSES, ["warehouse_id", "warehouse_state"]), on="warehouse_id")
    lines = lines[lines["warehouse_state"].notna()].fillna({"category": NO_CATEGORY})
    want = (
        lines.groupby(["category", "warehouse_state", "ds"])["quantity"]
        .sum()
        .astype(float)
        .rename("y")
        .reset_index()
        .sort_values(["category", "warehouse_state", "ds"])
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(got[want.columns], want)
    assert NO_CATEGORY in set(got["category"])


@pytest.mark.parametrize(
    ("item_col", "expected"),
    [
        # p1: the list price; p2: no list price, the mean of its lines; p3: no price at
        # all (no row); p4: the list price without lines.
        ("sku", {"p1": 9.0, "p2": 25.0, "p4": 5.0}),
        # toys: every priced toy line; no category: no priced line, so no row.
        ("category", {"toys": (10.0 + 30.0 + 12.0 + 11.0 + 20.0) / 5}),
    ],
    ids=["per-sku", "per-category"],
)
def test_stock_point_prices(frames, item_col, expected):
    got = stock_point_prices(
        frames["products"], frames["lines"], item_col=item_col, no_category=NO_CATEGORY
    ).toPandas()
    assert dict(zip(got[item_col], got["unit_price"], strict=True)) == pytest.approx(expected)


def test_policy_inputs_without_stock_snapshots(spark):
    series = spark.createDataFrame(
        [("toys|SP", "toys", "SP", D1, 3.0), ("toys|SP", "toys", "SP", D2, 1.0)],
        "series_id string, category string, warehouse_state string, ds date, y_obs double",
    )
    forecasts = spark.createDataFrame(
        [("toys|SP", dt.date(2017, 3, 3), 1, 2.0, 1.0, 3.0, 0.5, 3.5)],
        "series_id string, ds date, step int, yhat double, lo80 double, hi80 double, "
        "lo95 double, hi95 double",
    )
    prices = spark.createDataFrame([("toys", 12.5)], "category string, unit_price double")
    got = policy_inputs(
        forecasts,
        series,
        None,
        prices,
        item_col="category",
        location_col="warehouse_state",
    ).toPandas()
    assert sorted(got["kind"]) == ["forecast", "history", "history"]
    assert set(zip(got["sku"], got["warehouse_id"], strict=True)) == {("toys", "SP")}
    assert got["on_hand"].isna().all() and (got["unit_price"] == 12.5).all()
    history = got[got["kind"] == "history"].sort_values("ds")
    assert history["y"].tolist() == [3.0, 1.0]


def test_policy_covers_the_pairs_in_the_stock_feed(spark):
    from shikong.stages.inventory_policy import stocked_points

    series = spark.createDataFrame(
        [(f"{s}|{w}", s, w, D1, 1.0) for s, w in [("p1", "W1"), ("p1", "W2"), ("p2", "W1")]],
        "series_id string, sku string, warehouse_id string, ds date, y_obs double",
    )
    forecasts = spark.createDataFrame(
        [(sid, D2, 1, 0.5) for sid in ("p1|W1", "p1|W2", "p2|W1")],
        "series_id string, ds date, step int, yhat double",
    )
    inventory = spark.createDataFrame(
        [
            ("p1", "W1", D1, 3.0),
            ("p1", "W1", D2, 2.0),
            ("p2", "W1", D1, 0.0),
            ("p9", "W1", D1, 5.0),
        ],
        "sku string, warehouse_id string, snapshot_date date, on_hand double",
    )
    kept, fc = stocked_points(series, forecasts, inventory)
    # pandas oracle: the series' (sku, warehouse) pairs that appear in the stock feed
    pairs = inventory.toPandas()[["sku", "warehouse_id"]].drop_duplicates()
    want = series.toPandas().merge(pairs, on=["sku", "warehouse_id"])["series_id"]
    assert sorted(kept.toPandas()["series_id"]) == sorted(want) == ["p1|W1", "p2|W1"]
    assert sorted(fc.toPandas()["series_id"]) == ["p1|W1", "p2|W1"]
