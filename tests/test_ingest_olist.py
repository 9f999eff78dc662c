"""Olist adapter: bronze counts agree with an independent pandas computation on the same files."""

from __future__ import annotations

import dataclasses
import re
import unicodedata

import pandas as pd
import pytest

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
