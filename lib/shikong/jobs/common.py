"""What every job entry point shares: common arguments, config loading, running a stage."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from shikong.config import AppConfig, ConfigError, load_config
from shikong.logs import configure_logging

log = logging.getLogger(__name__)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every job and CLI subcommand accepts."""
    parser.add_argument(
        "--config",
        default=None,
        help="YAML config file or profile name in conf/ (default: conf/local.yaml)",
    )
    parser.add_argument(
        "--lakehouse",
        default=None,
        metavar="URI",
        help="lakehouse location, replacing paths.lakehouse and SHIKONG_LAKEHOUSE "
        "(a path, /Volumes/..., dbfs:/..., s3a://..., abfss://...)",
    )
    parser.add_argument("--log-level", default="INFO", help="shikong log level (default INFO)")


def load_config_or_exit(path: str | None, lakehouse: str | None = None) -> AppConfig:
    """Load the config; on a problem print one line naming the key and exit with code 2.

    Args:
        path: ``--config``: a YAML file or a profile name.
        lakehouse: ``--lakehouse``: replaces ``paths.lakehouse`` (and the environment's).
    """
    try:
        return load_config(path, lakehouse=lakehouse)
    except ConfigError as exc:
        sys.stderr.write(f"shikong: config error: {exc}\n")
        raise SystemExit(2) from None


def config_from_args(args: argparse.Namespace) -> AppConfig:
    """The config a command line names (:func:`add_common_arguments`' options), or exit 2.

    The one place the common options become a config, so that no command forgets one.
    """
    return load_config_or_exit(args.config, args.lakehouse)


def guarded(command: str, fn: Callable[[], int]) -> int:
    """Run a command; turn any failure into one line on stderr and an exit code.

    Exit codes: 0 done; 2 usage or configuration (argparse and :class:`ConfigError`,
    which name the key); 1 any failure at run time. The line names the problem (and our
    own errors the fix); ``--log-level DEBUG`` adds the traceback to the log.
    """
    try:
        return fn()
    except ConfigError as exc:
        sys.stderr.write(f"shikong: config error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"shikong {command}: interrupted\n")
        return 130
    except Exception as exc:
        from shikong.stages.runner import first_line

        log.debug("%s failed", command, exc_info=True)
        sys.stderr.write(f"shikong {command}: {first_line(exc)}\n")
        return 1


def require_writable_lakehouse(cfg: AppConfig) -> None:
    """Stop in one line, before any Spark start-up, when the lakehouse cannot be written.

    Raises:
        StorageError: Naming the lakehouse URI and the reason.
    """
    from shikong.io import fs

    try:
        fs.check_writable(cfg.paths.lakehouse)
    except fs.StorageError as exc:
        raise fs.StorageError(f"lakehouse {exc}") from None


def given_run_id(face: ModuleType, args: argparse.Namespace) -> str | None:
    """The run id a job's command line names for this run (``train --run-id``: its models
    and table rows and its run-log status rows share it), if the face has such an option."""
    fn = getattr(face, "run_id", None)
    return fn(args) if fn is not None else None


def exit_on_failure(code: int) -> int:
    """A job's exit code as its entry point must give it: 0 returned, anything else raised
    as :class:`SystemExit`.

    A console script (``sys.exit(main())``) and ``jobs/<job>.py`` exit with the code either
    way; a Databricks Python wheel task calls the entry point and ignores what it returns,
    so a failed stage must raise to fail its task (and stop the tasks that depend on it).
    """
    if code:
        raise SystemExit(code)
    return 0


def job_parser(job: str) -> argparse.ArgumentParser:
    """The command line of a stage's entry point: the common options and the job's own.

    Args:
        job: Job name (module under ``shikong.jobs`` with ``add_arguments``).
    """
    from shikong.stages import registry

    stage = registry.job_stage(job)
    parser = argparse.ArgumentParser(prog=stage.console_script, description=stage.summary)
    add_common_arguments(parser)
    importlib.import_module(f"shikong.jobs.{job}").add_arguments(parser)
    return parser


def run_job(job: str, argv: Sequence[str] | None) -> int:
    """``main`` of a job: parse args, load config once, build the session once, run the stage.

    Args:
        job: Job name (module under ``shikong.jobs`` with ``add_arguments`` and ``options``).
        argv: Command-line arguments (``None``: ``sys.argv``).

    Returns:
        0 when the stage succeeded.

    Raises:
        SystemExit: With the exit code (:func:`guarded`) when it did not.
    """
    from shikong.secrets import pseudonym_key
    from shikong.session import build_session
    from shikong.stages import registry
    from shikong.stages.context import StageContext

    face = importlib.import_module(f"shikong.jobs.{job}")
    stage = registry.job_stage(job)
    args = job_parser(job).parse_args(argv)
    configure_logging(args.log_level)
    cfg = config_from_args(args)

    def go() -> int:
        from shikong.io import lock
        from shikong.io.runlog import new_run_id
        from shikong.stages.runner import run_stage

        run_id = given_run_id(face, args) or new_run_id()
        require_writable_lakehouse(cfg)
        key = pseudonym_key(cfg)  # a missing key stops here, before Spark starts
        # Before the session: a second run on the lakehouse stops at once.
        with lock.locked(cfg.paths.lakehouse, run_id, stage.console_script):
            ctx = StageContext.create(build_session(cfg), cfg, run_id=run_id, key=key)
            run_stage(ctx, stage, **face.options(args))
        return 0

    return exit_on_failure(guarded(stage.name, go))
