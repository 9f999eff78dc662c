"""Throughput check of the routing decision: seeded random days around one city.

A quick single-process loop over ``solve_routing_group`` (no Spark, no results file);
``bench/decisions.py`` is the area benchmark.

Run: ``python bench/decisions_loop.py [--groups 20] [--seed 7] [--time-limit 2]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import time

import numpy as np
import pandas as pd

from shikong.decisions import RoutingConfig, solve_routing_group

logger = logging.getLogger(__name__)

# Sao Paulo (Se); the spread of ~0.06 degrees puts most stops within ~10 km of the depot.
_CITY = (-23.5505, -46.6333)


def random_group(
    n_stops: int, seed: int, *, spread_deg: float = 0.06, max_demand: int = 10
) -> pd.DataFrame:
    """A seeded random delivery day of ``n_stops`` orders around the city depot."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "warehouse_id": f"WH{seed:03d}",
            "delivery_date": dt.date(2024, 1, 1) + dt.timedelta(days=seed),
            "order_id": [f"O{seed:03d}-{i:04d}" for i in range(n_stops)],
            "lat": _CITY[0] + rng.normal(0.0, spread_deg, n_stops),
            "lon": _CITY[1] + rng.normal(0.0, spread_deg, n_stops),
            "demand": rng.integers(1, max_demand + 1, n_stops).astype(float),
            "depot_lat": _CITY[0],
            "depot_lon": _CITY[1],
        }
    )


def run(groups: int, seed: int, cfg: RoutingConfig) -> pd.DataFrame:
    """Solve ``groups`` random days (50-150 stops) and return their group summaries."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(50, 151, groups)
    rows = []
    for g, n in enumerate(sizes):
        t0, c0 = time.perf_counter(), time.process_time()
        res = solve_routing_group(random_group(int(n), seed * 1000 + g), cfg)
        summary = res.group_summary.iloc[0].to_dict()
        summary["wall_s"] = time.perf_counter() - t0
        summary["cpu_s"] = time.process_time() - c0
        summary["n_stops"] = int(n)
        rows.append(summary)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point; logs the throughput summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--time-limit", type=float, default=RoutingConfig.time_limit_s)
    parser.add_argument("--solution-limit", type=int, default=RoutingConfig.solution_limit)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = RoutingConfig(time_limit_s=args.time_limit, solution_limit=args.solution_limit)
    t0, c0 = time.perf_counter(), time.process_time()
    out = run(args.groups, args.seed, cfg)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        logger.info(
            "%s",
            out[
                [
                    "n_stops",
                    "n_routed",
                    "n_unrouted",
                    "n_vehicles_used",
                    "baseline_km",
                    "distance_km",
                    "saving_pct",
                    "chosen",
                    "stop_reason",
                    "solve_seconds",
                    "cpu_s",
                    "wall_s",
                ]
            ].round(3),
        )
    logger.info(
        "groups=%d wall=%.1fs cpu=%.1fs groups/s=%.3f (per CPU-s %.3f) routes/s=%.2f "
        "stops/s=%.1f "
        "mean saving vs NN=%.2f%% (min %.2f, max %.2f) stop reasons=%s chosen=%s",
        len(out),
        wall,
        cpu,
        len(out) / wall,
        len(out) / cpu,
        out["n_vehicles_used"].sum() / wall,
        out["n_stops"].sum() / wall,
        out["saving_pct"].mean(),
        out["saving_pct"].min(),
        out["saving_pct"].max(),
        out["stop_reason"].value_counts().to_dict(),
        out["chosen"].value_counts().to_dict(),
    )


if __name__ == "__main__":
    main()
