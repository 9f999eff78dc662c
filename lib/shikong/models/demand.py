"""Spatio-temporal demand fusion model: quantile forecasts for H days from a window of L.

One example is one series at one forecast origin ``day0`` (the first forecast day, as days
since 1970-01-01). Inputs (a dict of tensors, see :data:`DEMAND_BATCH_KEYS`):

* ``y_hist`` (B, L) float: the last L daily values before ``day0`` (raw units; NaN = missing).
* ``day0`` (B,) int64: the forecast origin. Calendar features are derived from it inside
  the model: day-of-week (an embedding; 1970-01-01 was a Thursday, Monday = 0) and the
  annual phase ``2*pi*day/365.2425`` as sin/cos (day-of-year up to a constant phase shift,
  smooth across leap years), for the L history days and the H target days.
* ``sku``, ``category``, ``region``, ``cell`` (B,) int64: hashed ids (0 = unknown), see
  :func:`shikong.training.common.stable_hash`; the model folds them into its own bucket
  counts (:func:`hash_bucket`), so data and model sizes are independent.
* ``spatial_num`` (B, n_spatial) float: standardised numeric context (neighbourhood
  demand, Gi* z-score, distance to the warehouse, ...), as of ``day0``.
* ``y_fut`` (B, H) float: the targets (only for the loss; NaN days are ignored).

Architecture: each history day becomes a token ``[y/scale, observed, dow-emb, sin, cos]``
projected to ``d_model`` and encoded by a temporal encoder (dilated causal CNN, LSTM, CNN
then LSTM, or a small Transformer). The static/spatial context (SKU, category, region and
H3-cell embeddings + an MLP over ``spatial_num``) is one vector; for every horizon step the
query is ``context + future-calendar + step embedding`` and attends over the encoder
outputs (multi-head attention). A head maps ``[attended, query, last state]`` to Q numbers
made monotone by ``q_1 = a_1, q_k = q_{k-1} + softplus(a_k)``, so quantiles never cross.

Scaling: values are divided by ``max(mean |y_hist|, min_scale)`` per example and the
output multiplied back, so one model serves series of very different volumes. The loss is
the pinball loss on the scaled values (each series counts equally, not by its volume).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

#: Tensor names the demand model reads from a batch (``y_fut`` only for the loss).
DEMAND_BATCH_KEYS = ("y_hist", "day0", "sku", "category", "region", "cell", "spatial_num", "y_fut")
ENCODERS = ("cnn", "lstm", "cnn_lstm", "transformer")
DAYS_PER_YEAR = 365.2425


@dataclass(frozen=True)
class DemandModelConfig:
    """Sizes and options of :class:`DemandFusionModel`.

    Attributes:
        window: History length L (days).
        horizon: Forecast horizon H (days).
        quantiles: Increasing quantile levels in (0, 1).
        n_spatial: Width of ``spatial_num``.
        sku_buckets: Hash buckets of the SKU embedding (bucket 0 = unknown).
        category_buckets: Hash buckets of the category embedding.
        region_buckets: Hash buckets of the region (state) embedding.
        cell_buckets: Hash buckets of the H3-cell embedding.
        emb_dim: Width of each id embedding.
        d_model: Width of the temporal encoder and the fusion.
        encoder: ``cnn``, ``lstm``, ``cnn_lstm`` or ``transformer``.
        n_layers: Layers of the temporal encoder (each of CNN and LSTM for ``cnn_lstm``).
        kernel_size: CNN kernel size (dilations 1, 2, 4, ...).
        n_heads: Attention heads (fusion and Transformer); must divide ``d_model``.
        dropout: Dropout rate.
        min_scale: Floor of the per-example scale.
    """

    window: int = 28
    horizon: int = 7
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    n_spatial: int = 4
    sku_buckets: int = 1024
    category_buckets: int = 64
    region_buckets: int = 64
    cell_buckets: int = 4096
    emb_dim: int = 8
    d_model: int = 32
    encoder: str = "cnn"
    n_layers: int = 2
    kernel_size: int = 3
    n_heads: int = 2
    dropout: float = 0.1
    min_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder: must be one of {ENCODERS}, got {self.encoder!r}")
        qs = self.quantiles
        if not qs or any(not 0.0 < q < 1.0 for q in qs) or list(qs) != sorted(set(qs)):
            raise ValueError(f"quantiles: must be strictly increasing in (0, 1), got {qs}")
        if self.window < 1 or self.horizon < 1:
            raise ValueError("window and horizon must be >= 1")
        if min(self.sku_buckets, self.category_buckets, self.region_buckets, self.cell_buckets) < 2:
            raise ValueError("every *_buckets must be >= 2 (bucket 0 is 'unknown')")
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})")
        if self.n_spatial < 0 or self.n_layers < 1 or self.min_scale <= 0:
            raise ValueError("n_spatial >= 0, n_layers >= 1 and min_scale > 0 are required")


def calendar_features(days: Tensor) -> tuple[Tensor, Tensor]:
    """Day-of-week index (Monday = 0) and annual sin/cos of days since 1970-01-01.

    Args:
        days: Integer tensor of any shape.

    Returns:
        ``(dow, phase)``: dow (same shape, int64) and phase (shape + (2,), float).
    """
    dow = torch.remainder(days + 3, 7).long()
    angle = (2.0 * math.pi / DAYS_PER_YEAR) * torch.remainder(days.double(), DAYS_PER_YEAR)
    phase = torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1).float()
    return dow, phase


def hash_bucket(ids: Tensor, buckets: int) -> Tensor:
    """Fold hashed ids (0 = unknown, > 0 = a hash) into ``buckets`` (0 stays unknown)."""
    ids = ids.long()
    return torch.where(ids > 0, 1 + torch.remainder(ids - 1, buckets - 1), torch.zeros_like(ids))


def monotone_quantiles(raw: Tensor) -> Tensor:
    """Non-crossing quantiles from free outputs: ``q_1 = a_1, q_k = q_{k-1} + softplus(a_k)``."""
    if raw.shape[-1] == 1:
        return raw
    first = raw[..., :1]
    steps = F.softplus(raw[..., 1:])
    return torch.cat([first, first + torch.cumsum(steps, dim=-1)], dim=-1)


def pinball_loss(
    pred: Tensor, target: Tensor, quantiles: Tensor | tuple[float, ...], reduction: str = "mean"
) -> Tensor:
    """Pinball (quantile) loss ``max(q (y - f), (q - 1)(y - f))``, NaN targets ignored.

    Args:
        pred: Predictions, shape ``target.shape + (Q,)``.
        target: Actuals.
        quantiles: The Q levels.
        reduction: ``mean`` (over finite target cells and quantiles), ``sum`` or ``none``.

    Returns:
        The reduced loss (``none``: per cell and quantile, 0 where the target is NaN).
    """
    q = torch.as_tensor(quantiles, dtype=pred.dtype, device=pred.device)
    ok = torch.isfinite(target)
    y = torch.where(ok, target, torch.zeros_like(target)).unsqueeze(-1)
    diff = y - pred
    loss = torch.maximum(q * diff, (q - 1.0) * diff) * ok.unsqueeze(-1).to(pred.dtype)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / (ok.sum() * q.numel()).clamp_min(1)
    raise ValueError(f"reduction: mean, sum or none, got {reduction!r}")


class _CausalConvBlock(nn.Module):
    def __init__(self, d: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv = nn.Conv1d(d, d, kernel, dilation=dilation)
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:  # x: (B, L, d)
        h = F.pad(x.transpose(1, 2), (self.pad, 0))
        h = F.gelu(self.conv(h)).transpose(1, 2)
        return self.norm(x + self.drop(h))


class TemporalEncoder(nn.Module):
    """(B, L, d) -> (B, L, d) with a CNN, LSTM, CNN+LSTM or Transformer encoder."""

    def __init__(self, cfg: DemandModelConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.kind = cfg.encoder
        self.cnn: nn.Sequential | None = None
        self.lstm: nn.LSTM | None = None
        self.transformer: nn.TransformerEncoder | None = None
        if cfg.encoder in ("cnn", "cnn_lstm"):
            self.cnn = nn.Sequential(
                *[
                    _CausalConvBlock(d, cfg.kernel_size, 2**i, cfg.dropout)
                    for i in range(cfg.n_layers)
                ]
            )
        if cfg.encoder in ("lstm", "cnn_lstm"):
            self.lstm = nn.LSTM(
                d,
                d,
                num_layers=cfg.n_layers,
                batch_first=True,
                dropout=cfg.dropout if cfg.n_layers > 1 else 0.0,
            )
        if cfg.encoder == "transformer":
            self.pos = nn.Parameter(torch.zeros(1, cfg.window, d))
            nn.init.normal_(self.pos, std=0.02)
            layer = nn.TransformerEncoderLayer(
                d, cfg.n_heads, dim_feedforward=2 * d, dropout=cfg.dropout, batch_first=True
            )
            self.transformer = nn.TransformerEncoder(
                layer, cfg.n_layers, enable_nested_tensor=False
            )

    def forward(self, x: Tensor) -> Tensor:
        if self.cnn is not None:
            x = self.cnn(x)
        if self.lstm is not None:
            x, _ = self.lstm(x)
        if self.transformer is not None:
            x = self.transformer(x + self.pos[:, : x.shape[1]])
        return x


class DemandFusionModel(nn.Module):
    """Temporal encoder + spatial/static encoder fused by attention; Q quantiles x H days.

    ``forward(batch)`` returns ``{"quantiles": (B, H, Q) in original units, "scale": (B, 1),
    "attention": (B, H, L)}``; :meth:`loss_parts` turns it into the pinball loss.
    """

    batch_keys = DEMAND_BATCH_KEYS

    def __init__(self, cfg: DemandModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, e = cfg.d_model, cfg.emb_dim
        self.dow_emb = nn.Embedding(7, e)
        self.in_proj = nn.Linear(2 + e + 2, d)
        self.encoder = TemporalEncoder(cfg)
        self.sku_emb = nn.Embedding(cfg.sku_buckets, e)
        self.cat_emb = nn.Embedding(cfg.category_buckets, e)
        self.region_emb = nn.Embedding(cfg.region_buckets, e)
        self.cell_emb = nn.Embedding(cfg.cell_buckets, e)
        self.spatial = nn.Sequential(
            nn.Linear(4 * e + cfg.n_spatial, 2 * d),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(2 * d, d),
        )
        self.fut_proj = nn.Linear(e + 2, d)
        self.step_emb = nn.Embedding(cfg.horizon, d)
        self.attn = nn.MultiheadAttention(d, cfg.n_heads, dropout=cfg.dropout, batch_first=True)
        self.head = nn.Sequential(
            nn.Linear(3 * d, 2 * d),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(2 * d, len(cfg.quantiles)),
        )

    def _ids(self, batch: dict[str, Tensor], key: str, buckets: int) -> Tensor:
        return hash_bucket(batch[key], buckets)

    def context(self, batch: dict[str, Tensor]) -> Tensor:
        """The static/spatial context vector (B, d_model)."""
        c = self.cfg
        parts = [
            self.sku_emb(self._ids(batch, "sku", c.sku_buckets)),
            self.cat_emb(self._ids(batch, "category", c.category_buckets)),
            self.region_emb(self._ids(batch, "region", c.region_buckets)),
            self.cell_emb(self._ids(batch, "cell", c.cell_buckets)),
        ]
        if c.n_spatial:
            num = batch["spatial_num"].float()
            parts.append(torch.nan_to_num(num, nan=0.0, posinf=0.0, neginf=0.0))
        return self.spatial(torch.cat(parts, dim=-1))

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        c = self.cfg
        y = batch["y_hist"].float()
        observed = torch.isfinite(y)
        y0 = torch.where(observed, y, torch.zeros_like(y))
        n_obs = observed.sum(dim=1, keepdim=True).clamp_min(1)
        scale = (y0.abs().sum(dim=1, keepdim=True) / n_obs).clamp_min(c.min_scale)

        day0 = batch["day0"].long().reshape(-1, 1)
        hist_days = day0 + torch.arange(-c.window, 0, device=y.device)
        fut_days = day0 + torch.arange(0, c.horizon, device=y.device)
        h_dow, h_phase = calendar_features(hist_days)
        f_dow, f_phase = calendar_features(fut_days)

        tokens = torch.cat(
            [
                (y0 / scale).unsqueeze(-1),
                observed.float().unsqueeze(-1),
                self.dow_emb(h_dow),
                h_phase,
            ],
            dim=-1,
        )
        enc = self.encoder(self.in_proj(tokens))  # (B, L, d)

        ctx = self.context(batch)  # (B, d)
        steps = torch.arange(c.horizon, device=y.device)
        query = (
            ctx.unsqueeze(1)
            + self.fut_proj(torch.cat([self.dow_emb(f_dow), f_phase], dim=-1))
            + self.step_emb(steps).unsqueeze(0)
        )  # (B, H, d)
        attended, weights = self.attn(query, enc, enc, need_weights=True)
        last = enc[:, -1:, :].expand(-1, c.horizon, -1)
        raw = self.head(torch.cat([attended, query, last], dim=-1))  # (B, H, Q)
        q_scaled = monotone_quantiles(raw)
        return {
            "quantiles": q_scaled * scale.unsqueeze(-1),
            "scale": scale,
            "attention": weights,
        }

    def loss_parts(
        self, batch: dict[str, Tensor], out: dict[str, Tensor]
    ) -> dict[str, tuple[Tensor, Tensor]]:
        """``{"pinball": (sum, count)}`` of the scaled pinball loss over finite targets."""
        scale = out["scale"]
        target = batch["y_fut"].float() / scale
        pred = out["quantiles"] / scale.unsqueeze(-1)
        total = pinball_loss(pred, target, self.cfg.quantiles, reduction="sum")
        count = torch.isfinite(target).sum() * len(self.cfg.quantiles)
        return {"pinball": (total, count.to(total.dtype))}

    @staticmethod
    def combine(means: dict[str, Tensor]) -> Tensor:
        """The optimised loss from per-term means."""
        return means["pinball"]

    #: Evaluation-only terms of :meth:`metric_parts`.
    metric_names = ("coverage", "wape")

    def metric_parts(
        self, batch: dict[str, Tensor], out: dict[str, Tensor]
    ) -> dict[str, tuple[Tensor, Tensor]]:
        """Coverage of ``[first, last]`` quantile and WAPE of the middle quantile, in units."""
        y = batch["y_fut"].float()
        ok = torch.isfinite(y)
        y0 = torch.where(ok, y, torch.zeros_like(y))
        q = out["quantiles"]
        inside = (y0 >= q[..., 0]) & (y0 <= q[..., -1]) & ok
        mid = q[..., q.shape[-1] // 2]
        abs_err = ((mid - y0).abs() * ok).sum()
        return {
            "coverage": (inside.sum().float(), ok.sum().float()),
            "wape": (abs_err, (y0.abs() * ok).sum()),
        }
