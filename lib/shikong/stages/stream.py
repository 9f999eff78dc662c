"""Stage ``stream``: incremental ingest of the landing folder with Structured Streaming.

One file-source stream per landing source (:mod:`shikong.io.streams`), checkpointed under
``ingest.stream_checkpoint`` (default ``<lakehouse>/_streaming/ingest/<source>``). Each
micro-batch is the files that arrived since the last one; ``foreachBatch`` sends them
through batch ingest's own code path (:func:`shikong.stages.ingest.ingest_frames`): the
same reader, validation, quarantine, reconciliation (rows in = accepted + quarantined per
file) and run log.

**Order.** A pass drains the streams one after another with ``availableNow``, in the
catalogue-first order of :data:`shikong.schemas.SOURCES` (products, warehouses, customers,
then orders, order lines, events, inventory), as batch ingest does: the referential
checks of a fact batch read the bronze catalogue, so every catalogue file that had arrived
when the pass began is committed before any fact file of the pass is validated. Spark
orders nothing between concurrent queries: with one processing-time query per source an
order batch could commit before the customers batch it refers to and quarantine valid
rows as ``UNKNOWN_REFERENCE``. A continuous run therefore repeats the ordered pass every
``interval`` seconds (the processing-time trigger, scheduled here) instead of running
seven free-running queries. ``--once`` is one pass (for schedules).

**Exactly once.** The checkpoint's offset log fixes which files each batch holds, so a
batch that did not commit (a crash, ``kill -9``) is replayed with the same files and the
same batch id. Every table the batch writes (the source's bronze table, the quarantine,
``ops.run_log``) is written under Delta's idempotent-write identity (query id, batch id):
a replay skips every write that had committed and makes the others. Underneath, the writes
are MERGEs on business keys (quarantine: source, file, row hash, occurrence; run log: job,
run, source, file), so even a replay under another identity inserts no row twice.

Semantics across batches are those of batch ingest across runs: within a batch the first
copy of a business key wins (later copies are ``DUPLICATE``); a key restated in a later
batch updates bronze (restated sources) or is kept as first seen (events, inventory).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

from shikong import schemas as S
from shikong.config import ConfigError
from shikong.io import fs, streams, world
from shikong.stages.context import StageContext, step
from shikong.stages.ingest import (
    SourceReport,
    Txn,
    expire_quarantine,
    ingest_frames,
    landing_source,
)

log = logging.getLogger(__name__)


@dataclass
class StreamReport:
    """What a ``stream`` run did.

    Attributes:
        passes: Ordered passes over the sources.
        batches: Micro-batches with files, per source.
        files: Landing files ingested, per source.
        interrupted: Stopped by Ctrl-C.
    """

    passes: int = 0
    batches: dict[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False


class _CtrlC:
    """SIGINT handler: the first Ctrl-C asks the stream to stop after the batch in progress,
    the second stops it at once (``KeyboardInterrupt``; the batch is replayed next run).

    Raising inside a call to the JVM would break Py4J's connection mid-answer, so the
    first Ctrl-C only sets a flag, which the loop reads between batches and while it waits.
    """

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: object) -> None:
        if self.requested:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True
        log.warning("Ctrl-C: stopping after the batch in progress (Ctrl-C again stops at once)")


@contextlib.contextmanager
def _ctrl_c() -> Iterator[_CtrlC]:
    stop = _CtrlC()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers belong to the main thread
        return
    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def checkpoint_root(ctx: StageContext) -> str:
    """Where the streams' checkpoints live (one folder per source below it)."""
    return ctx.cfg.ingest.stream_checkpoint or ctx.catalog.location("_streaming", "ingest")


def ingest_batch(
    ctx: StageContext,
    source: S.LandingSource,
    files: Sequence[str],
    *,
    stream: str,
    batch_id: int,
) -> SourceReport:
    """Ingest one micro-batch: ``files`` of ``source`` (relative to the landing folder).

    Idempotent per ``(stream, batch_id)``: a replay of a batch changes no table.
    """
    raw = landing_source(ctx, source, files)
    txn = Txn(app_id=stream, version=batch_id)
    (report,) = ingest_frames(ctx, {source.name: raw}, layer="bronze", txn=txn, expire=False)
    return report


def ingest_pass(
    ctx: StageContext, report: StreamReport | None = None, *, stop: _CtrlC | None = None
) -> StreamReport:
    """Drain every source's stream once (``availableNow``), catalogue first (until ``stop``
    is requested: the sources after it wait for the next run)."""
    report = report if report is not None else StreamReport()
    landing = ctx.cfg.paths.landing_dir
    # A different generated world (or any, where the Olist data is) must not be mixed in,
    # as in batch ingest.
    ident = world.landing_world(landing)
    world.check_landing(ctx.cfg.paths.lakehouse, ident)
    root = checkpoint_root(ctx)
    ran = 0
    for source in S.SOURCES:
        if stop is not None and stop.requested:
            break
        if not fs.exists(fs.join(landing, source.folder)):
            continue  # a file-source stream needs its folder; the next pass looks again

        def on_batch(files: list[str], stream: str, batch_id: int, src: S.LandingSource) -> None:
            with step(f"stream {src.name} batch {batch_id}") as done:
                done(ingest_batch(ctx, src, files, stream=stream, batch_id=batch_id).rows_in)
            report.files[src.name] = report.files.get(src.name, 0) + len(files)

        n = streams.drain(
            streams.landing_file_stream(ctx.spark, landing, source),
            source=source,
            checkpoint=fs.join(root, source.name),
            on_batch=partial(on_batch, src=source),
        )
        report.batches[source.name] = report.batches.get(source.name, 0) + n
        ran += n
    report.passes += 1
    if ran:
        expire_quarantine(ctx)
        if ident is not None:
            world.record(ctx.cfg.paths.lakehouse, ident)
    return report


def run(ctx: StageContext, *, once: bool = True, interval: float | None = None) -> StreamReport:
    """Ingest the landing folder incrementally.

    Args:
        ctx: Stage context.
        once: One pass over what has arrived (``availableNow``), then return; otherwise a
            pass every ``interval`` seconds until Ctrl-C (the batch in progress finishes,
            then the run ends cleanly).
        interval: Seconds between passes (default ``ingest.stream_interval_seconds``).
    """
    every = ctx.cfg.ingest.stream_interval_seconds if interval is None else interval
    if not every > 0:
        raise ConfigError(f"ingest.stream_interval_seconds / --interval: must be > 0, got {every}")
    report = StreamReport()
    with _ctrl_c() as stop:
        while not stop.requested:
            next_pass = time.monotonic() + every
            ingest_pass(ctx, report, stop=stop)
            if once:
                break
            while not stop.requested and time.monotonic() < next_pass:
                time.sleep(min(0.2, max(0.0, next_pass - time.monotonic())))
        if stop.requested:
            report.interrupted = True
            log.warning("stream stopped by Ctrl-C after %d pass(es)", report.passes)
    log.info(
        "stream: %d pass(es), %d batch(es), %d file(s)",
        report.passes,
        sum(report.batches.values()),
        sum(report.files.values()),
    )
    return report
