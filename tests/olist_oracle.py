"""An independent reading of the raw Olist files with pandas, for the Olist tests.

Nothing here imports shikong: the municipality placement is written again from the data's
README (city name without accents, lower case, and state), so the tests compare the
pipeline with a second implementation, not with itself.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


def norm(s: object) -> str:
    """A municipality name as the README joins it: no accents, lower case, one space."""
    text = unicodedata.normalize("NFKD", str(s).replace("\u2019", "'"))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return re.sub(r"[\s'\-]+", " ", text).strip()


def municipalities(shared_data: Path) -> pd.DataFrame:
    """``key`` (normalised name), ``uf``, ``lat``, ``lon``: one row per (key, uf)."""
    muni = pd.read_csv(shared_data / "brazil" / "municipios.csv")
    states = pd.read_csv(shared_data / "brazil" / "estados.csv", encoding="utf-8-sig")
    muni = muni.merge(states[["codigo_uf", "uf"]], on="codigo_uf")
    return (
        muni.assign(key=muni["nome"].map(norm))
        .drop_duplicates(["key", "uf"])
        .rename(columns={"latitude": "lat", "longitude": "lon"})[["key", "uf", "lat", "lon"]]
    )


@dataclass(frozen=True)
class Olist:
    """The raw files and the rows the README's placement accepts."""

    customers: pd.DataFrame
    sellers: pd.DataFrame
    orders: pd.DataFrame
    items: pd.DataFrame
    products: pd.DataFrame
    translation: pd.DataFrame
    #: Orders of placed customers whose first line's seller (if any) is placed, with the
    #: customer's state, lat and lon.
    accepted_orders: pd.DataFrame
    #: Placed sellers with their state.
    placed_sellers: pd.DataFrame


def read(shared_data: Path) -> Olist:
    """The sample's files (all strings) and the orders and sellers placement accepts."""
    folder = shared_data / "olist_sample"
    files = {
        name: pd.read_csv(folder / f"{name}.csv", dtype=str)
        for name in ("customers", "olist_sellers_dataset", "orders", "order_items", "products")
    }
    translation = pd.read_csv(folder / "product_category_name_translation.csv", dtype=str)
    muni = municipalities(shared_data)

    def place(df: pd.DataFrame, city: str, state: str) -> pd.DataFrame:
        keyed = df.assign(key=df[city].map(norm))
        return keyed.merge(muni, left_on=["key", state], right_on=["key", "uf"])

    customers = place(files["customers"], "customer_city", "customer_state")
    sellers = place(files["olist_sellers_dataset"], "seller_city", "seller_state")
    items = files["order_items"]
    first = (
        items.assign(n=items["order_item_id"].astype(int))
        .sort_values("n")
        .drop_duplicates("order_id")[["order_id", "seller_id"]]
    )
    orders = files["orders"].merge(first, on="order_id", how="left")
    ok = orders["seller_id"].isna() | orders["seller_id"].isin(sellers["seller_id"])
    accepted = orders[ok].merge(
        customers[["customer_id", "customer_state", "lat", "lon"]], on="customer_id"
    )
    return Olist(
        files["customers"],
        files["olist_sellers_dataset"],
        files["orders"],
        items,
        files["products"],
        translation,
        accepted,
        sellers,
    )
