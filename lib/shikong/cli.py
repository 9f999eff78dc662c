"""The ``shikong`` command line: generate, ingest, run (whole pipeline), tables."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from shikong.io.delta import TableInfo
from shikong.jobs.common import add_common_arguments, load_config_or_exit, stage
from shikong.logs import configure_logging

log = logging.getLogger(__name__)

#: Spark jobs in pipeline order: (subcommand, module under shikong.jobs).
PIPELINE_JOBS: tuple[tuple[str, str], ...] = (
    ("ingest", "ingest"),
    ("spatial", "spatial_features"),
    ("series", "demand_series"),
    ("forecast", "forecast_arima"),
    ("policy", "inventory_policy"),
    ("routes", "delivery_routes"),
    ("training_data", "prepare_training_data"),
    ("train", "train_models"),
    ("infer", "batch_inference"),
    ("evaluate", "evaluate_models"),
)
#: Pipeline stages skipped when ``models.enabled`` is false.
MODEL_STAGES = frozenset({"training_data", "train", "infer", "evaluate"})


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _job(module: str):  # noqa: ANN202
    return importlib.import_module(f"shikong.jobs.{module}")


def _cmd_tables(args: argparse.Namespace) -> int:
    from shikong.io.delta import list_tables
    from shikong.session import build_session

    cfg = load_config_or_exit(args.config)
    spark = build_session(cfg)
    _print_tables(list_tables(spark, cfg.paths.lakehouse))
    return 0


def _print_tables(tables: Sequence[TableInfo]) -> None:
    if not tables:
        _out("no Delta tables yet")
        return
    width = max(len(t.name) for t in tables)
    _out(f"{'table':<{width}}  {'rows':>12}  {'version':>7}  path")
    for t in tables:
        _out(f"{t.name:<{width}}  {t.rows:>12,}  {t.version:>7}  {t.path}")


def _cmd_generate(args: argparse.Namespace) -> int:
    from shikong.jobs.generate import generate

    cfg = load_config_or_exit(args.config)
    summary = generate(cfg, scale=args.scale, seed=args.seed, out=args.out)
    _out(f"landing files: {summary.landing_dir}")
    for name, n in sorted(summary.rows_per_file.items()):
        _out(f"  {name:<14} {n:>12,} rows")
    _out(
        f"{summary.total_rows:,} rows in {summary.seconds:.1f} s "
        f"({summary.rows_per_second:,.0f} rows/s)"
    )
    return 0


def _cmd_job(args: argparse.Namespace) -> int:
    from shikong.session import build_session

    cfg = load_config_or_exit(args.config)
    spark = build_session(cfg)
    _job(args.module).run(spark, cfg, args)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    """Whole pipeline: generate (if needed), then every Spark job in order."""
    from shikong.io.delta import list_tables
    from shikong.jobs.generate import generate
    from shikong.session import build_session

    cfg = load_config_or_exit(args.config)
    t0 = time.perf_counter()
    landing = Path(cfg.paths.landing_dir)
    if args.regenerate or not (landing / "_ground_truth" / "world.json").is_file():
        generate(cfg, scale=args.scale)
    else:
        log.info("landing files exist in %s; not regenerating (use --regenerate)", landing)
    with stage("spark session"):
        spark = build_session(cfg)
    evaluation = None
    for name, module in PIPELINE_JOBS:
        if args.only and name not in args.only:
            continue
        if name in MODEL_STAGES and not cfg.models.enabled:
            log.info("models.enabled is false: skipping stage %s", name)
            continue
        job = _job(module)
        # Inside the pipeline every job runs with its own defaults.
        defaults = argparse.ArgumentParser()
        job.add_arguments(defaults)
        job_args = defaults.parse_args([])
        with stage(name):
            out = job.run(spark, cfg, job_args)
        if name == "evaluate":
            evaluation = out
    tables = list_tables(spark, cfg.paths.lakehouse)
    _out("")
    _out(f"shikong pipeline finished in {time.perf_counter() - t0:.0f} s")
    _out(f"lakehouse: {Path(cfg.paths.lakehouse).resolve()}")
    report = Path(cfg.paths.lakehouse) / "report" / "index.html"
    if report.is_file():
        _out(f"report:    {report.resolve()}")
    _out("")
    if evaluation is not None:
        _out("deep models vs baselines (time-split test data, gold.model_evaluation):")
        _out(evaluation.round(4).to_string())
        _out("")
    _print_tables(tables)
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
    _job("generate").add_arguments(p)
    p.set_defaults(func=_cmd_generate)

    for name, module in PIPELINE_JOBS:
        job = _job(module)
        p = sub.add_parser(name, help=(job.run.__doc__ or "").strip().splitlines()[0])
        add_common_arguments(p)
        job.add_arguments(p)
        p.set_defaults(func=_cmd_job, module=module)

    p = sub.add_parser(
        "run", help="the whole pipeline, stage by stage (generates the world if needed)"
    )
    add_common_arguments(p)
    p.add_argument("--regenerate", action="store_true", help="regenerate the landing files first")
    p.add_argument(
        "--scale", choices=("small", "default"), default=None, help="world size when generating"
    )
    p.add_argument("--only", nargs="*", default=None, help="run only these stages")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("tables", help="list lakehouse tables with row counts and latest version")
    add_common_arguments(p)
    p.set_defaults(func=_cmd_tables)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``shikong`` command."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
