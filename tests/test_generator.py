"""Tests of the seeded demo-world generator and the packaged geography (no Spark)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from shikong import schemas
from shikong.config import AppConfig
from shikong.generator import GeneratorScale, build_world, resolve_scale
from shikong.geo_resources import load_municipalities, load_states, normalise_name
from shikong.geodesy import haversine
from shikong.io.world_files import GenerationSummary, write_world

SEED = 11
TS_FMT = "%Y-%m-%dT%H:%M:%S"
VALID_FROM, VALID_TO = pd.Timestamp("2000-01-01"), pd.Timestamp("2035-12-31 23:59:59")


# ------------------------------------------------------------------------------ helpers


def generate_world(out: Path, *, seed: int, scale: str | GeneratorScale) -> GenerationSummary:
    """Build the world and write it to ``out/landing``."""
    return write_world(build_world(seed=seed, scale=scale), str(out / "landing"))


def _hashes(landing: Path) -> dict[str, str]:
    return {
        str(p.relative_to(landing)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(landing.rglob("*"))
        if p.is_file()
    }


def _read(landing: Path, src: schemas.LandingSource) -> dict[str, pd.DataFrame]:
    """Every file of a source as all-string frames ('' = null), like ingest reads them."""
    out = {}
    ext = "jsonl" if src.fmt == "json" else "csv"
    for p in sorted((landing / src.folder).glob(f"*.{ext}")):
        if src.fmt == "csv":
            df = pd.read_csv(p, dtype=str, keep_default_na=False)
        else:
            df = pd.read_json(p, lines=True, dtype=False, convert_dates=False)
            df = df[list(src.columns)].astype(object)
            df = df.where(df.notna(), "").astype(str)
        out[str(p.relative_to(landing))] = df
    return out


def _bad_ts(s: pd.Series, date_only: bool) -> tuple[pd.Series, pd.Series]:
    fmt = "%Y-%m-%d" if date_only else "%Y-%m-%dT%H:%M:%S"
    parsed = pd.to_datetime(s, format=fmt, errors="coerce")
    bad = parsed.isna() & (s != "")
    out = parsed.notna() & ((parsed < VALID_FROM) | (parsed > VALID_TO))
    return bad, out


def _not_number(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce").isna()


def _recount(landing: Path) -> tuple[dict[tuple[str, str], int], dict[str, pd.DataFrame]]:
    """Independent re-implementation of the reason precedence of schemas.REASON_ORDER.

    Returns (count per (file, reason), the clean rows per source).
    """
    counts: dict[tuple[str, str], int] = {}
    clean: dict[str, pd.DataFrame] = {}
    valid_keys: dict[str, set[str]] = {}
    for src in schemas.SOURCES:
        frames = _read(landing, src)
        checked = []
        for rel, df in frames.items():
            reason = pd.Series("", index=df.index)

            def flag(mask: pd.Series, code: str, reason: pd.Series = reason) -> None:
                reason[(reason == "") & mask] = code

            flag((df[list(src.keys)] == "").any(axis=1), schemas.MISSING_KEY)
            ts_col = src.date_column or ("signup_date" if src.name == "customers" else None)
            if ts_col:
                bad, out = _bad_ts(df[ts_col], date_only=ts_col.endswith("date"))
                flag(bad, schemas.BAD_TIMESTAMP)
                flag(out, schemas.TS_OUT_OF_RANGE)
            if "lat" in df:
                lat = pd.to_numeric(df["lat"], errors="coerce")
                lon = pd.to_numeric(df["lon"], errors="coerce")
                flag(
                    lat.isna() | lon.isna() | (lat.abs() > 90) | (lon.abs() > 180),
                    schemas.BAD_COORDINATE,
                )
            if "quantity" in df:
                q = pd.to_numeric(df["quantity"], errors="coerce")
                flag(q.isna() | (q <= 0), schemas.BAD_QUANTITY)
            for c in ("on_hand", "on_order"):
                if c in df:
                    q = pd.to_numeric(df[c], errors="coerce")
                    flag(q.isna() | (q < 0), schemas.BAD_QUANTITY)
            if "unit_price" in df:
                p = pd.to_numeric(df["unit_price"], errors="coerce")
                flag(p.isna() | (p < 0), schemas.BAD_PRICE)
            if "sku" in df and src.name != "products":
                flag(~df["sku"].isin(valid_keys["products"]), schemas.UNKNOWN_SKU)
            if src.name == "orders":
                flag(~df["customer_id"].isin(valid_keys["customers"]), schemas.UNKNOWN_REFERENCE)
            if "warehouse_id" in df and src.name != "warehouses":
                flag(~df["warehouse_id"].isin(valid_keys["warehouses"]), schemas.UNKNOWN_REFERENCE)
            checked.append((rel, df, reason))
        # Duplicates are judged across all files of a source, among otherwise valid rows.
        allrows = pd.concat([d.assign(_rel=r, _reason=x) for r, d, x in checked], ignore_index=True)
        ok = allrows["_reason"] == ""
        dup = ok & allrows.loc[ok, list(src.keys)].duplicated(keep="first").reindex(
            allrows.index, fill_value=False
        )
        allrows.loc[dup, "_reason"] = schemas.DUPLICATE
        for (rel, reason), n in (
            allrows[allrows["_reason"] != ""].groupby(["_rel", "_reason"]).size().items()
        ):
            counts[(rel, reason)] = int(n)
        good = allrows[allrows["_reason"] == ""].drop(columns=["_reason"])
        clean[src.name] = good
        if src.name in ("products", "customers", "warehouses"):
            valid_keys[src.name] = set(good[src.keys[0]])
    return counts, clean


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationSummary]:
    out = tmp_path_factory.mktemp("world_a")
    summary = generate_world(out, seed=SEED, scale="small")
    return out / "landing", summary


@pytest.fixture(scope="module")
def recount(world: tuple[Path, GenerationSummary]) -> tuple[dict, dict]:
    return _recount(world[0])


@pytest.fixture(scope="module")
def truth(world: tuple[Path, GenerationSummary]) -> dict[str, object]:
    gt = world[0] / "_ground_truth"
    return {
        "dirty": pd.read_csv(gt / "dirty_rows.csv", dtype={"count": int}),
        "hotspots": pd.read_csv(gt / "hotspots.csv", parse_dates=["start_date", "end_date"]),
        "stockouts": pd.read_csv(gt / "stockouts.csv", parse_dates=["start_date", "end_date"]),
        "world": json.loads((gt / "world.json").read_text(encoding="utf-8")),
    }


# -------------------------------------------------------------------------------- tests


def test_small_world_is_fast_and_sized(world: tuple[Path, GenerationSummary]) -> None:
    _, s = world
    assert s.seconds < 15
    assert 20_000 <= s.clean_rows["order_lines"] <= 40_000
    assert s.clean_rows["products"] == 200
    assert s.clean_rows["warehouses"] == 12
    assert s.end_date == date(2023, 3, 31)
    assert s.total_rows == sum(s.rows_per_file.values())
    assert s.rows_per_second > 0
    ratio = s.clean_rows["events"] / s.clean_rows["order_lines"]
    assert 1.5 <= ratio <= 3.0


def test_deterministic_per_seed(world: tuple[Path, GenerationSummary], tmp_path: Path) -> None:
    again = generate_world(tmp_path / "b", seed=SEED, scale="small")
    assert _hashes(Path(again.landing_dir)) == _hashes(world[0])
    other = generate_world(tmp_path / "c", seed=SEED + 1, scale="small")
    h_other, h_ref = _hashes(Path(other.landing_dir)), _hashes(world[0])
    assert set(h_other) == set(h_ref)
    assert all(h_other[f] != h_ref[f] for f in h_ref if f.startswith(("orders/", "events/")))


def test_rerun_replaces_previous_files(tmp_path: Path) -> None:
    tiny = resolve_scale("small", skus=40, customers=500, order_lines=1_000)
    generate_world(tmp_path, seed=3, scale=resolve_scale(tiny, days=62))
    s = generate_world(tmp_path, seed=3, scale=resolve_scale(tiny, days=20))
    landing = Path(s.landing_dir)
    written = {
        str(p.relative_to(landing)) for p in landing.rglob("*.*") if p.parts[-2] != "_ground_truth"
    }
    assert written == set(s.rows_per_file)
    assert not any("2023-02" in f for f in written)


def test_world_is_in_memory_and_rerunnable(tmp_path: Path) -> None:
    tiny = resolve_scale("small", skus=40, customers=500, order_lines=1_000, days=20)
    world = build_world(seed=3, scale=tiny)
    files = list(world.files())  # nothing written
    assert not any(tmp_path.iterdir())
    assert files[-1].rel == "_ground_truth/world.json" and files[-1].source is None
    s = write_world(world, str(tmp_path / "landing"))  # runs the simulation again
    assert {f.rel: f.rows for f in files if f.source} == dict(s.rows_per_file)
    written = (tmp_path / "landing" / "orders" / "orders-2023-01.jsonl").read_bytes()
    assert written.count(b"\n") == s.rows_per_file["orders/orders-2023-01.jsonl"]


def test_generate_job_writes_a_remote_landing(base_config: AppConfig, s3) -> None:
    """The landing folder may be on an object store (here the S3 emulator on 127.0.0.1)."""
    from s3_emulator import list_keys
    from shikong.stages.generate import run as generate

    s = generate(base_config, scale="small", seed=1, out=f"s3a://{s3.bucket}/landing")
    keys = set(list_keys(s3))
    assert {f"landing/{rel}" for rel in s.rows_per_file} <= keys
    assert "landing/_ground_truth/world.json" in keys


def test_files_and_columns_match_contract(world: tuple[Path, GenerationSummary]) -> None:
    landing, s = world
    months = ["2023-01", "2023-02", "2023-03"]
    for src in schemas.SOURCES:
        ext = "jsonl" if src.fmt == "json" else "csv"
        files = sorted(p.name for p in (landing / src.folder).iterdir())
        if src.date_column:
            assert files == [f"{src.folder}-{m}.{ext}" for m in months]
        else:
            assert files == [f"{src.folder}.{ext}"]
        for p in (landing / src.folder).iterdir():
            with open(p, encoding="utf-8") as fh:
                first = fh.readline().rstrip("\n")
            if src.fmt == "csv":
                assert tuple(first.split(",")) == src.columns
            else:
                assert tuple(json.loads(first)) == src.columns
    assert set(s.rows_per_file) == {
        str(p.relative_to(landing))
        for p in landing.rglob("*.*")
        if p.parent.name != "_ground_truth"
    }


def test_dirty_ground_truth_matches_independent_recount(
    world: tuple[Path, GenerationSummary], recount: tuple[dict, dict], truth: dict[str, object]
) -> None:
    counts, _ = recount
    gt = truth["dirty"]
    expected = {(r.file, r.reason): r.count for r in gt.itertuples()}
    assert counts == expected
    # Every source with >= 50 clean rows per file got dirty rows; about 1 %.
    s = world[1]
    for src in ("customers", "orders", "order_lines", "events", "inventory"):
        assert s.dirty_rows[src] == pytest.approx(0.01 * s.clean_rows[src], rel=0.05, abs=3)
    # All injectable reasons occur somewhere.
    assert set(gt["reason"]) >= {
        schemas.DUPLICATE,
        schemas.MISSING_KEY,
        schemas.BAD_TIMESTAMP,
        schemas.TS_OUT_OF_RANGE,
        schemas.BAD_COORDINATE,
        schemas.BAD_QUANTITY,
        schemas.BAD_PRICE,
        schemas.UNKNOWN_SKU,
        schemas.UNKNOWN_REFERENCE,
    }
    assert gt.groupby("source")["count"].sum().to_dict() == {
        k: v for k, v in s.dirty_rows.items() if v
    }


def test_clean_rows_are_referentially_intact(
    recount: tuple[dict, dict], world: tuple[Path, GenerationSummary]
) -> None:
    _, clean = recount
    s = world[1]
    assert {k: len(v) for k, v in clean.items()} == dict(s.clean_rows)
    skus, custs = set(clean["products"]["sku"]), set(clean["customers"]["customer_id"])
    whs = set(clean["warehouses"]["warehouse_id"])
    orders, lines = clean["orders"], clean["order_lines"]
    assert set(lines["order_id"]) <= set(orders["order_id"])
    assert set(lines["sku"]) <= skus and set(clean["events"]["sku"]) <= skus
    assert set(orders["customer_id"]) <= custs and set(clean["events"]["customer_id"]) <= custs
    assert set(orders["warehouse_id"]) <= whs and set(clean["inventory"]["warehouse_id"]) <= whs
    assert set(orders["status"]) <= set(schemas.ORDER_STATUSES)
    assert set(clean["events"]["event_type"]) == set(schemas.EVENT_TYPES)
    assert (pd.to_numeric(lines["quantity"]) >= 1).all()
    assert (pd.to_numeric(lines["unit_price"]) > 0).all()
    ts = lines.merge(orders[["order_id", "order_ts"]], on="order_id", suffixes=("", "_o"))
    assert (ts["order_ts"] == ts["order_ts_o"]).all()
    # Signed up no later than the first order.
    first = orders.groupby("customer_id")["order_ts"].min().str[:10]
    signup = clean["customers"].set_index("customer_id")["signup_date"]
    assert (signup.loc[first.index] <= first).all()


def test_each_order_line_has_a_purchase_event_just_before(recount: tuple[dict, dict]) -> None:
    _, clean = recount
    ev, lines, orders = clean["events"], clean["order_lines"], clean["orders"]
    buys = ev[ev["event_type"] == "purchase"]
    assert len(buys) == len(lines)
    lo = lines.merge(orders[["order_id", "customer_id"]], on="order_id")
    m = lo.merge(buys[["customer_id", "sku", "event_ts", "session_id"]], on=["customer_id", "sku"])
    dt = (
        pd.to_datetime(m["order_ts"], format=TS_FMT) - pd.to_datetime(m["event_ts"], format=TS_FMT)
    ).dt.total_seconds()
    m = m[(dt >= 1) & (dt <= 10)]
    assert m[["order_id", "line_no"]].drop_duplicates().shape[0] == len(lines)
    # Sessions are ordered: view/cart never after the purchase of the same session.
    # Within a buying session, no view/cart comes after its last purchase.
    e = pd.DataFrame(
        {
            "s": ev["session_id"].str[1:].astype(int),
            "t": pd.to_datetime(ev["event_ts"], format=TS_FMT),
            "buy": ev["event_type"] == "purchase",
        }
    )
    last_buy = e[e["buy"]].groupby("s")["t"].max()
    other = e[~e["buy"] & e["s"].isin(last_buy.index)]
    assert (other["t"].to_numpy() <= last_buy.loc[other["s"]].to_numpy()).all()


def test_hotspots_raise_order_density(recount: tuple[dict, dict], truth: dict[str, object]) -> None:
    _, clean = recount
    hs: pd.DataFrame = truth["hotspots"]
    assert len(hs) == 4
    cust = clean["customers"].assign(
        lat=lambda d: d["lat"].astype(float), lon=lambda d: d["lon"].astype(float)
    )
    orders = clean["orders"].assign(
        day=lambda d: pd.to_datetime(d["order_ts"].str[:10], format="%Y-%m-%d")
    )
    days = pd.date_range("2023-01-01", "2023-03-31")
    for h in hs.itertuples():
        inside = cust.loc[
            haversine(cust["lat"].to_numpy(), cust["lon"].to_numpy(), h.lat, h.lon) <= h.radius_km,
            "customer_id",
        ]
        assert len(inside) >= 10, h.id
        o = orders[orders["customer_id"].isin(set(inside))]
        in_win = o["day"].between(h.start_date, h.end_date)
        n_win = ((days >= h.start_date) & (days <= h.end_date)).sum()
        rate_in = in_win.sum() / n_win
        rate_out = (~in_win).sum() / (len(days) - n_win)
        assert rate_in > 1.5 * rate_out, (h.id, rate_in, rate_out, h.uplift)


def test_intermittent_skus_are_mostly_zero(
    recount: tuple[dict, dict], truth: dict[str, object]
) -> None:
    _, clean = recount
    inter = truth["world"]["intermittent_skus"]
    assert len(inter) == 60
    lines = clean["order_lines"].assign(day=lambda d: d["order_ts"].str[:10])
    daily = lines.groupby(["sku", "day"]).size().unstack(fill_value=0)
    daily = daily.reindex(index=sorted(clean["products"]["sku"]), fill_value=0)
    daily = daily.reindex(
        columns=[str(d.date()) for d in pd.date_range("2023-01-01", periods=90)], fill_value=0
    )
    zero_share = (daily == 0).mean(axis=1)
    assert zero_share.loc[inter].mean() > 0.8
    assert (zero_share.loc[inter] > 0.6).mean() > 0.9
    top = daily.sum(axis=1).nlargest(20).index
    assert zero_share.loc[top].mean() < 0.2


def test_stockouts_have_no_sales_and_zero_stock(
    recount: tuple[dict, dict], truth: dict[str, object]
) -> None:
    _, clean = recount
    so: pd.DataFrame = truth["stockouts"]
    assert len(so) >= 20
    assert not so.duplicated(["sku", "warehouse_id"]).any()  # one window per pair
    key = ["sku", "warehouse_id"]
    lines = clean["order_lines"].merge(clean["orders"][["order_id", "warehouse_id"]], on="order_id")
    lines["day"] = pd.to_datetime(lines["order_ts"].str[:10], format="%Y-%m-%d")
    ln = lines.merge(so, on=key)
    assert not ln["day"].between(ln["start_date"], ln["end_date"]).any()
    inv = (
        clean["inventory"]
        .assign(
            day=lambda d: pd.to_datetime(d["snapshot_date"], format="%Y-%m-%d"),
            on_hand=lambda d: d["on_hand"].astype(int),
        )
        .merge(so, on=key, how="left")
    )
    inside = inv["day"].between(inv["start_date"], inv["end_date"])  # NaT -> False
    assert (inv.loc[inside, "on_hand"] == 0).all()
    assert (inv.loc[~inside, "on_hand"] > 0).all()
    n_days = (so["end_date"] - so["start_date"]).dt.days + 1
    assert inside.sum() == n_days.sum()


def test_inventory_tracks_pairs_that_sell(recount: tuple[dict, dict]) -> None:
    _, clean = recount
    inv = clean["inventory"]
    pairs = inv[["sku", "warehouse_id"]].drop_duplicates()
    assert len(inv) == 90 * len(pairs)
    sales = clean["order_lines"].merge(clean["orders"][["order_id", "warehouse_id"]], on="order_id")
    vol = sales.groupby(["sku", "warehouse_id"]).size()
    tracked = pd.MultiIndex.from_frame(pairs)
    # Snapshotted pairs carry the bulk of the volume.
    assert vol.reindex(tracked, fill_value=0).sum() > 0.9 * vol.sum()


def test_customers_are_placed_at_real_municipalities(recount: tuple[dict, dict]) -> None:
    _, clean = recount
    muni = load_municipalities()
    cust = clean["customers"]
    m = cust.merge(
        muni, left_on=["city", "state"], right_on=["name", "uf"], how="left", suffixes=("", "_m")
    )
    assert m["ibge_code"].notna().all()
    d = haversine(
        m["lat"].astype(float).to_numpy(),
        m["lon"].astype(float).to_numpy(),
        m["lat_m"].to_numpy(),
        m["lon_m"].to_numpy(),
    )
    assert np.median(d) < 8 and d.max() < 60
    # Capitals dominate but not exclusively.
    share_cap = m["capital"].mean()
    assert 0.15 < share_cap < 0.6


def test_scale_overrides_and_validation() -> None:
    sc = resolve_scale("default", days=30, skus=100, order_lines=5_000)
    assert (sc.days, sc.skus, sc.order_lines, sc.customers) == (30, 100, 5_000, 100_000)
    with pytest.raises(ValueError):
        resolve_scale("huge")
    with pytest.raises(ValueError):
        resolve_scale("small", skus=99_999)


# --------------------------------------------------------------------------- geography


def test_geo_resource_is_small_and_licensed() -> None:
    geo = resources.files("shikong").joinpath("resources", "geo")
    names = {p.name: p for p in geo.iterdir()}
    assert {"municipalities.csv", "states.csv", "LICENSE-geo.txt"} <= set(names)
    assert sum(len(p.read_bytes()) for p in names.values()) < 1_000_000
    lic = names["LICENSE-geo.txt"].read_text(encoding="utf-8")
    assert "MIT" in lic and "kelvins/municipios-brasileiros" in lic
    assert "click_that_hood" in lic


def test_state_polygons_valid_and_cover_municipalities() -> None:
    states, muni = load_states(), load_municipalities()
    assert len(states) == 27 and states["uf"].is_unique
    assert set(states["region"]) == {"Norte", "Nordeste", "Sudeste", "Sul", "Centro-Oeste"}
    geoms = shapely.from_wkt(states["wkt"].to_numpy())
    assert shapely.is_valid(geoms).all()
    assert all(g.geom_type in ("Polygon", "MultiPolygon") for g in geoms)
    pts = shapely.points(muni["lon"].to_numpy(), muni["lat"].to_numpy())
    covered = shapely.covers(shapely.union_all(geoms), pts)
    assert covered.mean() >= 0.95
    # And mostly by their own state.
    by_uf = dict(zip(states["uf"], geoms, strict=True))
    own = np.array([shapely.covers(by_uf[u], p) for u, p in zip(muni["uf"], pts, strict=True)])
    assert own.mean() >= 0.95


def test_municipalities_resource() -> None:
    muni = load_municipalities()
    assert len(muni) > 5500 and muni["ibge_code"].is_unique
    assert muni["capital"].sum() == 27
    assert set(muni["uf"]) == set(load_states()["uf"])
    assert (muni["name_norm"] == muni["name"].map(normalise_name)).all()
    sp = muni[(muni["name_norm"] == "sao paulo") & (muni["uf"] == "SP")]
    assert len(sp) == 1 and bool(sp["capital"].iloc[0])


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("São Paulo", "sao paulo"),
        ("  SANTA BÁRBARA D'OESTE ", "santa barbara d oeste"),
        ("santa barbara d’oeste", "santa barbara d oeste"),
        ("Mogi-Guaçu", "mogi guacu"),
        ("embu  guacu", "embu guacu"),
        ("Xangri-lá", "xangri la"),
        ("", ""),
    ],
)
def test_normalise_name(raw: str, norm: str) -> None:
    assert normalise_name(raw) == norm
    assert re.fullmatch(r"[a-z0-9 ]*", normalise_name(raw))
