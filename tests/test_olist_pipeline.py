"""The whole pipeline on the real Olist sample (``shikong run --source olist``), checked
against pandas on the raw CSVs (tests/olist_oracle.py, which shares no code with shikong).

One run of every registry stage, in order and through the runner as ``shikong run`` does,
into a lakehouse of its own. Test-sized where it only costs time: a smaller DBSCAN sample
and fewer epochs than ``conf/olist.yaml``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import h3
import numpy as np
import pandas as pd
import pytest

from olist_oracle import Olist, read
from shikong.cli import main as cli_main
from shikong.cli import run_options
from shikong.config import AppConfig, Paths, load_config
from shikong.io import fs, world
from shikong.io.catalog import Catalog
from shikong.io.landing import olist_files
from shikong.stages import ml_inputs, registry
from shikong.stages.context import StageContext
from shikong.stages.runner import run_stage
from shikong.timeseries import NO_CATEGORY

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN_ID = "20240101T000000-olist"


@dataclasses.dataclass(frozen=True)
class OlistRun:
    cfg: AppConfig
    out: dict
    seconds: dict[str, float]


@pytest.fixture(scope="module")
def oracle(shared_data: Path) -> Olist:
    return read(shared_data)


@pytest.fixture(scope="module")
def olist_run(spark, base_config, shared_data, tmp_path_factory) -> OlistRun:
    cfg = load_config(REPO_ROOT / "conf" / "olist.yaml", env={})
    lakehouse = tmp_path_factory.mktemp("olist") / "lakehouse"
    models = cfg.models
    cfg = dataclasses.replace(
        cfg,
        spark=base_config.spark,
        paths=Paths(lakehouse=str(lakehouse)),
        spatial=dataclasses.replace(
            cfg.spatial, checkpoint_dir=base_config.spatial.checkpoint_dir, dbscan_sample=3000
        ),
        models=dataclasses.replace(
            models, demand=dataclasses.replace(models.demand, epochs=3, patience=3)
        ),
    )
    ctx = StageContext.create(spark, cfg, run_id=RUN_ID)
    out, seconds = {}, {}
    for stage in registry.select(None, models_enabled=cfg.models.enabled):
        options = run_options(stage, source="olist", path=str(shared_data / "olist_sample"))
        t0 = time.perf_counter()
        out[stage.name] = run_stage(ctx, stage, **options)
        seconds[stage.name] = time.perf_counter() - t0
    return OlistRun(cfg, out, seconds)


def _read(spark, run: OlistRun, table: str) -> pd.DataFrame:
    return Catalog(run.cfg.paths.lakehouse).read(spark, table).toPandas()


def test_every_stage_ran_and_the_report_is_drawn(spark, olist_run):
    log = _read(spark, olist_run, "ops.run_log")
    status = log[log["source"] == "*"].set_index("job")["status"].to_dict()
    assert status == {s.job: "SUCCEEDED" for s in registry.STAGES}
    report = Catalog(olist_run.cfg.paths.lakehouse).location("report", "index.html")
    assert fs.is_file(report)
    # The whole run, for the note: seconds per stage.
    print({k: round(v, 1) for k, v in olist_run.seconds.items()})


def test_rows_in_are_the_files_records(olist_run, oracle):
    reports = {r.source: r for r in olist_run.out["ingest"]}
    files = {
        "customers": oracle.customers,
        "warehouses": oracle.sellers,
        "orders": oracle.orders,
        "order_lines": oracle.items,
        "products": oracle.products,
    }
    for name, df in files.items():
        r = reports[name]
        assert (r.rows_in, r.rows_in) == (len(df), r.rows_accepted + r.rows_rejected), name
    assert reports["orders"].rows_accepted == len(oracle.accepted_orders)


def test_orders_per_state(spark, olist_run, oracle):
    # Sedona puts each order's point in a state polygon; the CSV states the customer's
    # state. They agree but for points near a border (municipality seats placed across
    # it by the published polygons): 12 of 9,767 orders on this sample.
    og = _read(spark, olist_run, "silver.orders_geo")
    assert set(og["order_id"]) == set(oracle.accepted_orders["order_id"])
    joined = og.merge(oracle.accepted_orders[["order_id", "customer_state"]], on="order_id")
    differ = (joined["uf"] != joined["customer_state"]).sum()
    assert differ <= 0.002 * len(joined)
    ours = og["uf"].value_counts()
    theirs = oracle.accepted_orders["customer_state"].value_counts()
    both = pd.concat([ours, theirs], axis=1, keys=["ours", "theirs"]).fillna(0)
    assert (both["ours"] - both["theirs"]).abs().max() <= 0.01 * both["theirs"].max()


def test_gmv_and_freight_totals(spark, olist_run, oracle):
    lines = _read(spark, olist_run, "bronze.order_lines")
    assert len(lines) == len(oracle.items)
    gmv = (lines["unit_price"] * lines["quantity"]).sum()
    assert gmv == pytest.approx(oracle.items["price"].astype(float).sum(), rel=1e-9)
    freight = oracle.items["freight_value"].astype(float)
    assert lines["freight_value"].sum() == pytest.approx(freight.sum(), rel=1e-9)
    # The routes report the freight charged on their orders: per warehouse-day, the sum
    # over the routed orders' lines in the raw file.
    per_order = oracle.items.assign(f=freight).groupby("order_id")["f"].sum()
    stops = _read(spark, olist_run, "gold.route_stops")
    stops["expected"] = stops["order_id"].map(per_order)
    expected = stops.groupby(["warehouse_id", "delivery_date"])["expected"].sum()
    groups = _read(spark, olist_run, "gold.route_groups")
    got = groups.set_index(["warehouse_id", "delivery_date"])["freight_value"]
    assert len(got) > 0
    assert np.allclose(got.sort_index(), expected.reindex(got.index).sort_index(), equal_nan=True)


def test_weekly_orders_in_the_top_cells(spark, olist_run, oracle):
    """``gold.hotspots`` orders per cell and week = pandas + the h3 library on the same
    points; cell-weeks it leaves out have fewer customers than the privacy threshold."""
    orders = oracle.accepted_orders
    # The grid counts orders with at least one line (an unavailable order has none).
    orders = orders[orders["order_id"].isin(oracle.items["order_id"])].copy()
    res = olist_run.cfg.spatial.grid_resolution
    orders["cell"] = [
        h3.latlng_to_cell(float(a), float(b), res)
        for a, b in zip(orders["lat"], orders["lon"], strict=True)
    ]
    ts = pd.to_datetime(orders["order_purchase_timestamp"])
    orders["period"] = (ts.dt.normalize() - pd.to_timedelta(ts.dt.dayofweek, unit="D")).dt.date
    weekly = (
        orders.groupby(["cell", "period"])
        .agg(orders=("order_id", "size"), customers=("customer_id", "nunique"))
        .reset_index()
    )
    hs = _read(spark, olist_run, "gold.hotspots")
    hs["period"] = pd.to_datetime(hs["period"]).dt.date
    got = hs[["cell", "period", "orders"]].merge(weekly, on=["cell", "period"], how="left")
    assert (got["orders_x"] == got["orders_y"]).all()
    top = orders["cell"].value_counts().index[:3]
    assert set(top) <= set(hs["cell"])
    kept = set(zip(hs["cell"], hs["period"], strict=True))
    left_out = weekly[[k not in kept for k in zip(weekly["cell"], weekly["period"], strict=True)]]
    k = olist_run.cfg.privacy.min_cell_customers
    assert (left_out["customers"] < k).all() or not left_out["orders"].gt(0).any()


def test_series_per_category_and_seller_state(spark, olist_run, oracle):
    lines = oracle.items.merge(
        oracle.accepted_orders[["order_id", "seller_id"]].rename(
            columns={"seller_id": "first_seller"}
        ),
        on="order_id",
    )
    # The series' warehouse is the order's (its first line's seller), as in bronze.orders.
    lines = lines.merge(
        oracle.placed_sellers[["seller_id", "seller_state"]],
        left_on="first_seller",
        right_on="seller_id",
        suffixes=("", "_first"),
    )
    category = oracle.products.merge(oracle.translation, on="product_category_name", how="left")
    category["category"] = category["product_category_name_english"].fillna(
        category["product_category_name"]
    )
    lines = lines.merge(category[["product_id", "category"]], on="product_id", how="left")
    lines["category"] = lines["category"].fillna(NO_CATEGORY)
    expected = set(zip(lines["category"], lines["seller_state"], strict=True))

    series = _read(spark, olist_run, "silver.sku_daily")
    got = set(zip(series["category"], series["warehouse_state"], strict=True))
    assert got == expected
    assert (series["level"] == "category_state").all()
    # Units per series over the year = the pandas count of its lines (one unit a line).
    units = series.groupby(["category", "warehouse_state"])["y_obs"].sum()
    counted = lines.groupby(["category", "seller_state"]).size()
    counted.index.names = units.index.names
    assert np.allclose(units.sort_index(), counted.sort_index().astype(float))

    # Every series has a forecast, routed to one model; sparse ones to a fallback.
    fc = _read(spark, olist_run, "gold.forecasts")
    paths = fc.groupby("series_id")[["model", "reason"]].nunique()
    assert len(paths) == series["series_id"].nunique() and (paths == 1).all().all()
    reasons = fc.drop_duplicates("series_id")["reason"].value_counts()
    assert reasons.get("intermittent", 0) > len(paths) / 2


def test_policy_per_category_state(spark, olist_run, oracle):
    policy = _read(spark, olist_run, "gold.inventory_policy")
    series = _read(spark, olist_run, "silver.sku_daily")
    assert (policy["level"] == "category_state").all()
    assert set(zip(policy["sku"], policy["warehouse_id"], strict=True)) == set(
        zip(series["category"], series["warehouse_state"], strict=True)
    )
    # No stock snapshots in Olist: nothing on hand, the replay opens at order-up-to.
    assert policy["on_hand"].isna().all()
    # A category's price: the mean price of its lines in the raw file.
    lines = oracle.items.merge(
        oracle.products.merge(oracle.translation, on="product_category_name", how="left"),
        on="product_id",
        how="left",
    )
    lines["category"] = (
        lines["product_category_name_english"]
        .fillna(lines["product_category_name"])
        .fillna(NO_CATEGORY)
    )
    mean_price = lines.assign(p=lines["price"].astype(float)).groupby("category")["p"].mean()
    assert np.allclose(policy["unit_price"], policy["sku"].map(mean_price))
    sim = _read(spark, olist_run, "gold.policy_simulation")
    assert sim["balance_ok"].all() and set(sim["policy"]) == {"policy", "naive"}


def test_recommender_is_left_out_with_its_reason(spark, olist_run):
    ctx = StageContext.create(spark, olist_run.cfg, run_id=RUN_ID)
    assert "no behaviour events" in (ml_inputs.skipped(ctx, "recommender") or "")
    assert ml_inputs.kinds(ctx, "all") == ("demand",)
    evaluation = _read(spark, olist_run, "gold.model_evaluation")
    assert set(evaluation["model_kind"]) == {"demand"}
    assert set(_read(spark, olist_run, "gold.model_registry")["model_kind"]) == {"demand"}


def test_the_olist_data_and_other_data_never_mix(olist_run, shared_data, tmp_path):
    lakehouse = olist_run.cfg.paths.lakehouse
    ident = world.olist(olist_files(str(shared_data / "olist_sample")))
    assert world.recorded_world(lakehouse) == ident
    generated = world.identity(7, {"name": "small"}, "2023-01-01")
    for other in (generated, world.olist({**ident["files"], "orders.csv": 1})):
        with pytest.raises(world.WorldMismatchError, match="the Olist files"):
            world.check(lakehouse, other)
    # Upstream landing files (no generated world.json) are refused there too.
    with pytest.raises(world.WorldMismatchError, match="a lakehouse of their own"):
        world.check_landing(lakehouse, None)
    world.check_landing(str(tmp_path / "empty"), None)


def test_a_model_the_data_did_not_allow_says_why(spark, olist_run):
    ctx = StageContext.create(spark, olist_run.cfg, run_id=RUN_ID)
    with pytest.raises(ValueError, match="no recommender model for this data: no behaviour"):
        ml_inputs.kinds(ctx, "recommender")


def test_a_bad_path_stops_before_fresh_removes_anything(tmp_path, capsys):
    lakehouse = tmp_path / "lakehouse"
    lakehouse.mkdir()
    (lakehouse / "kept.txt").write_text("x")
    argv = ["--source", "olist", "--path", str(tmp_path / "nope"), "--fresh"]
    assert cli_main(["run", *argv, "--lakehouse", str(lakehouse)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such folder" in err[0]
    assert (lakehouse / "kept.txt").exists()


@pytest.mark.parametrize(
    "argv",
    [["--source", "olist"], ["--path", "x"]],
    ids=["source-without-path", "path-without-source"],
)
def test_run_needs_source_and_path_together(argv, capsys):
    assert cli_main(["run", *argv]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--source olist and --path" in err[0]
