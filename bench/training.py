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

``--device gpu`` (a CUDA machine; ``bench/gpu_check.sh`` runs it): both models (demand and
recommender) trained in 1 process on the GPU with each backend (in-process ``local``,
TorchDistributor ``use_gpu=True`` when pyspark and Java are there, Horovod with NCCL when
built) next to 1-process CPU training on the same machine; the rows are merged into
``training.json`` (the CPU rows stay). ``--device gpu --dry-run`` runs that path on the CPU
with tiny data and writes under ``bench/work/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

import common  # first: pins BLAS threads

# Before torch loads libgomp (read once, at load; the ranks inherit it): by default an idle
# OpenMP thread spins, so a 2-thread process whose second core is taken by another process
# waits out a time slice at every parallel region. Measured here at load ~20: 1.9 s per
# training step instead of 95 ms with PASSIVE. The machine is shared, so the rows would
# measure the neighbours, not the setups. Set OMP_WAIT_POLICY yourself to compare.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import Result  # noqa: E402

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
    paths: Any,
    procs: int,
    *,
    epochs: int,
    batch: int,
    gpu: bool = False,
    threads: int = 1,
    backend: str = "local",
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
        model_cfg(), tcfg, paths, backend=backend, num_processes=procs, results=ResultFiles()
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


# --------------------------------------------------------------------------- CPU rows

#: Issue #15 targets: 2 processes x 1 thread vs 1 process x 2 threads (same 2 cores), and
#: Spark batch scoring vs a direct in-process predict on the same rows and threads.
SCALING_TARGET = ">= 0.9"
SPARK_INFERENCE_TARGET = ">= 0.7"

#: (row name, backend, processes, torch threads per process): 2 threads in total each.
TRAIN_SETUPS = (
    ("1proc_2threads", "local", 1, 2),
    ("2proc_1thread", "local", 2, 1),
    ("2proc_1thread_torch_distributor", "torch_distributor", 2, 1),
    ("2proc_1thread_horovod", "horovod", 2, 1),
)


def training_rounds(paths: Any, args: argparse.Namespace, setups: Any) -> dict[str, list[dict]]:
    """Every setup ``args.rounds`` times, the order reversed every other round, so a
    change in machine load hits all of them alike."""
    runs: dict[str, list[dict]] = {name: [] for name, *_ in setups}
    for r in range(args.rounds):
        for name, backend, procs, threads in setups if r % 2 == 0 else setups[::-1]:
            common.log(f"train round {r}: {name}")
            out = train_rate(
                paths,
                procs,
                epochs=args.epochs,
                batch=args.batch,
                threads=threads,
                backend=backend,
            )
            runs[name].append(out)
    return runs


def _median(runs: list[dict], key: str) -> float:
    return float(np.median([r[key] for r in runs]))


def _breakdown_rank(
    rank: int, world: int, port: int, paths: Any, threads: int, batch: int, steps: int, queue: Any
) -> None:
    """One rank of :func:`step_breakdown`: the training loop's step (same model, data,
    DDP wrapper, AdamW, clipping) with a timer around each phase."""
    import os

    import torch
    import torch.distributed as dist
    from torch import nn

    from shikong.models import build_model
    from shikong.training.comm import TorchDistComm
    from shikong.training.loop import to_tensors

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(threads)
    if world > 1:
        dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model: Any = build_model(model_cfg())
    keys = list(model.batch_keys)
    data = to_tensors(paths.rank_arrays("train", rank, world, keys), torch.device("cpu"))
    net = TorchDistComm(rank, world).wrap_model(model, torch.device("cpu")) if world > 1 else model
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    local = batch // world
    perm = torch.randperm(len(data[keys[0]]), generator=torch.Generator().manual_seed(rank))
    phases = ("batch", "forward", "backward", "clip", "optimizer")
    tot = dict.fromkeys(phases, 0.0)

    def step(i: int, no_sync: bool = False) -> list[float]:
        t = [time.perf_counter()]
        idx = perm[i * local : (i + 1) * local]
        b = {k: v[idx] for k, v in data.items()}
        t.append(time.perf_counter())
        out = net(b)
        parts = model.loss_parts(b, out)
        loss = model.combine({k: s / c.clamp_min(1) for k, (s, c) in parts.items()})
        t.append(time.perf_counter())
        opt.zero_grad()
        if no_sync:
            with net.no_sync():
                loss.backward()
        else:
            loss.backward()  # DDP: the gradient allreduce runs inside
        t.append(time.perf_counter())
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        t.append(time.perf_counter())
        opt.step()
        float(parts["pinball"][0].detach())
        t.append(time.perf_counter())
        return [b - a for a, b in zip(t, t[1:], strict=False)]

    for i in range(10):  # warm-up
        step(i)
    if world > 1:
        dist.barrier()
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(10, 10 + steps):
        for k, v in zip(phases, step(i), strict=True):
            tot[k] += v
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    res = {k: 1000 * v / steps for k, v in tot.items()}
    # CPU time of every thread of the process (torch, gloo): work done, whatever the wait.
    res.update(step_ms=1000 * wall / steps, cpu_ms=1000 * cpu / steps, rank=rank)
    if world > 1:
        # Backward without the allreduce (DDP no_sync), then a bare allreduce of a buffer
        # of the gradients' size: what the collective costs on its own.
        dist.barrier()
        nosync = [step(10 + i, no_sync=True)[2] for i in range(steps)]
        res["backward_no_allreduce"] = 1000 * float(np.mean(nosync))
        buf = torch.zeros(sum(p.numel() for p in model.parameters()))
        res["grad_kb"] = buf.numel() * 4 / 1024
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(steps):
            dist.all_reduce(buf)
        res["bare_allreduce"] = 1000 * (time.perf_counter() - t0) / steps
    queue.put(res)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


def step_breakdown(paths: Any, procs: int, threads: int, args: argparse.Namespace) -> dict:
    """Per-step milliseconds by phase (rank means) of ``procs`` processes x ``threads``."""
    import torch.multiprocessing as mp

    from shikong.training.launch import free_port

    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    port = free_port()
    argv = (procs, port, paths, threads, args.batch, args.breakdown_steps, queue)
    ps = [ctx.Process(target=_breakdown_rank, args=(r, *argv)) for r in range(procs)]
    for p in ps:
        p.start()
    got = [queue.get() for _ in ps]
    for p in ps:
        p.join()
    out = {k: float(np.mean([g[k] for g in got])) for k in got[0] if k != "rank"}
    out["cpu_ms"] = float(sum(g["cpu_ms"] for g in got))  # all ranks together
    return out


def _breakdown_note(b: dict) -> str:
    parts = [f"{k} {b[k]:.1f}" for k in ("batch", "forward", "backward", "clip", "optimizer")]
    text = (
        f"CPU time per step (all threads and ranks) {b['cpu_ms']:.1f} ms vs wall "
        f"{b['step_ms']:.1f} ms; per step, ms: " + ", ".join(parts)
    )
    if "bare_allreduce" in b:
        text += (
            f"; backward without the allreduce {b['backward_no_allreduce']:.1f} (so the "
            f"allreduce inside backward costs {b['backward'] - b['backward_no_allreduce']:.1f}"
            f"), bare allreduce of the {b.get('grad_kb', 251):.0f} KB gradient "
            f"{b['bare_allreduce']:.2f}"
        )
    return text


def score_examples(paths: Any, rows: int, seed: int, files: int) -> str:
    """The test examples replicated to at least ``rows`` rows (seeded, written once): copy
    ``k`` has series ids suffixed ``#k`` and its history scaled by a random factor."""
    from shikong.io.shards import write_shards

    test = read_arrays(shard_files(paths.test))
    n = len(test["day0"])
    copies = -(-rows // n)
    out = common.WORK_DIR / "training" / f"score-{n}x{copies}-{seed}-{files}"
    if out.exists():
        return str(out)
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(copies):
        arr = {c: v.copy() for c, v in test.items()}
        arr["y_hist"] = (arr["y_hist"] * rng.uniform(0.5, 2.0)).astype(np.float32)
        arr["series_id"] = np.char.add(arr["series_id"].astype(str), f"#{k}").astype(object)
        frames.append(pd.DataFrame({c: list(v) if v.ndim > 1 else v for c, v in arr.items()}))
    write_shards(pd.concat(frames, ignore_index=True), str(out), files)
    return str(out)


def inference_rows(paths: Any, result: Any, args: argparse.Namespace) -> list[Result]:
    """Spark batch scoring (the ``batch_inference`` stage's scorer) vs a direct predict."""
    import torch

    from shikong.training.inference import score_demand

    folder = score_examples(paths, args.score_rows, args.seed, args.cores)
    arrays = read_arrays(shard_files(folder))
    n = len(arrays["day0"])
    model = result.load_model()
    model_path = str(common.WORK_DIR / "training" / "model.pt")
    save_checkpoint(
        model_path, {"model_config": dict(result.model_config), "model_state": dict(result.state)}
    )
    handle = common.start_spark(
        cores=args.cores,
        extra_conf={"spark.sql.execution.arrow.maxRecordsPerBatch": str(args.arrow_batch)},
    )
    spark = handle.spark
    levels = model.cfg.quantiles

    def tree_cpu() -> float:
        """CPU seconds of this process and its children (the JVM, its Python workers)."""
        try:
            import psutil  # installed with joblib/ipython; not a declared dependency
        except ImportError:
            return float("nan")
        procs = [psutil.Process(), *psutil.Process().children(recursive=True)]
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def spark_score() -> None:
        # The batch_inference stage's path: read the shards, score_demand, write.
        df = score_demand(
            spark.read.parquet(folder), model_path, levels, checkpoints=CheckpointFiles()
        )
        df.write.format("noop").mode("overwrite").save()

    def direct(threads: int) -> None:
        torch.set_num_threads(threads)
        predict(model, arrays, outputs=("quantiles",))

    t0 = time.perf_counter()
    spark_score()  # warm-up: Python workers start, the model loads once per worker
    warm = time.perf_counter() - t0
    direct(args.cores)
    times: dict[str, list[float]] = {"spark": [], "direct": [], "direct1": []}
    cpu: dict[str, list[float]] = {k: [] for k in times}
    for r in range(args.rounds + 1):
        order = ["spark", "direct", "direct1"] if r % 2 == 0 else ["direct1", "direct", "spark"]
        for name in order:
            fn = {
                "spark": spark_score,
                "direct": lambda: direct(args.cores),
                "direct1": lambda: direct(1),
            }[name]
            t0, c0 = time.perf_counter(), tree_cpu()
            fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(tree_cpu() - c0)
    parts = spark.read.parquet(folder).rdd.getNumPartitions()
    spark.stop()
    rate = {k: n / float(np.median(v)) for k, v in times.items()}
    ratio = rate["spark"] / rate["direct"]
    cores = {k: float(np.median(cpu[k]) / np.median(times[k])) for k in times}
    cpu_s = {k: float(np.median(v)) for k, v in cpu.items()}
    return [
        Result(
            "demand_inference_spark_batch",
            "rows/s",
            rate["spark"],
            f"direct_predict_{args.cores}threads",
            rate["direct"],
            target=SPARK_INFERENCE_TARGET,
            meets_target=common.check_target(ratio, SPARK_INFERENCE_TARGET),
            notes=f"{n} score examples ({n * model.cfg.horizon} forecast rows); Spark: "
            f"read Parquet + score_demand (the batch_inference stage's "
            "mapInPandas scorer) + noop write on "
            f"local[{args.cores}], {parts} partitions, Arrow batch {args.arrow_batch}, "
            "model loaded once per Python worker, 1 torch thread per worker; direct: "
            f"loop.predict on the same rows already in memory, {args.cores} torch threads "
            f"(1 thread: {rate['direct1']:,.0f} rows/s); median of {args.rounds + 1} "
            f"alternating rounds after a warm-up ({warm:.1f} s); CPU seconds (driver, JVM "
            f"and Python workers) {cpu_s['spark']:.1f} Spark vs {cpu_s['direct']:.1f} direct, "
            f"cores used {cores['spark']:.2f} vs {cores['direct']:.2f}; Spark start-up "
            f"{handle.startup_s:.1f} s excluded; OMP_WAIT_POLICY="
            f"{os.environ.get('OMP_WAIT_POLICY')}; {common.conditions()}",
        )
    ]


def cpu_rows(paths: Any, rows: int, args: argparse.Namespace) -> list[Result]:
    """Training 1 process x 2 threads vs 2 processes x 1 thread (local DDP,
    TorchDistributor, Horovod), a per-step breakdown of both, and Spark batch scoring."""
    from shikong.training.launch import horovod_unavailable_reason

    hvd_reason = horovod_unavailable_reason()
    skip = {"horovod"} if hvd_reason else set()
    if args.no_spark:
        skip.add("torch_distributor")
        hvd_reason = hvd_reason or "--no-spark"
    setups = tuple(s for s in TRAIN_SETUPS if s[1] not in skip)
    # TorchDistributor needs a session; Horovod then runs its ranks as Spark tasks.
    handle = None if args.no_spark else common.start_spark(cores=args.cores)
    load_before = common.conditions()
    runs = training_rounds(paths, args, setups)
    if handle is not None:
        handle.spark.stop()
    base_name, base = "demand_train_1proc_2threads", runs["1proc_2threads"]
    base_rate = _median(base, "rate")
    spread = {k: (min(r["rate"] for r in v), max(r["rate"] for r in v)) for k, v in runs.items()}
    brk = {
        "1proc_2threads": step_breakdown(paths, 1, 2, args),
        "2proc_1thread": step_breakdown(paths, 2, 1, args),
    }
    res = [
        Result(
            base_name,
            "samples/s",
            base_rate,
            notes=f"{rows} training rows, {args.epochs} epochs, global batch {args.batch}, "
            f"in-process, 2 torch threads; median of {args.rounds} alternating rounds "
            f"(range {spread['1proc_2threads'][0]:,.0f}-{spread['1proc_2threads'][1]:,.0f}); "
            f"rate = samples / epoch seconds (validation included), process start-up "
            f"excluded (rows *_startup); OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; "
            f"{load_before}",
        )
    ]
    b1, b2 = brk["1proc_2threads"], brk["2proc_1thread"]
    why = (
        f"breakdown: CPU per global step {b2['cpu_ms']:.1f} ms on 2 ranks vs "
        f"{b1['cpu_ms']:.1f} ms in 1 process (the same work), but the 2 ranks got "
        f"{b2['cpu_ms'] / b2['step_ms']:.2f} cores between them and the 1 process "
        f"{b1['cpu_ms'] / b1['step_ms']:.2f}: on 2 free cores the ranks would run "
        f"{b1['cpu_ms'] / b1['step_ms'] * b1['step_ms'] / (b2['cpu_ms'] / 2):.1f}x "
        "the 1-process step rate"
    )
    for name, backend, _procs, _threads in TRAIN_SETUPS[1:]:
        full = f"demand_train_{name}"
        if name not in runs:
            res.append(
                Result(
                    full,
                    "samples/s",
                    None,
                    base_name,
                    base_rate,
                    target=SCALING_TARGET,
                    notes=f"not run: {backend} unavailable ({hvd_reason})",
                )
            )
            continue
        rate = _median(runs[name], "rate")
        ratio = rate / base_rate
        lo, hi = spread[name]
        res.append(
            Result(
                full,
                "samples/s",
                rate,
                base_name,
                base_rate,
                target=SCALING_TARGET,
                meets_target=common.check_target(ratio, SCALING_TARGET),
                notes=f"{backend}, gloo, 1 torch thread per rank, global batch {args.batch} "
                f"({args.batch // 2} per rank); range {lo:,.0f}-{hi:,.0f}; val loss "
                f"{_median(runs[name], 'val_loss'):.4f} vs {_median(base, 'val_loss'):.4f}; "
                + why,
            )
        )
    for name, v in runs.items():
        res.append(
            Result(
                f"demand_train_startup_{name}",
                "s",
                _median(v, "startup_s"),
                notes="launch() wall time minus epoch time: process start, imports, process "
                "group, shard reads, result hand-back; lower is better",
                higher_is_better=False,
            )
        )
    res.append(
        Result(
            "demand_train_step_ms_1proc_2threads",
            "ms/step",
            b1["step_ms"],
            notes=f"{args.breakdown_steps} steps of {args.batch} rows; " + _breakdown_note(b1),
            higher_is_better=False,
        )
    )
    res.append(
        Result(
            "demand_train_step_ms_2proc_1thread",
            "ms/step",
            b2["step_ms"],
            "demand_train_step_ms_1proc_2threads",
            b1["step_ms"],
            notes=f"{args.batch // 2} rows per rank, rank means; " + _breakdown_note(b2),
            higher_is_better=False,
        )
    )
    if not args.no_spark:
        res.extend(inference_rows(paths, base[0]["result"], args))
    return res


def run(args: argparse.Namespace) -> list[Result]:
    common.log(f"building data: {args.series} series x {args.days} days")
    paths = build_data(args)
    rows = read_arrays(shard_files(paths.train), ["day0"])["day0"].size
    res: list[Result] = []
    res.extend(cpu_rows(paths, rows, args))
    return res


# --------------------------------------------------------------------------- GPU mode
# Kept apart from the CPU rows above: ``--device gpu`` (bench/gpu_check.sh on a CUDA machine)
# trains both models with every backend on one GPU next to CPU training on the same machine
# and merges its rows into training.json; ``--dry-run`` runs the same path on the CPU.

GPU_BACKENDS = ("local", "torch_distributor", "horovod")
GPU_MODELS = ("demand", "reco")


def synthetic_events(
    n_users: int, n_items: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Browsing sessions whose purchases lean to the region's preferred items:
    ``(events, products, user_context)`` in the ``bronze.events`` columns."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01")
    n_regions = 9
    prefs = [rng.choice(n_items, 8, replace=False) for _ in range(n_regions)]
    rows, users = [], []
    for u in range(n_users):
        r = u % n_regions
        lat, lon = -10 - 2 * r + rng.uniform(0, 1), -50 + rng.uniform(0, 1)
        users.append({"customer_id": f"u{u}", "region": f"R{r}", "cell": f"R{r}c{u % 5}"})
        for s in range(int(rng.integers(2, 5))):
            t = start + pd.Timedelta(days=float(rng.uniform(0, 90)))
            for _ in range(int(rng.integers(2, 7))):
                item = rng.choice(prefs[r]) if rng.random() < 0.5 else rng.integers(n_items)
                rows.append((f"u{u}s{s}", f"u{u}", t, "view", f"sku{item:03d}", lat, lon))
                t += pd.Timedelta(minutes=float(rng.uniform(1, 10)))
            if rng.random() < 0.6:
                item = rng.choice(prefs[r]) if rng.random() < 0.8 else rng.integers(n_items)
                rows.append((f"u{u}s{s}", f"u{u}", t, "purchase", f"sku{item:03d}", lat, lon))
    cols = ["session_id", "customer_id", "event_ts", "event_type", "sku", "lat", "lon"]
    events = pd.DataFrame(rows, columns=cols)
    events.insert(0, "event_id", [f"e{i}" for i in range(len(events))])
    products = pd.DataFrame(
        {
            "sku": [f"sku{i:03d}" for i in range(n_items)],
            "category": [f"c{i % 12}" for i in range(n_items)],
        }
    )
    return events, products, pd.DataFrame(users)


def build_reco_data(args: argparse.Namespace) -> tuple[Any, Any]:
    """Recommender shards (last 10 days validation, 5 days test) and the model config."""
    from shikong.models import RecommenderConfig
    from shikong.training import RecoExampleConfig, build_vocab, recommender_examples, time_split

    events, products, users = synthetic_events(args.reco_users, 200, args.seed)
    vocab = build_vocab(products["sku"], products)
    ex = recommender_examples(
        events, vocab, RecoExampleConfig(max_len=20, n_wh=3), user_context=users
    )
    t_end = int(ex["cut_s"].max())
    split = TimeSplit(t_end - 15 * 86_400, t_end - 5 * 86_400)
    splits = time_split(ex, split, start_col="cut_s", end_col="cut_s")
    out = common.WORK_DIR / "training" / f"reco-{args.reco_users}-{args.seed}"
    paths = write_split_shards(splits, str(out), num_shards=4)
    cfg = RecommenderConfig(
        n_items=vocab.n_items, n_categories=vocab.n_categories, max_len=20, n_wh=3
    )
    return paths, cfg


def _spark_unavailable_reason() -> str | None:
    """Why TorchDistributor cannot run here (it needs pyspark and a Java runtime)."""
    import importlib.util
    import os
    import shutil

    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed"
    java_home = os.environ.get("JAVA_HOME")
    if not shutil.which("java") and not (java_home and os.path.exists(f"{java_home}/bin/java")):
        return "no Java runtime (java not on PATH, no JAVA_HOME)"
    return None


def _horovod_nccl_built() -> bool:
    """Whether the installed Horovod has NCCL (asked in a child: see launch's docstring)."""
    import subprocess
    import sys

    code = "import horovod.torch as h; print(int(h.nccl_built()))"
    proc = subprocess.run(  # noqa: S603 - our interpreter, a fixed snippet
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300
    )
    return proc.returncode == 0 and proc.stdout.strip().endswith("1")


def _horovod_runner(model: Any, tcfg: TrainConfig, paths: Any) -> Any:
    """``launch(backend="horovod")``'s no-Spark branch for a machine without pyspark (the
    launcher imports pyspark to look for a session): same entry, ``horovod.runner.run``."""
    import dataclasses

    import horovod.runner

    from shikong.training.launch import horovod_entry

    out = horovod.runner.run(
        horovod_entry,
        args=(model, tcfg, paths, None),
        num_proc=1,
        hosts="localhost:1",
        use_gloo=True,
    )
    return dataclasses.replace(out[0], backend="horovod")


def gpu_train(
    model: Any, paths: Any, backend: str, *, gpu: bool, epochs: int, batch: int, threads: int
) -> dict:
    """One 1-process training run with ``backend``; samples over epoch time, like the CPU
    rows (process and Spark start-up excluded and reported in ``startup_s``)."""
    import importlib.util

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
    if backend == "horovod" and importlib.util.find_spec("pyspark") is None:
        result = _horovod_runner(model, tcfg, paths)
    else:
        result = launch(model, tcfg, paths, backend=backend, num_processes=1, results=ResultFiles())
    wall = time.perf_counter() - t0
    # Epoch 1 pays the one-time costs (CUDA context, kernel loading, allocator growth) in
    # every backend's process: with more epochs the rate is over the later ones.
    timed = result.history[1:] if len(result.history) > 1 else result.history
    secs = sum(m.seconds for m in timed)
    return {
        "rate": sum(m.samples for m in timed) / secs,
        "startup_s": wall - sum(m.seconds for m in result.history),
        "device": result.device,
        "val_loss": result.best_val_loss,
    }


def gpu_discovery_conf() -> dict[str, str]:
    """Spark driver GPU resources for TorchDistributor(use_gpu=True, local_mode=True): it
    reads the driver's ``gpu`` addresses (a discovery script listing nvidia-smi's GPUs)."""
    script = common.WORK_DIR / "gpu_discovery.sh"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(
        "#!/usr/bin/env bash\n"
        "ids=$(nvidia-smi --query-gpu=index --format=csv,noheader"
        " | sed 's/.*/\"&\"/' | paste -sd,)\n"
        'echo "{\\"name\\": \\"gpu\\", \\"addresses\\": [$ids]}"\n'
    )
    script.chmod(0o755)
    return {
        "spark.driver.resource.gpu.amount": "1",
        "spark.driver.resource.gpu.discoveryScript": str(script),
    }


def gpu_machine() -> dict[str, Any]:
    """The GPU run's machine: the usual fields plus the device, torch and CUDA versions."""
    import torch

    info = common.machine_info()
    info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    info["torch"] = torch.__version__
    info["cuda"] = torch.version.cuda
    return info


def run_gpu(args: argparse.Namespace) -> list[Result]:
    """Both models x (CPU reference, every backend on the GPU), 1 process each."""
    import os

    import torch

    gpu = not args.dry_run
    if gpu and not torch.cuda.is_available():
        raise SystemExit("training --device gpu: no CUDA device visible to torch")
    threads = os.cpu_count() or 1
    common.log(f"building data: demand {args.series}x{args.days}, reco {args.reco_users} users")
    data = {"demand": (build_data(args), model_cfg()), "reco": build_reco_data(args)}
    skip: dict[str, str | None] = {"local": None, "torch_distributor": _spark_unavailable_reason()}
    from shikong.training.launch import horovod_unavailable_reason

    skip["horovod"] = horovod_unavailable_reason()
    if gpu and skip["horovod"] is None and not _horovod_nccl_built():
        skip["horovod"] = "Horovod was built without NCCL (rebuild: scripts/install_horovod.sh)"
    label = "GPU" if gpu else "dry run, CPU"
    rates: dict[tuple[str, str], dict] = {}
    kw = {"epochs": args.epochs, "batch": args.batch}
    for name, (paths, model) in data.items():
        # The CPU reference is the faster of 1 torch thread and all cores (small models can
        # run slower on many threads).
        for n in sorted({1, threads}):
            common.log(f"{name}: CPU reference, {n} torch threads")
            rates[name, f"cpu{n}"] = gpu_train(model, paths, "local", gpu=False, threads=n, **kw)
        rates[name, "cpu"] = max(
            (rates[name, f"cpu{n}"] for n in {1, threads}), key=lambda r: r["rate"]
        )
        for backend in ("local", "horovod"):
            if skip[backend] is None:
                common.log(f"{name}: {backend} ({label})")
                rates[name, backend] = gpu_train(model, paths, backend, gpu=gpu, threads=1, **kw)
        common.log(f"{name}: local, batch x16 ({label})")
        rates[name, "big"] = gpu_train(
            model, paths, "local", gpu=gpu, threads=1, epochs=args.epochs, batch=args.batch * 16
        )
    if skip["torch_distributor"] is None:
        handle = common.start_spark(
            cores=args.cores, extra_conf=gpu_discovery_conf() if gpu else None
        )
        try:
            for name, (paths, model) in data.items():
                common.log(f"{name}: torch_distributor ({label})")
                rates[name, "torch_distributor"] = gpu_train(
                    model, paths, "torch_distributor", gpu=gpu, threads=1, **kw
                )
        finally:
            handle.spark.stop()
    return gpu_results(rates, skip, gpu=gpu, threads=threads, args=args)


def gpu_results(
    rates: dict[tuple[str, str], dict],
    skip: dict[str, str | None],
    *,
    gpu: bool,
    threads: int,
    args: argparse.Namespace,
) -> list[Result]:
    """Rows ``<model>_train_cpu_ref`` and ``<model>_train_gpu_<backend>`` (baseline: the
    CPU reference on the same machine); a backend that could not run gets a row with no
    value and the reason."""
    tag = "gpu" if gpu else "dryrun_cpu"
    res: list[Result] = []
    for name in GPU_MODELS:
        cpu = rates[name, "cpu"]
        ref = f"{name}_train_cpu_ref"
        one, many = rates[name, "cpu1"], rates[name, f"cpu{threads}"]
        res.append(
            Result(
                ref,
                "samples/s",
                cpu["rate"],
                notes=f"1 process on the GPU machine's CPU, the faster of 1 torch thread "
                f"({one['rate']:.0f}/s) and {threads} ({many['rate']:.0f}/s); global batch "
                f"{args.batch}, {args.epochs} epochs, rates over epochs 2+ when there are "
                f"several; val loss {cpu['val_loss']:.4f}",
            )
        )
        for backend in GPU_BACKENDS:
            row = f"{name}_train_{tag}_{backend}"
            got = rates.get((name, backend))
            if got is None:
                res.append(
                    Result(
                        row,
                        "samples/s",
                        None,
                        ref,
                        cpu["rate"],
                        notes=f"not measured: {skip[backend]}",
                    )
                )
                continue
            res.append(
                Result(
                    row,
                    "samples/s",
                    got["rate"],
                    ref,
                    cpu["rate"],
                    notes=f"1 process on {got['device']}, backend {backend}, global batch "
                    f"{args.batch}; start-up {got['startup_s']:.1f} s excluded; val loss "
                    f"{got['val_loss']:.4f} (CPU {cpu['val_loss']:.4f})",
                )
            )
        big = rates[name, "big"]
        res.append(
            Result(
                f"{name}_train_{tag}_local_batch_x16",
                "samples/s",
                big["rate"],
                ref,
                cpu["rate"],
                notes=f"global batch {args.batch * 16} on {big['device']} (the CPU reference "
                f"keeps batch {args.batch}); val loss {big['val_loss']:.4f}",
            )
        )
    return res


def merge_results(
    doc: dict[str, Any] | None, rows: list[dict[str, Any]], run: dict[str, Any]
) -> dict[str, Any]:
    """``training.json`` with ``rows`` merged in: rows of the same name are replaced, every
    other row (the CPU record) is kept in place, and the GPU run's machine, commit and time
    go under ``gpu_run`` (``machine`` stays the CPU machine's). ``doc=None``: a new file."""
    if doc is None:
        doc = {"area": "training", **{k: run[k] for k in ("git_commit", "measured_at", "machine")}}
        doc["results"] = []
    if doc.get("area") != "training":
        raise ValueError(f"not a training result file (area {doc.get('area')!r})")
    new = {r["name"] for r in rows}
    out = dict(doc)
    out["results"] = [r for r in doc.get("results", []) if r["name"] not in new] + list(rows)
    out["gpu_run"] = dict(run)
    return out


def write_gpu_results(results: list[Result], args: argparse.Namespace) -> Path:
    """Merge into ``training.json``: ``bench/results`` (or ``--out-dir``) for a GPU run; a
    dry run reads the record but writes ``bench/work/results-gpu-dry/training.json``."""
    import os

    src = Path(args.out_dir or common.RESULTS_DIR) / "training.json"
    dest = src if not args.dry_run else common.WORK_DIR / "results-gpu-dry" / "training.json"
    doc = json.loads(src.read_text(encoding="utf-8")) if src.exists() else None
    run = {
        # A copied working tree (the device tool's) has no .git: the caller can name it.
        "git_commit": os.environ.get("GPU_CHECK_COMMIT") or common.git_commit(),
        "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": gpu_machine(),
    }
    merged = merge_results(doc, [r.to_json() for r in results], run)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    return dest


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser)
    parser.add_argument("--series", type=int, default=300)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--no-spark", action="store_true", help="skip the Spark scorer")
    parser.add_argument(
        "--reco-users", type=int, default=10000, help="--device gpu: recommender users"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="--device gpu on the CPU with tiny data (use_gpu off; JSON under bench/work)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (CPU)")
    parser.add_argument("--breakdown-steps", type=int, default=100)
    parser.add_argument("--score-rows", type=int, default=100_000)
    parser.add_argument("--arrow-batch", type=int, default=10_000)
    args = parser.parse_args(argv)
    if args.quick:
        args.series, args.days, args.epochs = 40, 200, 1
        args.rounds, args.breakdown_steps, args.score_rows = 1, 10, 2000
    if args.dry_run:  # two epochs: the GPU rows' rate skips the first
        args.series, args.days, args.epochs = 40, 200, 2
        args.reco_users = min(args.reco_users, 1000)
    return args


def main(argv: list[str] | None = None) -> list[Result]:
    args = parse_args(argv)
    if args.device == "gpu":
        results = run_gpu(args)
        common.print_table("training", results)
        print(f"wrote {write_gpu_results(results, args)}")
        return results
    results = run(args)
    common.print_table("training", results)
    path = common.write_results("training", results, common.results_dir(args.quick, args.out_dir))
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
