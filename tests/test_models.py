"""Deep models: shapes, quantile monotonicity, pinball loss, and learning on tiny tasks."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from shikong.encoding import EVENT_CODES as CORE_EVENT_CODES
from shikong.encoding import OOV, PAD
from shikong.io.shards import read_rank_arrays, write_split_shards
from shikong.models import (
    EVENT_CODES,
    DemandFusionModel,
    DemandModelConfig,
    LocationAwareRecommender,
    RecommenderConfig,
    build_model,
    calendar_features,
    config_from_dict,
    config_to_dict,
    monotone_quantiles,
    pinball_loss,
    recall_at_k,
)
from shikong.models.demand import hash_bucket
from shikong.training import (
    DemandExampleConfig,
    RecoExampleConfig,
    TimeSplit,
    build_vocab,
    day_number,
    prepare_demand_splits,
    recommender_examples,
    seasonal_naive_quantiles,
    time_split,
)
from shikong.training.loop import TrainConfig, predict, train

torch.set_num_threads(1)


def demand_batch(cfg: DemandModelConfig, b: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y_hist = torch.poisson(torch.full((b, cfg.window), 4.0), generator=g)
    y_hist[0, :3] = float("nan")  # missing days are allowed
    return {
        "y_hist": y_hist,
        "day0": torch.randint(19_000, 19_500, (b,), generator=g),
        "sku": torch.randint(0, 10**9, (b,), generator=g),
        "category": torch.randint(0, 10**9, (b,), generator=g),
        "region": torch.zeros(b, dtype=torch.long),  # unknown
        "cell": torch.randint(0, 10**9, (b,), generator=g),
        "spatial_num": torch.randn(b, cfg.n_spatial, generator=g),
        "y_fut": torch.poisson(torch.full((b, cfg.horizon), 4.0), generator=g),
    }


@pytest.mark.parametrize("encoder", ["cnn", "lstm", "cnn_lstm", "transformer"])
def test_demand_forward_shapes_and_monotone_quantiles(encoder: str) -> None:
    cfg = DemandModelConfig(
        window=14, horizon=5, quantiles=(0.1, 0.5, 0.9), n_spatial=3, d_model=16, encoder=encoder
    )
    torch.manual_seed(0)
    model = DemandFusionModel(cfg).eval()
    batch = demand_batch(cfg)
    out = model(batch)
    assert out["quantiles"].shape == (5, 5, 3)
    assert out["attention"].shape == (5, 5, 14)
    assert out["scale"].shape == (5, 1)
    assert torch.isfinite(out["quantiles"]).all()
    assert (out["quantiles"].diff(dim=-1) > 0).all()
    parts = model.loss_parts(batch, out)
    loss = model.combine({k: s / c for k, (s, c) in parts.items()})
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_monotone_quantiles_never_cross() -> None:
    raw = torch.randn(200, 7, 5) * 10
    q = monotone_quantiles(raw)
    assert (q.diff(dim=-1) >= 0).all()
    assert torch.equal(q[..., 0], raw[..., 0])


def test_pinball_loss_matches_numpy_formula() -> None:
    rng = np.random.default_rng(3)
    pred = rng.normal(size=(6, 4, 3))
    target = rng.normal(size=(6, 4))
    target[1, 2] = np.nan
    qs = (0.1, 0.5, 0.9)
    ok = np.isfinite(target)
    expected_terms = []
    for i, j in zip(*np.nonzero(ok), strict=True):
        for k, q in enumerate(qs):
            e = target[i, j] - pred[i, j, k]
            expected_terms.append(q * e if e >= 0 else (q - 1) * e)
    got = pinball_loss(torch.tensor(pred), torch.tensor(target), qs)
    assert float(got) == pytest.approx(np.mean(expected_terms), rel=1e-10)
    got_sum = pinball_loss(torch.tensor(pred), torch.tensor(target), qs, reduction="sum")
    assert float(got_sum) == pytest.approx(np.sum(expected_terms), rel=1e-10)


def test_calendar_features_match_pandas() -> None:
    dates = pd.date_range("2023-12-25", periods=10, freq="D")
    days = torch.tensor(day_number(dates))
    dow, phase = calendar_features(days)
    assert dow.tolist() == list(dates.dayofweek)
    assert torch.allclose(phase.norm(dim=-1), torch.ones(10))


def test_hash_bucket_keeps_unknown_and_range() -> None:
    ids = torch.tensor([0, 1, 2, 10**12, 7])
    b = hash_bucket(ids, 5)
    assert b[0] == 0 and ((b[1:] >= 1) & (b[1:] <= 4)).all()


def test_config_validation_and_round_trip() -> None:
    with pytest.raises(ValueError, match="quantiles"):
        DemandModelConfig(quantiles=(0.9, 0.1))
    with pytest.raises(ValueError, match="encoder"):
        DemandModelConfig(encoder="gru")
    with pytest.raises(ValueError, match="retrieval"):
        RecommenderConfig(n_items=10, retrieval="sampled")
    for cfg in (DemandModelConfig(encoder="transformer"), RecommenderConfig(n_items=12)):
        assert config_from_dict(config_to_dict(cfg)) == cfg
        assert isinstance(build_model(cfg), DemandFusionModel | LocationAwareRecommender)


def reco_batch(cfg: RecommenderConfig, b: int = 6) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    items = torch.randint(2, cfg.n_items, (b, cfg.max_len), generator=g)
    items[0] = 0  # empty history
    items[1, :4] = 0
    return {
        "hist_items": items,
        "hist_cats": torch.randint(0, cfg.n_categories, (b, cfg.max_len), generator=g),
        "hist_events": torch.randint(1, 4, (b, cfg.max_len), generator=g) * (items > 0),
        "hist_gaps": torch.randint(1, cfg.n_gap_buckets, (b, cfg.max_len), generator=g),
        "region": torch.randint(0, 1000, (b,), generator=g),
        "cell": torch.randint(0, 1000, (b,), generator=g),
        "wh_km": torch.rand(b, cfg.n_wh, generator=g),
        "hour": torch.randint(0, 24, (b,), generator=g),
        "dow": torch.randint(0, 7, (b,), generator=g),
        "target_item": torch.tensor([5, 0, 5, 7, 9, 0])[:b],
        "buyer": torch.tensor([1.0, 0.0, 1.0, 1.0, 1.0, 0.0])[:b],
    }


@pytest.mark.parametrize("encoder", ["gru", "transformer"])
def test_recommender_shapes_masks_and_in_batch_duplicates(encoder: str) -> None:
    cfg = RecommenderConfig(n_items=12, n_categories=5, max_len=6, d_model=16, encoder=encoder)
    torch.manual_seed(0)
    model = LocationAwareRecommender(cfg)
    batch = reco_batch(cfg)
    model.train()
    out = model(batch)
    logits = out["inbatch_logits"]  # 4 buyer rows with a known item
    assert logits.shape == (4, 4)
    # rows 0 and 1 of the buyer rows share item 5: each other's positive is not a negative
    assert torch.isneginf(logits[0, 1]) and torch.isneginf(logits[1, 0])
    assert torch.isfinite(logits.diagonal()).all()
    parts = model.loss_parts(batch, out)
    assert float(parts["retrieval"][1]) == 4 and float(parts["buyer_bce"][1]) == 6
    model.combine({k: s / c for k, (s, c) in parts.items()}).backward()

    model.eval()
    out = model(batch)
    assert out["scores"].shape == (6, 12)
    assert torch.isneginf(out["scores"][:, :2]).all()
    assert torch.isfinite(out["scores"][:, 2:]).all() and torch.isfinite(out["user"]).all()
    metrics = model.metric_parts(batch, out)
    assert float(metrics["recall_at_10"][0]) == 4  # 10 of 10 real items: every target hits


def test_recall_at_k() -> None:
    scores = np.array([[0, 0, 3, 2, 1], [0, 0, 1, 2, 3], [0, 0, 1, 2, 3]], dtype=float)
    assert recall_at_k(scores, np.array([2, 2, 0]), k=1) == pytest.approx(0.5)
    assert recall_at_k(scores, np.array([2, 2, 0]), k=3) == pytest.approx(1.0)


# --------------------------------------------------------------------------- learning


def synthetic_demand(n_series: int = 10, days: int = 180, seed: int = 0) -> tuple:
    """Weekly-seasonal Poisson series whose level depends on a region (context)."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2023-01-02", periods=days, freq="D")
    frames, ctx = [], []
    for s in range(n_series):
        region = s % 3
        level = rng.uniform(4, 25) * (1.6 if region == 0 else 1.0)
        weekly = 1 + 0.7 * np.sin(2 * np.pi * np.arange(7) / 7 + s)
        y = rng.poisson(level * weekly[ds.dayofweek.to_numpy()]).astype(float)
        frames.append(pd.DataFrame({"series_id": f"s{s}", "sku": f"k{s}", "ds": ds, "y_clean": y}))
        ctx.append(
            {"series_id": f"s{s}", "region": f"R{region}", "cell": f"c{s % 4}", "km": 5.0 * s}
        )
    return pd.concat(frames, ignore_index=True), pd.DataFrame(ctx)


def test_demand_model_learns_and_beats_seasonal_naive(tmp_path) -> None:
    series, context = synthetic_demand()
    ecfg = DemandExampleConfig(window=21, horizon=7, stride=2, static_numeric=("km",))
    split = TimeSplit.last_days(int(day_number(series["ds"]).max()), val_days=21, test_days=0)
    splits, meta = prepare_demand_splits(series, ecfg, split, context=context)
    paths = write_split_shards(splits, str(tmp_path / "d"), 2, meta)
    mcfg = DemandModelConfig(
        window=21, horizon=7, n_spatial=1, d_model=16, emb_dim=4, n_layers=2, dropout=0.0
    )
    tcfg = TrainConfig(epochs=8, batch_size=32, lr=5e-3, patience=8, seed=1)
    result = train(mcfg, tcfg, paths)
    val_losses = [m.val_loss for m in result.history]
    assert min(val_losses[1:]) < 0.8 * val_losses[0]
    assert result.best_val_loss == min(val_losses)

    val = read_rank_arrays(paths.val, 0, 1)
    pred = predict(result.load_model(), val)["quantiles"]
    assert (np.diff(pred, axis=-1) >= 0).all()
    qs = mcfg.quantiles
    model_pb = float(pinball_loss(torch.tensor(pred), torch.tensor(val["y_fut"]), qs))
    naive = seasonal_naive_quantiles(val["y_hist"], 7, len(qs))
    naive_pb = float(pinball_loss(torch.tensor(naive), torch.tensor(val["y_fut"]), qs))
    assert model_pb < 0.8 * naive_pb


def synthetic_events(n_users: int, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    """Sessions whose purchases come mostly (80 %) from the 8 items its region prefers."""
    rng = np.random.default_rng(seed)
    n_items, n_regions = 60, 6
    prefs = [rng.choice(n_items, 8, replace=False) for _ in range(n_regions)]
    start = pd.Timestamp("2024-01-01")
    rows, users = [], []
    for u in range(n_users):
        r = u % n_regions
        lat, lon = -10 - 2 * r + rng.uniform(0, 1), -50 + rng.uniform(0, 1)
        users.append({"customer_id": f"u{u}", "region": f"R{r}", "cell": f"R{r}c{u % 3}"})
        for s in range(2):
            t = start + pd.Timedelta(days=float(rng.uniform(0, 60)))
            for _ in range(3):
                item = rng.choice(prefs[r]) if rng.random() < 0.5 else rng.integers(n_items)
                rows.append((f"u{u}s{s}", f"u{u}", t, "view", f"sku{item:02d}", lat, lon))
                t += pd.Timedelta(minutes=float(rng.uniform(1, 10)))
            if rng.random() < 0.6:
                item = rng.choice(prefs[r]) if rng.random() < 0.8 else rng.integers(n_items)
                rows.append((f"u{u}s{s}", f"u{u}", t, "purchase", f"sku{item:02d}", lat, lon))
    events = pd.DataFrame(
        rows, columns=["session_id", "customer_id", "event_ts", "event_type", "sku", "lat", "lon"]
    )
    events.insert(0, "event_id", [f"e{i}" for i in range(len(events))])
    products = pd.DataFrame(
        {
            "sku": [f"sku{i:02d}" for i in range(n_items)],
            "category": [f"c{i % 6}" for i in range(60)],
        }
    )
    return events, products, users


def test_recommender_beats_popularity_with_planted_location_preferences(tmp_path) -> None:
    events, products, users = synthetic_events(1500)
    vocab = build_vocab(products["sku"], products)
    warehouses = pd.DataFrame({"lat": [-10.0, -16.0, -20.0], "lon": [-50.0, -49.0, -50.0]})
    ex = recommender_examples(
        events,
        vocab,
        RecoExampleConfig(max_len=10, n_wh=3),
        user_context=pd.DataFrame(users),
        warehouses=warehouses,
    )
    t1 = int(pd.Timestamp("2024-02-10").timestamp())
    splits = time_split(ex, TimeSplit(t1, t1 + 10 * 86_400), start_col="cut_s", end_col="cut_s")
    paths = write_split_shards(splits, str(tmp_path / "r"), 2)
    assert paths.test is not None
    mcfg = RecommenderConfig(
        n_items=vocab.n_items,
        n_categories=vocab.n_categories,
        max_len=10,
        d_model=32,
        dropout=0.2,
        region_buckets=32,
        cell_buckets=64,
    )
    tcfg = TrainConfig(epochs=12, batch_size=64, lr=3e-3, weight_decay=0.1, patience=4)
    result = train(mcfg, tcfg, paths)
    assert result.model_kind == "recommender" and math.isfinite(result.best_val_loss)

    test = read_rank_arrays(paths.test, 0, 1)
    scores = predict(result.load_model(), test, outputs=("scores",))["scores"]
    model_recall = recall_at_k(scores, test["target_item"], 10)
    train_targets = splits["train"]["target_item"].to_numpy()
    popularity = np.bincount(train_targets[train_targets > 1], minlength=vocab.n_items).astype(
        float
    )
    popularity[:2] = -np.inf
    pop_recall = recall_at_k(np.tile(popularity, (len(scores), 1)), test["target_item"], 10)
    assert model_recall > pop_recall + 0.1, (model_recall, pop_recall)


def test_configs_are_frozen() -> None:
    cfg = DemandModelConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.window = 3  # type: ignore[misc]


def test_models_and_example_builders_share_the_core_codes() -> None:
    # One definition (shikong.encoding) for the recommender and its example builder.
    assert EVENT_CODES is CORE_EVENT_CODES and (PAD, OOV) == (0, 1)
    vocab = build_vocab(["a"])
    assert vocab.item_index(["a", "zz"]).tolist() == [2, OOV]
