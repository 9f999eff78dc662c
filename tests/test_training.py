"""Training data (time split, shards), the loop (reproducible, checkpoints, early stopping,
resume) and the launchers (2-process DDP, TorchDistributor, Horovod error; Horovod training
is in test_training_horovod.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from shikong.io.checkpoints import CheckpointFiles
from shikong.io.shards import (
    DataPaths,
    rank_shards,
    read_rank_arrays,
    read_rank_frame,
    write_shards,
    write_split_shards,
)
from shikong.io.train_results import ResultFiles
from shikong.models import DemandModelConfig
from shikong.training import (
    DemandExampleConfig,
    RecoExampleConfig,
    Standardizer,
    TimeSplit,
    available_day,
    build_vocab,
    day_number,
    demand_examples,
    epoch_seconds,
    prepare_demand_splits,
    recommender_examples,
    time_split,
)
from shikong.training.launch import HorovodUnavailableError, launch
from shikong.training.loop import TrainConfig, load_checkpoint, train

torch.set_num_threads(1)

START = pd.Timestamp("2023-01-02")  # a Monday


def ramp_series(n_series: int = 3, days: int = 60) -> pd.DataFrame:
    """Series whose value on a day IS that day's number, so windows reveal their dates."""
    ds = pd.date_range(START, periods=days, freq="D")
    return pd.concat(
        [
            pd.DataFrame({"series_id": f"s{i}", "ds": ds, "y_clean": day_number(ds).astype(float)})
            for i in range(n_series)
        ],
        ignore_index=True,
    )


def test_demand_examples_windows_asof_join_and_time_split_have_no_leakage() -> None:
    series = ramp_series()
    context = pd.DataFrame(
        {"series_id": ["s0", "s1", "s2"], "cell": ["a", "b", "a"], "km": [1.0, 2.0, 3.0]}
    )
    weeks = pd.date_range(START, periods=9, freq="7D").strftime("%Y-%m-%d")
    dynamic = pd.DataFrame({"cell": np.repeat(["a", "b"], len(weeks)), "period": [*weeks, *weeks]})
    dynamic["available_day"] = available_day(dynamic["period"], "week")
    dynamic["avail"] = dynamic["available_day"].astype(float)  # the feature = when it appeared
    cfg = DemandExampleConfig(
        window=14, horizon=7, stride=3, static_numeric=("km",), dynamic_numeric=("avail",)
    )
    ex = demand_examples(series, cfg, context=context, dynamic=dynamic)
    hist, fut = np.stack(ex["y_hist"]), np.stack(ex["y_fut"])
    day0 = ex["day0"].to_numpy()
    # history = the L days before day0, targets = the H days from day0
    assert (hist[:, -1] == day0 - 1).all() and (hist[:, 0] == day0 - 14).all()
    assert (fut[:, 0] == day0).all() and (fut[:, -1] == ex["target_end"]).all()
    # the latest origin of each series is kept
    assert ex.groupby("series_id")["target_end"].max().eq(day_number([START])[0] + 59).all()
    # spatial features: as of day0 (latest available <= day0), never later
    avail = np.stack(ex["spatial_num"])[:, 1]
    known = ~np.isnan(avail)
    assert known.any() and (avail[known] <= day0[known]).all()
    assert (day0[known] - avail[known] < 7).all()  # ...and it is the latest one
    with pytest.raises(ValueError, match="leakage"):
        available_day(dynamic["period"], "all")

    max_day = int(day_number(series["ds"]).max())
    split = TimeSplit.last_days(max_day, val_days=14, test_days=14)
    parts = time_split(ex, split, start_col="day0", end_col="target_end")
    tr, va, te = parts["train"], parts["val"], parts["test"]
    assert len(tr) and len(va) and len(te)
    assert tr["target_end"].max() <= split.train_end < va["day0"].min()
    assert va["target_end"].max() <= split.val_end < te["day0"].min()
    assert tr["target_end"].max() < va["day0"].min() and va["target_end"].max() < te["day0"].min()
    dropped = len(ex) - len(tr) - len(va) - len(te)
    assert dropped > 0  # windows straddling a boundary are purged, not assigned

    std = Standardizer.fit(tr, "spatial_num")
    train_mean = np.nanmean(np.stack(tr["spatial_num"]), axis=0)
    assert np.allclose(std.mean, train_mean)
    assert np.isfinite(np.stack(std.apply(va)["spatial_num"])).all()


def test_recommender_examples_history_strictly_before_cut() -> None:
    t = START
    rows = [
        ("e1", "s1", "u1", t, "view", "A", -10.0, -50.0),
        ("e2", "s1", "u1", t + pd.Timedelta(minutes=1), "cart", "B", -10.0, -50.0),
        ("e3", "s1", "u1", t + pd.Timedelta(minutes=5), "purchase", "B", -10.0, -50.0),
        ("e4", "s1", "u1", t + pd.Timedelta(minutes=6), "view", "C", -10.0, -50.0),
        ("e5", "s2", "u1", t + pd.Timedelta(days=2), "view", "C", -10.0, -50.0),
        ("e6", "s3", "u2", t + pd.Timedelta(days=1), "purchase", "A", -20.0, -40.0),
        ("e7", "s4", "u2", t + pd.Timedelta(days=3), "view", "ZZZ", None, None),
    ]
    events = pd.DataFrame(
        rows,
        columns=["event_id", "session_id", "customer_id", "event_ts", "event_type", "sku"]
        + ["lat", "lon"],
    )
    vocab = build_vocab(["A", "B", "C"], pd.DataFrame({"sku": ["A", "B", "C"], "category": "x"}))
    ex = recommender_examples(events, vocab, RecoExampleConfig(max_len=4, n_wh=2)).set_index(
        "session_id"
    )
    assert (ex["hist_last_s"] < ex["cut_s"]).all()
    s1 = ex.loc["s1"]
    assert s1["buyer"] == 1 and s1["target_item"] == vocab.item_index(["B"])[0]
    assert s1["cut_s"] == epoch_seconds([t + pd.Timedelta(minutes=1)])[0] + 1
    assert list(s1["hist_items"]) == [0, 0, *vocab.item_index(["A", "B"])]
    # the later session sees the earlier purchase (before its cut), OOV items map to 1
    s2 = ex.loc["s2"]
    assert s2["buyer"] == 0 and s2["target_item"] == 0 and 3 in list(s2["hist_events"])
    s3 = ex.loc["s3"]  # a purchase with no browsing before: empty history, cut at purchase
    assert s3["hist_last_s"] == -1 and s3["cut_s"] == epoch_seconds([t + pd.Timedelta(days=1)])[0]
    assert list(ex.loc["s4"]["hist_items"]) == [0, 0, vocab.item_index(["A"])[0], 1]  # 1 = OOV
    # buyer and non-buyer sessions are cut the same way (1 s after the last browse)
    assert s1["hist_gaps"][-1] == s2["hist_gaps"][-1] == 2  # 1 + floor(log2(1 + 1 s))
    t1 = int(ex["cut_s"].median())
    parts = time_split(ex.reset_index(), TimeSplit(t1, t1 + 1), start_col="cut_s", end_col="cut_s")
    assert parts["train"]["cut_s"].max() <= t1 < parts["test"]["cut_s"].min()


def test_shard_reader_partitions_rows_exactly_across_ranks(tmp_path: Path) -> None:
    n = 103
    frame = pd.DataFrame(
        {
            "row": np.arange(n),
            "vec": [np.full(3, i, dtype=np.float32) for i in range(n)],
            "ids": [np.arange(i, i + 2) for i in range(n)],
        }
    )
    folder = str(tmp_path / "s")
    files = write_shards(frame, folder, 6)
    assert len(files) == 6 and len(rank_shards(folder, 0, 4)) == 2
    for world_size in (1, 2, 3, 6):
        seen = []
        for rank in range(world_size):
            arrays = read_rank_arrays(folder, rank, world_size)
            assert arrays["vec"].shape == (len(arrays["row"]), 3)
            assert (arrays["vec"][:, 0] == arrays["row"]).all()
            assert (arrays["ids"][:, 1] == arrays["row"] + 1).all()
            seen.append(arrays["row"])
        rows = np.concatenate(seen)
        assert len(rows) == n and set(rows.tolist()) == set(range(n))
    with pytest.raises(ValueError, match="shards for 7 ranks"):
        read_rank_arrays(folder, 0, 7)
    # Spark-style output: nested part files, _SUCCESS and hidden files are handled
    spark_dir = tmp_path / "spark"
    (spark_dir / "ds=1").mkdir(parents=True)
    (spark_dir / "_SUCCESS").write_text("")
    table = pa.table({"row": pa.array([1, 2]), "vec": pa.array([[1.0, 2.0], [3.0, 4.0]])})
    pq.write_table(table, spark_dir / "part-00000-x.snappy.parquet")
    pq.write_table(table, spark_dir / "ds=1" / "part-00001-y.snappy.parquet")
    pq.write_table(table, spark_dir / ".part-00002.parquet")
    got = read_rank_frame(str(spark_dir), 1, 2)
    assert got["row"].tolist() == [1, 2] and list(got["vec"][1]) == [3.0, 4.0]
    # ... and so are file: URIs, which come back as URIs
    uri_files = write_shards(frame, f"file:{tmp_path}/u", 2)
    assert uri_files[0] == f"file:{tmp_path}/u/part-00000.parquet"
    assert read_rank_arrays(f"file:{tmp_path}/u", 1, 2)["row"].tolist() == list(range(52, n))


def build_demand_paths(out: Path) -> DataPaths:
    """Seeded weekly Poisson series -> demand train/val shards (shared with the Horovod tests)."""
    rng = np.random.default_rng(0)
    ds = pd.date_range(START, periods=150, freq="D")
    frames = []
    for s in range(8):
        weekly = 1 + 0.6 * np.sin(2 * np.pi * np.arange(7) / 7 + s)
        y = rng.poisson(rng.uniform(5, 20) * weekly[ds.dayofweek.to_numpy()]).astype(float)
        frames.append(pd.DataFrame({"series_id": f"s{s}", "ds": ds, "y_clean": y}))
    series = pd.concat(frames, ignore_index=True)
    cfg = DemandExampleConfig(window=14, horizon=7, stride=2)
    split = TimeSplit.last_days(int(day_number(ds).max()), val_days=21, test_days=0)
    splits, meta = prepare_demand_splits(series, cfg, split)
    return write_split_shards(splits, str(out), num_shards=4, meta=meta)


@pytest.fixture(scope="module")
def demand_paths(tmp_path_factory: pytest.TempPathFactory) -> DataPaths:
    return build_demand_paths(tmp_path_factory.mktemp("demand"))


TINY = DemandModelConfig(window=14, horizon=7, n_spatial=0, d_model=8, emb_dim=4, n_layers=1)


def test_train_is_reproducible_checkpoints_and_resumes(demand_paths: DataPaths, tmp_path) -> None:
    assert demand_paths.meta is not None
    meta = json.loads(Path(demand_paths.meta).read_text())
    assert meta["rows"]["train"] > 0 and meta["rows"]["val"] > 0
    tcfg = TrainConfig(epochs=3, batch_size=32, lr=3e-3, seed=5, checkpoint_dir=str(tmp_path / "a"))
    store = CheckpointFiles()
    with pytest.raises(ValueError, match="checkpoint store"):
        train(TINY, tcfg, demand_paths)
    a = train(TINY, tcfg, demand_paths, checkpoints=store)
    b = train(TINY, TrainConfig(epochs=3, batch_size=32, lr=3e-3, seed=5), demand_paths)
    assert [m.train_loss for m in a.history] == [m.train_loss for m in b.history]
    assert a.param_digest == b.param_digest and a.rank_digests == (a.param_digest,)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "best.pt",
        "epoch-000.pt",
        "epoch-001.pt",
        "epoch-002.pt",
    ]
    assert a.checkpoint is not None
    model, cfg, payload = load_checkpoint(a.checkpoint, store)
    assert cfg == TINY and payload["epoch"] == a.best_epoch
    # plain data and tensors only: a checkpoint loads without unpickling code
    raw = torch.load(tmp_path / "a" / "epoch-001.pt", map_location="cpu", weights_only=True)
    assert raw["history"][1]["epoch"] == 1 and len(raw["rng_state"]) == 1
    rows = a.metric_records("run-1")
    assert len(rows) == 3 and {"val_loss", "val_coverage", "val_wape", "lr"} <= set(rows[0])
    assert rows[-1]["lr"] < tcfg.lr  # cosine decay

    # resuming after epoch 1 ends exactly where the uninterrupted run ended
    resumed = train(
        TINY,
        TrainConfig(
            epochs=3, batch_size=32, lr=3e-3, seed=5, resume_from=str(tmp_path / "a/epoch-000.pt")
        ),
        demand_paths,
        checkpoints=store,
    )
    assert [m.val_loss for m in resumed.history] == [m.val_loss for m in a.history]
    assert resumed.param_digest == a.param_digest


def test_early_stopping_on_validation_loss(demand_paths: DataPaths) -> None:
    tcfg = TrainConfig(
        epochs=10, batch_size=32, lr=1e-9, schedule="constant", patience=2, min_delta=1e-3
    )
    result = train(TINY, tcfg, demand_paths)
    assert result.stopped_early and result.epochs_run == 3 and result.best_epoch == 0


def test_two_process_ddp_stays_in_sync_and_matches_one_process(demand_paths: DataPaths) -> None:
    tcfg = TrainConfig(epochs=3, batch_size=32, lr=5e-3, seed=2)
    one = launch(TINY, tcfg, demand_paths, backend="local", num_processes=1)
    with pytest.raises(ValueError, match="ResultFiles"):
        launch(TINY, tcfg, demand_paths, backend="local", num_processes=2)
    two = launch(TINY, tcfg, demand_paths, backend="local", num_processes=2, results=ResultFiles())
    assert two.world_size == 2 and len(two.rank_digests) == 2
    assert two.rank_digests[0] == two.rank_digests[1]  # DDP kept every rank's weights equal
    assert two.train_rows == one.train_rows and two.val_rows == one.val_rows
    assert [m.steps for m in two.history] == [m.steps for m in one.history]
    for a, b in zip(one.history, two.history, strict=True):
        assert b.val_loss == pytest.approx(a.val_loss, rel=0.05)
        assert b.train_loss == pytest.approx(a.train_loss, rel=0.05)
    assert two.history[-1].val_loss < two.history[0].val_loss


def test_torch_distributor_two_processes_local_mode(spark, demand_paths: DataPaths) -> None:
    tcfg = TrainConfig(epochs=1, batch_size=32, lr=3e-3, max_steps_per_epoch=5)
    result = launch(
        TINY,
        tcfg,
        demand_paths,
        backend="torch_distributor",
        num_processes=2,
        results=ResultFiles(),
    )
    assert result.backend == "torch_distributor" and result.world_size == 2
    assert result.rank_digests[0] == result.rank_digests[1]
    assert len(result.history) == 1 and math.isfinite(result.history[0].val_loss)
    assert result.state is not None and result.load_model() is not None


def test_horovod_backend_raises_clear_error(
    demand_paths: DataPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Runs whether or not Horovod is installed: the probe reports a load failure.
    import shikong.training.launch as launch_module

    monkeypatch.setattr(
        launch_module, "horovod_unavailable_reason", lambda: "No module named 'horovod.torch'"
    )
    with pytest.raises(HorovodUnavailableError, match="needs Horovod") as info:
        launch(TINY, TrainConfig(), demand_paths, backend="horovod", num_processes=2)
    message = str(info.value)
    assert "\n" not in message and "scripts/install_horovod.sh" in message


def test_launch_rejects_bad_arguments(demand_paths: DataPaths) -> None:
    with pytest.raises(ValueError, match="backend"):
        launch(TINY, TrainConfig(), demand_paths, backend="mpi")
    with pytest.raises(ValueError, match="divisible"):  # checked before joining a group
        train(TINY, TrainConfig(batch_size=33), demand_paths, rank=0, world_size=2)
    with pytest.raises(ValueError, match="checkpoint store"):  # before starting processes
        launch(TINY, TrainConfig(resume_from="x.pt"), demand_paths, num_processes=2)
