"""Batch scoring with pandas UDFs: the model is loaded once per Python worker.

:func:`make_demand_scorer`, :func:`make_topk_scorer` and :func:`make_buyer_scorer` return
functions for ``DataFrame.mapInPandas``: they receive an iterator of Arrow batches of
examples, load the model file on the first batch through the injected
:class:`~shikong.training.protocols.CheckpointStore` (cached per worker process by path,
and Spark reuses its Python workers across tasks), run it single-threaded in eval mode and
yield flat rows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shikong.training.evaluation import top_k
from shikong.training.protocols import CheckpointStore

if TYPE_CHECKING:  # only the driver calls score_demand; workers need no pyspark import here
    from pyspark.sql import DataFrame


@functools.lru_cache(maxsize=4)
def cached_model(path: str, store: CheckpointStore) -> Any:
    """``(model, config)`` of a model file read through ``store`` (hashable), loaded once
    per process."""
    import torch

    from shikong.training.loop import load_checkpoint

    torch.set_num_threads(1)
    model, cfg, _ = load_checkpoint(path, store)
    return model, cfg


Scorer = Callable[[Iterable[pd.DataFrame]], Iterator[pd.DataFrame]]


def _per_batch(
    model_path: str, store: CheckpointStore, rows: Callable[[Any, pd.DataFrame], pd.DataFrame]
) -> Scorer:
    """The ``mapInPandas`` loop every scorer shares: the model loaded once per Python worker
    (:func:`cached_model`), then ``rows(model, batch)`` for each non-empty Arrow batch."""

    def score(batches: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model, _ = cached_model(model_path, store)
        for pdf in batches:
            if not pdf.empty:
                yield rows(model, pdf)

    return score


def _stack(col: pd.Series, dtype: Any) -> np.ndarray:
    return np.stack([np.asarray(v, dtype=dtype) for v in col.to_list()])


def demand_arrays(pdf: pd.DataFrame) -> dict[str, np.ndarray]:
    """Model inputs of a batch of demand examples (``DEMAND_EXAMPLE_SCHEMA`` rows)."""
    return {
        "y_hist": _stack(pdf["y_hist"], np.float32),
        "spatial_num": _stack(pdf["spatial_num"], np.float32),
        "day0": pdf["day0"].to_numpy(np.int64),
        **{c: pdf[c].to_numpy(np.int64) for c in ("sku", "category", "region", "cell")},
    }


def quantile_names(levels: Sequence[float]) -> list[str]:
    """Column names of quantile levels: 0.1 -> ``q10``, 0.5 -> ``q50``, 0.975 -> ``q97_5``."""
    return ["q" + f"{100 * q:g}".replace(".", "_") for q in levels]


def demand_prediction_schema(levels: Sequence[float]) -> str:
    """DDL of :func:`make_demand_scorer` rows."""
    qs = ", ".join(f"{n} double" for n in quantile_names(levels))
    return f"series_id string, origin date, ds date, step int, {qs}"


def make_demand_scorer(
    model_path: str, levels: Sequence[float], *, checkpoints: CheckpointStore
) -> Scorer:
    """``mapInPandas`` function: demand examples -> one row per series x horizon step.

    Args:
        model_path: Model file.
        levels: Quantile levels of the model.
        checkpoints: Reads the model file on the workers (picklable and hashable, e.g.
            :class:`shikong.io.checkpoints.CheckpointFiles`).
    """
    names = quantile_names(levels)

    def rows(model: Any, pdf: pd.DataFrame) -> pd.DataFrame:
        from shikong.training.loop import predict

        q = predict(model, demand_arrays(pdf), outputs=("quantiles",))["quantiles"]
        n, h = q.shape[0], q.shape[1]
        day0 = pdf["day0"].to_numpy(np.int64)
        steps = np.tile(np.arange(1, h + 1), n)
        origin = np.repeat(day0, h)
        out = {
            "series_id": np.repeat(pdf["series_id"].to_numpy(), h),
            # Days since 1970-01-01 as datetime64 (Arrow casts them to date32 in C);
            # a Python date per row cost more than the model on a 100k-row batch.
            "origin": origin.astype("datetime64[D]"),
            "ds": (origin + steps - 1).astype("datetime64[D]"),
            "step": steps.astype(np.int32),
        }
        flat = q.reshape(n * h, -1).astype(np.float64)
        for j, name in enumerate(names):
            out[name] = np.maximum(flat[:, j], 0.0)  # demand is never negative
        return pd.DataFrame(out)

    return _per_batch(model_path, checkpoints, rows)


#: Example columns :func:`make_demand_scorer` reads (the targets ``y_fut`` and
#: ``target_end`` are not sent to the Python workers).
DEMAND_SCORE_COLUMNS = (
    "series_id",
    "day0",
    "y_hist",
    "spatial_num",
    "sku",
    "category",
    "region",
    "cell",
)


def score_demand(
    examples: DataFrame, model_path: str, levels: Sequence[float], *, checkpoints: CheckpointStore
) -> DataFrame:
    """Demand examples -> one forecast row per series x horizon step
    (:func:`demand_prediction_schema`), scored by :func:`make_demand_scorer` in
    ``mapInPandas``.

    Only :data:`DEMAND_SCORE_COLUMNS` travel to Python (Parquet reads only those). Rows go
    to the workers in Arrow batches of ``spark.sql.execution.arrow.maxRecordsPerBatch``;
    each Python worker loads the model once and runs it on one torch thread, so one task
    per core keeps every core busy.
    """
    return examples.select(*DEMAND_SCORE_COLUMNS).mapInPandas(
        make_demand_scorer(model_path, levels, checkpoints=checkpoints),
        demand_prediction_schema(levels),
    )


RECO_INPUT_KEYS = ("hist_items", "hist_cats", "hist_events", "hist_gaps", "wh_km")


def reco_arrays(pdf: pd.DataFrame) -> dict[str, np.ndarray]:
    """Model inputs of a batch of recommender examples (``RECO_EXAMPLE_SCHEMA`` rows)."""
    out = {k: _stack(pdf[k], np.float32 if k == "wh_km" else np.int64) for k in RECO_INPUT_KEYS}
    for c in ("region", "cell", "hour", "dow"):
        out[c] = pdf[c].to_numpy(np.int64)
    return out


TOPK_SCHEMA = "customer_id string, rank int, sku string, score double"


def make_topk_scorer(
    model_path: str, items: Sequence[str], k: int, *, checkpoints: CheckpointStore
) -> Scorer:
    """``mapInPandas`` function: one serving example per user -> top-``k`` SKUs with scores.

    Args:
        model_path: Model file.
        items: Vocabulary SKUs (item index ``i + 2`` is ``items[i]``).
        k: Recommendations per user.
        checkpoints: Reads the model file on the workers (as for
            :func:`make_demand_scorer`).
    """
    sku_of = np.asarray(["", "", *items], dtype=object)

    def rows(model: Any, pdf: pd.DataFrame) -> pd.DataFrame:
        from shikong.training.loop import predict

        s = predict(model, reco_arrays(pdf), outputs=("scores",))["scores"]
        top = top_k(s, k)
        n, kk = top.shape
        return pd.DataFrame(
            {
                "customer_id": np.repeat(pdf["customer_id"].to_numpy(), kk),
                "rank": np.tile(np.arange(1, kk + 1, dtype=np.int32), n),
                "sku": sku_of[top.ravel()],
                "score": np.take_along_axis(s, top, axis=1).ravel().astype(np.float64),
            }
        )

    return _per_batch(model_path, checkpoints, rows)


BUYER_SCHEMA = "customer_id string, p_buyer double"


def make_buyer_scorer(model_path: str, *, checkpoints: CheckpointStore) -> Scorer:
    """``mapInPandas`` function: one serving example per user -> the recommender's buyer
    head probability (``p_buyer``, the sigmoid of its logit)."""

    def rows(model: Any, pdf: pd.DataFrame) -> pd.DataFrame:
        from scipy.special import expit

        from shikong.training.loop import predict

        logit = predict(model, reco_arrays(pdf), outputs=("buyer_logit",))["buyer_logit"]
        return pd.DataFrame(
            {"customer_id": pdf["customer_id"].to_numpy(), "p_buyer": expit(logit.astype(float))}
        )

    return _per_batch(model_path, checkpoints, rows)
