"""Olist adapter: bronze counts agree with an independent pandas computation on the same files."""

from __future__ import annotations

import dataclasses
import json
import re
import unicodedata
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from shikong.config import Paths
from shikong.ingest.olist import LAYER
from shikong.io.catalog import Catalog, spec
from shikong.stages.context import StageContext
from shikong.stages.ingest import ingest_olist


def _norm(s: object) -> str:
    # Independent of shikong.geo_resources: same rules, written again for the oracle.
    text = unicodedata.normalize("NFKD", str(s).replace("\u2019", "'"))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return re.sub(r"[\s'\-]+", " ", text).strip()


@pytest.fixture(scope="module")
def oracle(shared_data) -> dict[str, int]:
    olist = shared_data / "olist_sample"
    muni = pd.read_csv(shared_data / "brazil" / "municipios.csv")
    states = pd.read_csv(shared_data / "brazil" / "estados.csv", encoding="utf-8-sig")
    muni = muni.merge(states[["codigo_uf", "uf"]], on="codigo_uf")
    keys = set(zip(muni["nome"].map(_norm), muni["uf"], strict=True))

    customers = pd.read_csv(olist / "customers.csv", dtype=str)
    sellers = pd.read_csv(olist / "olist_sellers_dataset.csv", dtype=str)
    orders = pd.read_csv(olist / "orders.csv", dtype=str)
    items = pd.read_csv(olist / "order_items.csv", dtype=str)
    products = pd.read_csv(olist / "products.csv", dtype=str)

    def placed(df: pd.DataFrame, city: str, state: str) -> pd.Series:
        return pd.Series(
            [(_norm(c), s) in keys for c, s in zip(df[city], df[state], strict=True)],
            index=df.index,
        )

    cust_ok = customers[placed(customers, "customer_city", "customer_state")]
    sell_ok = sellers[placed(sellers, "seller_city", "seller_state")]
    items = items.assign(item=items["order_item_id"].astype(int))
    first_seller = items.sort_values("item").drop_duplicates("order_id")[["order_id", "seller_id"]]
    o = orders.merge(first_seller, on="order_id", how="left")
    orders_ok = o["customer_id"].isin(cust_ok["customer_id"]) & (
        o["seller_id"].isna() | o["seller_id"].isin(sell_ok["seller_id"])
    )
    return {
        "customers_in": len(customers),
        "customers_ok": len(cust_ok),
        "sellers_ok": len(sell_ok),
        "sellers_in": len(sellers),
        "orders_in": len(orders),
        "orders_ok": int(orders_ok.sum()),
        "lines_in": len(items),
        "products_in": len(products),
    }


def test_olist_ingest_matches_pandas(spark, base_config, tmp_path, shared_data, oracle):
    cfg = dataclasses.replace(base_config, paths=Paths(lakehouse=str(tmp_path / "lakehouse")))
    ctx = StageContext.create(spark, cfg)
    reports = {r.source: r for r in ingest_olist(ctx, str(shared_data / "olist_sample"))}

    assert reports["customers"].rows_in == oracle["customers_in"]
    assert reports["customers"].rows_accepted == oracle["customers_ok"]
    assert reports["warehouses"].rows_accepted == oracle["sellers_ok"]
    assert reports["orders"].rows_in == oracle["orders_in"]
    assert reports["orders"].rows_accepted == oracle["orders_ok"]
    assert reports["order_lines"].rows_accepted == oracle["lines_in"]
    assert reports["products"].rows_accepted == oracle["products_in"]
    # The README's figure for this data: about 99% of customers are placeable.
    assert oracle["customers_ok"] / oracle["customers_in"] > 0.97

    q = (
        Catalog(cfg.paths.lakehouse)
        .read(spark, spec("bronze.quarantine").in_layer(LAYER))
        .toPandas()
    )
    counts = q.groupby(["source", "reason"]).size().to_dict()
    assert (
        counts.get(("customers", "UNPLACED_LOCATION"), 0)
        == oracle["customers_in"] - oracle["customers_ok"]
    )
    assert (
        counts.get(("warehouses", "UNPLACED_LOCATION"), 0)
        == oracle["sellers_in"] - oracle["sellers_ok"]
    )
    assert (
        counts.get(("orders", "UNKNOWN_REFERENCE"), 0) == oracle["orders_in"] - oracle["orders_ok"]
    )
    for r in reports.values():
        assert r.rows_in == r.rows_accepted + r.rows_rejected

    # Freight charged: every line is accepted (above), so bronze holds the file's total.
    items = pd.read_csv(shared_data / "olist_sample" / "order_items.csv", dtype=str)
    lines = Catalog(cfg.paths.lakehouse).read(spark, spec("bronze.order_lines").in_layer(LAYER))
    got = lines.agg(F.count("freight_value"), F.sum("freight_value")).first()
    assert got[0] == items["freight_value"].notna().sum() == oracle["lines_in"]
    assert got[1] == pytest.approx(items["freight_value"].astype(float).sum(), rel=1e-12)


# --- Inline Olist files: every join of the adapter with duplicated and missing parents ---

OLIST_HEADERS = {
    "customers.csv": (
        "customer_id,customer_unique_id,customer_zip_code_prefix,customer_city,customer_state"
    ),
    "olist_sellers_dataset.csv": "seller_id,seller_zip_code_prefix,seller_city,seller_state",
    "orders.csv": (
        "order_id,customer_id,order_status,order_purchase_timestamp,order_approved_at,"
        "order_delivered_carrier_date,order_delivered_customer_date,order_estimated_delivery_date"
    ),
    "order_items.csv": (
        "order_id,order_item_id,product_id,seller_id,shipping_limit_date,price,freight_value"
    ),
    "products.csv": (
        "product_id,product_category_name,product_name_lenght,product_description_lenght,"
        "product_photos_qty,product_weight_g,product_length_cm,product_height_cm,product_width_cm"
    ),
    "product_category_name_translation.csv": "product_category_name,product_category_name_english",
}

BASE_FILES: dict[str, list[str]] = {
    "customers.csv": [
        "c1,u1,01001,sao paulo,SP",
        "c2,u2,20040,rio de janeiro,RJ",
        "c3,u3,30110,belo horizonte,MG",
        "c4,u4,99999,atlantis,SP",  # no such municipality: UNPLACED_LOCATION
    ],
    "olist_sellers_dataset.csv": ["s1,01001,sao paulo,SP", "s2,20040,rio de janeiro,RJ"],
    "orders.csv": [
        "o1,c1,delivered,2017-03-01 10:00:00,,,,",
        "o2,c2,shipped,2017-03-02 11:00:00,,,,",
        "o3,c3,invoiced,2017-03-03 12:00:00,,,,",
        "o4,c4,delivered,2017-03-04 13:00:00,,,,",
    ],
    "order_items.csv": [
        "o1,1,p1,s1,2017-03-05 00:00:00,10.50,1.00",
        "o1,2,p2,s2,2017-03-05 00:00:00,20.00,2.00",
        "o2,1,p1,s2,2017-03-06 00:00:00,30.25,3.00",
        "o3,1,p3,s1,2017-03-07 00:00:00,5.00,0.50",
        "o3,2,p3,s1,2017-03-07 00:00:00,5.00,0.50",
        "o4,1,p2,s1,2017-03-08 00:00:00,7.75,1.00",
    ],
    "products.csv": [
        "p1,brinquedos,10,100,1,500,10,10,10",
        "p2,livros_tecnicos,12,300,2,1200,20,5,15",
        "p3,,,,,,,,",
    ],
    "product_category_name_translation.csv": [
        "brinquedos,toys",
        "livros_tecnicos,books_technical",
    ],
}

#: (id, rows added per file): each case duplicates or removes the parent side of one join.
JOIN_CASES: list[tuple[str, dict[str, list[str]]]] = [
    ("clean", {}),
    # order_items -> orders (order_ts): one exact and one conflicting copy of an order
    (
        "orders-duplicated",
        {
            "orders.csv": [
                "o1,c1,delivered,2017-03-01 10:00:00,,,,",
                "o2,c2,shipped,2017-04-02 09:30:00,,,,",
            ]
        },
    ),
    ("orders-missing", {"order_items.csv": ["o9,1,p1,s1,2017-03-05 00:00:00,99.90,1.00"]}),
    # orders -> customers (lat/lon): an exact copy and a copy placed in another city
    (
        "customers-duplicated",
        {"customers.csv": ["c1,u1,01001,sao paulo,SP", "c2,u2,01001,sao paulo,SP"]},
    ),
    ("customers-missing", {"orders.csv": ["o5,c9,delivered,2017-03-05 08:00:00,,,,"]}),
    # orders -> first order item (warehouse_id): a line number twice, with another seller
    (
        "items-duplicated",
        {
            "order_items.csv": [
                "o1,1,p1,s2,2017-03-05 00:00:00,10.50,1.00",
                "o2,1,p1,s2,2017-03-06 00:00:00,30.25,3.00",
            ]
        },
    ),
    ("items-missing", {"orders.csv": ["o6,c1,created,2017-03-06 08:00:00,,,,"]}),
    ("sellers-duplicated", {"olist_sellers_dataset.csv": ["s1,01001,sao paulo,SP"]}),
    (
        "sellers-missing",
        {
            "orders.csv": ["o7,c2,delivered,2017-03-07 08:00:00,,,,"],
            "order_items.csv": ["o7,1,p2,s9,2017-03-09 00:00:00,42.00,4.00"],
        },
    ),
    # products -> category translation (category)
    (
        "translation-duplicated",
        {"product_category_name_translation.csv": ["brinquedos,toys_and_games"]},
    ),
    ("translation-missing", {"products.csv": ["p4,moveis_decoracao,9,90,1,3000,30,30,30"]}),
    ("products-duplicated", {"products.csv": ["p1,brinquedos,10,100,1,500,10,10,10"]}),
    ("products-missing", {"order_items.csv": ["o2,2,p9,s2,2017-03-06 00:00:00,12.00,1.00"]}),
    # customers, sellers -> municipalities (lat/lon): see AMBIGUOUS_MUNICIPALITY
    ("municipalities-duplicated", {}),
]
#: The case whose municipality lookup lists Sao Paulo/SP twice (at two places).
AMBIGUOUS_MUNICIPALITY = "municipalities-duplicated"


def _write_olist(folder: Path, added: dict[str, list[str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, header in OLIST_HEADERS.items():
        rows = BASE_FILES[name] + added.get(name, [])
        (folder / name).write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return folder


def _raw(folder: Path, name: str) -> pd.DataFrame:
    """The oracle's view of one file: pandas on the raw CSV text, every value a string."""
    return pd.read_csv(folder / name, dtype=str, keep_default_na=False)


#: Landing source -> (its Olist file, landing key columns, the file's columns for them).
SOURCE_OF = {
    "products": ("products.csv", ["sku"], ["product_id"]),
    "warehouses": ("olist_sellers_dataset.csv", ["warehouse_id"], ["seller_id"]),
    "customers": ("customers.csv", ["customer_id"], ["customer_id"]),
    "orders": ("orders.csv", ["order_id"], ["order_id"]),
    "order_lines": ("order_items.csv", ["order_id", "line_no"], ["order_id", "order_item_id"]),
}


@pytest.fixture(scope="module")
def municipalities(spark):
    from shikong.io.reference import municipality_lookup

    return municipality_lookup(spark).cache()


@pytest.mark.parametrize(("case", "added"), JOIN_CASES, ids=[c for c, _ in JOIN_CASES])
def test_adapter_joins_neither_multiply_nor_drop_rows(spark, municipalities, tmp_path, case, added):
    from shikong.ingest.olist import olist_frames
    from shikong.io.landing import read_olist

    folder = _write_olist(tmp_path / "olist", added)
    lookup = municipalities
    if case == AMBIGUOUS_MUNICIPALITY:
        sao_paulo = municipalities.where("name_norm = 'sao paulo' AND uf = 'SP'")
        lookup = lookup.unionByName(sao_paulo.withColumn("lat", F.lit(0.0)))
    frames = olist_frames(read_olist(spark, str(folder)), lookup=lookup)
    for source, (name, keys, file_keys) in SOURCE_OF.items():
        got = sorted(tuple(r) for r in frames[source].select(*keys).collect())
        want = sorted(_raw(folder, name)[file_keys].itertuples(index=False, name=None))
        assert got == want, f"{case}: {source} keys differ from {name}"
    items = _raw(folder, "order_items.csv")
    for column, olist_column in (("unit_price", "price"), ("freight_value", "freight_value")):
        got = frames["order_lines"].agg(F.sum(F.col(column).cast("double"))).first()[0]
        assert got == pytest.approx(items[olist_column].astype(float).sum()), column


@pytest.fixture(scope="module")
def olist_all_cases(spark, base_config, tmp_path_factory):
    """Every case of JOIN_CASES at once, ingested end to end."""
    added: dict[str, list[str]] = {}
    for _, rows in JOIN_CASES:
        for name, lines in rows.items():
            added.setdefault(name, []).extend(lines)
    root = tmp_path_factory.mktemp("olist_joins")
    folder = _write_olist(root / "olist", added)
    cfg = dataclasses.replace(base_config, paths=Paths(lakehouse=str(root / "lakehouse")))
    reports = {r.source: r for r in ingest_olist(StageContext.create(spark, cfg), str(folder))}
    catalog = Catalog(cfg.paths.lakehouse)
    tables = {
        t: catalog.read(spark, spec(f"bronze.{t}").in_layer(LAYER)).toPandas()
        for t in ("orders", "order_lines", "customers", "quarantine")
    }
    return folder, reports, tables


@pytest.mark.parametrize("source", list(SOURCE_OF), ids=list(SOURCE_OF))
def test_rows_in_are_the_records_of_the_source_file(olist_all_cases, source):
    folder, reports, _ = olist_all_cases
    report = reports[source]
    assert report.rows_in == len(_raw(folder, SOURCE_OF[source][0]))
    assert report.rows_in == report.rows_accepted + report.rows_rejected


def test_order_line_totals_match_pandas(olist_all_cases):
    folder, reports, tables = olist_all_cases
    items = _raw(folder, "order_items.csv").astype({"price": float, "freight_value": float})
    orders = _raw(folder, "orders.csv")
    products = _raw(folder, "products.csv")
    # Accepted: the order and the product exist; the first of identical (order, line) rows.
    valid = items[
        items["order_id"].isin(orders["order_id"])
        & items["product_id"].isin(products["product_id"])
    ]
    accepted = valid[~valid.duplicated(["order_id", "order_item_id"])]

    lines, q = tables["order_lines"], tables["quarantine"]
    q_lines = q[q["source"] == "order_lines"]["raw"].map(json.loads)
    assert reports["order_lines"].rows_accepted == len(lines) == len(accepted)
    assert len(lines) + len(q_lines) == len(items)
    for column, olist_column in (("unit_price", "price"), ("freight_value", "freight_value")):
        assert lines[column].sum() == pytest.approx(accepted[olist_column].sum()), column
        total = lines[column].sum() + sum(float(r[column]) for r in q_lines)
        assert total == pytest.approx(items[olist_column].sum()), column


def test_children_carry_the_accepted_parent(olist_all_cases):
    _, _, tables = olist_all_cases
    orders = tables["orders"].set_index("order_id")
    customers = tables["customers"].set_index("customer_id")
    # Lines of the order kept twice (two timestamps) carry the accepted order's timestamp.
    lines = tables["order_lines"]
    lines = lines[lines["order_id"].isin(orders.index)]
    assert "o2" in set(lines["order_id"])
    for _, line in lines.iterrows():
        assert line["order_ts"] == orders.loc[line["order_id"], "order_ts"]
    # Orders of the customer kept twice (two cities) sit at the accepted customer's place.
    assert "c2" in set(orders["customer_id"])
    for order_id, o in orders.iterrows():
        if o["customer_id"] in customers.index:
            c = customers.loc[o["customer_id"]]
            assert (o["lat"], o["lon"]) == (c["lat"], c["lon"]), order_id


def test_duplicated_real_orders_do_not_multiply_their_lines(spark, shared_data, tmp_path):
    """The reported case: a copy of the real files in which a few orders appear twice."""
    from shikong.ingest.olist import olist_frames
    from shikong.io.landing import OLIST_FILES, read_olist
    from shikong.io.reference import municipality_lookup

    src = shared_data / "olist_sample"
    copy = tmp_path / "olist"
    copy.mkdir()
    for name in OLIST_FILES:
        text = (src / name).read_text(encoding="utf-8")
        if name == "orders.csv":
            lines = text.splitlines()
            text = "\n".join([*lines, *lines[1:6]]) + "\n"  # five orders twice
        (copy / name).write_text(text, encoding="utf-8")
    frames = olist_frames(read_olist(spark, str(copy)), lookup=municipality_lookup(spark))
    got = (
        frames["order_lines"]
        .agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("unit_price").cast("double")).alias("price"))
        .first()
    )
    items = pd.read_csv(copy / "order_items.csv", dtype=str)
    assert got["n"] == len(items)
    assert got["price"] == pytest.approx(items["price"].astype(float).sum())
