"""Decisions benchmark: delivery routing per warehouse-day, OR-Tools vs nearest neighbour.

G seeded warehouse-days (default 100) of 50-150 stops each, around the 27 Brazilian state
capitals (depot at the city centre, stops normally spread ~0.06 degrees, ~7 km, demand 1-10
units; no time windows, as the job sends none) are routed with the job's own settings
(``routing_config(DecisionSettings())``: 10 vehicles of 100 units, 200-solution OR-Tools
budget, 10 s cap) through:

* the job's path: Parquet -> repartition by (warehouse_id, delivery_date) as
  the ``delivery_routes`` stage does -> ``applyInPandas(make_routing_fn(cfg),
  ROUTING_OUTPUT_SCHEMA)`` -> collected (Spark start-up and one warm-up group excluded);
* for reference, the same ``solve_routing_group`` in a plain single-process loop.

Reported: warehouse-days (routing problems) solved per second and vehicle routes per
second, the chosen plan's km vs the nearest-neighbour baseline's km (average km saved per
warehouse-day), and whether Spark and the plain loop produced the same totals.

Run: ``python bench/run.py --area decisions [--groups 100] [--quick]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path
from typing import Any

import common  # first third-party import (sorts before numpy): pins BLAS threads
import numpy as np
import pandas as pd
from common import Result, log

MIN_STOPS, MAX_STOPS = 50, 150
SPREAD_DEG = 0.06
START = dt.date(2024, 1, 1)


def generate_groups(n_groups: int, seed: int) -> pd.DataFrame:
    """Rows of ``ROUTING_INPUT_SCHEMA`` for ``n_groups`` seeded warehouse-days."""
    from shikong.geo_resources import load_municipalities

    rng = np.random.default_rng(seed)
    caps = load_municipalities().query("capital").sort_values("uf").reset_index(drop=True)
    frames = []
    for g in range(n_groups):
        city = caps.iloc[int(rng.integers(0, len(caps)))]
        n = int(rng.integers(MIN_STOPS, MAX_STOPS + 1))
        wh = f"WH-{city['uf']}"
        day = START + dt.timedelta(days=g)
        frames.append(
            pd.DataFrame(
                {
                    "warehouse_id": wh,
                    "delivery_date": day,
                    "order_id": [f"O{g:04d}-{i:04d}" for i in range(n)],
                    "lat": city["lat"] + rng.normal(0.0, SPREAD_DEG, n),
                    "lon": city["lon"] + rng.normal(0.0, SPREAD_DEG, n),
                    "demand": rng.integers(1, 11, n).astype(float),
                    "depot_lat": float(city["lat"]),
                    "depot_lon": float(city["lon"]),
                    "tw_start": np.nan,
                    "tw_end": np.nan,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def groups_file(n_groups: int, seed: int) -> Path:
    folder = common.WORK_DIR / "decisions"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"routing_g{n_groups}_seed{seed}.parquet"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        generate_groups(n_groups, seed).to_parquet(tmp, index=False)
        tmp.rename(path)
    return path


def run(args: argparse.Namespace) -> list[Result]:
    from pyspark.sql import functions as F

    from shikong.config import DecisionSettings
    from shikong.decisions import (
        ROUTING_INPUT_SCHEMA,
        ROUTING_OUTPUT_SCHEMA,
        make_routing_fn,
        routing_config,
        solve_routing_group,
    )

    n_groups = 4 if args.quick and not args.groups_given else args.groups
    cfg = routing_config(DecisionSettings())
    path = groups_file(n_groups, args.seed)
    pdf = pd.read_parquet(path)
    keys = ["warehouse_id", "delivery_date"]
    groups = [g for _, g in pdf.groupby(keys, sort=True)]
    n_pandas = min(len(groups), 2 if args.quick else (args.pandas_groups or len(groups)))

    log(f"plain loop over {n_pandas} of {len(groups)} warehouse-days ...")
    solve_routing_group(groups[0].head(10), cfg)  # imports / first-call costs
    conds = [f"plain loop start: {common.conditions()}"]
    t0 = time.perf_counter()
    pandas_rows = [solve_routing_group(g, cfg).group_summary for g in groups[:n_pandas]]
    pandas_s = time.perf_counter() - t0
    pandas_summary = pd.concat(pandas_rows, ignore_index=True)
    log(f"plain loop: {pandas_s:.1f}s")

    handle = common.start_spark(
        cores=args.cores, shuffle_partitions=2 * args.cores, app_name="shikong-bench-decisions"
    )
    spark = handle.spark
    dp = spark.sparkContext.defaultParallelism
    fn = make_routing_fn(cfg)

    def routed(where: Any = None) -> Any:
        stops = spark.read.schema(ROUTING_INPUT_SCHEMA).parquet(str(path))
        n = n_groups
        if where is not None:
            stops, n = stops.where(where), 1
        return (
            stops.repartition(max(2, min(n, 4 * dp)), *keys)
            .groupBy(*keys)
            .applyInPandas(fn, ROUTING_OUTPUT_SCHEMA)
        )

    t0 = time.perf_counter()
    routed(F.col("delivery_date") == F.lit(START)).toPandas()
    warm_s = time.perf_counter() - t0
    conds.append(f"Spark start: {common.conditions()}")
    t0 = time.perf_counter()
    long = routed().toPandas()
    spark_s = time.perf_counter() - t0
    log(f"Spark applyInPandas {n_groups} warehouse-days: {spark_s:.1f}s")
    conds.append(f"end: {common.conditions()}")
    spark.stop()

    summary = long[long["record_type"] == "group"].sort_values(keys).reset_index(drop=True)
    info = dict(
        n_groups=n_groups,
        n_pandas=n_pandas,
        pandas_s=pandas_s,
        spark_s=spark_s,
        warm_s=warm_s,
        summary=summary,
        pandas_summary=pandas_summary,
        n_stops=len(pdf),
        parts=max(2, min(n_groups, 4 * dp)),
        cfg=cfg,
        conds="; ".join(conds),
    )
    return build_results(info, handle)


def build_results(i: dict[str, Any], handle: Any) -> list[Result]:
    s, ps = i["summary"], i["pandas_summary"]
    cores, cfg = handle.cores, i["cfg"]
    spark_rate = i["n_groups"] / i["spark_s"]
    pandas_rate = i["n_pandas"] / i["pandas_s"]
    routes_rate = float(s["n_vehicles_used"].sum()) / i["spark_s"]
    stops_rate = float(s["n_orders"].sum()) / i["spark_s"]
    saved = s["baseline_km"] - s["distance_km"]
    # Same groups solved both ways: do the totals agree (the 200-solution budget is
    # deterministic unless the 10 s clock stops a search first)?
    both = s.merge(ps, on=["warehouse_id", "delivery_date"], suffixes=("", "_pandas"))
    same = int((both["distance_km"] - both["distance_km_pandas"]).abs().lt(1e-6).sum())
    stop_reasons = s["stop_reason"].value_counts().to_dict()
    return [
        common.spark_startup_result(
            handle,
            f"One warm-up warehouse-day through applyInPandas ({i['warm_s']:.1f}s) also excluded.",
        ),
        Result(
            name=f"routing_{i['n_groups']}_warehouse_days",
            unit="groups/s",
            value=spark_rate,
            baseline_name="plain_loop_1_process",
            baseline_value=pandas_rate,
            notes=(
                f"warehouse-days (routing problems) solved per second: Spark local[{cores}], "
                f"{i['parts']} partitions, read Parquet + applyInPandas(make_routing_fn) + "
                f"collect, {i['spark_s']:.1f}s for {i['n_groups']} groups / "
                f"{i['n_stops']:,} stops ({stops_rate:.1f} stops/s, {routes_rate:.2f} vehicle "
                f"routes/s); plain loop of solve_routing_group over {i['n_pandas']} groups "
                f"{i['pandas_s']:.1f}s. Ideal = {cores} x plain = {cores * pandas_rate:.3f}/s, "
                f"efficiency {spark_rate / (cores * pandas_rate):.2f}. OR-Tools budget "
                f"{cfg.solution_limit} solutions / {cfg.time_limit_s:g}s; stop reasons "
                f"{stop_reasons}. Machine: {i['conds']}."
            ),
        ),
        Result(
            name="routing_km_per_warehouse_day",
            unit="km",
            value=float(s["distance_km"].mean()),
            baseline_name="nearest_neighbour",
            baseline_value=float(s["baseline_km"].mean()),
            higher_is_better=False,
            notes=(
                f"lower is better; ratio = NN km / chosen km. Average km saved vs the "
                f"nearest-neighbour baseline {saved.mean():.1f} km per warehouse-day "
                f"(min {saved.min():.1f}, max {saved.max():.1f}), mean saving "
                f"{s['saving_pct'].mean():.1f}%; total {s['distance_km'].sum():,.0f} km vs "
                f"{s['baseline_km'].sum():,.0f} km; chosen "
                f"{s['chosen'].value_counts().to_dict()}, "
                f"{int(s['n_unrouted'].sum())} orders unrouted. Spark and the plain loop agree "
                f"on {same} of {len(both)} groups solved both ways."
            ),
        ),
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser)
    parser.add_argument(
        "--groups", type=int, default=None, help="warehouse-days routed (default 100; quick 4)"
    )
    parser.add_argument(
        "--pandas-groups",
        type=int,
        default=0,
        help="groups in the plain single-process loop (0 = all)",
    )
    args = parser.parse_args(argv)
    args.groups_given = args.groups is not None
    if args.groups is None:
        args.groups = 100
    return args


def main(argv: list[str] | None = None) -> list[Result]:
    args = parse_args(argv)
    results = run(args)
    common.print_table("decisions", results)
    path = common.write_results("decisions", results, common.results_dir(args.quick, args.out_dir))
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
