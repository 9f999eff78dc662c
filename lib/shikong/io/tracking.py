"""Experiment tracking of training runs: MLflow (optional) next to the Delta metrics table.

MLflow is imported lazily. The default tracking URI is a ``file:`` store under the
lakehouse: MLflow 3 keeps that store in maintenance mode and refuses it unless
``MLFLOW_ALLOW_FILE_STORE`` is set, so it is set for that URI only; any other URI
(``sqlite:///...``, ``databricks``, an HTTP server) is used as given.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shikong.io import fs

log = logging.getLogger(__name__)

DISABLED = "none"


def tracking_uri(configured: str, lakehouse: str) -> str | None:
    """The MLflow URI to use: ``None`` when disabled, the lakehouse store when empty.

    The lakehouse store is the ``file:`` URI of ``<lakehouse>/mlruns``.

    Raises:
        StorageError: For the default store on a lakehouse that is not on this machine's
            filesystem (an object store): configure a tracking server instead.
    """
    if configured.strip().lower() == DISABLED:
        return None
    if configured.strip():
        return configured
    store = fs.join(lakehouse, "mlruns")
    if not fs.is_local(store):
        raise fs.StorageError(
            f"{store}: MLflow's file store must be local; set models.mlflow_tracking_uri"
        )
    return Path(fs.local_path(store)).resolve().as_uri()


def _flat_params(prefix: str, data: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(_flat_params(name, value))
        else:
            out[name] = str(value)[:500]  # MLflow caps parameter values
    return out


def log_training_run(
    uri: str | None,
    *,
    experiment: str,
    run_name: str,
    params: Mapping[str, Any],
    epochs: list[dict[str, Any]],
    summary: Mapping[str, float],
    artifact: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> str | None:
    """Log one training run to MLflow: parameters, per-epoch metrics, summary, model file.

    Args:
        uri: Tracking URI (``None``: MLflow disabled, nothing logged).
        experiment: Experiment name.
        run_name: Run name (the shikong run id).
        params: Nested parameters (flattened with dots).
        epochs: One dict of numeric metrics per epoch, with key ``epoch``.
        summary: Final metrics.
        artifact: Optional file logged as an artefact (the model checkpoint); a path or
            local URI (MLflow uploads local files only; others are skipped with a warning).
        tags: Extra tags.

    Returns:
        The MLflow run id, or ``None`` when disabled.
    """
    if uri is None:
        return None
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name, tags=dict(tags or {})) as run:
        mlflow.log_params(_flat_params("", params))
        for row in epochs:
            step = int(row["epoch"])
            values = {
                k: float(v)
                for k, v in row.items()
                if k != "epoch"
                and isinstance(v, int | float)
                and not isinstance(v, bool)
                and math.isfinite(float(v))
            }
            mlflow.log_metrics(values, step=step)
        mlflow.log_metrics({k: float(v) for k, v in summary.items() if math.isfinite(float(v))})
        if artifact and fs.is_local(artifact):
            mlflow.log_artifact(fs.local_path(artifact))
        elif artifact:
            log.warning("MLflow: artefact %s is not a local file, not logged", artifact)
        log.info("MLflow run %s logged to %s", run.info.run_id, uri)
        return str(run.info.run_id)
