"""What every job entry point shares: common arguments, config loading, running a stage."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from shikong.config import AppConfig, ConfigError, load_config
from shikong.logs import configure_logging


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every job and CLI subcommand accepts."""
    parser.add_argument(
        "--config",
        default=None,
        help="YAML config file or profile name in conf/ (default: conf/local.yaml)",
    )
    parser.add_argument("--log-level", default="INFO", help="shikong log level (default INFO)")


def load_config_or_exit(path: str | None) -> AppConfig:
    """Load the config; on a problem print one line naming the key and exit with code 2."""
    try:
        return load_config(path)
    except ConfigError as exc:
        sys.stderr.write(f"shikong: config error: {exc}\n")
        raise SystemExit(2) from None


def run_job(job: str, argv: Sequence[str] | None) -> int:
    """``main`` of a job: parse args, load config once, build the session once, run the stage.

    Args:
        job: Job name (module under ``shikong.jobs`` with ``add_arguments`` and ``options``).
        argv: Command-line arguments (``None``: ``sys.argv``).
    """
    from shikong.session import build_session
    from shikong.stages import registry
    from shikong.stages.context import StageContext

    face = importlib.import_module(f"shikong.jobs.{job}")
    stage = registry.get(job)
    parser = argparse.ArgumentParser(prog=stage.console_script, description=stage.summary)
    add_common_arguments(parser)
    face.add_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    cfg = load_config_or_exit(args.config)
    ctx = StageContext.create(build_session(cfg), cfg)
    stage.module().run(ctx, **face.options(args))
    return 0
