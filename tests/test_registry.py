"""The stage registry and the table catalogue agree with each other and with the packaging."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

from shikong.io import catalog as C
from shikong.stages import registry as R

REPO = Path(__file__).resolve().parents[1]


def test_every_read_and_write_is_a_catalogue_table_or_artifact() -> None:
    known = set(C.TABLES) | set(R.ARTIFACTS)
    for stage in R.STAGES:
        assert set(stage.reads) <= known, (stage.name, set(stage.reads) - known)
        assert set(stage.writes) <= known, (stage.name, set(stage.writes) - known)


def test_every_table_has_exactly_one_writer_or_one_scope_per_writer() -> None:
    writers: dict[str, list[str]] = {}
    for stage in R.STAGES:
        for t in stage.writes:
            writers.setdefault(t, []).append(stage.name)
    shared = {t: w for t, w in writers.items() if len(w) > 1}
    assert shared == {
        "gold.inventory_policy": ["policy", "policy_fusion"],
        "gold.policy_simulation": ["policy", "policy_fusion"],
    }
    assert set(shared) == set(R.SHARED_TABLES)
    for t, column in R.SHARED_TABLES.items():
        # each writer replaces only its own value of the column
        assert C.TABLES[t].mode is C.WriteMode.REPLACE_SCOPE and column in C.TABLES[t].scope_by
    assert set(C.TABLES) - set(writers) == set(R.MAINTENANCE_WRITERS)
    assert not set(R.MAINTENANCE_WRITERS) & set(writers)


def test_the_order_runs_every_writer_before_its_readers() -> None:
    seen: set[str] = {"landing"}
    for stage in R.STAGES:
        produced_later = {
            t for later in R.STAGES[R.STAGES.index(stage) :] for t in later.writes
        } - set(stage.writes)
        assert not set(stage.reads) & produced_later, stage.name
        seen |= set(stage.writes)


@pytest.mark.parametrize(
    ("stage", "deps"),
    [
        ("ingest", ()),
        ("spatial", ("ingest",)),
        ("series", ("ingest", "spatial")),
        ("forecast", ("series",)),
        ("policy", ("ingest", "series", "forecast")),
        ("routes", ("ingest",)),
        ("training_data", ("ingest", "spatial")),
        ("train", ("training_data",)),
        ("infer", ("training_data", "train")),
        ("policy_fusion", ("ingest", "series", "policy", "training_data", "train", "infer")),
        ("evaluate", ("training_data", "train")),
    ],
    ids=lambda v: v if isinstance(v, str) else ",".join(v) or "none",
)
def test_dependencies_follow_from_reads_and_writes(stage: str, deps: tuple[str, ...]) -> None:
    assert R.depends_on(stage) == deps


def test_stage_lookup_by_name_or_job_and_unknown_names() -> None:
    assert R.get("spatial") is R.get("spatial_features")
    with pytest.raises(R.UnknownStageError, match="unknown stage 'spatail'.*spatial"):
        R.get("spatail")
    assert [s.name for s in R.select(["routes", "ingest"])] == ["ingest", "routes"]
    assert not any(s.models for s in R.select(None, models_enabled=False))


def test_every_stage_has_a_job_face_a_stage_module_and_a_console_script() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for stage in R.STAGES:
        face = importlib.import_module(f"shikong.jobs.{stage.job}")
        assert callable(face.add_arguments) and callable(face.options) and callable(face.main)
        assert callable(stage.module().run)
        assert scripts[stage.console_script] == f"shikong.jobs.{stage.job}:main"
        assert (REPO / "jobs" / f"{stage.job}.py").is_file()


_U, _I = C.WriteMode.UPSERT, C.WriteMode.INSERT_ONLY
_R, _O = C.WriteMode.REPLACE_SCOPE, C.WriteMode.OVERWRITE


@pytest.mark.parametrize(
    ("mode", "how", "error"),
    [
        (_U, {}, "needs business keys"),
        (_I, {}, "needs business keys"),
        (_I, {"keys": ("k",), "sequence_by": "seq"}, "only an UPSERT"),
        (_O, {"lineage": ("src",)}, "only an UPSERT"),
        (_U, {"keys": ("k",), "sequence_by": "k"}, "business key cannot be sequence"),
        (_U, {"keys": ("k",), "lineage": ("k",)}, "business key cannot be sequence or lineage"),
        (_R, {}, "scope_by is needed by, and only by, a REPLACE_SCOPE"),
        (_O, {"scope_by": ("day",)}, "scope_by is needed by, and only by, a REPLACE_SCOPE"),
    ],
    ids=[
        "upsert-no-keys",
        "insert-no-keys",
        "sequence-on-insert-only",
        "lineage-on-overwrite",
        "key-as-sequence",
        "key-as-lineage",
        "replace-scope-without-scope",
        "scope-on-overwrite",
    ],
)
def test_a_spec_refuses_inconsistent_declarations(mode, how, error) -> None:
    with pytest.raises(ValueError, match=error):
        C.TableSpec("gold", "x", mode, **how)


def test_restricted_tables_are_raw_data_working_tables_and_operations() -> None:
    """Bronze, the quarantine and the run log; the spatial working tables (exact points,
    raw ids) and the operational route tables (exact stops, order ids). README "Privacy"."""
    restricted = {t.qualified for t in C.TABLES.values() if not t.published}
    assert restricted == {
        *(
            f"bronze.{n}"
            for n in (
                "products",
                "warehouses",
                "customers",
                "orders",
                "order_lines",
                "events",
                "inventory",
                "quarantine",
            )
        ),
        "ops.run_log",
        "ops.privacy_budget",
        "ops.erasure_log",
        "silver.customers_geo",
        "silver.orders_geo",
        "gold.routes",
        "gold.route_stops",
        "gold.unrouted_orders",
    }


def test_catalog_locations_are_uris() -> None:
    cat = C.Catalog("s3a://bucket/lake/")
    assert cat.uri("gold.hotspots") == "s3a://bucket/lake/gold/hotspots"
    assert cat.uri(C.spec("bronze.orders").in_layer("bronze_olist")) == (
        "s3a://bucket/lake/bronze_olist/orders"
    )
    assert cat.location("ml", "models") == "s3a://bucket/lake/ml/models"
    with pytest.raises(KeyError, match="not in the table catalogue"):
        cat.uri("gold.nope")


def test_run_refuses_an_unknown_stage_with_one_line(capsys) -> None:
    from shikong.cli import main as cli_main

    assert cli_main(["run", "--only", "ingest", "spatail"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("shikong run: unknown stage 'spatail' (stages: ")


@pytest.mark.parametrize("name", [s.name for s in R.STAGES] + [s.job for s in R.STAGES])
def test_cli_knows_each_stage_by_name_and_job_name(name: str, capsys) -> None:
    from shikong.cli import build_parser

    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([name, "--help"])
    assert exc.value.code == 0
    assert "--config" in capsys.readouterr().out
