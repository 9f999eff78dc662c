"""Full-catalogue time series: every SKU x warehouse series of the default world, cleaned,
forecast and backtested the way ``make run`` does it (``bench/ts_catalogue.py``, or part of
``bench/run.py --area timeseries``).

Input: ``silver.sku_daily`` of the default world (``conf/local.yaml``, ``max_series: 0``),
built once into ``bench/work/catalogue-lakehouse`` by ``shikong run --only ingest series``
(or ``--lakehouse`` pointing at a ``make run`` lakehouse). Measured, each up to a real
action (``noop`` write, or a collect of the small metric table):

* the three distributed steps on every series, series/s: ``cleaned`` (rebuilding its
  input rows from silver: the recorded value and the stock-out flag), ``forecasts``,
  ``backtests``; and all three together;
* like for like on a seeded sample: the panel path (many series per pandas call, arrays,
  no pandas frame per series) against the one-series functions it replaced (cleaning:
  one pandas call per series; forecast and backtest: ``for_each_series`` over groups of
  8), same rows, same session;
* backtest MASE and WAPE per model family against seasonal naive on the same folds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common  # first third-party import (sorts before numpy): pins BLAS threads
from common import Result

#: Series of the like-for-like sample (the one-series path costs ~10-30 ms a series).
SAMPLE = 1_000


def build_lakehouse(path: Path) -> None:
    """Generate the default world and build ``silver.sku_daily`` into ``path`` (once)."""
    cmd = [sys.executable, "-m", "shikong.cli", "run", "--config", "conf/local.yaml"]
    cmd += ["--lakehouse", str(path), "--only", "ingest", "series", "--log-level", "WARNING"]
    common.log(f"building the catalogue's series: {' '.join(cmd)}")
    subprocess.run(cmd, cwd=common.REPO_ROOT, check=True)


def clean_input(silver: Any) -> Any:
    """The cleaning input rows, rebuilt from silver: the recorded value, and stock-out days
    (``missing_reason = 'unavailable'``) flagged ``available = False``."""
    from pyspark.sql import functions as F

    return silver.select(
        "series_id",
        "ds",
        F.coalesce(F.col("y_raw"), F.lit(0.0)).alias("y"),
        F.when(F.col("missing_reason") == "unavailable", F.lit(False)).alias("available"),
    )


def one_series_paths(silver: Any, raw: Any, cc: Any, ts: Any, n: int) -> dict[str, Any]:
    """The paths the panel replaced: cleaning one pandas call per series; forecast and
    backtest through ``for_each_series`` on groups of 8 series."""
    from shikong.frames import ddl_fields, default_parallelism
    from shikong.timeseries import (
        BACKTEST_SCHEMA,
        FORECAST_SCHEMA,
        GROUP_COL,
        INPUT_COLUMNS,
        backtest_config,
        clean_schema,
        forecast_config,
        make_backtest_fn,
        make_clean_fn,
        make_forecast_fn,
        series_groups,
    )
    from shikong.timeseries._common import for_each_series

    def grouped(fn: Any, schema: str) -> Any:
        rows = silver.select(*[c for c in INPUT_COLUMNS if c in silver.columns])
        g = series_groups(rows, n, default_parallelism(silver.sparkSession))
        each = for_each_series(fn, ddl_fields(schema), drop=(GROUP_COL,))
        return g.groupBy(GROUP_COL).applyInPandas(each, schema)

    return {
        "clean": raw.groupBy("series_id").applyInPandas(make_clean_fn(cc), clean_schema(cc)),
        "forecast": grouped(make_forecast_fn(forecast_config(ts)), FORECAST_SCHEMA),
        "backtest": grouped(make_backtest_fn(backtest_config(ts)), BACKTEST_SCHEMA),
    }


def panel_paths(silver: Any, raw: Any, cc: Any, ts: Any, n: int) -> dict[str, Any]:
    from shikong.timeseries import backtests, cleaned, forecasts

    return {
        "clean": cleaned(raw, cc, n_series=n),
        "forecast": forecasts(silver, ts, n_series=n),
        "backtest": backtests(silver, ts, n_series=n),
    }


def _timed_noop(df: Any) -> float:
    t0 = time.perf_counter()
    common.noop_write(df)
    return time.perf_counter() - t0


def run(args: argparse.Namespace) -> list[Result]:
    from pyspark.sql import functions as F

    from shikong.config import load_config
    from shikong.timeseries import backtests, clean_config, family_metrics, overall_metrics

    lakehouse = Path(args.lakehouse).resolve()
    if not (lakehouse / "silver" / "sku_daily" / "_delta_log").exists():
        build_lakehouse(lakehouse)
    ts = load_config(common.REPO_ROOT / "conf" / "local.yaml", env={}).timeseries
    handle = common.start_spark(cores=args.cores)
    spark = handle.spark
    silver = spark.read.format("delta").load(str(lakehouse / "silver" / "sku_daily"))
    # What the forecast stage reads (silver has no availability column: stock-outs are
    # the missing days of y_obs).
    silver = silver.select("series_id", "ds", "y_raw", "y_clean", "y_obs", "missing_reason")
    silver = silver.cache()
    n = silver.select("series_id").distinct().count()
    lo, hi = silver.agg(F.min("ds"), F.max("ds")).first()
    cc = clean_config(ts, start=lo, end=hi)
    raw = clean_input(silver)
    common.log(f"catalogue: {n} series, {lo}..{hi}, load {common.conditions()}")

    # Warm-up (Python workers, imports) on a few series, excluded.
    few = silver.where(F.xxhash64("series_id") % 997 == 0)
    t_warm = sum(_timed_noop(df) for df in panel_paths(few, clean_input(few), cc, ts, 24).values())

    times = {
        k: _timed_noop(df)
        for k, df in panel_paths(silver, raw, cc, ts, n).items()
        if k != "backtest"
    }
    t0 = time.perf_counter()
    metrics = backtests(silver, ts, n_series=n).toPandas()
    times["backtest"] = time.perf_counter() - t0
    total = sum(times.values())

    # Like for like on a seeded sample: the same rows through both paths, alternating.
    ids = [
        r[0]
        for r in silver.select("series_id")
        .distinct()
        .orderBy(F.xxhash64("series_id", F.lit(args.seed)))
        .limit(SAMPLE)
        .collect()
    ]
    sample = silver.where(F.col("series_id").isin(ids)).cache()
    sample.count()
    m = len(ids)
    sample_raw = clean_input(sample)
    pair: dict[str, dict[str, float]] = {}
    for step in ("clean", "forecast", "backtest"):
        old = one_series_paths(sample, sample_raw, cc, ts, m)[step]
        new = panel_paths(sample, sample_raw, cc, ts, m)[step]
        pair[step] = {"old": _timed_noop(old), "new": _timed_noop(new)}
    sample.unpersist()
    silver.unpersist()

    results = [common.spark_startup_result(handle, f"Warm-up on 24 series {t_warm:.1f}s excluded.")]
    reasons = metrics[metrics["model"] == "chosen"].groupby("reason")["series_id"].nunique()
    route = ", ".join(f"{k} {v}" for k, v in reasons.sort_values(ascending=False).items())
    results.append(
        Result(
            name="catalogue_series_per_s",
            unit="series/s",
            value=n / total,
            notes=(
                f"every SKU x warehouse series of the default world ({n} series x "
                f"{(hi - lo).days + 1} days), local[{args.cores}]: cleaned {times['clean']:.1f}s, "
                f"forecast {times['forecast']:.1f}s, backtest ({ts.backtest_folds} folds, "
                f"chosen + seasonal naive, metrics collected) {times['backtest']:.1f}s; "
                f"total {total:.1f}s. Routing of the newest fold: {route}. {common.conditions()}"
            ),
        )
    )
    for step in ("clean", "forecast", "backtest"):
        results.append(
            Result(
                name=f"catalogue_{step}_series_per_s",
                unit="series/s",
                value=n / times[step],
                notes=f"{step} of all {n} series in {times[step]:.1f}s",
            )
        )
        old, new = pair[step]["old"], pair[step]["new"]
        results.append(
            Result(
                name=f"catalogue_{step}_panel_vs_one_series",
                unit="series/s",
                value=m / new,
                baseline_name="one_series_per_pandas_frame",
                baseline_value=m / old,
                notes=(
                    f"the same {m} seeded series (of {n}): panel {new:.1f}s vs the "
                    f"one-series path {old:.1f}s "
                    + (
                        "(one pandas call per series)"
                        if step == "clean"
                        else "(for_each_series, groups of 8)"
                    )
                ),
            )
        )
    overall = overall_metrics(metrics).set_index("model")
    snaive = overall.loc["seasonal_naive"] if "seasonal_naive" in overall.index else None
    for row in family_metrics(metrics).itertuples():
        if row.model == "seasonal_naive":
            continue
        fam = family_metrics(metrics)
        base = fam[(fam["family"] == row.family) & (fam["model"] == "seasonal_naive")]
        results.append(
            Result(
                name=f"catalogue_backtest_mase_{row.family}",
                unit="MASE (lower is better)",
                value=float(row.mase),
                baseline_name="seasonal_naive_same_folds",
                baseline_value=float(base["mase"].iloc[0]) if len(base) else None,
                higher_is_better=False,
                notes=(
                    f"{row.n_series} series whose chosen model is {row.family}; WAPE "
                    f"{row.wape:.3f} vs seasonal naive "
                    f"{float(base['wape'].iloc[0]) if len(base) else float('nan'):.3f}"
                    + (
                        f"; all series: MASE {overall.loc['chosen', 'mase']:.3f} vs "
                        f"seasonal naive {snaive['mase']:.3f}"
                        if snaive is not None
                        else ""
                    )
                ),
            )
        )
    return results


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lakehouse",
        default=str(common.REPO_ROOT / "bench" / "work" / "catalogue-lakehouse"),
        help="lakehouse holding the default world's silver.sku_daily (built when absent)",
    )


def merge(path: Path, results: list[Result]) -> None:
    """Replace this script's rows in an existing ``timeseries.json`` (others kept)."""
    doc = json.loads(path.read_text()) if path.exists() else None
    if doc is None:
        common.write_results("timeseries", results, path.parent)
        return
    names = {r.name for r in results if r.name != "spark_startup"}
    doc["results"] = [
        r
        for r in doc["results"]
        if r["name"] not in names and not r["name"].startswith("catalogue_")
    ]
    doc["results"] += [r.to_json() for r in results if r.name != "spark_startup"]
    path.write_text(json.dumps(doc, indent=2) + "\n")


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser)
    add_args(parser)
    args = parser.parse_args(argv)
    results = run(args)
    common.print_table("timeseries", results)
    path = common.results_dir(args.quick, args.out_dir) / "timeseries.json"
    merge(path, results)
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
