"""Location-aware next-purchase recommender with an auxiliary buyer / non-buyer head.

One example is one session of one customer cut at its prediction time (the first purchase
of a buying session; the end of a non-buying session), see
:func:`shikong.training.reco_examples.recommender_examples`. Inputs (see :data:`RECO_BATCH_KEYS`):

* ``hist_items``, ``hist_cats``, ``hist_events``, ``hist_gaps`` (B, K) int64: the customer's
  last K events strictly before the cut, left-padded with 0: item index (0 = pad, 1 =
  out-of-vocabulary), category index, event type (1 view, 2 cart, 3 purchase) and the
  bucketed time from the event to the cut (log2 seconds).
* ``region``, ``cell`` (B,) int64 hashed location ids; ``wh_km`` (B, n_wh) float
  ``log1p`` distances to the nearest warehouses; ``hour`` (0-23), ``dow`` (Monday = 0).
* ``target_item`` (B,) int64: the purchased item (0 for non-buyers); ``buyer`` (B,) float.

Architecture: event tokens (item + category + event type + gap + position embeddings) are
encoded by a GRU or a small Transformer (padding masked); the location/time context vector
attends over the encoded tokens plus a learned "empty history" token; the user vector is an
MLP over ``[attended, context, last token]``. Catalogue scores are ``user . item_out +
bias`` over every item (pad and OOV masked). Training loss = retrieval cross-entropy over
the buyer rows + ``aux_weight`` x BCE of the buyer head over all rows. Retrieval uses
in-batch negatives (the other buyers' targets in the batch, duplicates of the positive
masked) or the full catalogue softmax (``retrieval="full"``); evaluation always uses the
full softmax so validation losses do not depend on batch composition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from shikong.encoding import EVENT_CODES, OOV, PAD
from shikong.models.demand import hash_bucket

RECO_BATCH_KEYS = (
    "hist_items",
    "hist_cats",
    "hist_events",
    "hist_gaps",
    "region",
    "cell",
    "wh_km",
    "hour",
    "dow",
    "target_item",
    "buyer",
)
SEQ_ENCODERS = ("gru", "transformer")
RETRIEVAL_MODES = ("in_batch", "full")


@dataclass(frozen=True)
class RecommenderConfig:
    """Sizes and options of :class:`LocationAwareRecommender`.

    Attributes:
        n_items: Item vocabulary size including pad (0) and OOV (1).
        n_categories: Category vocabulary size including pad / unknown (0).
        max_len: History length K.
        n_gap_buckets: Time-gap buckets (0 = pad).
        region_buckets: Hash buckets of the region embedding.
        cell_buckets: Hash buckets of the location-cell embedding.
        n_wh: Number of nearest-warehouse distances in ``wh_km``.
        d_model: Width of item vectors and the encoder.
        encoder: ``gru`` or ``transformer``.
        n_layers: Encoder layers.
        n_heads: Attention heads; must divide ``d_model``.
        dropout: Dropout rate.
        retrieval: ``in_batch`` negatives or ``full`` catalogue softmax during training.
        temperature: Logits are divided by it.
        aux_weight: Weight of the buyer BCE in the combined loss.
        history_boost: Add a learned bonus to the score of items already in the history
            (by event type and time gap): a repeat/"copy" path, since a shopper often buys
            what was just viewed or carted, which a single user vector ranks poorly.
    """

    n_items: int
    n_categories: int = 32
    max_len: int = 20
    n_gap_buckets: int = 24
    region_buckets: int = 64
    cell_buckets: int = 4096
    n_wh: int = 3
    d_model: int = 32
    encoder: str = "gru"
    n_layers: int = 1
    n_heads: int = 2
    dropout: float = 0.1
    retrieval: str = "in_batch"
    temperature: float = 1.0
    aux_weight: float = 0.3
    history_boost: bool = True

    def __post_init__(self) -> None:
        if self.n_items < 3:
            raise ValueError("n_items must count pad, OOV and at least one item")
        if self.encoder not in SEQ_ENCODERS:
            raise ValueError(f"encoder: one of {SEQ_ENCODERS}, got {self.encoder!r}")
        if self.retrieval not in RETRIEVAL_MODES:
            raise ValueError(f"retrieval: one of {RETRIEVAL_MODES}, got {self.retrieval!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})")
        if min(self.region_buckets, self.cell_buckets) < 2:
            raise ValueError("region_buckets and cell_buckets must be >= 2")
        if self.temperature <= 0 or self.aux_weight < 0:
            raise ValueError("temperature > 0 and aux_weight >= 0 are required")


class LocationAwareRecommender(nn.Module):
    """Sequence + location/time context -> user vector -> scores over the catalogue.

    ``forward(batch)`` returns ``{"user": (B, d), "buyer_logit": (B,), "scores": (B, n_items)
    (eval or full retrieval), "inbatch_logits": (B', B') (in-batch training, B' = buyer rows
    with a known item)}``.
    """

    batch_keys = RECO_BATCH_KEYS

    def __init__(self, cfg: RecommenderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.item_in = nn.Embedding(cfg.n_items, d, padding_idx=PAD)
        self.cat_emb = nn.Embedding(cfg.n_categories, d, padding_idx=0)
        self.evt_emb = nn.Embedding(len(EVENT_CODES) + 1, d, padding_idx=0)
        self.gap_emb = nn.Embedding(cfg.n_gap_buckets, d, padding_idx=0)
        self.pos_emb = nn.Embedding(cfg.max_len, d)
        self.null_token = nn.Parameter(torch.zeros(1, 1, d))
        nn.init.normal_(self.null_token, std=0.02)
        self.gru: nn.GRU | None
        self.transformer: nn.TransformerEncoder | None
        if cfg.encoder == "gru":
            self.gru = nn.GRU(d, d, num_layers=cfg.n_layers, batch_first=True)
            self.transformer = None
        else:
            self.gru = None
            layer = nn.TransformerEncoderLayer(
                d, cfg.n_heads, dim_feedforward=2 * d, dropout=cfg.dropout, batch_first=True
            )
            self.transformer = nn.TransformerEncoder(
                layer, cfg.n_layers, enable_nested_tensor=False
            )
        e = max(4, d // 4)
        self.region_emb = nn.Embedding(cfg.region_buckets, e)
        self.cell_emb = nn.Embedding(cfg.cell_buckets, e)
        self.hour_emb = nn.Embedding(24, e)
        self.dow_emb = nn.Embedding(7, e)
        self.ctx = nn.Sequential(nn.Linear(4 * e + cfg.n_wh, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.attn = nn.MultiheadAttention(d, cfg.n_heads, dropout=cfg.dropout, batch_first=True)
        self.user = nn.Sequential(
            nn.Linear(3 * d, 2 * d), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(2 * d, d)
        )
        self.item_out = nn.Embedding(cfg.n_items, d)
        self.item_bias = nn.Parameter(torch.zeros(cfg.n_items))
        self.buyer_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))
        self.evt_boost: nn.Embedding | None = None
        self.gap_boost: nn.Embedding | None = None
        if cfg.history_boost:
            self.evt_boost = nn.Embedding(len(EVENT_CODES) + 1, 1, padding_idx=0)
            self.gap_boost = nn.Embedding(cfg.n_gap_buckets, 1, padding_idx=0)
            nn.init.zeros_(self.evt_boost.weight)
            nn.init.zeros_(self.gap_boost.weight)

    def history_bonus(self, batch: dict[str, Tensor]) -> Tensor | None:
        """Per history slot bonus (B, K), 0 on padding; ``None`` without ``history_boost``."""
        if self.evt_boost is None or self.gap_boost is None:
            return None
        c = self.cfg
        evt = batch["hist_events"].long().clamp(0, len(EVENT_CODES))
        gap = batch["hist_gaps"].long().clamp(0, c.n_gap_buckets - 1)
        bonus = self.evt_boost(evt).squeeze(-1) + self.gap_boost(gap).squeeze(-1)
        return bonus * (batch["hist_items"].long() != PAD).to(bonus.dtype)

    def encode(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """User vectors (B, d) and buyer logits (B,)."""
        c = self.cfg
        items = batch["hist_items"].long().clamp(0, c.n_items - 1)
        pad = items == PAD
        k = items.shape[1]
        pos = torch.arange(k, device=items.device)
        tok = (
            self.item_in(items)
            + self.cat_emb(batch["hist_cats"].long().clamp(0, c.n_categories - 1))
            + self.evt_emb(batch["hist_events"].long().clamp(0, len(EVENT_CODES)))
            + self.gap_emb(batch["hist_gaps"].long().clamp(0, c.n_gap_buckets - 1))
            + self.pos_emb(pos).unsqueeze(0)
        )
        if self.gru is not None:
            enc, _ = self.gru(tok)
        else:
            assert self.transformer is not None
            # A row of padding only would make every key masked; the null token below keeps
            # the pooling defined, and here unmasking the last slot avoids NaNs.
            key_pad = pad.clone()
            key_pad[:, -1] = False
            enc = self.transformer(tok, src_key_padding_mask=key_pad)
        enc = enc * (~pad).unsqueeze(-1).to(enc.dtype)
        last = enc[:, -1, :]  # sequences are left-padded: the newest event is last

        ctx = self.ctx(
            torch.cat(
                [
                    self.region_emb(hash_bucket(batch["region"], c.region_buckets)),
                    self.cell_emb(hash_bucket(batch["cell"], c.cell_buckets)),
                    self.hour_emb(torch.remainder(batch["hour"].long(), 24)),
                    self.dow_emb(torch.remainder(batch["dow"].long(), 7)),
                    torch.nan_to_num(batch["wh_km"].float().reshape(len(items), -1), nan=0.0),
                ],
                dim=-1,
            )
        )
        keys = torch.cat([self.null_token.expand(len(items), -1, -1), enc], dim=1)
        key_mask = torch.cat([torch.zeros_like(pad[:, :1]), pad], dim=1)
        pooled, _ = self.attn(ctx.unsqueeze(1), keys, keys, key_padding_mask=key_mask)
        user = self.user(torch.cat([pooled.squeeze(1), ctx, last], dim=-1))
        return user, self.buyer_head(user).squeeze(-1)

    def catalogue_scores(self, user: Tensor, batch: dict[str, Tensor] | None = None) -> Tensor:
        """Scores over the whole catalogue (B, n_items); pad and OOV are -inf.

        With ``batch`` (and ``history_boost``), items of the history get their bonus.
        """
        scores = (user @ self.item_out.weight.T + self.item_bias) / self.cfg.temperature
        bonus = self.history_bonus(batch) if batch is not None else None
        if bonus is not None:
            items = batch["hist_items"].long().clamp(0, self.cfg.n_items - 1)  # type: ignore[index]
            scores = scores.scatter_add(1, items, bonus.to(scores.dtype))
        blocked = torch.zeros(scores.shape[1], dtype=torch.bool, device=scores.device)
        blocked[[PAD, OOV]] = True
        return scores.masked_fill(blocked, float("-inf"))

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        user, buyer_logit = self.encode(batch)
        out = {"user": user, "buyer_logit": buyer_logit}
        if self.training and self.cfg.retrieval == "in_batch" and "target_item" in batch:
            target = batch["target_item"].long()
            rows = target > OOV
            u, t = user[rows], target[rows]
            logits = (u @ self.item_out(t).T + self.item_bias[t]) / self.cfg.temperature
            dup = (t.unsqueeze(0) == t.unsqueeze(1)) & ~torch.eye(
                len(t), dtype=torch.bool, device=t.device
            )
            bonus = self.history_bonus(batch)
            if bonus is not None:
                hist = batch["hist_items"].long()[rows]
                same = (hist.unsqueeze(-1) == t.view(1, 1, -1)).to(logits.dtype)  # (B', K, B')
                logits = logits + (bonus[rows].unsqueeze(-1) * same).sum(dim=1)
            out["inbatch_logits"] = logits.masked_fill(dup, float("-inf"))
        else:
            out["scores"] = self.catalogue_scores(user, batch)
        return out

    def loss_parts(
        self, batch: dict[str, Tensor], out: dict[str, Tensor]
    ) -> dict[str, tuple[Tensor, Tensor]]:
        """``{"retrieval": (sum CE, buyer rows), "buyer_bce": (sum BCE, rows)}``."""
        target = batch["target_item"].long()
        rows = target > OOV
        if "inbatch_logits" in out:
            logits = out["inbatch_logits"]
            labels = torch.arange(len(logits), device=logits.device)
        else:
            logits = out["scores"][rows]
            labels = target[rows]
        if len(labels):
            ce = F.cross_entropy(logits, labels, reduction="sum")
        else:
            # No buyer row in this batch: a zero that still touches every parameter, so DDP
            # sees a gradient for each one.
            ce = (out["user"].sum() + self.item_out.weight.sum() + self.item_bias.sum()) * 0.0
            for emb in (self.evt_boost, self.gap_boost):
                if emb is not None:
                    ce = ce + emb.weight.sum() * 0.0
        bce = F.binary_cross_entropy_with_logits(
            out["buyer_logit"], batch["buyer"].float(), reduction="sum"
        )
        n_rows = torch.tensor(float(len(target)), device=bce.device)
        return {
            "retrieval": (ce, rows.sum().to(ce.dtype)),
            "buyer_bce": (bce, n_rows),
        }

    def combine(self, means: dict[str, Tensor]) -> Tensor:
        """Retrieval CE + ``aux_weight`` x buyer BCE."""
        return means["retrieval"] + self.cfg.aux_weight * means["buyer_bce"]

    #: Evaluation-only terms of :meth:`metric_parts`.
    metric_names = ("recall_at_10", "buyer_accuracy")

    def metric_parts(
        self, batch: dict[str, Tensor], out: dict[str, Tensor]
    ) -> dict[str, tuple[Tensor, Tensor]]:
        """Recall@10 over buyer rows and buyer-head accuracy (threshold 0.5); eval outputs."""
        target = batch["target_item"].long()
        rows = target > OOV
        scores = out["scores"] if "scores" in out else self.catalogue_scores(out["user"], batch)
        k = min(10, scores.shape[1])
        hits = (torch.topk(scores[rows], k, dim=1).indices == target[rows, None]).any(dim=1)
        correct = ((out["buyer_logit"] > 0).float() == batch["buyer"].float()).float()
        return {
            "recall_at_10": (hits.float().sum(), rows.sum().float()),
            "buyer_accuracy": (correct.sum(), torch.tensor(float(len(target)))),
        }


def recall_at_k(scores: np.ndarray | Tensor, targets: np.ndarray | Tensor, k: int = 10) -> float:
    """Share of rows whose target is among the k highest scores (rows with target <= OOV
    are skipped).

    Args:
        scores: (N, n_items) scores.
        targets: (N,) item indices.
        k: Cut-off.

    Returns:
        Recall@k in [0, 1]; NaN when no row has a target.
    """
    s = torch.as_tensor(np.array(scores, dtype=np.float32, copy=True))
    t = torch.as_tensor(np.array(targets, dtype=np.int64, copy=True))
    rows = t > OOV
    if not bool(rows.any()):
        return float("nan")
    top = torch.topk(s[rows], k=min(k, s.shape[1]), dim=1).indices
    return float((top == t[rows].unsqueeze(1)).any(dim=1).float().mean())
