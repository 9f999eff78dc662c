"""Evaluation of the deep models next to simple baselines, in plain numpy.

Demand: pinball loss (mean over quantile levels and cells, the training loss) and WAPE of
the median, for the fusion model, seasonal naive and any other quantile forecast on the
same (series, origin, step) cells. Recommender: Recall@K, NDCG@K and HitRate@K against the
session's purchased items, for model scores and for popularity / item co-occurrence
baselines fitted on the training split only. Buyer head: the probability that a session
buys, next to a recency-frequency baseline fitted on the training split (AUC and Brier
score are sklearn's, computed by the caller).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from shikong.encoding import PAD

PAD_ITEMS = 2  # item indices 0 (pad) and 1 (OOV) are never recommended


def pinball(actual: np.ndarray, quantiles: np.ndarray, levels: Sequence[float]) -> float:
    """Mean pinball loss over cells and levels.

    Args:
        actual: ``(N, H)`` actuals; NaN cells are skipped.
        quantiles: ``(N, H, Q)`` forecasts.
        levels: The ``Q`` quantile levels.
    """
    y = np.asarray(actual, dtype=np.float64)[..., None]
    q = np.asarray(quantiles, dtype=np.float64)
    tau = np.asarray(levels, dtype=np.float64)
    diff = y - q
    loss = np.maximum(tau * diff, (tau - 1.0) * diff)
    mask = np.broadcast_to(np.isfinite(y), loss.shape)
    return float(loss[mask].mean()) if mask.any() else float("nan")


def wape(actual: np.ndarray, point: np.ndarray) -> float:
    """Sum of absolute errors over sum of absolute actuals (NaN actuals skipped)."""
    y = np.asarray(actual, dtype=np.float64)
    p = np.asarray(point, dtype=np.float64)
    m = np.isfinite(y)
    den = np.abs(y[m]).sum()
    return float(np.abs(y[m] - p[m]).sum() / den) if den > 0 else float("nan")


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best items per row, best first (pad/OOV excluded)."""
    s = np.array(scores, dtype=np.float64, copy=True)
    s[:, :PAD_ITEMS] = -np.inf
    k = min(k, s.shape[1] - PAD_ITEMS)
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(s, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def ranking_metrics(scores: np.ndarray, targets: np.ndarray, k: int = 10) -> dict[str, float]:
    """Recall@K, NDCG@K and HitRate@K with binary relevance.

    Args:
        scores: ``(N, n_items)`` scores.
        targets: ``(N, T)`` relevant item indices, 0-padded (pad and OOV are ignored);
            rows without a relevant item are skipped.
        k: Cut-off.

    Returns:
        ``{"recall", "ndcg", "hit_rate", "n"}``.
    """
    t = np.asarray(targets, dtype=np.int64)
    if t.ndim == 1:
        t = t[:, None]
    valid = (t >= PAD_ITEMS).any(axis=1)
    if not valid.any():
        return {"recall": float("nan"), "ndcg": float("nan"), "hit_rate": float("nan"), "n": 0}
    top = top_k(np.asarray(scores)[valid], k)
    t = t[valid]
    rel = np.zeros(top.shape, dtype=bool)
    n_rel = np.zeros(len(t), dtype=np.int64)
    for i in range(len(t)):
        items = {int(x) for x in t[i] if x >= PAD_ITEMS}
        n_rel[i] = len(items)
        rel[i] = np.isin(top[i], list(items))
    hits = rel.sum(axis=1)
    disc = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    dcg = (rel * disc).sum(axis=1)
    ideal = np.array([disc[: min(n, top.shape[1])].sum() for n in n_rel])
    return {
        "recall": float(np.mean(hits / n_rel)),
        "ndcg": float(np.mean(dcg / ideal)),
        "hit_rate": float(np.mean(hits > 0)),
        "n": int(len(t)),
    }


def dense_counts(rows: Sequence[tuple[int, ...]], n_items: int, ndim: int) -> np.ndarray:
    """A dense popularity vector (``ndim=1``, rows ``(item, n)``) or co-occurrence matrix
    (``ndim=2``, rows ``(h, t, n)``) from the counts of
    :func:`shikong.training.features.baseline_counts`."""
    out = np.zeros((n_items,) * ndim, dtype=np.float64)
    if rows:
        arr = np.asarray(rows, dtype=np.int64)
        np.add.at(out, tuple(arr[:, i] for i in range(ndim)), arr[:, ndim].astype(np.float64))
    return out


def cooccurrence_scores(
    hist_items: np.ndarray, matrix: np.ndarray, popularity: np.ndarray
) -> np.ndarray:
    """Score = sum of co-occurrence rows of the history's items; popularity breaks ties
    (a tiny weight, so users with no co-occurring history get the popular items)."""
    h = np.asarray(hist_items, dtype=np.int64)
    scores = np.zeros((len(h), matrix.shape[1]), dtype=np.float64)
    for i, row in enumerate(h):
        hs = np.unique(row[row >= PAD_ITEMS])
        if len(hs):
            scores[i] = matrix[hs].sum(axis=0)
    pop = popularity / max(float(popularity.max()), 1.0)
    return scores + 1e-3 * pop


def recency_frequency(
    hist_items: np.ndarray, hist_gaps: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each example's recency (gap bucket of its newest history event, 0 = no history) and
    frequency (events in the history window), as
    :func:`shikong.training.features.recency_frequency_counts` counts them."""
    gaps = np.asarray(hist_gaps, dtype=np.int64)
    items = np.asarray(hist_items, dtype=np.int64)
    recency = gaps[:, -1] if gaps.ndim == 2 and gaps.shape[1] else np.zeros(len(gaps), np.int64)
    return recency, (items != PAD).sum(axis=1)


def recency_frequency_scores(
    recency: np.ndarray,
    frequency: np.ndarray,
    cells: pd.DataFrame,
    *,
    prior_weight: float = 10.0,
) -> np.ndarray:
    """Buyer probability of the recency-frequency baseline: the training split's buy rate
    in each example's (recency, frequency) cell, shrunk toward the overall rate by
    ``prior_weight`` pseudo-examples, so a cell seen a few times (or never: the overall
    rate) does not get an extreme rate from a handful of sessions.

    Args:
        recency, frequency: Per example (:func:`recency_frequency`).
        cells: :func:`shikong.training.features.recency_frequency_counts` collected.
        prior_weight: Pseudo-examples at the overall rate added to every cell.
    """
    n_all = float(cells["n"].sum())
    base = float(cells["buyers"].sum()) / n_all if n_all > 0 else 0.0
    rate = (cells["buyers"].to_numpy(float) + prior_weight * base) / (
        cells["n"].to_numpy(float) + prior_weight
    )
    lookup = pd.Series(
        rate,
        index=pd.MultiIndex.from_arrays(
            [cells["recency"].to_numpy(np.int64), cells["frequency"].to_numpy(np.int64)]
        ),
    )
    keys = pd.MultiIndex.from_arrays(
        [np.asarray(recency, dtype=np.int64), np.asarray(frequency, dtype=np.int64)]
    )
    return lookup.reindex(keys).fillna(base).to_numpy(np.float64)
