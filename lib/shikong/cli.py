"""The ``shikong`` command line: generate, one stage, the whole pipeline (run), tables."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from shikong.config import AppConfig, ConfigError
from shikong.io.delta import TableInfo
from shikong.jobs.common import (
    add_common_arguments,
    config_from_args,
    given_run_id,
    guarded,
    require_writable_lakehouse,
)
from shikong.logs import configure_logging
from shikong.secrets import PseudonymKey
from shikong.stages import registry
from shikong.stages.context import StageContext, step

log = logging.getLogger(__name__)


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _face(job: str) -> ModuleType:
    return importlib.import_module(f"shikong.jobs.{job}")


def _shown(uri: str) -> str:
    from shikong.io import fs

    return fs.local_path(uri) if fs.is_local(uri) else uri


def _print_tables(tables: Sequence[TableInfo]) -> None:
    if not tables:
        _out("no Delta tables yet")
        return
    width = max(len(t.name) for t in tables)
    _out(f"{'table':<{width}}  {'rows':>12}  {'version':>7}  path")
    for t in tables:
        _out(f"{t.name:<{width}}  {t.rows:>12,}  {t.version:>7}  {t.path}")


def _cmd_tables(args: argparse.Namespace) -> int:
    from shikong.io.catalog import Catalog
    from shikong.session import build_session

    cfg = config_from_args(args)
    spark = build_session(cfg)
    _print_tables(Catalog(cfg.paths.lakehouse).list_tables(spark))
    return 0


def _cmd_forget(args: argparse.Namespace) -> int:
    from shikong.io import erasure, lock
    from shikong.io.runlog import new_run_id
    from shikong.secrets import pseudonym_key
    from shikong.session import build_session
    from shikong.stages import forget

    cfg = config_from_args(args)
    ids = list(args.customer)
    if args.customers_file:
        ids += erasure.read_ids(args.customers_file)
    if not ids and not args.vacuum:
        raise ConfigError("forget: give --customer ID, --customers-file PATH or --vacuum")
    require_writable_lakehouse(cfg)
    key = pseudonym_key(cfg)
    run_id = new_run_id()
    with lock.locked(cfg.paths.lakehouse, run_id, "shikong forget"):
        ctx = StageContext.create(build_session(cfg), cfg, run_id=run_id, key=key)
        if not ids:
            vacuumed = forget.vacuum(ctx)
            _out(f"vacuumed {len(vacuumed)} tables: {sum(vacuumed.values())} data files removed")
            return 0
        report = forget.run(ctx, customer_ids=ids)
    touched = sum(1 for n in report.rows.values() if n)
    _out(
        f"erasure {report.request_id}: {report.customers} customer(s), {report.orders} order(s); "
        f"{sum(report.rows.values())} rows removed from {touched} tables/files; "
        f"{sum(report.files_vacuumed.values())} data files vacuumed "
        f"(retention {cfg.privacy.vacuum_retention_hours} h); see ops.erasure_log"
    )
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    require_writable_lakehouse(cfg)
    summary = _face("generate").generate(cfg, args, "shikong generate")
    if args.drip:
        per_source: dict[str, int] = {}
        for rel, n in summary.items():
            per_source[rel.split("/")[0]] = per_source.get(rel.split("/")[0], 0) + n
        _out(f"landing files: {args.out or cfg.paths.landing_dir} ({len(summary)} daily files)")
        for name, n in sorted(per_source.items()):
            _out(f"  {name:<14} {n:>12,} rows")
        return 0
    _out(f"landing files: {summary.landing_dir}")
    for name, n in sorted(summary.rows_per_file.items()):
        _out(f"  {name:<14} {n:>12,} rows")
    _out(
        f"{summary.total_rows:,} rows in {summary.seconds:.1f} s "
        f"({summary.rows_per_second:,.0f} rows/s)"
    )
    return 0


def _cmd_stage(args: argparse.Namespace) -> int:
    from shikong.io import lock
    from shikong.io.runlog import new_run_id
    from shikong.secrets import pseudonym_key
    from shikong.session import build_session
    from shikong.stages.runner import run_stage

    cfg = config_from_args(args)
    stage = registry.job_stage(args.stage)
    run_id = given_run_id(_face(stage.job), args) or new_run_id()
    require_writable_lakehouse(cfg)
    key = pseudonym_key(cfg)  # a missing key stops here, before Spark starts
    # Before the session: a second run on the lakehouse stops at once (io/lock.py).
    with lock.locked(cfg.paths.lakehouse, run_id, f"shikong {stage.name}"):
        ctx = StageContext.create(build_session(cfg), cfg, run_id=run_id, key=key)
        out = run_stage(ctx, stage, **_face(stage.job).options(args))
    if stage.name == "report":
        _out(f"report:    {_shown(out.report)}")
    if stage is registry.STREAM:
        how = "stopped by Ctrl-C" if out.interrupted else "done"
        _out(
            f"stream {how}: {out.passes} pass(es), {sum(out.batches.values())} batch(es), "
            f"{sum(out.files.values())} file(s)"
        )
    return 0


def _world_to_generate(cfg: AppConfig, scale: str | None) -> dict[str, Any]:
    from shikong.generator import resolve_scale
    from shikong.io import world

    g = cfg.generator
    return world.identity(
        g.seed, resolve_scale(scale or g.scale).to_dict(), g.start_date.isoformat()
    )


def _replace_lakehouse(cfg: AppConfig, *, landing: bool = True) -> None:
    """``run --fresh``: empty the lakehouse but for this run's lock (and remove a landing
    folder outside it, unless ``landing`` is false: an Olist run reads none)."""
    from shikong.io import fs, lock

    lakehouse = cfg.paths.lakehouse
    folders = [lakehouse, cfg.paths.landing_dir] if landing else [lakehouse]
    for where in dict.fromkeys(folders):
        if not fs.exists(where):
            continue
        log.warning("--fresh: removing %s", where)
        if where != lakehouse:
            fs.delete(where)
            continue
        for name in fs.listdir(where):
            if name != lock.LOCK_FILE:
                fs.delete(fs.join(where, name))


def _cmd_run(args: argparse.Namespace) -> int:
    """Whole pipeline: generate (if needed), then every stage of the registry in order."""
    from shikong.io import lock
    from shikong.io.runlog import new_run_id
    from shikong.secrets import pseudonym_key

    olist = args.source == "olist"
    if olist != bool(args.path):
        raise ConfigError("run: --source olist and --path DIR (the Olist CSVs) go together")
    if olist and args.config is None:
        args.config = "olist"  # the real data's profile: its own lakehouse, its series level
    cfg = config_from_args(args)
    if olist:
        from shikong.io import world
        from shikong.io.landing import olist_files

        # Before anything is removed (--fresh) or written: the files and the lakehouse.
        ident = world.olist(olist_files(args.path))
        if not args.fresh:
            world.check(cfg.paths.lakehouse, ident)
    try:
        stages = registry.select(args.only, models_enabled=cfg.models.enabled)
    except registry.UnknownStageError as exc:
        sys.stderr.write(f"shikong run: {exc}\n")
        return 2
    run_id = new_run_id()
    require_writable_lakehouse(cfg)
    key = pseudonym_key(cfg)  # a missing key stops here, before anything runs
    # First of all: a second run on the lakehouse stops here, before it changes anything.
    with lock.locked(cfg.paths.lakehouse, run_id, "shikong run"):
        return _run_pipeline(args, cfg, stages, run_id, key)


def run_options(stage: registry.Stage, *, source: str, path: str | None) -> dict[str, Any]:
    """A stage's options in ``shikong run``: the Olist files go to the lakehouse's own
    ``bronze``, which every later stage reads."""
    if source == "olist" and stage.name == "ingest":
        return {"source": "olist", "path": path, "layer": "bronze"}
    return {}


def _run_pipeline(
    args: argparse.Namespace,
    cfg: AppConfig,
    stages: list[registry.Stage],
    run_id: str,
    key: PseudonymKey,
) -> int:
    from shikong.io import fs, world
    from shikong.io.exports import EXPORTS_DIR, REPORT_FILE
    from shikong.session import build_session
    from shikong.stages.generate import run as generate

    t0 = time.perf_counter()
    landing = cfg.paths.landing_dir
    olist = args.source == "olist"
    if args.fresh:
        _replace_lakehouse(cfg, landing=not olist)
    if olist:
        log.info("source: the Olist files in %s (nothing is generated)", args.path)
    elif args.regenerate or args.fresh or world.landing_world(landing) is None:
        # Refuse before the landing files are overwritten, not at ingest.
        world.check(cfg.paths.lakehouse, _world_to_generate(cfg, args.scale))
        generate(cfg, scale=args.scale)
    else:
        log.info("landing files exist in %s; not regenerating (use --regenerate)", landing)
    with step("spark session"):
        spark = build_session(cfg)
    from shikong.stages.runner import run_stage

    ctx = StageContext.create(spark, cfg, run_id=run_id, key=key)
    skipped = [s.name for s in registry.select(args.only) if s not in stages]
    if skipped:
        log.info("models.enabled is false: skipping stages %s", ", ".join(skipped))
    evaluation = policies = None
    for stage in stages:
        with step(stage.name):
            out = run_stage(ctx, stage, **run_options(stage, source=args.source, path=args.path))
        if stage.name == "evaluate":
            evaluation = out
        elif stage.name == "policy" or (stage.name == "policy_fusion" and len(out)):
            policies = out  # the three-policy comparison replaces the SARIMA-vs-naive one
    tables = ctx.catalog.list_tables(spark)
    _out("")
    _out(f"shikong pipeline finished in {time.perf_counter() - t0:.0f} s (run {ctx.run_id})")
    _out(f"lakehouse: {_shown(cfg.paths.lakehouse)}")
    _out("")
    if policies is not None and len(policies):
        weeks = cfg.decisions.simulation_weeks
        _out(f"inventory policies, replay of the last {weeks} weeks (gold.policy_simulation):")
        _out(policies.round(3).to_string(index=False))
        _out("")
    if evaluation is not None:
        _out("deep models vs baselines (time-split test data, gold.model_evaluation):")
        _out(evaluation.round(4).to_string())
        _out("")
    _print_tables(tables)
    # Last, so the end of the output says where to look.
    exports = ctx.catalog.location(EXPORTS_DIR)
    if fs.exists(exports):
        _out(f"exports:   {_shown(exports)} (GeoParquet)")
    report = ctx.catalog.location(*REPORT_FILE)
    if fs.is_file(report):
        _out(f"report:    {_shown(report)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``shikong`` command."""
    parser = argparse.ArgumentParser(
        prog="shikong",
        description="Spatio-temporal e-commerce pipeline on Spark, Sedona and Delta.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="write the seeded demo world into the landing folder")
    add_common_arguments(p)
    _face("generate").add_arguments(p)
    p.set_defaults(func=_cmd_generate)

    for stage in (*registry.STAGES, registry.STREAM):
        aliases = [stage.job] if stage.job != stage.name else []
        p = sub.add_parser(stage.name, aliases=aliases, help=stage.summary)
        add_common_arguments(p)
        _face(stage.job).add_arguments(p)
        p.set_defaults(func=_cmd_stage, stage=stage.name)

    p = sub.add_parser(
        "run", help="the whole pipeline, stage by stage (generates the world if needed)"
    )
    add_common_arguments(p)
    p.add_argument("--regenerate", action="store_true", help="regenerate the landing files first")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="remove the lakehouse first (needed to switch to another seed, scale or start date)",
    )
    p.add_argument(
        "--scale", choices=("small", "default"), default=None, help="world size when generating"
    )
    p.add_argument(
        "--source",
        choices=("generated", "olist"),
        default="generated",
        help="generated: the seeded demo world (landing files); olist: the real Olist files "
        "of --path, with the olist profile unless --config is given (its own lakehouse, "
        "./lakehouse-olist)",
    )
    p.add_argument("--path", default=None, help="folder of the Olist CSV files (--source olist)")
    p.add_argument(
        "--only",
        nargs="*",
        default=None,
        metavar="STAGE",
        help=f"run only these stages ({', '.join(s.name for s in registry.STAGES)})",
    )
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "forget",
        help="erase customers from every table, landing file and shard, then vacuum",
    )
    add_common_arguments(p)
    p.add_argument(
        "--customer", action="append", default=[], metavar="ID", help="a customer id (repeatable)"
    )
    p.add_argument("--customers-file", metavar="PATH", help="a file of customer ids, one a line")
    p.add_argument(
        "--vacuum",
        action="store_true",
        help="only vacuum the tables holding customer data (privacy.vacuum_retention_hours)",
    )
    p.set_defaults(func=_cmd_forget)

    p = sub.add_parser("tables", help="list lakehouse tables with row counts and latest version")
    add_common_arguments(p)
    p.set_defaults(func=_cmd_tables)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``shikong`` command."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    return guarded(args.command, lambda: int(args.func(args) or 0))


if __name__ == "__main__":
    raise SystemExit(main())
