"""Deep-model stages on the generated small world: data prep, training, inference, evaluation.

Runs ``prepare_training_data`` -> ``train_models`` (TorchDistributor, 2 processes) ->
``batch_inference`` -> ``policy_fusion`` -> ``evaluate_models`` once, then checks the time
split, the tables, the UDF scores against a direct model call, the fusion-driven policy
against the predictions, idempotent reruns and the evaluation against the baselines (the
planted structure of the small world must be learnt).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import expit
from sklearn.metrics import brier_score_loss, ndcg_score, roc_auc_score

from shikong.io import fs
from shikong.io.catalog import Catalog
from shikong.io.checkpoints import CheckpointFiles
from shikong.io.shards import read_arrays, read_meta, shard_files
from shikong.models import pinball_loss
from shikong.privacy import pseudonym
from shikong.secrets import DEVELOPMENT_KEY
from shikong.training.evaluation import (
    cooccurrence_scores,
    dense_counts,
    pinball,
    ranking_metrics,
    recency_frequency,
    recency_frequency_scores,
    top_k,
    wape,
)
from shikong.training.features import baseline_counts, recency_frequency_counts
from shikong.training.loop import load_checkpoint, predict


def _data_dir(cfg, kind: str) -> str:
    return Catalog(cfg.paths.lakehouse).location("ml", "training_data", kind)


def test_time_split_has_no_leakage_and_counts_match(spark, ml) -> None:
    cfg = ml["cfg"]
    for kind, start, end in (("demand", "day0", "target_end"), ("recommender", "cut_s", "cut_s")):
        meta = read_meta(_data_dir(cfg, kind))
        split = meta["split"]
        parts = {
            n: spark.read.parquet(fs.join(_data_dir(cfg, kind), n)).toPandas()
            for n in ("train", "val", "test", "score")
        }
        assert {n: len(p) for n, p in parts.items()} == meta["rows"]
        assert parts["train"][end].max() <= split["train_end"]
        assert parts["val"][start].min() > split["train_end"]
        assert parts["val"][end].max() <= split["val_end"]
        assert parts["test"][start].min() > split["val_end"]
        # every rank gets its own shard
        assert len(shard_files(fs.join(_data_dir(cfg, kind), "train"))) >= cfg.models.num_processes
    demand = json.loads(Path(_data_dir(cfg, "demand"), "meta.json").read_text())
    test = spark.read.parquet(fs.join(_data_dir(cfg, "demand"), "test")).toPandas()
    assert sorted(test["day0"].unique()) == demand["test_origins"]
    train = spark.read.parquet(fs.join(_data_dir(cfg, "demand"), "train")).toPandas()
    z = np.stack(train["spatial_num"].to_list())
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=0.05)  # standardised on train


def test_training_recorded_in_delta_and_mlflow(spark, ml) -> None:
    import mlflow

    cfg = ml["cfg"]
    metrics = Catalog(cfg.paths.lakehouse).read(spark, "gold.training_metrics")
    registry = Catalog(cfg.paths.lakehouse).read(spark, "gold.model_registry")
    for kind, result in ml["trained"].items():
        assert result.backend == "torch_distributor" and result.world_size == 2
        assert len(set(result.rank_digests)) == 1  # ranks ended in sync
        rows = metrics.where(f"model_kind = '{kind}'").toPandas().sort_values("epoch")
        assert list(rows["val_loss"]) == pytest.approx([m.val_loss for m in result.history])
        reg = registry.where(f"model_kind = '{kind}'").toPandas()
        assert len(reg) == 1 and Path(reg["path"].iloc[0]).is_file()
        client = mlflow.tracking.MlflowClient(
            tracking_uri=(Path(cfg.paths.lakehouse).resolve() / "mlruns").as_uri()
        )
        hist = client.get_metric_history(reg["mlflow_run_id"].iloc[0], "val_loss")
        assert [m.value for m in sorted(hist, key=lambda m: m.step)] == pytest.approx(
            [m.val_loss for m in result.history]
        )


def test_demand_predictions_match_a_direct_model_call(spark, ml) -> None:
    cfg = ml["cfg"]
    preds = Catalog(cfg.paths.lakehouse).read(spark, "gold.demand_predictions")
    pdf = preds.toPandas().sort_values(["series_id", "step"]).reset_index(drop=True)
    h = cfg.models.demand.horizon
    assert len(pdf) == ml["meta"]["demand"]["series"] * h
    assert (pdf["q10"] <= pdf["q50"]).all() and (pdf["q50"] <= pdf["q90"]).all()
    last = pd.Timestamp("1970-01-01") + pd.Timedelta(days=ml["meta"]["demand"]["last_day"])
    assert (pd.to_datetime(pdf["origin"]) == last + pd.Timedelta(days=1)).all()
    # oracle: the model called directly on the serving shards
    path = Catalog(cfg.paths.lakehouse).read(spark, "gold.model_registry")
    path = path.where("model_kind = 'demand'").first()["path"]
    model, _, payload = load_checkpoint(path, CheckpointFiles())
    # the model file is plain data and tensors: it loads without unpickling code
    assert torch.load(path, map_location="cpu", weights_only=True)["best_epoch"] >= 0
    assert payload["data_meta"] == read_meta(_data_dir(cfg, "demand"))
    arrays = read_arrays(shard_files(fs.join(_data_dir(cfg, "demand"), "score")))
    q = np.maximum(predict(model, arrays)["quantiles"], 0.0)
    order = np.argsort(arrays["series_id"].astype(str), kind="stable")
    expected = q[order][:, :, 1].ravel()
    np.testing.assert_allclose(pdf["q50"].to_numpy(), expected, rtol=1e-5, atol=1e-5)


def test_fusion_policy_is_the_predictions_quantiles_beside_the_sarima_policy(spark, ml) -> None:
    cfg = ml["cfg"]
    cat = Catalog(cfg.paths.lakehouse)
    d = cfg.decisions
    preds = cat.read(spark, "gold.demand_predictions").toPandas()
    policy = cat.read(spark, "gold.inventory_policy").toPandas()
    sim = cat.read(spark, "gold.policy_simulation").toPandas()
    run_date = preds["origin"].max()
    assert set(policy["run_date"]) == set(sim["run_date"]) == {run_date}  # SARIMA's too
    model_points = set(cat.read(spark, "silver.sku_warehouse_daily").toPandas()["series_id"])
    stock_points = set(cat.read(spark, "silver.sku_daily").toPandas()["series_id"])
    both = model_points & stock_points
    fusion = policy[policy["forecast_source"] == "fusion"].copy()
    fusion["series_id"] = fusion["sku"] + "|" + fusion["warehouse_id"]
    assert both and set(fusion["series_id"]) == both
    sarima = policy[policy["forecast_source"] == "sarima"]
    assert set(sarima["sku"] + "|" + sarima["warehouse_id"]) == stock_points  # still there
    assert (fusion["method"] == "normal").all()
    lead = d.lead_time_days
    # oracle of the spread factor: split conformal on the validation windows, in numpy
    reg = cat.read(spark, "gold.model_registry").toPandas()
    model_run = preds["model_run_id"].iloc[0]
    chosen = reg[(reg["model_kind"] == "demand") & (reg["run_id"] == model_run)]
    model, _, payload = load_checkpoint(chosen["path"].iloc[0], CheckpointFiles())
    levels = [float(q) for q in payload["data_meta"]["quantiles"]]
    val_dir = fs.join(cfg.paths.lakehouse, "ml", "training_data", "demand", "val")
    val = read_arrays(shard_files(val_dir))
    q = np.maximum(predict(model, val, outputs=("quantiles",))["quantiles"], 0.0)
    actual = val["y_fut"].astype(np.float64)[:, :lead]
    med = q[..., levels.index(0.5)][:, :lead]
    upper = q[..., levels.index(d.service_level)][:, :lead]
    ok = np.isfinite(actual).all(axis=1)
    excess = actual[ok].sum(axis=1) - med[ok].sum(axis=1)
    rss = np.sqrt((np.maximum(upper[ok] - med[ok], 0.0) ** 2).sum(axis=1))
    ratios = sorted(
        0.0 if e <= 0 else (e / r if r > 0 else np.inf)
        for e, r in zip(excess, rss, strict=True)
    )
    k = int(np.ceil((len(ratios) + 1) * d.service_level))
    c = ratios[k - 1] if len(ratios) >= 30 and k <= len(ratios) else 1.0
    c = c if np.isfinite(c) else 1.0
    # reorder point = lead-time medians + c x root-sum-square of the daily q95 excesses
    for row in fusion.itertuples():
        p = preds[preds["series_id"] == row.series_id].sort_values("step").head(lead)
        gap = np.maximum(p["q95"] - p["q50"], 0.0)
        assert row.lead_time_demand == pytest.approx(p["q50"].sum(), rel=1e-6)
        assert row.reorder_point == pytest.approx(
            p["q50"].sum() + c * np.sqrt((gap**2).sum()), rel=1e-6, abs=1e-9
        )
    replayed = sim[sim["forecast_source"] == "fusion"]
    assert set(replayed["policy"]) == {"policy"} and replayed["balance_ok"].all()
    table = ml["policies"].set_index("policy")
    print("\ninventory policies, replay:\n" + table.round(3).to_string())
    assert list(table.index) == ["naive", "sarima", "fusion"]
    assert (table["pairs"] == len(both)).all()
    assert table["fill_rate"].between(0.0, 1.0).all()


def test_recommendations_are_topk_and_rerun_is_idempotent(spark, ml) -> None:
    from shikong.stages import batch_inference
    from shikong.stages.context import StageContext

    cfg = ml["cfg"]
    k = cfg.models.recommender.top_k
    cat = Catalog(cfg.paths.lakehouse)
    before = cat.read(spark, "gold.recommendations").toPandas()
    ranks = before.groupby("customer_id")["rank"].apply(sorted)
    assert all(r == list(range(1, k + 1)) for r in ranks)
    assert before.groupby("customer_id")["sku"].nunique().eq(k).all()
    ordered = before.sort_values(["customer_id", "rank"])
    assert ordered.groupby("customer_id")["score"].apply(lambda s: s.is_monotonic_decreasing).all()
    batch_inference.run(StageContext.create(spark, cfg))
    after = cat.read(spark, "gold.recommendations").toPandas()
    assert len(after) == len(before)
    preds = Catalog(cfg.paths.lakehouse).read(spark, "gold.demand_predictions")
    assert preds.count() == ml["meta"]["demand"]["series"] * cfg.models.demand.horizon


def test_buyer_probability_matches_a_direct_model_call(spark, ml) -> None:
    cfg = ml["cfg"]
    cat = Catalog(cfg.paths.lakehouse)
    got = cat.read(spark, "gold.buyer_probability").toPandas()
    recs = cat.read(spark, "gold.recommendations").toPandas()
    # One row per scored customer: the same customers as the recommendations.
    assert got["customer_id"].is_unique
    assert set(got["customer_id"]) == set(recs["customer_id"])
    # oracle: the registered model called directly on the serving shards, the customers
    # pseudonymised with the test key
    reg = cat.read(spark, "gold.model_registry").where("model_kind = 'recommender'").first()
    model, _, _ = load_checkpoint(reg["path"], CheckpointFiles())
    arrays = read_arrays(shard_files(fs.join(_data_dir(cfg, "recommender"), "score")))
    p = expit(predict(model, arrays, outputs=("buyer_logit",))["buyer_logit"].astype(float))
    ids = [str(c) for c in arrays["customer_id"]]
    expected = pd.Series(p, index=[pseudonym(c, DEVELOPMENT_KEY) for c in ids]).sort_index()
    assert (got["model_run_id"] == reg["run_id"]).all()
    got = got.set_index("customer_id")["p_buyer"].sort_index()
    assert list(got.index) == list(expected.index)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-5, atol=1e-6)


def test_buyer_evaluation_matches_sklearn_and_a_pandas_baseline(spark, ml) -> None:
    cfg = ml["cfg"]
    root = _data_dir(cfg, "recommender")
    train = read_arrays(shard_files(fs.join(root, "train")))
    test = read_arrays(shard_files(fs.join(root, "test")))
    reg = Catalog(cfg.paths.lakehouse).read(spark, "gold.model_registry")
    path = reg.where("model_kind = 'recommender'").first()["path"]
    model, _, _ = load_checkpoint(path, CheckpointFiles())
    y = test["buyer"].astype(float)
    assert 0 < y.sum() < len(y), "the test split needs buyers and non-buyers"
    # oracle of the baseline: pandas over the training arrays, the shrunk rate per cell
    frame = pd.DataFrame(
        {
            "recency": train["hist_gaps"][:, -1],
            "frequency": (train["hist_items"] != 0).sum(axis=1),
            "buyer": train["buyer"].astype(float),
        }
    )
    base = frame["buyer"].mean()
    cells = frame.groupby(["recency", "frequency"])["buyer"].agg(["sum", "count"])
    rate = (cells["sum"] + 10 * base) / (cells["count"] + 10)
    keys = pd.MultiIndex.from_arrays(
        [test["hist_gaps"][:, -1], (test["hist_items"] != 0).sum(axis=1)]
    )
    p_rf = rate.reindex(keys).fillna(base).to_numpy()
    p_model = expit(predict(model, test, outputs=("buyer_logit",))["buyer_logit"].astype(float))
    table = ml["eval"].loc["recommender"]
    print("\nbuyer head, test split:\n" + table[["buyer_auc", "buyer_brier"]].dropna().to_string())
    for name, p in (("recommender", p_model), ("recency_frequency", p_rf)):
        assert table.loc[name, "buyer_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-4)
        assert table.loc[name, "buyer_brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-4)
    # The planted structure of the small world is learnt: better than chance.
    assert table.loc["recommender", "buyer_auc"] > 0.5


def test_fusion_model_beats_seasonal_naive_on_the_small_world(ml) -> None:
    table = ml["eval"].loc["demand"]
    print("\ndemand, test split:\n" + table[["pinball", "wape", "coverage80"]].round(4).to_string())
    assert table.loc["fusion", "pinball"] < table.loc["seasonal_naive", "pinball"]
    assert table.loc["fusion", "wape"] < table.loc["seasonal_naive", "wape"]
    assert np.isfinite(table.loc["arima", "pinball"])


def test_recommender_beats_popularity_on_the_small_world(ml) -> None:
    table = ml["eval"].loc["recommender"]
    cols = ["recall_at_10", "ndcg_at_10", "hit_rate_at_10"]
    print("\nrecommender, test split:\n" + table[cols].round(4).to_string())
    assert table.loc["recommender", "recall_at_10"] > table.loc["popularity", "recall_at_10"]
    assert table.loc["recommender", "ndcg_at_10"] > table.loc["popularity", "ndcg_at_10"]


# ----------------------------------------------------------------- metric oracles


def test_pinball_and_wape_match_direct_formulas() -> None:
    rng = np.random.default_rng(3)
    y = rng.poisson(3.0, (6, 4)).astype(float)
    y[0, 0] = np.nan
    q = np.sort(rng.normal(3.0, 1.0, (6, 4, 3)), axis=-1)
    levels = (0.1, 0.5, 0.9)
    expected = float(pinball_loss(torch.tensor(q), torch.tensor(y), levels))
    assert pinball(y, q, levels) == pytest.approx(expected, rel=1e-9)
    ok = np.isfinite(y)
    assert wape(y, q[..., 1]) == pytest.approx(np.abs(y - q[..., 1])[ok].sum() / y[ok].sum())


def test_ranking_metrics_against_sklearn_and_hand_counts() -> None:
    rng = np.random.default_rng(5)
    scores = rng.normal(size=(20, 12))
    targets = np.zeros((20, 3), dtype=np.int64)
    for i in range(20):
        items = rng.choice(np.arange(2, 12), size=rng.integers(1, 4), replace=False)
        targets[i, : len(items)] = items
    got = ranking_metrics(scores, targets, k=5)
    rel = np.zeros_like(scores)
    for i, row in enumerate(targets):
        rel[i, row[row >= 2]] = 1.0
    masked = scores.copy()
    masked[:, :2] = -1e9  # pad / OOV are never recommended
    assert got["ndcg"] == pytest.approx(ndcg_score(rel, masked, k=5), rel=1e-9)
    top = top_k(scores, 5)
    hits = np.array([np.isin(top[i], targets[i][targets[i] >= 2]).sum() for i in range(20)])
    n_rel = (targets >= 2).sum(axis=1)
    assert got["recall"] == pytest.approx(np.mean(hits / n_rel))
    assert got["hit_rate"] == pytest.approx(np.mean(hits > 0))


def test_baseline_counts_match_a_numpy_oracle(spark) -> None:
    hist = np.array([[0, 2, 3], [0, 2, 2], [3, 3, 4], [0, 0, 5]])
    target = np.array([5, 5, 6, 0])  # the last row is a non-buyer: ignored
    train = spark.createDataFrame(
        pd.DataFrame({"hist_items": [list(map(int, r)) for r in hist], "target_item": target}),
        "hist_items array<bigint>, target_item bigint",
    )
    pop_df, co_df = baseline_counts(train)
    pop = dense_counts([tuple(r) for r in pop_df.collect()], 7, 1)
    co = dense_counts([tuple(r) for r in co_df.collect()], 7, 2)
    # oracle: plain loops over the rows
    exp_pop = np.zeros(7)
    exp_co = np.zeros((7, 7))
    for row, tgt in zip(hist, target, strict=True):
        if tgt < 2:
            continue
        exp_pop[tgt] += 1
        for h in set(row[row >= 2].tolist()):
            exp_co[h, tgt] += 1
    np.testing.assert_array_equal(pop, exp_pop)
    np.testing.assert_array_equal(co, exp_co)
    s = cooccurrence_scores(np.array([[0, 0, 2], [0, 0, 0]]), co, pop)
    assert int(np.argmax(s[0])) == 5 and int(np.argmax(s[1])) == 5  # cold user -> popular


def test_recency_frequency_counts_match_a_pandas_oracle(spark) -> None:
    hist = [[0, 0, 0], [0, 2, 1], [5, 5, 7], [0, 0, 9], [0, 3, 4]]  # 1 = OOV: still an event
    gaps = [[0, 0, 0], [0, 6, 4], [9, 7, 4], [0, 0, 2], [0, 8, 4]]
    buyer = [0.0, 1.0, 1.0, 0.0, 0.0]
    train = spark.createDataFrame(
        pd.DataFrame({"hist_items": hist, "hist_gaps": gaps, "buyer": buyer}),
        "hist_items array<bigint>, hist_gaps array<bigint>, buyer float",
    )
    got = recency_frequency_counts(train).toPandas()
    got = got.sort_values(["recency", "frequency"]).reset_index(drop=True)
    # oracle: the newest slot's gap and the non-pad count, by hand
    expected = pd.DataFrame(
        {
            "recency": [0, 2, 4, 4],
            "frequency": [0, 1, 2, 3],
            "n": [1, 1, 2, 1],
            "buyers": [0.0, 0.0, 1.0, 1.0],
        }
    )
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    rec, freq = recency_frequency(np.array(hist), np.array(gaps))
    np.testing.assert_array_equal(rec, [0, 4, 4, 2, 4])
    np.testing.assert_array_equal(freq, [0, 2, 3, 1, 2])
    # shrunk toward the overall rate 2/5 by 10 pseudo-sessions; an unseen cell gets 2/5
    p = recency_frequency_scores(np.array([4, 0, 3]), np.array([2, 0, 9]), got)
    np.testing.assert_allclose(p, [(1 + 4) / (2 + 10), (0 + 4) / (1 + 10), 0.4])


@pytest.mark.parametrize(
    ("train", "val", "world_size", "match"),
    [
        ((40, 2), (10, 2), 2, None),
        ((0, 1), (10, 2), 1, "demand model: 0 train examples in 1 shards for 1 training"),
        ((40, 1), (10, 2), 2, "demand model: 40 train examples in 1 shards for 2 training"),
        ((40, 2), (1, 2), 2, "demand model: 1 val examples in 2 shards for 2 training"),
    ],
    ids=["enough", "no-train-examples", "fewer-shards-than-ranks", "fewer-val-rows-than-ranks"],
)
def test_training_data_too_small_for_the_ranks_fails_on_the_driver(
    tmp_path: Path, train, val, world_size, match
) -> None:
    from shikong.io.shards import DataPaths
    from shikong.stages.train_models import NotEnoughTrainingDataError, require_rank_data

    paths = DataPaths.under(str(tmp_path))
    for split, (_, shards) in {"train": train, "val": val}.items():
        (tmp_path / split).mkdir()
        for i in range(shards):
            (tmp_path / split / f"part-{i}.parquet").write_bytes(b"")
    meta = {"rows": {"train": train[0], "val": val[0]}}
    if match is None:
        require_rank_data("demand", meta, paths, world_size)
        return
    with pytest.raises(NotEnoughTrainingDataError, match=match + ".*rerun prepare_training_data"):
        require_rank_data("demand", meta, paths, world_size)


def test_train_models_refuses_before_launching_ranks(spark, ml) -> None:
    """Three ranks for two shards: one line, and no model trained or recorded."""
    from shikong.stages import train_models
    from shikong.stages.context import StageContext
    from shikong.stages.train_models import NotEnoughTrainingDataError

    cfg = ml["cfg"]
    cfg = dataclasses.replace(
        cfg, models=dataclasses.replace(cfg.models, num_processes=3, num_shards=3)
    )
    catalog = Catalog(cfg.paths.lakehouse)
    before = catalog.read(spark, "gold.model_registry").count()
    with pytest.raises(NotEnoughTrainingDataError, match="2 shards for 3 training processes"):
        train_models.run(StageContext.create(spark, cfg))
    assert catalog.read(spark, "gold.model_registry").count() == before
