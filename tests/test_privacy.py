"""Privacy by default: the catalogue's published/restricted split, the pseudonym key, and
the transforms (HMAC pseudonyms, H3 coarsening, small-cell suppression) against oracles
(Python's ``hmac``, the ``h3`` library). The published tables of the small world are
scanned end to end in ``tests/test_pipeline.py``."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import subprocess
import sys
from pathlib import Path

import h3
import pytest

from shikong import secrets
from shikong.config import ConfigError, config_from_dict, load_config
from shikong.io import catalog, tables
from shikong.io.catalog import TABLES, Catalog, UnprotectedColumnError

REPO = Path(__file__).resolve().parents[1]
KEY = b"a-test-key-of-enough-length-0123456789"


def _oracle(value: str, key: bytes = KEY) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


# --- the catalogue -----------------------------------------------------------------------


def test_raw_layers_are_restricted_and_every_table_says_why_or_how() -> None:
    for t in TABLES.values():
        if t.layer == "bronze":
            assert not t.published, t.qualified
        if t.published:
            assert t.protection is not None and t.protection.describe(), t.qualified
            assert not t.restricted_reason
        else:
            assert t.restricted_reason and t.protection is None, t.qualified
    assert not TABLES["bronze.quarantine"].published
    # Every published table with customer ids declares them pseudonymised.
    assert TABLES["gold.recommendations"].protection.pseudonymised == ("customer_id",)
    clusters = TABLES["gold.customer_clusters"].protection
    assert clusters.pseudonymised == ("customer_id",) and clusters.coarsened == ("lat", "lon")
    for name in ("gold.grid_daily", "gold.grid_daily_category", "gold.hotspots"):
        assert TABLES[name].protection.suppression.startswith("removed"), name
    assert set(catalog.RESTRICTED_LOCATIONS) >= {"landing", "ml/training_data", "ml/models"}


def test_a_published_bronze_table_or_one_without_a_reason_is_refused() -> None:
    o, note = catalog.WriteMode.OVERWRITE, catalog.Protection(note="n")
    with pytest.raises(ValueError, match="never published"):
        catalog.TableSpec("bronze", "x", o, published=True, protection=note)
    with pytest.raises(ValueError, match="states its protection"):
        catalog.TableSpec("gold", "x", o, published=True)
    with pytest.raises(ValueError, match="no protection to state"):
        catalog.TableSpec("gold", "x", o, protection=note)
    # Restricted by default; the catalogue's own entries also say why.
    assert not catalog.TableSpec("gold", "x", o).published
    with pytest.raises(ValueError, match="states why"):
        tables._check_declared([catalog.TableSpec("gold", "x", o)])


def test_a_published_write_refuses_undeclared_personal_columns(spark, tmp_path) -> None:
    cat = Catalog(str(tmp_path / "lake"))
    df = spark.createDataFrame([("c1", 1)], "customer_id string, n int")
    with pytest.raises(UnprotectedColumnError, match=r"gold\.grid_daily.*customer_id"):
        cat.write(spark, "gold.grid_daily", df)
    coords = spark.createDataFrame([("p", 1.0, 2.0)], "customer_id string, x_m double, y_m double")
    with pytest.raises(UnprotectedColumnError, match=r"\['x_m', 'y_m'\]"):
        cat.write(spark, "gold.customer_clusters", coords)


# --- the config and the key ----------------------------------------------------------------


def test_privacy_config_defaults_and_validation() -> None:
    p = config_from_dict({}, env={}).privacy
    assert p.min_cell_customers == 5 and p.location_h3_resolution == 8
    assert p.pseudonym_key_env == "SHIKONG_PSEUDONYM_KEY" and not p.allow_development_key
    for data, message in [
        ({"privacy": {"pseudonym_key": "x"}}, r"^privacy\.pseudonym_key: unknown key"),
        ({"privacy": {"min_cell_customers": 0}}, r"^privacy\.min_cell_customers: must be >= 1"),
        ({"privacy": {"location_h3_resolution": 16}}, r"^privacy\.location_h3_resolution"),
        (
            {"privacy": {"databricks_secret_scope": "s", "databricks_secret_key": ""}},
            r"^privacy\.databricks_secret_key",
        ),
    ]:
        with pytest.raises(ConfigError, match=message):
            config_from_dict(data, env={})


@pytest.mark.parametrize(
    ("profile", "dev"),
    [
        ("local", True),
        ("small", True),
        ("full", True),
        ("cluster", False),
        ("cluster-small", False),
        ("kubernetes", False),
        ("databricks", False),
        ("databricks-gpu", False),
    ],
)
def test_only_local_profiles_allow_the_development_key(profile: str, dev: bool) -> None:
    cfg = load_config(profile, env={})
    assert cfg.privacy.allow_development_key is dev
    if dev:
        assert secrets.pseudonym_key(cfg, env={}).is_development
    elif not cfg.privacy.databricks_secret_scope:
        with pytest.raises(secrets.PseudonymKeyError) as exc:
            secrets.pseudonym_key(cfg, env={})
        line = str(exc.value)
        assert "\n" not in line and "SHIKONG_PSEUDONYM_KEY" in line


def test_the_key_comes_from_the_environment_and_never_shows(caplog) -> None:
    cfg = load_config("cluster", env={})
    key = secrets.pseudonym_key(cfg, env={"SHIKONG_PSEUDONYM_KEY": KEY.decode()})
    assert key.value == KEY and key.source == "env:SHIKONG_PSEUDONYM_KEY"
    assert KEY.decode() not in repr(key)
    # The environment wins over the development key of a local profile.
    local = load_config("local", env={})
    assert secrets.pseudonym_key(local, env={"SHIKONG_PSEUDONYM_KEY": KEY.decode()}).value == KEY
    with pytest.raises(secrets.PseudonymKeyError, match="shorter than 16 bytes"):
        secrets.pseudonym_key(cfg, env={"SHIKONG_PSEUDONYM_KEY": "short"})
    # A configured secret scope off Databricks: one line naming the scope.
    dbx = load_config("databricks", env={})
    with pytest.raises(secrets.PseudonymKeyError, match="'shikong'"):
        secrets.pseudonym_key(dbx, env={})


def test_the_development_key_is_announced_once(caplog, monkeypatch) -> None:
    monkeypatch.setattr(secrets, "_warned", False)
    cfg = load_config("local", env={})
    with caplog.at_level(logging.WARNING, logger="shikong.secrets"):
        secrets.pseudonym_key(cfg, env={})
        secrets.pseudonym_key(cfg, env={})
    warned = [r for r in caplog.records if "DEVELOPMENT pseudonym key" in r.getMessage()]
    assert len(warned) == 1


def test_a_cluster_run_without_a_key_stops_in_one_line_before_spark(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIKONG_")}
    env["SHIKONG_LAKEHOUSE"] = str(tmp_path / "lake")
    env["PYTHONPATH"] = str(REPO / "lib")
    done = subprocess.run(
        [sys.executable, "-m", "shikong.cli", "run", "--config", "cluster-small"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    err = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(err) == 1, done.stderr
    assert err[0].startswith("shikong: config error: privacy: no pseudonym key")
    assert "SHIKONG_PSEUDONYM_KEY" in err[0]
    assert not (tmp_path / "lake" / "landing").exists()  # nothing generated, no Spark


# --- the transforms --------------------------------------------------------------------------


def test_pseudonyms_are_hmac_sha256_stable_and_keyed(spark) -> None:
    from shikong.privacy import pseudonymise

    ids = ["c1", "customer-00042", "ção", ""]
    df = spark.createDataFrame([(i,) for i in ids] + [(None,)], "customer_id string")
    got = {
        r["raw"]: r["customer_id"]
        for r in df.withColumn("raw", df["customer_id"])
        .transform(pseudonymise(cols=["customer_id"], key=KEY))
        .collect()
    }
    assert got == {**{i: _oracle(i) for i in ids}, None: None}
    again = df.transform(pseudonymise(cols=["customer_id"], key=KEY)).collect()
    assert {r[0] for r in again} == {*(_oracle(i) for i in ids), None}  # stable
    other = df.transform(pseudonymise(cols=["customer_id"], key=KEY + b"x")).collect()
    assert not {r[0] for r in other} & {_oracle(i) for i in ids}


def test_coarsened_points_are_h3_cell_centroids(spark) -> None:
    from shikong.privacy import coarsen_points

    res = 8
    pts = [(-23.5505, -46.6333), (-22.9068, -43.1729), (-3.7319, -38.5267), (None, None)]
    df = spark.createDataFrame(pts, "lat double, lon double")
    out = df.transform(coarsen_points(lat_col="lat", lon_col="lon", resolution=res)).collect()
    for (lat0, lon0), row in zip(pts, out, strict=True):
        if lat0 is None:
            assert row["lat"] is None and row["lon"] is None
            continue
        cell = h3.latlng_to_cell(lat0, lon0, res)
        # Same cell, and within a metre of the H3 centre (edge: about 460 m).
        assert h3.latlng_to_cell(row["lat"], row["lon"], res) == cell
        assert h3.great_circle_distance(h3.cell_to_latlng(cell), (row["lat"], row["lon"]), "m") < 1
        assert (row["lat"], row["lon"]) != (lat0, lon0)


def test_small_cells_are_suppressed(spark) -> None:
    from shikong.privacy import distinct_customers, suppress_small_cells

    rows = [("a", f"c{i}") for i in range(5)] + [("b", f"c{i}") for i in range(4)]
    rows += [("b", "c0")] * 3  # repeat orders of one customer do not count
    df = spark.createDataFrame(rows, "cell string, customer_id string")
    counts = distinct_customers(df, keys=["cell"])
    assert {r["cell"]: r["customers"] for r in counts.collect()} == {"a": 5, "b": 4}
    kept = counts.transform(suppress_small_cells(k=5)).collect()
    assert [r["cell"] for r in kept] == ["a"]
    with pytest.raises(ValueError):
        suppress_small_cells(k=0)
