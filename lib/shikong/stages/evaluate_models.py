"""Stage ``evaluate_models``: the chosen models vs baselines on the time-split test data.

Demand: on the test origins of every SKU x warehouse series (targets strictly after the
validation period), pinball loss, WAPE of the median and 80% coverage of the fusion model,
of seasonal naive and of the time-series job's forecaster (SARIMA search with its
SBA/ETS/seasonal-naive routing, :func:`shikong.timeseries.forecast_array`, fitted on the
history before each origin in ``applyInPandas``), on the same cells.
Recommender: Recall@K, NDCG@K and HitRate@K on the test sessions (items bought in the
session are relevant) for the model, a popularity baseline and an item co-occurrence
baseline, both fitted on the training split; and the buyer head's probability on every test
session (buyers and not), AUC and Brier score next to a recency-frequency baseline fitted
on the training split. Results go to ``gold.model_evaluation``.

The test split is small (series x origins, test-period sessions); it is scored on the
driver with the same ``predict`` the batch inference uses.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pyspark.sql import types as T
from scipy.special import expit
from sklearn.metrics import brier_score_loss, roc_auc_score

from shikong.frames import to_pandas
from shikong.io import fs, shards
from shikong.io.checkpoints import CheckpointFiles
from shikong.io.shards import read_arrays, shard_files
from shikong.models import RecommenderConfig
from shikong.stages import ml_inputs as ml
from shikong.stages.context import StageContext, step
from shikong.timeseries import ARIMA_SCHEMA, forecast_config, make_origin_forecast_fn
from shikong.training.demand_examples import seasonal_naive_quantiles
from shikong.training.evaluation import (
    cooccurrence_scores,
    dense_counts,
    pinball,
    ranking_metrics,
    recency_frequency,
    recency_frequency_scores,
    wape,
)
from shikong.training.features import baseline_counts, recency_frequency_counts
from shikong.training.loop import load_checkpoint, predict

log = logging.getLogger(__name__)

EVAL_SCHEMA = T.StructType(
    [
        T.StructField("model_kind", T.StringType(), False),
        T.StructField("model_run_id", T.StringType(), False),
        T.StructField("model", T.StringType(), False),
        T.StructField("metric", T.StringType(), False),
        T.StructField("value", T.DoubleType(), True),
        T.StructField("n", T.LongType(), True),
        T.StructField("run_id", T.StringType(), True),
    ]
)


def _rows(kind: str, model_run: str, model: str, metrics: dict[str, float], n: int) -> list[dict]:
    return [
        {
            "model_kind": kind,
            "model_run_id": model_run,
            "model": model,
            "metric": k,
            "value": float(v),
            "n": int(n),
        }
        for k, v in metrics.items()
    ]


def _quantile_metrics(
    actual: np.ndarray, q: np.ndarray, levels: Sequence[float]
) -> dict[str, float]:
    ok = np.isfinite(actual)
    inside = (actual >= q[..., 0]) & (actual <= q[..., -1])
    return {
        "pinball": pinball(actual, q, levels),
        "wape": wape(actual, q[..., len(levels) // 2]),
        "coverage80": float(inside[ok].mean()) if ok.any() else float("nan"),
    }


def evaluate_demand(ctx: StageContext) -> list[dict]:
    """Test-split metrics of the demand model, seasonal naive and ARIMA."""
    reg = ml.chosen_model(ctx, "demand", None)
    model, mcfg, payload = load_checkpoint(reg["path"], CheckpointFiles())
    meta = payload["data_meta"]
    # The comparison is on ARIMA's levels (its 80% interval and point forecast); the model
    # may have more (the policy's service level), left out here.
    levels = ml.QUANTILES
    trained = [float(q) for q in meta["quantiles"]]
    missing = [q for q in levels if q not in trained]
    if missing:
        raise ValueError(f"the ARIMA comparison needs quantiles {levels}, got {trained}")
    pick = [trained.index(q) for q in levels]
    test = read_arrays(shard_files(fs.join(ml.data_dir(ctx, "demand"), "test")))
    order = np.lexsort((test["day0"], test["series_id"].astype(str)))
    test = {k: v[order] for k, v in test.items()}
    actual = test["y_fut"].astype(np.float64)
    h = actual.shape[1]
    fusion = predict(model, test, outputs=("quantiles",))["quantiles"][..., pick]
    naive = seasonal_naive_quantiles(test["y_hist"], h, len(levels))

    series = ctx.read("silver.sku_warehouse_daily").select("series_id", "ds", "y")
    fcfg = forecast_config(ctx.cfg.timeseries)
    fn = make_origin_forecast_fn(meta["test_origins"], h, fcfg)
    arima = to_pandas(series.groupBy("series_id").applyInPandas(fn, ARIMA_SCHEMA))
    arima = arima.set_index(["series_id", "day0", "step"]).sort_index()
    keys = pd.MultiIndex.from_arrays(
        [
            np.repeat(test["series_id"].astype(str), h),
            np.repeat(test["day0"].astype(np.int64), h),
            np.tile(np.arange(1, h + 1), len(actual)),
        ]
    )
    a = arima.reindex(keys)
    arima_q = np.stack([a["lo80"], a["yhat"], a["hi80"]], axis=-1).reshape(len(actual), h, 3)
    n = int(np.isfinite(actual).sum())
    rows = []
    for name, q in (("fusion", fusion), ("seasonal_naive", naive), ("arima", arima_q)):
        rows += _rows("demand", reg["run_id"], name, _quantile_metrics(actual, q, levels), n)
    mix = a["model"].value_counts(normalize=True)
    log.info("ARIMA-path models on the test origins: %s", mix.round(3).to_dict())
    return rows


def evaluate_recommender(ctx: StageContext) -> list[dict]:
    """Test-split ranking metrics of the recommender, popularity and co-occurrence."""
    reg = ml.chosen_model(ctx, "recommender", None)
    model, mcfg, payload = load_checkpoint(reg["path"], CheckpointFiles())
    k = ctx.cfg.models.recommender.top_k
    root = ml.data_dir(ctx, "recommender")
    train = shards.read_spark_split(ctx.spark, root, "train")
    pop_df, co_df = baseline_counts(train)
    test = read_arrays(shard_files(fs.join(root, "test")))
    if not isinstance(mcfg, RecommenderConfig):
        raise TypeError(f"{reg['path']} is not a recommender model")
    n_items = mcfg.n_items
    # Counted in Spark; what comes back is bounded by the catalogue, not the training rows.
    pop = dense_counts([tuple(r) for r in pop_df.collect()], n_items, 1)
    co = dense_counts([tuple(r) for r in co_df.collect()], n_items, 2)
    # One forward pass over every test session: its buyer logit for the buyer metrics, its
    # catalogue scores (kept for buying sessions only, in chunks) for the ranking ones.
    rows, logits = [], []
    for start in range(0, len(test["target_item"]), 4096):
        part = {name: v[start : start + 4096] for name, v in test.items()}
        out = predict(model, part, outputs=("scores", "buyer_logit"))
        logits.append(out["buyer_logit"])
        buying = part["target_item"] > 1
        if not buying.any():  # a chunk of n = 0 would make the weighted means NaN
            continue
        part = {name: v[buying] for name, v in part.items()}
        scores = {
            "recommender": out["scores"][buying],
            "popularity": np.tile(pop, (len(part["target_item"]), 1)),
            "cooccurrence": cooccurrence_scores(part["hist_items"], co, pop),
        }
        for name, s in scores.items():
            m = ranking_metrics(s, part["target_items"], k)
            rows.append({"model": name, **m})
    logit = np.concatenate(logits) if logits else np.zeros(0)
    cells = to_pandas(recency_frequency_counts(train))
    out_rows = buyer_rows(reg["run_id"], logit, test, cells)
    frame = pd.DataFrame(rows)
    for name, g in frame.groupby("model", sort=False):
        n = int(g["n"].sum())
        metrics = {
            f"{m}_at_{k}": float((g[m] * g["n"]).sum() / max(n, 1))
            for m in ("recall", "ndcg", "hit_rate")
        }
        out_rows += _rows("recommender", reg["run_id"], str(name), metrics, n)
    return out_rows


def buyer_rows(
    model_run: str, buyer_logit: np.ndarray, test: dict[str, np.ndarray], cells: pd.DataFrame
) -> list[dict]:
    """AUC and Brier score of the buyer head (its logits on the test sessions) and of the
    recency-frequency baseline on every test session (``buyer`` 1 or 0); AUC is NaN when
    the test split holds one class only."""
    y = test["buyer"].astype(np.float64)
    probs = {
        "recommender": expit(buyer_logit.astype(np.float64)),
        "recency_frequency": recency_frequency_scores(
            *recency_frequency(test["hist_items"], test["hist_gaps"]), cells
        ),
    }
    both = len(np.unique(y)) == 2
    metrics = {
        name: {
            "buyer_auc": float(roc_auc_score(y, p)) if both else float("nan"),
            "buyer_brier": float(brier_score_loss(y, p)) if len(y) else float("nan"),
        }
        for name, p in probs.items()
    }
    log.info(
        "buyer head: AUC %.4f vs recency-frequency %.4f (%d test sessions, %.1f%% buy)",
        metrics["recommender"]["buyer_auc"],
        metrics["recency_frequency"]["buyer_auc"],
        len(y),
        100 * y.mean() if len(y) else float("nan"),
    )
    n = len(y)
    return [
        row for name, m in metrics.items() for row in _rows("recommender", model_run, name, m, n)
    ]


def evaluation_table(rows: list[dict]) -> pd.DataFrame:
    """Rows as a model x metric table (for logs, the CLI and the report)."""
    frame = pd.DataFrame(rows)
    return frame.pivot_table(index=["model_kind", "model"], columns="metric", values="value")


def run(ctx: StageContext, *, model: str = "all") -> pd.DataFrame:
    """Evaluate the chosen models against baselines on the test split.

    Args:
        ctx: Stage context.
        model: ``demand``, ``recommender`` or ``all``.

    Returns:
        The model x metric table (also logged and written to ``gold.model_evaluation``).
    """
    kinds = ml.kinds(ctx, model)
    rows: list[dict] = []
    with step("evaluate_models") as done:
        if "demand" in kinds:
            rows += evaluate_demand(ctx)
        if "recommender" in kinds:
            rows += evaluate_recommender(ctx)
        for r in rows:
            r["run_id"] = ctx.run_id
        ctx.catalog.write(
            ctx.spark, "gold.model_evaluation", ctx.spark.createDataFrame(rows, EVAL_SCHEMA)
        )
        done(len(rows))
    table = evaluation_table(rows)
    log.info("model evaluation (test split):\n%s", table.round(4).to_string())
    return table
