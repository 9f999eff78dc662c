"""Time-series benchmark: the forecast job's per-series function on Spark vs fixed-order SARIMAX.

S seeded synthetic daily series of 730 days (weekly seasonality + trend + noise, levels and
shapes drawn per series) are written once to Parquet and, in one run:

1. single process, one BLAS thread, on the first ``--sample`` series: a plain loop of
   statsmodels ``SARIMAX(1,1,1)(1,0,1,7)`` fit (defaults) + 28-step forecast with 80%/95%
   intervals, and a loop of the job's own per-series function (``make_forecast_fn`` with
   ``forecast_config(TimeSeriesSettings())``);
2. Spark ``local[cores]``: the job's path (read Parquet, repartition by series as
   ``run_forecast`` does, ``forecasts()`` = ``applyInPandas(make_forecast_fn(...))``, noop
   write) and the issue's baseline, a plain ``applyInPandas`` of the fixed-order fit with the
   same output schema;
3. backtest on the first ``--backtest-series`` series, same folds for both (3 rolling
   origins 28 days apart, 28-day horizon, ``backtest_config``): the job's ``backtests()``
   (pruned SARIMA search + seasonal naive) and the fixed-order SARIMAX on each fold; MASE
   aggregated with ``aggregate_metrics`` (mean over series of the per-series fold mean).

Rates exclude Spark start-up and one warm-up ``applyInPandas`` (Python worker start and
statsmodels import), both reported. ideal rate = cores x single-process rate.

Run: ``python bench/run.py --area timeseries [--series 400] [--quick]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import common  # first third-party import (sorts before numpy): pins BLAS threads
import numpy as np
import pandas as pd
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

    from shikong.timeseries._common import quiet
    from shikong.timeseries.forecast import SeriesForecast, seasonal_naive_forecast

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
    from shikong.timeseries._common import conform
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
        return conform(pd.DataFrame(rows), BACKTEST_FIELDS)

    return _fixed_bt


# --------------------------------------------------------------------------- run


def single_process(pdf: pd.DataFrame, ids: list[str]) -> dict[str, float]:
    """Seconds per series of the fixed fit and of the job's function, one process/thread."""
    from threadpoolctl import threadpool_limits

    from shikong.config import TimeSeriesSettings
    from shikong.jobs.forecast_arima import forecast_config
    from shikong.timeseries import make_forecast_fn

    job_fn = make_forecast_fn(forecast_config(TimeSeriesSettings()))
    fixed_fn = make_fixed_forecast_fn()
    groups = [g for _, g in pdf[pdf["series_id"].isin(ids)].groupby("series_id", sort=True)]
    out = {}
    with threadpool_limits(limits=1):
        fixed_fn(groups[0])  # import + first-call costs out of the loop
        job_fn(groups[0])
        for name, fn in (("fixed", fixed_fn), ("job", job_fn)):
            t0 = time.perf_counter()
            for g in groups:
                fn(g)
            out[name] = (time.perf_counter() - t0) / len(groups)
    return out


def run(args: argparse.Namespace) -> list[Result]:
    from pyspark.sql import functions as F

    from shikong.config import TimeSeriesSettings
    from shikong.jobs.forecast_arima import backtest_config, backtests, forecasts
    from shikong.timeseries import BACKTEST_SCHEMA, FORECAST_SCHEMA, aggregate_metrics

    n_series = 8 if args.quick and not args.series_given else args.series
    sample = min(n_series, 4 if args.quick else args.sample)
    n_bt = min(n_series, 4 if args.quick else args.backtest_series)
    ts = TimeSeriesSettings()
    bcfg = backtest_config(ts)
    path = series_file(n_series, args.seed)
    pdf = pd.read_parquet(path)
    ids = sorted(pdf["series_id"].unique())

    log(f"single process on {sample} series ...")
    conds = [f"single-process start: {common.conditions()}"]
    sp = single_process(pdf, ids[:sample])
    log(f"single process: fixed {sp['fixed']:.3f} s/series, job fn {sp['job']:.3f} s/series")

    common.pickle_by_value(__name__)
    handle = common.start_spark(
        cores=args.cores, shuffle_partitions=2 * args.cores, app_name="shikong-bench-timeseries"
    )
    spark = handle.spark
    parts = max(2, min(n_series, 4 * spark.sparkContext.defaultParallelism))

    def series_df(limit_ids: list[str] | None = None) -> Any:
        df = spark.read.parquet(str(path))
        if limit_ids is not None:
            df = df.where(F.col("series_id").isin(limit_ids))
        n = len(limit_ids) if limit_ids is not None else n_series
        return df.repartition(
            max(2, min(n, 4 * spark.sparkContext.defaultParallelism)), "series_id"
        )

    t0 = time.perf_counter()
    warm_ids = ids[: min(4, n_series)]
    common.noop_write(forecasts(series_df(warm_ids), ts))
    common.noop_write(
        series_df(warm_ids)
        .groupBy("series_id")
        .applyInPandas(make_fixed_forecast_fn(), FORECAST_SCHEMA)
    )
    warm_s = time.perf_counter() - t0
    log(f"warm-up {warm_s:.1f}s")

    conds.append(f"Spark forecasts start: {common.conditions()}")
    t0 = time.perf_counter()
    common.noop_write(forecasts(series_df(), ts))
    job_s = time.perf_counter() - t0
    log(f"job forecast {n_series} series: {job_s:.1f}s")
    t0 = time.perf_counter()
    common.noop_write(
        series_df().groupBy("series_id").applyInPandas(make_fixed_forecast_fn(), FORECAST_SCHEMA)
    )
    fixed_s = time.perf_counter() - t0
    log(f"fixed-order applyInPandas {n_series} series: {fixed_s:.1f}s")

    conds.append(f"backtests start: {common.conditions()}")
    bt_ids = ids[:n_bt]
    t0 = time.perf_counter()
    job_bt = backtests(series_df(bt_ids), ts).toPandas()
    job_bt_s = time.perf_counter() - t0
    log(f"job backtest {n_bt} series: {job_bt_s:.1f}s")
    t0 = time.perf_counter()
    fixed_bt = (
        series_df(bt_ids)
        .groupBy("series_id")
        .applyInPandas(make_fixed_backtest_fn(bcfg.folds, bcfg.horizon, bcfg.step), BACKTEST_SCHEMA)
        .toPandas()
    )
    fixed_bt_s = time.perf_counter() - t0
    log(f"fixed-order backtest {n_bt} series: {fixed_bt_s:.1f}s")
    conds.append(f"end: {common.conditions()}")
    spark.stop()

    all_bt = pd.concat([job_bt, fixed_bt], ignore_index=True)
    agg = aggregate_metrics(all_bt, by=("model",)).set_index("model")
    # The mean MASE is sensitive to a few exploding forecasts: give the median too, and
    # how many series score worse than 3x the seasonal-naive in-sample error.
    per_series = all_bt.groupby(["model", "series_id"])["mase"].mean()
    robust = {
        m: (float(v.median()), int((v > 3.0).sum()), int(v.size))
        for m, v in per_series.groupby(level="model")
    }
    reasons = job_bt.loc[job_bt["model"] == "chosen", "model_spec"].value_counts().head(4)
    info = dict(
        n_series=n_series,
        sample=sample,
        n_bt=n_bt,
        parts=parts,
        job_s=job_s,
        fixed_s=fixed_s,
        job_bt_s=job_bt_s,
        fixed_bt_s=fixed_bt_s,
        warm_s=warm_s,
        sp=sp,
        agg=agg,
        specs=reasons.to_dict(),
        robust=robust,
        folds=bcfg.folds,
        conds="; ".join(conds),
    )
    return build_results(info, handle)


def build_results(i: dict[str, Any], handle: Any) -> list[Result]:
    cores = handle.cores
    n = i["n_series"]
    job_rate, fixed_rate = n / i["job_s"], n / i["fixed_s"]
    single_fixed, single_job = 1.0 / i["sp"]["fixed"], 1.0 / i["sp"]["job"]
    agg = i["agg"]
    sf_note = (
        "statsforecast is installed but not benchmarked yet"
        if importlib.util.find_spec("statsforecast")
        else "statsforecast is not installed (optional extra `.[statsforecast]`); not measured"
    )
    out = [
        common.spark_startup_result(
            handle,
            f"One warm-up applyInPandas of 4 series per path ({i['warm_s']:.1f}s: "
            "Python worker start, statsmodels import) also excluded.",
        ),
        Result(
            name=f"forecast_job_{n}_series",
            unit="series/s",
            value=job_rate,
            baseline_name="fixed_sarimax_applyInPandas",
            baseline_value=fixed_rate,
            target=">= 2.0",
            meets_target=check_target(job_rate / fixed_rate, ">= 2.0"),
            notes=(
                f"{n} series x {N_DAYS} days, local[{cores}], {i['parts']} partitions by "
                f"series_id; job: read Parquet + forecasts() (pruned SARIMA search, fallbacks, "
                f"28-day forecast + 80/95% bands) + noop write {i['job_s']:.1f}s; baseline: "
                f"plain applyInPandas of SARIMAX(1,1,1)(1,0,1,7) fit + 28-step forecast with "
                f"intervals, same schema, {i['fixed_s']:.1f}s. {sf_note}. Machine: {i['conds']}."
            ),
        ),
        Result(
            name="forecast_job_vs_ideal_fixed_rate",
            unit="series/s",
            value=job_rate,
            baseline_name=f"ideal_{cores}x_single_process_fixed_sarimax",
            baseline_value=cores * single_fixed,
            notes=(
                f"ratio = efficiency = job rate / ({cores} cores x single-process "
                f"fixed-order rate {single_fixed:.3f}/s, loop over {i['sample']} series, "
                "1 BLAS thread)"
            ),
        ),
        Result(
            name="forecast_job_parallel_efficiency",
            unit="series/s",
            value=job_rate,
            baseline_name=f"ideal_{cores}x_single_process_job_fn",
            baseline_value=cores * single_job,
            notes=(
                f"like for like: ratio = job rate on Spark / ({cores} x the same per-series "
                f"function in a plain loop, {single_job:.3f}/s over {i['sample']} series)"
            ),
        ),
        Result(
            name="fixed_sarimax_parallel_efficiency",
            unit="series/s",
            value=fixed_rate,
            baseline_name=f"ideal_{cores}x_single_process_fixed_sarimax",
            baseline_value=cores * single_fixed,
            notes="ratio = fixed-order applyInPandas rate / (cores x its single-process rate)",
        ),
    ]
    job_mase = float(agg.loc["chosen", "mase"]) if "chosen" in agg.index else None
    fixed_mase = float(agg.loc["fixed_sarima", "mase"]) if "fixed_sarima" in agg.index else None
    snaive = float(agg.loc["seasonal_naive", "mase"]) if "seasonal_naive" in agg.index else None
    out.append(
        Result(
            name=f"backtest_mase_{i['n_bt']}_series",
            unit="MASE",
            value=job_mase,
            baseline_name="fixed_sarimax_same_folds",
            baseline_value=fixed_mase,
            higher_is_better=False,
            notes=(
                f"lower is better; ratio = fixed MASE / job MASE. Same {i['folds']} rolling "
                f"origins 28 days apart, 28-day horizon, on the first {i['n_bt']} series; MASE "
                f"scaled by the in-sample seasonal-naive (lag 7) MAE, mean over series of the "
                f"fold mean (aggregate_metrics). Seasonal-naive MASE {snaive:.3f}. "
                f"Median per-series MASE / series with MASE > 3: "
                + ", ".join(
                    f"{m} {med:.3f} / {bad} of {n}"
                    for m, (med, bad, n) in sorted(i["robust"].items())
                )
                + ". "
                f"Job models chosen: {i['specs']}. Backtest wall time: job "
                f"{i['job_bt_s']:.1f}s ({i['n_bt'] / i['job_bt_s']:.2f} series/s), fixed order "
                f"{i['fixed_bt_s']:.1f}s ({i['n_bt'] / i['fixed_bt_s']:.2f} series/s)."
                if job_mase is not None and snaive is not None
                else "backtest produced no rows"
            ),
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
        "--backtest-series",
        type=int,
        default=200,
        help="series backtested by both (default 200; quick 4)",
    )
    args = parser.parse_args(argv)
    args.series_given = args.series is not None
    if args.series is None:
        args.series = 2000
    return args


def main(argv: list[str] | None = None) -> list[Result]:
    args = parse_args(argv)
    results = run(args)
    common.print_table("timeseries", results)
    path = common.write_results("timeseries", results, common.results_dir(args.quick, args.out_dir))
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
