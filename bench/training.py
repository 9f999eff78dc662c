"""Training and inference throughput of the demand fusion model.

Data: seeded synthetic SKU x region series (weekly seasonality, region-dependent level)
cut into examples by :func:`shikong.training.prepare_demand_splits` and written as
shards under ``bench/work/training`` (:func:`shikong.io.shards.write_split_shards`).
Measured in one run, same data, same global batch:

* training samples/s with 1 process and with 2 data-parallel processes (DDP over gloo,
  ``backend="local"``; the TorchDistributor path runs the same loop) and the scaling
  efficiency ``rate(2) / (2 x rate(1))``; process start-up is excluded (the rate is
  samples over epoch time) and reported separately;
* inference rows/s of the batch scorer: ``mapInPandas`` over the test shards in Spark
  (model loaded once per worker) next to a direct in-process ``predict`` on the same rows.

``--device gpu`` (for a machine with CUDA, no Spark needed): the same training with
``use_gpu=True`` next to 1-process CPU training on that machine, samples/s each.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import common  # first: pins BLAS threads
import numpy as np
import pandas as pd
from common import Result

from shikong.io.checkpoints import CheckpointFiles, save_checkpoint
from shikong.io.shards import read_arrays, shard_files, write_split_shards
from shikong.io.train_results import ResultFiles
from shikong.models import DemandModelConfig
from shikong.training import DemandExampleConfig, TimeSplit, day_number, prepare_demand_splits
from shikong.training.launch import launch
from shikong.training.loop import TrainConfig, predict


def synthetic_series(n_series: int, days: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Weekly-seasonal Poisson series whose level depends on the region."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2023-01-02", periods=days, freq="D")
    frames, ctx = [], []
    for s in range(n_series):
        region = s % 9
        level = rng.uniform(2, 20) * (1.0 + 0.15 * region)
        weekly = 1 + 0.5 * np.sin(2 * np.pi * np.arange(7) / 7 + s)
        y = rng.poisson(level * weekly[ds.dayofweek.to_numpy()]).astype(float)
        frames.append(pd.DataFrame({"series_id": f"s{s}", "sku": f"k{s}", "ds": ds, "y_clean": y}))
        ctx.append(
            {"series_id": f"s{s}", "region": f"R{region}", "cell": f"c{s % 40}", "km": s % 50}
        )
    return pd.concat(frames, ignore_index=True), pd.DataFrame(ctx)


def build_data(args: argparse.Namespace) -> Any:
    series, ctx = synthetic_series(args.series, args.days, args.seed)
    ecfg = DemandExampleConfig(window=28, horizon=7, stride=1, static_numeric=("km",))
    last = int(day_number(series["ds"]).max())
    split = TimeSplit.last_days(last, val_days=28, test_days=28)
    out = common.WORK_DIR / "training" / f"demand-{args.series}x{args.days}-{args.seed}"
    splits, meta = prepare_demand_splits(series, ecfg, split, context=ctx)
    return write_split_shards(splits, str(out), num_shards=4, meta=meta)


def model_cfg() -> DemandModelConfig:
    return DemandModelConfig(window=28, horizon=7, n_spatial=1, d_model=32, encoder="cnn")


def train_rate(
    paths: Any, procs: int, *, epochs: int, batch: int, gpu: bool = False, threads: int = 1
) -> dict:
    tcfg = TrainConfig(
        epochs=epochs,
        batch_size=batch,
        patience=epochs,
        seed=0,
        use_gpu=gpu,
        restore_best=False,
        num_threads=threads,
    )
    t0 = time.perf_counter()
    result = launch(
        model_cfg(), tcfg, paths, backend="local", num_processes=procs, results=ResultFiles()
    )
    wall = time.perf_counter() - t0
    samples = sum(m.samples for m in result.history)
    secs = sum(m.seconds for m in result.history)
    return {
        "rate": samples / secs,
        "wall": wall,
        "epoch_s": secs,
        "startup_s": wall - secs,
        "device": result.device,
        "val_loss": result.best_val_loss,
        "result": result,
    }


def inference_rates(paths: Any, result: Any, args: argparse.Namespace) -> dict:
    import torch

    model = result.load_model()
    test = read_arrays(shard_files(paths.test))
    n = len(test["day0"])
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    predict(model, test)
    direct = n / (time.perf_counter() - t0)
    out = {"direct": direct, "rows": n}
    if args.no_spark:
        return out
    from shikong.training.inference import demand_prediction_schema, make_demand_scorer

    model_path = str(common.WORK_DIR / "training" / "model.pt")
    save_checkpoint(
        model_path, {"model_config": dict(result.model_config), "model_state": dict(result.state)}
    )
    handle = common.start_spark(cores=args.cores)
    spark = handle.spark
    out["spark_startup"] = handle.startup_s
    df = spark.read.parquet(str(paths.test)).repartition(args.cores).cache()
    df.count()
    levels = (0.1, 0.5, 0.9)
    scorer = make_demand_scorer(model_path, levels, checkpoints=CheckpointFiles())
    schema = demand_prediction_schema(levels)
    df.mapInPandas(scorer, schema).count()  # warm-up: workers start, model loads once
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        df.mapInPandas(scorer, schema).count()
        best = min(best, time.perf_counter() - t0)
    out["spark"] = n / best
    return out


def run(args: argparse.Namespace) -> list[Result]:
    common.log(f"building data: {args.series} series x {args.days} days")
    paths = build_data(args)
    rows = read_arrays(shard_files(paths.train), ["day0"])["day0"].size
    res: list[Result] = []
    if args.device == "gpu":
        import os

        import torch

        threads = os.cpu_count() or 1
        cpu = train_rate(paths, 1, epochs=args.epochs, batch=args.batch, threads=threads)
        name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA"
        gpu = train_rate(paths, 1, epochs=args.epochs, batch=args.batch, gpu=True)
        big = train_rate(paths, 1, epochs=args.epochs, batch=args.batch * 16, gpu=True)
        note = f"{rows} training rows, {args.epochs} epochs, global batch {args.batch}"
        res.append(
            Result(
                "demand_train_gpu_1proc",
                "samples/s",
                gpu["rate"],
                "cpu_1proc_same_machine",
                cpu["rate"],
                notes=f"{gpu['device']} ({name}) vs CPU with {threads} torch threads; {note}; "
                f"val loss gpu {gpu['val_loss']:.4f} "
                f"cpu {cpu['val_loss']:.4f}",
            )
        )
        res.append(
            Result(
                "demand_train_gpu_1proc_batch_x16",
                "samples/s",
                big["rate"],
                "cpu_1proc_same_machine",
                cpu["rate"],
                notes=f"global batch {args.batch * 16}",
            )
        )
        return res

    one = train_rate(paths, 1, epochs=args.epochs, batch=args.batch)
    two = train_rate(paths, 2, epochs=args.epochs, batch=args.batch)
    eff = two["rate"] / (2 * one["rate"])
    note = (
        f"{rows} training rows, {args.epochs} epochs, global batch {args.batch}, gloo DDP; "
        f"process start-up excluded ({one['startup_s']:.1f} s / {two['startup_s']:.1f} s); "
        f"val loss {one['val_loss']:.4f} (1 proc) vs {two['val_loss']:.4f} (2 procs)"
    )
    res.append(Result("demand_train_1proc", "samples/s", one["rate"], notes=note))
    res.append(
        Result(
            "demand_train_2proc",
            "samples/s",
            two["rate"],
            "demand_train_1proc",
            one["rate"],
            notes=f"scaling efficiency rate(2)/(2 x rate(1)) = {eff:.2f}",
        )
    )
    inf = inference_rates(paths, one["result"], args)
    if "spark" in inf:
        res.append(
            Result(
                "demand_inference_spark_udf",
                "rows/s",
                inf["spark"],
                "direct_predict_1thread",
                inf["direct"],
                notes=f"mapInPandas over {inf['rows']} test examples on local[{args.cores}], "
                "model loaded once per worker; best of 3 after a warm-up; Spark start-up "
                f"{inf['spark_startup']:.1f} s excluded",
            )
        )
    else:
        res.append(Result("demand_inference_direct", "rows/s", inf["direct"]))
    return res


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser)
    parser.add_argument("--series", type=int, default=300)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--no-spark", action="store_true", help="skip the Spark scorer")
    args = parser.parse_args(argv)
    if args.quick:
        args.series, args.days, args.epochs = 40, 200, 1
    return args


def main(argv: list[str] | None = None) -> list[Result]:
    args = parse_args(argv)
    results = run(args)
    area = "training" if args.device == "cpu" else "training_gpu"
    common.print_table(area, results)
    path = common.write_results(area, results, common.results_dir(args.quick, args.out_dir))
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
