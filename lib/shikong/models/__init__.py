"""Deep models: the demand fusion model and the location-aware recommender.

Every model follows one small protocol the training loop relies on:

* ``model.batch_keys``: the tensor names it reads from a batch (targets included);
* ``model(batch) -> dict`` of outputs (everything a loss needs is computed in ``forward``,
  so ``DistributedDataParallel`` sees every parameter);
* ``model.loss_parts(batch, out) -> {name: (sum, count)}``: additive loss terms, so losses
  over several batches or ranks combine exactly;
* ``model.combine({name: mean}) -> loss``: the optimised scalar.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from shikong.models.demand import (
    DEMAND_BATCH_KEYS,
    DemandFusionModel,
    DemandModelConfig,
    calendar_features,
    monotone_quantiles,
    pinball_loss,
)
from shikong.models.recommender import (
    EVENT_CODES,
    RECO_BATCH_KEYS,
    LocationAwareRecommender,
    RecommenderConfig,
    recall_at_k,
)

ModelConfig = DemandModelConfig | RecommenderConfig

_REGISTRY: dict[str, tuple[type, type[nn.Module]]] = {
    "demand": (DemandModelConfig, DemandFusionModel),
    "recommender": (RecommenderConfig, LocationAwareRecommender),
}


def model_kind(cfg: ModelConfig) -> str:
    """Registry name of a model config (``demand`` or ``recommender``)."""
    for kind, (cfg_type, _) in _REGISTRY.items():
        if isinstance(cfg, cfg_type):
            return kind
    raise TypeError(f"not a model config: {type(cfg).__name__}")


def build_model(cfg: ModelConfig) -> nn.Module:
    """The model for a config (parameters initialised from torch's current RNG)."""
    return _REGISTRY[model_kind(cfg)][1](cfg)


def config_to_dict(cfg: ModelConfig) -> dict[str, Any]:
    """``{"kind": ..., "params": {...}}``, plain data for checkpoints and metric tables."""
    return {"kind": model_kind(cfg), "params": dataclasses.asdict(cfg)}


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Inverse of :func:`config_to_dict` (lists become tuples again)."""
    cfg_type = _REGISTRY[data["kind"]][0]
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in data["params"].items()}
    return cfg_type(**params)


__all__ = [
    "DEMAND_BATCH_KEYS",
    "EVENT_CODES",
    "RECO_BATCH_KEYS",
    "DemandFusionModel",
    "DemandModelConfig",
    "LocationAwareRecommender",
    "ModelConfig",
    "RecommenderConfig",
    "build_model",
    "calendar_features",
    "config_from_dict",
    "config_to_dict",
    "model_kind",
    "monotone_quantiles",
    "pinball_loss",
    "recall_at_k",
]
