"""Time-series benchmark: the forecast job on Spark vs a fixed-order SARIMAX, both engines.

S seeded synthetic daily series of 730 days (weekly seasonality + trend + noise, levels and
shapes drawn per series) are written once to Parquet and, in one run:

0. statsforecast start-up in a fresh Python process (import, first and second AutoARIMA
   call): what each Spark Python worker pays once;
1. Spark ``local[cores]``, per path: the job's path per engine (read Parquet,
   ``forecasts()`` as the ``forecast_arima`` stage calls it: ~8 series per pandas call, range-
   partitioned into ``series_partitions`` tasks; noop write) and the issue's baseline, a
   plain ``applyInPandas`` of statsmodels ``SARIMAX(1,1,1)(1,0,1,7)`` fit (defaults) +
   28-step forecast with 80%/95% intervals per series, repartitioned by series into the
   same number of tasks, with the same output schema;
2. bracketing each Spark stage, a plain single-process loop (one BLAS thread) of the same
   path's per-series function, half of its series just before the stage and half just
   after, so that a drift of the machine's speed during the run is shared by the Spark rate
   and the single-process rate it is compared with. The job's function
   (``make_forecast_fn`` with ``forecast_config(TimeSeriesSettings(engine=...))``) is timed
   on ``--job-sample`` series for the statsmodels engine (default: all of them, so that its
   like-for-like efficiency compares the same series), the other paths on the first
   ``--sample``; with ``--rounds`` > 1 the paths take turns on chunks of the series;
3. backtest on the first ``--backtest-series`` series, same folds for all (3 rolling
   origins 28 days apart, 28-day horizon, ``backtest_config``): the job's ``backtests()`` per
   engine (+ seasonal naive) and the fixed-order SARIMAX on each fold; MASE and WAPE
   aggregated with ``aggregate_metrics`` (MASE: mean over series of the per-series fold
   mean), and per engine x model family.

Rates exclude Spark start-up and one warm-up ``applyInPandas`` per path (Python worker
start, statsmodels/statsforecast import), both reported. ideal rate = cores x
single-process rate; efficiency = Spark rate / ideal rate. The log ends with the projected
duration of the default-size run, scaled from the phases of this one.

Run: ``python bench/run.py --area timeseries [--series 2000] [--sample 100] [--job-sample 0]
[--backtest-series 200] [--rounds 1] [--engines statsmodels,statsforecast] [--quick]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import common  # first third-party import (sorts before numpy): pins BLAS threads
import numpy as np
import pandas as pd
import ts_catalogue
from common import Result, check_target, log

N_DAYS = 730
HORIZON = 28
FIXED_ORDER = (1, 1, 1)
FIXED_SEASONAL = (1, 0, 1, 7)
START = dt.date(2023, 1, 1)


# --------------------------------------------------------------------------- data


def generate_series(n_series: int, seed: int, n_days: int = N_DAYS) -> pd.DataFrame:
    """Long frame ``series_id, ds, y_clean, y_obs, available`` (the job's input columns).

    Per series: level 20-200 units, linear trend of -20%..+40% of the level over the two
    years, a random weekly profile (amplitude 10-40% of the level), Gaussian noise with sd
    5-15% of the level; clipped at 0. Every day is observed, so ``y_clean == y_obs``.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_days, dtype=float)
    dow = (np.arange(n_days) + START.weekday()) % 7
    ds = pd.date_range(START, periods=n_days, freq="D").date
    frames = []
    for i in range(n_series):
        level = rng.uniform(20.0, 200.0)
        trend = level * rng.uniform(-0.2, 0.4) * t / n_days
        profile = rng.normal(0.0, 1.0, 7)
        profile = (profile - profile.mean()) / (np.abs(profile).max() or 1.0)
        weekly = level * rng.uniform(0.1, 0.4) * profile[dow]
        noise = rng.normal(0.0, level * rng.uniform(0.05, 0.15), n_days)
        y = np.maximum(level + trend + weekly + noise, 0.0).round(1)
        frames.append(
            pd.DataFrame(
                {"series_id": f"S{i:05d}", "ds": ds, "y_clean": y, "y_obs": y, "available": True}
            )
        )
    return pd.concat(frames, ignore_index=True)


def series_file(n_series: int, seed: int) -> Path:
    """Parquet of the generated series under bench/work (reused when present)."""
    folder = common.WORK_DIR / "timeseries"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"series_s{n_series}_d{N_DAYS}_seed{seed}.parquet"
    if not path.exists():
        t0 = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        generate_series(n_series, seed).to_parquet(tmp, index=False)
        tmp.rename(path)
        log(f"generated {n_series} series in {time.perf_counter() - t0:.1f}s -> {path}")
    return path


# --------------------------------------------------------------------------- fixed-order baseline


def fixed_forecast_arrays(y: np.ndarray, horizon: int = HORIZON) -> Any:
    """SARIMAX(1,1,1)(1,0,1,7), statsmodels defaults, + forecast with 80%/95% intervals."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    from shikong.timeseries import SeriesForecast, seasonal_naive_forecast
    from shikong.timeseries._common import quiet

    try:
        with quiet():
            res = SARIMAX(y, order=FIXED_ORDER, seasonal_order=FIXED_SEASONAL).fit(disp=False)
            pred = res.get_forecast(horizon)
    except (np.linalg.LinAlgError, ValueError):
        # A plain per-series loop still needs a guard: a singular fit falls back to
        # seasonal naive so one series cannot fail the baseline run.
        return seasonal_naive_forecast(y, horizon, reason="fixed_failed")
    with quiet():
        mean = np.asarray(pred.predicted_mean, dtype=float)
        ci80 = np.asarray(pred.conf_int(alpha=0.2), dtype=float)
        ci95 = np.asarray(pred.conf_int(alpha=0.05), dtype=float)
    return SeriesForecast(
        mean, ci80[:, 0], ci80[:, 1], ci95[:, 0], ci95[:, 1], "SARIMA(1,1,1)(1,0,1,7)", "fixed"
    )


def make_fixed_forecast_fn() -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Grouped fixed-order forecast with the job's output schema (``FORECAST_SCHEMA``)."""
    from shikong.timeseries.forecast import forecast_frame

    def _fixed(pdf: pd.DataFrame) -> pd.DataFrame:
        pdf = pdf.sort_values("ds")
        y = pdf["y_clean"].to_numpy(dtype=float)
        fc = fixed_forecast_arrays(y)
        return forecast_frame(str(pdf["series_id"].iloc[0]), pd.Timestamp(pdf["ds"].iloc[-1]), fc)

    return _fixed


def make_fixed_backtest_fn(
    folds: int, horizon: int, step: int, season: int = 7
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Grouped fixed-order backtest on the job's folds, rows of ``BACKTEST_SCHEMA``."""
    from shikong.frames import conform
    from shikong.timeseries.backtest import BACKTEST_FIELDS, fold_train_ends
    from shikong.timeseries.metrics import evaluate

    def _fixed_bt(pdf: pd.DataFrame) -> pd.DataFrame:
        pdf = pdf.sort_values("ds")
        y = pdf["y_clean"].to_numpy(dtype=float)
        actual = pdf["y_obs"].to_numpy(dtype=float)
        ds = pd.to_datetime(pdf["ds"]).to_numpy()
        sid = str(pdf["series_id"].iloc[0])
        rows = []
        for fold, end in enumerate(fold_train_ends(y.size, folds, horizon, step)):
            fc = fixed_forecast_arrays(y[:end], horizon)
            scores = evaluate(
                actual[end : end + horizon],
                fc.yhat,
                fc.lo80,
                fc.hi80,
                fc.lo95,
                fc.hi95,
                actual[:end],
                season,
            )
            rows.append(
                {
                    "series_id": sid,
                    "fold": fold,
                    "origin": pd.Timestamp(ds[end - 1]).date(),
                    "model": "fixed_sarima",
                    "model_spec": fc.model,
                    "reason": fc.reason,
                    **scores,
                }
            )
        return conform(pd.DataFrame(rows), BACKTEST_FIELDS, nullable=False)

    return _fixed_bt


# --------------------------------------------------------------------------- run

ENGINES = ("statsmodels", "statsforecast")

_SF_STARTUP = """
import json, sys, time
t0 = time.perf_counter()
from shikong.timeseries import sf_engine
sf_engine.load()
t1 = time.perf_counter()
import pandas as pd
y = pd.read_parquet(sys.argv[1], filters=[("series_id", "==", "S00000")])
y = y.sort_values("ds")["y_clean"].to_numpy(dtype=float)
t2 = time.perf_counter()
sf_engine.autoarima(y, 28, 7)
t3 = time.perf_counter()
sf_engine.autoarima(y, 28, 7)
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_s": t3 - t2, "second_s": t4 - t3}))
"""


def statsforecast_startup(path: Path) -> dict[str, float] | None:
    """Import and first-call cost of the statsforecast engine in a fresh Python process.

    This is what every Spark Python worker pays once (workers are reused). statsforecast
    2.x has no numba JIT, so ``first_s`` close to ``second_s`` is expected.
    """
    env = {**os.environ, "PYTHONPATH": str(common.REPO_ROOT / "lib")}
    try:
        out = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", _SF_STARTUP, str(path)],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
            env=env,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log(f"statsforecast start-up probe failed: {exc}")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def settings(engine: str) -> Any:
    """The job's default time-series settings with the given engine."""
    from shikong.config import TimeSeriesSettings

    return TimeSeriesSettings(engine=engine)


def plain_fns(engines: list[str]) -> dict[str, Callable[[pd.DataFrame], pd.DataFrame]]:
    """The per-series functions of every path: the fixed order and the job's, per engine."""
    from shikong.timeseries import forecast_config, make_forecast_fn

    fns: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {"fixed": make_fixed_forecast_fn()}
    for engine in engines:
        fns[engine] = make_forecast_fn(forecast_config(settings(engine)))
    return fns


def plain_loop(
    fn: Callable[[pd.DataFrame], pd.DataFrame], by_id: dict[str, pd.DataFrame], ids: list[str]
) -> list[float]:
    """Seconds of each series in a plain loop in this process, one BLAS thread."""
    from threadpoolctl import threadpool_limits

    times = []
    with threadpool_limits(limits=1):
        for sid in ids:
            t0 = time.perf_counter()
            fn(by_id[sid])
            times.append(time.perf_counter() - t0)
    return times


def loop_ids(name: str, chunk: list[str], sample: set[str], job_ids: set[str]) -> list[str]:
    """Series of ``chunk`` that the plain loop of path ``name`` times.

    The statsmodels engine is timed on ``job_ids`` (by default every series Spark forecasts:
    its per-series cost is skewed, so a 100-series sample alone would leave the ideal rate
    uncertain by ~+-8%); the other paths on the ``--sample`` series.
    """
    keep = job_ids if name == "statsmodels" else sample
    return [sid for sid in chunk if sid in keep]


def timed(
    fn: Callable[[pd.DataFrame], pd.DataFrame], wall: Any, cpu: Any
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """``fn`` adding its wall and CPU seconds per call to two Spark accumulators."""

    def _timed(pdf: pd.DataFrame) -> pd.DataFrame:
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn(pdf)
        wall.add(time.perf_counter() - t0)
        cpu.add(time.process_time() - c0)
        return out

    return _timed


def spark_cpu_seconds() -> float | None:
    """CPU seconds used so far by this process and its descendants (the local JVM, the
    PySpark daemon and its Python workers); None off Linux.

    Each live descendant counts its own CPU and that of its reaped children, so a Python
    worker that exits during a stage still counts (through the daemon that reaps it).
    """
    try:
        tick = os.sysconf("SC_CLK_TCK")
        procs: dict[int, tuple[int, float]] = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
            # utime + stime + cutime + cstime
            procs[int(pid)] = (int(fields[1]), sum(int(v) for v in fields[11:15]) / tick)
    except (OSError, ValueError, AttributeError):
        return None
    total, frontier, seen = time.process_time(), [os.getpid()], set()
    while frontier:
        parent = frontier.pop()
        for child, (ppid, cpu) in procs.items():
            if ppid == parent and child not in seen:
                seen.add(child)
                total += cpu
                frontier.append(child)
    return total


@contextmanager
def instrumented_job(wall: Any, cpu: Any) -> Iterator[None]:
    """Let ``forecasts()`` build its per-series function wrapped by :func:`timed`.

    The job's ``forecasts()`` runs unchanged; only the function it hands to
    ``applyInPandas`` also reports how long it ran (two clock reads and two accumulator
    adds per series).
    """
    from shikong.timeseries import distributed

    real = distributed.make_forecast_fn
    distributed.make_forecast_fn = lambda cfg=None: timed(real(cfg), wall, cpu)  # type: ignore[assignment]
    try:
        yield
    finally:
        distributed.make_forecast_fn = real  # type: ignore[assignment]


def run(args: argparse.Namespace) -> list[Result]:
    from pyspark.sql import functions as F

    from shikong.timeseries import (
        BACKTEST_SCHEMA,
        FORECAST_SCHEMA,
        backtest_config,
        backtests,
        forecasts,
        series_partitions,
    )

    n_series = 8 if args.quick and not args.series_given else args.series
    sample = min(n_series, 4 if args.quick else args.sample)
    n_bt = min(n_series, 4 if args.quick else args.backtest_series)
    engines = [e for e in args.engines if e == "statsmodels" or importlib.util.find_spec(e)]
    skipped = [e for e in args.engines if e not in engines]
    if skipped:
        log(f"not installed, skipped: {skipped}")
    bcfg = backtest_config(settings("statsmodels"))
    path = series_file(n_series, args.seed)
    pdf = pd.read_parquet(path)
    ids = sorted(pdf["series_id"].unique())
    phases: dict[str, float] = {"single": 0.0}
    conds: list[str] = []

    sf_start = statsforecast_startup(path) if "statsforecast" in engines else None
    if sf_start:
        log(f"statsforecast start-up: {sf_start}")

    job_sample = n_series if args.job_sample <= 0 else min(n_series, args.job_sample)
    sample_ids, job_ids = set(ids[:sample]), set(ids[:job_sample])
    fns = plain_fns(engines)
    by_id = dict(
        iter(pdf[pdf["series_id"].isin(sample_ids | job_ids)].groupby("series_id", sort=False))
    )
    for fn in fns.values():
        plain_loop(fn, by_id, ids[:1])  # imports and first-call costs out of the loops

    common.pickle_by_value(__name__)
    handle = common.start_spark(
        cores=args.cores, shuffle_partitions=2 * args.cores, app_name="shikong-bench-timeseries"
    )
    spark = handle.spark
    parallelism = spark.sparkContext.defaultParallelism

    def raw_df(limit_ids: list[str]) -> Any:
        """The job's input: ``forecasts()``/``backtests()`` group and partition it."""
        return spark.read.parquet(str(path)).where(F.col("series_id").isin(limit_ids))

    def series_df(limit_ids: list[str]) -> Any:
        """The baseline's input: repartitioned by series, one pandas call per series."""
        df = raw_df(limit_ids)
        return df.repartition(series_partitions(len(limit_ids), parallelism), "series_id")

    def fixed_forecasts(df: Any) -> Any:
        return df.groupBy("series_id").applyInPandas(make_fixed_forecast_fn(), FORECAST_SCHEMA)

    # Warm-up on 4 series (4 tasks, so both Python workers start and import everything).
    t0 = time.perf_counter()
    warm_ids = ids[: min(4, n_series)]
    for engine in engines:
        common.noop_write(forecasts(raw_df(warm_ids), settings(engine), n_series=len(warm_ids)))
    common.noop_write(fixed_forecasts(series_df(warm_ids)))
    warm_s = time.perf_counter() - t0
    log(f"warm-up {warm_s:.1f}s")

    # Each Spark stage is bracketed by its own path's plain loop: half of the looped series
    # just before it, half just after, so a drift in the machine's speed over the run (a
    # shared VM's neighbours) hits the Spark rate and the single-process rate alike.
    # With --rounds > 1 the paths also take turns on disjoint chunks of the series.
    rounds = max(1, min(args.rounds, n_series // 8 or 1))
    chunks = [list(c) for c in np.array_split(np.array(ids), rounds)]
    rate_s: dict[str, float] = dict.fromkeys([*engines, "fixed"], 0.0)
    sp_times: dict[str, list[float]] = {name: [] for name in rate_s}
    # the bracketing halves kept apart too, so the notes show how far the machine drifted
    sp_halves: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in rate_s}
    # seconds spent inside the per-series function, wall and CPU, summed over series
    sc = spark.sparkContext
    inside = {name: (sc.accumulator(0.0), sc.accumulator(0.0)) for name in rate_s}
    tree_cpu = dict.fromkeys(rate_s, 0.0)
    for r, chunk in enumerate(chunks):
        for name in rate_s:
            looped = loop_ids(name, chunk, sample_ids, job_ids)
            conds.append(f"{name} round {r + 1}/{rounds}: {common.conditions()}")
            before = plain_loop(fns[name], by_id, looped[0::2])
            wall_acc, cpu_acc = inside[name]
            if name == "fixed":
                out = (
                    series_df(chunk)
                    .groupBy("series_id")
                    .applyInPandas(
                        timed(make_fixed_forecast_fn(), wall_acc, cpu_acc), FORECAST_SCHEMA
                    )
                )
            else:
                with instrumented_job(wall_acc, cpu_acc):
                    out = forecasts(raw_df(chunk), settings(name), n_series=len(chunk))
            cpu0 = spark_cpu_seconds()
            t1 = time.perf_counter()
            common.noop_write(out)
            rate_s[name] += time.perf_counter() - t1
            cpu1 = spark_cpu_seconds()
            if cpu0 is not None and cpu1 is not None:
                tree_cpu[name] += cpu1 - cpu0
            after = plain_loop(fns[name], by_id, looped[1::2])
            sp_times[name] += before + after
            sp_halves[name][0].extend(before)
            sp_halves[name][1].extend(after)
            phases["single"] += sum(before) + sum(after)
        log(
            f"forecasts round {r + 1}/{rounds} ({len(chunk)} series), cumulative s: "
            + ", ".join(f"{k} {v:.1f}" for k, v in rate_s.items())
            + "; plain loop s/series: "
            + ", ".join(f"{k} {np.mean(v):.3f} ({len(v)})" for k, v in sp_times.items() if v)
        )
    sp = {name: np.asarray(v) for name, v in sp_times.items()}

    bt_ids = ids[:n_bt]
    bt_frames, bt_s = [], {}
    for name in [*engines, "fixed"]:
        conds.append(f"{name} backtest start: {common.conditions()}")
        t0 = time.perf_counter()
        if name == "fixed":
            fn = make_fixed_backtest_fn(bcfg.folds, bcfg.horizon, bcfg.step)
            got = series_df(bt_ids).groupBy("series_id").applyInPandas(fn, BACKTEST_SCHEMA)
        else:
            got = backtests(raw_df(bt_ids), settings(name), n_series=len(bt_ids))
        frame = got.toPandas()
        bt_s[name] = time.perf_counter() - t0
        log(f"{name} backtest {n_bt} series: {bt_s[name]:.1f}s")
        if name != "fixed":
            # one seasonal-naive baseline (identical for every engine: same folds)
            keep = frame["model"] == "chosen"
            if name == engines[0]:
                keep |= frame["model"] == "seasonal_naive"
            frame = frame[keep].copy()
            frame.loc[frame["model"] == "chosen", "model"] = name
        bt_frames.append(frame)
    conds.append(f"end: {common.conditions()}")
    spark.stop()

    phases["spark_forecasts"] = sum(rate_s.values()) + warm_s
    phases["spark_backtests"] = sum(bt_s.values())
    info = dict(
        n_series=n_series,
        sample=sample,
        n_bt=n_bt,
        parts=series_partitions(len(chunks[0]), parallelism),
        rounds=rounds,
        engines=engines,
        rate_s=rate_s,
        inside={k: (w.value, c.value) for k, (w, c) in inside.items()},
        tree_cpu=tree_cpu,
        sp_halves=sp_halves,
        bt_s=bt_s,
        warm_s=warm_s,
        sp=sp,
        sf_start=sf_start,
        backtest=pd.concat(bt_frames, ignore_index=True),
        folds=bcfg.folds,
        conds="; ".join(conds),
    )
    log_projection(phases, sp, n_series, n_bt, startup_s=handle.startup_s)
    return build_results(info, handle)


def log_projection(
    phases: dict[str, float],
    sp: dict[str, np.ndarray],
    n_series: int,
    n_bt: int,
    *,
    startup_s: float,
) -> None:
    """Log how long the default-size run would take, scaled from this run's phases.

    The plain loops scale with their per-series means (every path on 100 series, the
    statsmodels engine on all 2,000), Spark forecasts with ``--series``, backtests with
    ``--backtest-series``; data generation (~1 s per 100 series, once) and the start-up
    probes are added on top.
    """
    full = {"series": 2000, "sample": 100, "backtest": 200}
    per_series = {k: float(v.mean()) for k, v in sp.items() if v.size}
    single = full["sample"] * sum(per_series.values()) + (
        full["series"] - full["sample"]
    ) * per_series.get("statsmodels", 0.0)
    proj = (
        single
        + phases["spark_forecasts"] * full["series"] / max(n_series, 1)
        + phases["spark_backtests"] * full["backtest"] / max(n_bt, 1)
        + startup_s
        + 30.0
    )
    log(
        "phases (s): "
        + ", ".join(f"{k} {v:.0f}" for k, v in phases.items())
        + f"; projected duration of --series 2000 --sample 100 --backtest-series 200 on this "
        f"machine now: {proj / 60:.0f} min"
    )


def _rate_notes(i: dict[str, Any], name: str) -> str:
    times = i["sp"][name]
    return f"{times.mean():.3f} s/series (median {np.median(times):.3f}) over {times.size} series"


def _inside_notes(i: dict[str, Any], name: str, cores: int) -> str:
    """Where the Spark time went: inside the per-series function, around it, or elsewhere.

    ``tree`` is the CPU time of the JVM, the PySpark daemon and the Python workers during
    the stage: ``inside CPU / tree`` is the share of Spark's own CPU spent forecasting (the
    rest is scheduling, shuffle, Arrow and pandas conversion), unaffected by other
    processes; ``tree / (cores x wall)`` is the share of the cores Spark got (1.0 on a quiet
    machine; lower means other processes took CPU and the efficiency is understated).
    """
    wall, cpu = i["inside"][name]
    stage = i["rate_s"][name]
    if not wall or not stage:
        return ""
    text = (
        f"; inside the per-series function: {wall / (cores * stage):.3f} of {cores} cores x "
        f"wall, CPU/wall inside it {cpu / wall:.2f}, {cpu / i['n_series'] * 1000:.0f} ms CPU "
        f"per series inside vs {float(i['sp'][name].mean()) * 1000:.0f} ms wall in the plain "
        "loop"
    )
    before, after = i["sp_halves"][name]
    if before and after:
        text += (
            f"; plain loop {np.mean(before) * 1000:.0f} ms/series just before the Spark stage "
            f"({len(before)} series), {np.mean(after) * 1000:.0f} ms just after ({len(after)})"
        )
    tree = i["tree_cpu"].get(name)
    if tree:
        share, obtained = cpu / tree, tree / (cores * stage)
        text += (
            f"; Spark processes' CPU {tree:.0f}s: {share:.3f} of it inside the function "
            f"(the rest scheduling, shuffle, Arrow, pandas conversion), cores obtained "
            f"{obtained:.2f} of {cores} x wall (1.00 on a quiet machine); drift-free "
            f"cross-check, all measured within the stage: share x cores obtained = "
            f"{share * obtained:.3f} (the efficiency if the function costs the same CPU in "
            "Spark as in the plain loop)"
        )
    return text


def _efficiency_interval(i: dict[str, Any], name: str, cores: int) -> str:
    """Efficiency with a +-1 standard-error band from the single-process sample."""
    times = i["sp"][name]
    rate = i["n_series"] / i["rate_s"][name]
    mean, se = float(times.mean()), float(times.std(ddof=1) / np.sqrt(times.size))
    if times.size < 2 or not np.isfinite(se):
        return ""
    lo, hi = rate * (mean - se) / cores, rate * (mean + se) / cores
    return f"; +-1 s.e. of the sampled per-series cost: {lo:.3f}..{hi:.3f}"


def build_results(i: dict[str, Any], handle: Any) -> list[Result]:
    from shikong.timeseries import SERIES_PER_GROUP, aggregate_metrics

    cores = handle.cores
    n = i["n_series"]
    rates = {k: n / v for k, v in i["rate_s"].items()}
    single = {k: 1.0 / float(v.mean()) for k, v in i["sp"].items()}
    fixed_rate = rates["fixed"]
    machine = f"Machine: {i['conds']}."
    out = [
        common.spark_startup_result(
            handle,
            f"One warm-up applyInPandas of 4 series per path ({i['warm_s']:.1f}s: "
            "Python worker start, statsmodels/statsforecast import) also excluded.",
        )
    ]
    if i["sf_start"]:
        st = i["sf_start"]
        out.append(
            Result(
                name="statsforecast_worker_startup",
                unit="s",
                value=st["import_s"] + st["first_s"],
                higher_is_better=False,
                notes=(
                    f"fresh Python process: import {st['import_s']:.2f}s + first AutoARIMA fit "
                    f"and forecast {st['first_s']:.2f}s (second call {st['second_s']:.2f}s). "
                    "statsforecast 2.x has no numba JIT (C++ kernels), so there is no compile "
                    "step; the import is paid once per Spark Python worker (workers are reused)"
                ),
            )
        )
    job = "statsmodels"
    out += [
        Result(
            name=f"forecast_job_{n}_series",
            unit="series/s",
            value=rates[job],
            baseline_name="fixed_sarimax_applyInPandas",
            baseline_value=fixed_rate,
            target=">= 2.0",
            meets_target=check_target(rates[job] / fixed_rate, ">= 2.0"),
            notes=(
                f"{n} series x {N_DAYS} days, local[{cores}], every path in {i['rounds']} "
                f"alternating rounds of ~{n // i['rounds']} series, {i['parts']} tasks each "
                f"(series_partitions); job (engine statsmodels): read Parquet + forecasts() "
                f"(~{SERIES_PER_GROUP} series per pandas call, pruned SARIMA search on the "
                f"innovations likelihood, fallbacks, 28-day forecast + 80/95% bands) + noop "
                f"write {i['rate_s'][job]:.1f}s; baseline: plain applyInPandas of "
                f"SARIMAX(1,1,1)(1,0,1,7) fit + 28-step forecast with intervals, one call per "
                f"series, repartitioned by series_id, same schema, "
                f"{i['rate_s']['fixed']:.1f}s. {machine}"
            ),
        ),
        Result(
            name="forecast_job_parallel_efficiency",
            unit="series/s",
            value=rates[job],
            baseline_name=f"ideal_{cores}x_single_process_job_fn",
            baseline_value=cores * single[job],
            target=">= 0.85",
            meets_target=check_target(rates[job] / (cores * single[job]), ">= 0.85"),
            notes=(
                f"like for like: ratio = job rate on Spark / ({cores} x the same per-series "
                f"function in a plain loop, {_rate_notes(i, job)}, half just before and half "
                f"just after the Spark stage; Spark forecasts "
                f"{i['n_series']} series)"
                + _efficiency_interval(i, job, cores)
                + _inside_notes(i, job, cores)
            ),
        ),
        Result(
            name="forecast_job_vs_ideal_fixed_rate",
            unit="series/s",
            value=rates[job],
            baseline_name=f"ideal_{cores}x_single_process_fixed_sarimax",
            baseline_value=cores * single["fixed"],
            notes=(
                f"job rate / ({cores} cores x single-process fixed-order rate, "
                f"{_rate_notes(i, 'fixed')}, 1 BLAS thread)"
            ),
        ),
        Result(
            name="fixed_sarimax_parallel_efficiency",
            unit="series/s",
            value=fixed_rate,
            baseline_name=f"ideal_{cores}x_single_process_fixed_sarimax",
            baseline_value=cores * single["fixed"],
            notes="ratio = fixed-order applyInPandas rate / (cores x its single-process rate)"
            + _efficiency_interval(i, "fixed", cores)
            + _inside_notes(i, "fixed", cores),
        ),
    ]
    if "statsforecast" in rates:
        sf = "statsforecast"
        out += [
            Result(
                name=f"forecast_statsforecast_{n}_series",
                unit="series/s",
                value=rates[sf],
                baseline_name="fixed_sarimax_applyInPandas",
                baseline_value=fixed_rate,
                notes=(
                    f"same job with timeseries.engine: statsforecast (AutoARIMA season 7, CSS "
                    f"order search + ML refit, AutoETS fallback), {i['rate_s'][sf]:.1f}s; "
                    f"statsmodels engine {rates[job]:.2f} series/s in the same run"
                ),
            ),
            Result(
                name="statsforecast_parallel_efficiency",
                unit="series/s",
                value=rates[sf],
                baseline_name=f"ideal_{cores}x_single_process_statsforecast_fn",
                baseline_value=cores * single[sf],
                notes=(
                    f"like for like, plain loop {_rate_notes(i, sf)}"
                    + _efficiency_interval(i, sf, cores)
                    + _inside_notes(i, sf, cores)
                ),
            ),
        ]
    out += backtest_results(i, aggregate_metrics)
    return out


def _family(spec: str) -> str:
    """Model family of a ``model_spec``: ``SARIMA``, ``ARIMA``, ``ETS``, ``SBA``..."""
    head = spec.split("(", 1)[0].strip()
    return head or spec


def backtest_results(i: dict[str, Any], aggregate_metrics: Callable[..., Any]) -> list[Result]:
    """MASE and WAPE rows of each engine against the fixed order, with the family table."""
    bt = i["backtest"].copy()
    agg = aggregate_metrics(bt, by=("model",)).set_index("model")
    if "fixed_sarima" not in agg.index:
        return [Result(name="backtest", unit="MASE", value=None, notes="no backtest rows")]
    per_series = bt.groupby(["model", "series_id"])["mase"].mean()
    robust = {
        m: (float(v.median()), int((v > 3.0).sum()), int(v.size))
        for m, v in per_series.groupby(level="model")
    }
    engines_bt = [e for e in i["engines"] if e in agg.index]
    fam = bt[bt["model"].isin(engines_bt)].copy()
    fam["family"] = fam["model"] + ":" + fam["model_spec"].map(_family)
    fam_agg = aggregate_metrics(fam, by=("family",))
    family_table = "; ".join(
        f"{r.family} {r.n_series} series MASE {r.mase:.3f} WAPE {r.wape:.3f}"
        for r in fam_agg.itertuples()
    )
    snaive = agg.loc["seasonal_naive"] if "seasonal_naive" in agg.index else None
    common_notes = (
        f"Same {i['folds']} rolling origins 28 days apart, 28-day horizon, on the first "
        f"{i['n_bt']} series; MASE scaled by the in-sample seasonal-naive (lag 7) MAE, mean "
        f"over series of the fold mean; WAPE = sum|e| / sum|y| (aggregate_metrics). "
        + (
            f"Seasonal naive on the same folds: MASE {snaive['mase']:.3f}, WAPE "
            f"{snaive['wape']:.3f}. "
            if snaive is not None
            else ""
        )
        + "Median per-series MASE / series with MASE > 3: "
        + ", ".join(f"{m} {med:.3f} / {bad} of {k}" for m, (med, bad, k) in sorted(robust.items()))
        + f". Per engine and model family: {family_table}. Backtest wall time: "
        + ", ".join(f"{k} {v:.1f}s ({i['n_bt'] / v:.2f} series/s)" for k, v in i["bt_s"].items())
        + "."
    )
    out = []
    fixed = agg.loc["fixed_sarima"]
    for engine in engines_bt:
        row = agg.loc[engine]
        suffix = "" if engine == "statsmodels" else "_statsforecast"
        out.append(
            Result(
                name=f"backtest_mase{suffix}_{i['n_bt']}_series",
                unit="MASE",
                value=float(row["mase"]),
                baseline_name="fixed_sarimax_same_folds",
                baseline_value=float(fixed["mase"]),
                higher_is_better=False,
                target=">= 1.0" if engine == "statsmodels" else None,
                meets_target=(
                    check_target(float(fixed["mase"]) / float(row["mase"]), ">= 1.0")
                    if engine == "statsmodels"
                    else None
                ),
                notes=(
                    f"engine {engine}; lower is better, ratio = fixed MASE / engine MASE "
                    f"(target: the job's accuracy at least the fixed order's). " + common_notes
                ),
            )
        )
        out.append(
            Result(
                name=f"backtest_wape{suffix}_{i['n_bt']}_series",
                unit="WAPE",
                value=float(row["wape"]),
                baseline_name="fixed_sarimax_same_folds",
                baseline_value=float(fixed["wape"]),
                higher_is_better=False,
                notes=f"engine {engine}; lower is better, ratio = fixed WAPE / engine WAPE",
            )
        )
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser)
    parser.add_argument(
        "--series", type=int, default=None, help="series forecast on Spark (default 2000; quick 8)"
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=100,
        help="series of the single-process loops (default 100; quick 4)",
    )
    parser.add_argument(
        "--job-sample",
        type=int,
        default=0,
        help="series of the statsmodels engine's plain loop (default 0 = every series "
        "forecast on Spark, for an exact like-for-like efficiency)",
    )
    parser.add_argument(
        "--backtest-series",
        type=int,
        default=200,
        help="series backtested by every path (default 200; quick 4)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="the Spark forecast paths take turns on this many chunks of the series "
        "(default 1 = one stage per path over all series, as the job runs; on a busy "
        "machine 4 makes load changes hit every path alike, at the price of a stage "
        "start and a tail per round)",
    )
    parser.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help="job engines to measure (default statsmodels,statsforecast; statsforecast is "
        "skipped when not installed)",
    )
    parser.add_argument(
        "--catalogue",
        choices=("yes", "no", "only"),
        default="yes",
        help="also (or only) the full-catalogue rows of bench/ts_catalogue.py (default yes; "
        "its first run builds the default world's series, a few minutes)",
    )
    ts_catalogue.add_args(parser)
    args = parser.parse_args(argv)
    args.series_given = args.series is not None
    if args.series is None:
        args.series = 2000
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(args.engines) - set(ENGINES)
    if unknown or "statsmodels" not in args.engines:
        parser.error(f"--engines: statsmodels plus optionally statsforecast, got {args.engines}")
    return args


def main(argv: list[str] | None = None) -> list[Result]:
    args = parse_args(argv)
    if args.catalogue == "only":
        results = ts_catalogue.run(args)
        common.print_table("timeseries", results)
        path = common.results_dir(args.quick, args.out_dir) / "timeseries.json"
        ts_catalogue.merge(path, results)
        print(f"wrote {path} (catalogue rows)")
        return results
    results = run(args)
    if args.catalogue == "yes" and not args.quick:
        results += [r for r in ts_catalogue.run(args) if r.name != "spark_startup"]
    common.print_table("timeseries", results)
    path = common.write_results("timeseries", results, common.results_dir(args.quick, args.out_dir))
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
