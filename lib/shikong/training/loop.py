"""One training loop for every model, standalone or as one rank of ``torch.distributed``
or Horovod.

:func:`train` reads only this rank's rows (``data_paths.rank_arrays``, see
:class:`~shikong.training.protocols.TrainData`: :class:`shikong.io.shards.DataPaths`
reads this rank's shards), builds the model from its frozen config with the same seed on
every rank, makes it data-parallel when ``world_size > 1`` and runs epochs with AdamW, a
warm-up + cosine (or constant) learning rate, gradient-norm clipping, a checkpoint per
epoch (written through an injected :class:`~shikong.training.protocols.CheckpointStore`),
early stopping on the validation loss and per-epoch metrics.

Every collective goes through a :class:`~shikong.training.comm.Comm`, so the loop is the
same for each backend:

* :class:`Comm` (one process): no-ops.
* :class:`TorchDistComm`: ``torch.distributed`` and ``DistributedDataParallel`` (gloo on
  CPU, NCCL when ``use_gpu`` and CUDA is available); :func:`train` builds it itself.
* :class:`HorovodComm`: ``hvd.allreduce``/``allgather_object`` and
  ``hvd.DistributedOptimizer`` (gradients averaged like DDP), rank 0's parameters broadcast
  before the first step; the caller runs ``hvd.init()`` and passes ``comm=``.

Distributed details:

* ``TrainConfig.batch_size`` is the GLOBAL batch; each rank takes ``batch_size //
  world_size`` rows per step, so the same config gives the same optimisation problem
  whatever the number of processes.
* Every rank runs the same number of steps per epoch (the minimum over ranks of its full
  local batches, agreed by an all-reduce), so no rank waits on a collective forever;
  the remainder rows are dropped (a different random remainder each epoch).
* Losses are additive ``(sum, count)`` terms all-reduced over ranks, so the reported train
  and validation losses are exact global means, identical on every rank, and early
  stopping takes the same decision everywhere.
* Rank 0 writes checkpoints; every rank returns a :class:`TrainResult`, rank 0's carries the
  final weights in ``state``.
* Gradients are averaged before clipping on every backend (Horovod's asynchronous
  allreduces are waited for with ``synchronize()`` first), so the clipped global norm and
  the step are the same as with DDP.

Reproducibility: with the same seed, data and world size, a CPU run is repeatable (model
init from ``seed``, dropout from ``seed + rank``, shuffling from ``(seed, epoch, rank)``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from shikong.models import (
    ModelConfig,
    build_model,
    config_from_dict,
    config_to_dict,
    model_kind,
)
from shikong.training.comm import Comm, HorovodComm, TorchDistComm, select_device
from shikong.training.protocols import CheckpointStore, TrainData, join

log = logging.getLogger(__name__)

SCHEDULES = ("cosine", "constant")

__all__ = [
    "Comm",
    "EpochMetrics",
    "HorovodComm",
    "TorchDistComm",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "load_checkpoint",
    "model_from_checkpoint",
    "param_digest",
    "predict",
    "select_device",
    "to_tensors",
    "train",
]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of :func:`train`.

    Attributes:
        epochs: Maximum epochs.
        batch_size: Global batch size (divided evenly over the ranks).
        eval_batch_size: Rows per validation forward pass (per rank).
        lr: Peak learning rate (AdamW).
        weight_decay: AdamW weight decay.
        schedule: ``cosine`` (linear warm-up then cosine decay) or ``constant``.
        warmup_frac: Share of all steps used for warm-up (cosine only).
        min_lr_ratio: Final learning rate as a share of ``lr`` (cosine only).
        grad_clip: Max global gradient norm; ``None`` disables clipping.
        patience: Epochs without a validation improvement before stopping.
        min_delta: Improvement needed to reset the patience.
        seed: Seed of init, dropout and shuffling.
        checkpoint_dir: Folder (path or URI) for ``epoch-XXX.pt`` and ``best.pt`` (rank 0,
            through the ``checkpoints`` store given to :func:`train`); ``None`` disables
            checkpoints.
        resume_from: Checkpoint to continue from (model, optimiser, schedule, history,
            early-stopping state and RNG), read through the same store.
        restore_best: Load the best epoch's weights at the end.
        num_threads: Torch intra-op threads per process.
        use_gpu: Train on CUDA with NCCL when available (falls back to CPU/gloo with a
            warning otherwise).
        max_steps_per_epoch: Cap on steps per epoch (``None``: one pass over the data).
        dist_timeout_s: Timeout of collectives.
    """

    epochs: int = 20
    batch_size: int = 64
    eval_batch_size: int = 1024
    lr: float = 3e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_frac: float = 0.05
    min_lr_ratio: float = 0.05
    grad_clip: float | None = 1.0
    patience: int = 5
    min_delta: float = 0.0
    seed: int = 0
    checkpoint_dir: str | None = None
    resume_from: str | None = None
    restore_best: bool = True
    num_threads: int = 1
    use_gpu: bool = False
    max_steps_per_epoch: int | None = None
    dist_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule: one of {SCHEDULES}, got {self.schedule!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError("epochs, batch_size and eval_batch_size must be >= 1")
        if self.lr <= 0 or not 0 <= self.warmup_frac < 1 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("lr > 0, 0 <= warmup_frac < 1 and 0 <= min_lr_ratio <= 1 required")
        if self.patience < 1 or self.num_threads < 1:
            raise ValueError("patience and num_threads must be >= 1")


@dataclass(frozen=True)
class EpochMetrics:
    """Metrics of one epoch (identical on every rank).

    Attributes:
        epoch: 0-based epoch.
        train_loss: Global mean training loss over the epoch's steps (weights changing).
        val_loss: Global validation loss after the epoch.
        lr: Learning rate at the end of the epoch.
        grad_norm: Mean pre-clipping gradient norm.
        steps: Optimiser steps.
        samples: Training rows seen, all ranks.
        seconds: Wall time of the epoch (rank 0).
        train_terms: Global means of each loss term on the training steps.
        val_terms: Global means of each loss term and metric on validation.
    """

    epoch: int
    train_loss: float
    val_loss: float
    lr: float
    grad_norm: float
    steps: int
    samples: int
    seconds: float
    train_terms: Mapping[str, float] = field(default_factory=dict)
    val_terms: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` and every launcher backend return.

    Attributes:
        model_kind: ``demand`` or ``recommender``.
        model_config: ``config_to_dict`` of the model config.
        history: One :class:`EpochMetrics` per epoch run (including resumed ones).
        best_epoch: Epoch of the lowest validation loss.
        best_val_loss: That loss.
        epochs_run: Epochs in ``history``.
        stopped_early: Whether early stopping ended training.
        checkpoint: Location of ``best.pt`` (``None`` without ``checkpoint_dir``).
        world_size: Processes that trained.
        rank: Rank that produced this result.
        backend: Launcher backend (``local``, ``torch_distributor`` or ``horovod``).
        device: ``cpu`` or ``cuda:N``.
        param_digest: SHA-256 of this rank's final parameters.
        rank_digests: ``param_digest`` of every rank (all equal when DDP or Horovod kept
            them in sync).
        train_rows: Training rows over all ranks.
        val_rows: Validation rows over all ranks.
        seconds: Wall time of :func:`train`.
        state: Final model weights (CPU tensors) on rank 0, ``None`` elsewhere.
    """

    model_kind: str
    model_config: Mapping[str, Any]
    history: tuple[EpochMetrics, ...]
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    stopped_early: bool
    checkpoint: str | None
    world_size: int
    rank: int
    backend: str
    device: str
    param_digest: str
    rank_digests: tuple[str, ...]
    train_rows: int
    val_rows: int
    seconds: float
    state: Mapping[str, Tensor] | None = field(default=None, repr=False, compare=False)

    def metric_records(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Flat rows, one per epoch, for a metrics table (e.g. Delta)."""
        rows = []
        for m in self.history:
            row = {
                "run_id": run_id,
                "model_kind": self.model_kind,
                "backend": self.backend,
                "world_size": self.world_size,
                "epoch": m.epoch,
                "train_loss": m.train_loss,
                "val_loss": m.val_loss,
                "lr": m.lr,
                "grad_norm": m.grad_norm,
                "steps": m.steps,
                "samples": m.samples,
                "seconds": m.seconds,
                "is_best": m.epoch == self.best_epoch,
            }
            row.update({f"train_{k}": v for k, v in m.train_terms.items()})
            row.update({f"val_{k}": v for k, v in m.val_terms.items()})
            rows.append(row)
        return rows

    def load_model(self) -> nn.Module:
        """The trained model rebuilt from ``model_config`` and ``state`` (rank 0 result)."""
        if self.state is None:
            raise ValueError("this result carries no weights (not rank 0)")
        model = build_model(config_from_dict(dict(self.model_config)))
        model.load_state_dict(dict(self.state))
        return model.eval()


# --------------------------------------------------------------------------- helpers


def to_tensors(arrays: Mapping[str, np.ndarray], device: torch.device) -> dict[str, Tensor]:
    """Numpy batch columns -> tensors (ints -> int64, floats -> float32)."""
    out = {}
    for k, v in arrays.items():
        a = np.asarray(v)
        if a.dtype.kind in "iub":
            t = torch.from_numpy(a.astype(np.int64))
        else:
            t = torch.from_numpy(a.astype(np.float32))
        out[k] = t.to(device)
    return out


def param_digest(model: nn.Module) -> str:
    """SHA-256 of the parameters (name order), bit-exact."""
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _lr_lambda(cfg: TrainConfig, total_steps: int):  # noqa: ANN202
    warmup = int(cfg.warmup_frac * total_steps)

    def factor(step: int) -> float:
        if cfg.schedule == "constant":
            return 1.0
        if warmup and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


class _Terms:
    """Additive ``(sum, count)`` loss/metric terms, all-reducible across ranks."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, float] = {}

    def add(self, parts: Mapping[str, tuple[Tensor, Tensor]]) -> None:
        for k, (s, c) in parts.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(s.detach())
            self.counts[k] = self.counts.get(k, 0.0) + float(c.detach())

    def reduce(self, keys: Sequence[str], device: torch.device, comm: Comm) -> dict[str, float]:
        """Global means (summed over ranks by ``comm``); NaN for a term with no count."""
        vec = torch.tensor(
            [x for k in keys for x in (self.sums.get(k, 0.0), self.counts.get(k, 0.0))],
            dtype=torch.float64,
            device=device,
        )
        v = comm.allreduce_sum(vec).cpu().tolist()
        return {
            k: (v[2 * i] / v[2 * i + 1] if v[2 * i + 1] > 0 else math.nan)
            for i, k in enumerate(keys)
        }


def _combine(model: Any, means: Mapping[str, float], loss_keys: Sequence[str]) -> float:
    vals = {k: torch.tensor(0.0 if math.isnan(means[k]) else means[k]) for k in loss_keys}
    if all(math.isnan(means[k]) for k in loss_keys):
        return math.nan
    return float(model.combine(vals))


def _all_min(value: int, device: torch.device, comm: Comm) -> int:
    t = torch.tensor([value], dtype=torch.int64, device=device)
    return int(comm.allreduce_min(t).item())


def _all_sum(value: int, device: torch.device, comm: Comm) -> int:
    t = torch.tensor([value], dtype=torch.int64, device=device)
    return int(comm.allreduce_sum(t).item())


@torch.no_grad()
def evaluate(model: Any, data: Mapping[str, Tensor], batch_size: int) -> _Terms:
    """Loss terms (and ``metric_parts`` when the model has them) over ``data`` (this rank)."""
    was_training = model.training
    model.eval()
    terms = _Terms()
    n = len(next(iter(data.values()))) if data else 0
    for i in range(0, n, batch_size):
        batch = {k: v[i : i + batch_size] for k, v in data.items()}
        out = model(batch)
        parts = model.loss_parts(batch, out)
        if hasattr(model, "metric_parts"):
            parts = {**parts, **model.metric_parts(batch, out)}
        terms.add(parts)
    model.train(was_training)
    return terms


@torch.no_grad()
def predict(
    model: Any,
    arrays: Mapping[str, np.ndarray],
    *,
    batch_size: int = 1024,
    outputs: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Run a model in eval mode over numpy columns; returns the chosen outputs as numpy."""
    model.eval()
    device = next(model.parameters()).device
    keys = [k for k in model.batch_keys if k in arrays]
    data = to_tensors({k: arrays[k] for k in keys}, device)
    n = len(next(iter(data.values())))
    chunks: dict[str, list[np.ndarray]] = {}
    for i in range(0, n, batch_size):
        out = model({k: v[i : i + batch_size] for k, v in data.items()})
        for k, v in out.items():
            if outputs is None or k in outputs:
                chunks.setdefault(k, []).append(v.detach().cpu().numpy())
    return {k: np.concatenate(v) for k, v in chunks.items()}


def model_from_checkpoint(payload: Mapping[str, Any]) -> tuple[nn.Module, ModelConfig]:
    """``(model in eval mode, model config)`` of a checkpoint or model-file payload (its
    ``model_config`` and ``model_state``)."""
    cfg = config_from_dict(dict(payload["model_config"]))
    model = build_model(cfg)
    model.load_state_dict(payload["model_state"])
    return model.eval(), cfg


def load_checkpoint(
    location: str, store: CheckpointStore
) -> tuple[nn.Module, ModelConfig, dict[str, Any]]:
    """``(model in eval mode, model config, checkpoint payload)`` of the checkpoint or model
    file at ``location``, read through ``store`` (e.g.
    :class:`shikong.io.checkpoints.CheckpointFiles`)."""
    payload = store.load(location)
    model, cfg = model_from_checkpoint(payload)
    return model, cfg, payload


# --------------------------------------------------------------------------- train


def train(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    data_paths: TrainData,
    rank: int = 0,
    world_size: int = 1,
    *,
    comm: Comm | None = None,
    checkpoints: CheckpointStore | None = None,
) -> TrainResult:
    """Train one model; run it once per rank for data-parallel training.

    Without ``comm`` and with ``world_size > 1`` it joins the default ``torch.distributed``
    process group, initialising it from the environment (``MASTER_ADDR``/``MASTER_PORT``, as
    set by torchrun, TorchDistributor or :func:`shikong.training.launch.launch`) when nobody
    has yet, and tears down only a group it created. With ``comm`` (e.g. a
    :class:`HorovodComm`) rank and world size come from it and it does every collective.

    Args:
        model_cfg: A :class:`~shikong.models.DemandModelConfig` or
            :class:`~shikong.models.RecommenderConfig`.
        train_cfg: Optimisation settings.
        data_paths: The examples (e.g. :class:`shikong.io.shards.DataPaths`); only this
            rank's rows of ``train`` and ``val`` are read.
        rank: This process's rank (ignored with ``comm``).
        world_size: Number of processes (ignored with ``comm``).
        comm: Collectives of an already initialised backend; ``None`` uses
            ``torch.distributed`` (or nothing for one process).
        checkpoints: Where checkpoints are written and ``resume_from`` is read (e.g.
            :class:`shikong.io.checkpoints.CheckpointFiles`); needed with
            ``checkpoint_dir`` or ``resume_from``.

    Returns:
        The :class:`TrainResult` (weights only on rank 0).

    Raises:
        ValueError: On an empty validation set, too little data for one global batch, or
            ``checkpoint_dir``/``resume_from`` without a checkpoint store.
    """
    t_start = time.perf_counter()
    check_checkpoint_store(train_cfg, checkpoints)
    if comm is not None:
        rank, world_size = comm.rank, comm.world_size
    if train_cfg.batch_size % world_size:
        raise ValueError(
            f"batch_size {train_cfg.batch_size} is not divisible by world_size {world_size}"
        )
    torch.set_num_threads(train_cfg.num_threads)
    if comm is not None:
        if train_cfg.use_gpu and not comm.supports_gpu:
            log.warning("use_gpu=True but %s cannot reduce CUDA tensors", type(comm).__name__)
        device, _ = select_device(train_cfg.use_gpu and comm.supports_gpu, comm.local_rank)
        return _train(model_cfg, train_cfg, data_paths, comm, device, t_start, checkpoints)
    device, pg_backend = select_device(train_cfg.use_gpu, rank)
    own_group = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(
            pg_backend,
            rank=rank,
            world_size=world_size,
            timeout=timedelta(seconds=train_cfg.dist_timeout_s),
        )
        own_group = True
    comm = TorchDistComm(rank, world_size) if world_size > 1 else Comm(rank, world_size)
    try:
        result = _train(model_cfg, train_cfg, data_paths, comm, device, t_start, checkpoints)
        if own_group:
            # Tear down together: a rank that destroys its gloo group while the peer is
            # still using it can abort ("terminate called without an active exception").
            dist.barrier()
        return result
    finally:
        if own_group:
            dist.destroy_process_group()


def check_checkpoint_store(cfg: TrainConfig, checkpoints: CheckpointStore | None) -> None:
    """Refuse checkpoint settings without a store to write or read them.

    Raises:
        ValueError: ``checkpoint_dir`` or ``resume_from`` set and ``checkpoints`` is ``None``.
    """
    if checkpoints is None and (cfg.checkpoint_dir or cfg.resume_from):
        raise ValueError(
            "checkpoint_dir/resume_from need a checkpoint store: pass "
            "checkpoints=shikong.io.checkpoints.CheckpointFiles()"
        )


def _train(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    data: TrainData,
    comm: Comm,
    device: torch.device,
    t_start: float,
    store: CheckpointStore | None,
) -> TrainResult:
    rank, world_size = comm.rank, comm.world_size
    local_bs = cfg.batch_size // world_size

    torch.manual_seed(cfg.seed)
    model: Any = build_model(model_cfg).to(device)  # nn.Module with the models' protocol
    torch.manual_seed(cfg.seed + 7919 * (rank + 1))  # dropout stream per rank

    keys = list(model.batch_keys)
    train_data = to_tensors(data.rank_arrays("train", rank, world_size, keys), device)
    val_data = to_tensors(data.rank_arrays("val", rank, world_size, keys), device)
    n_local = len(train_data[keys[0]])
    n_val_local = len(val_data[keys[0]])
    train_rows = _all_sum(n_local, device, comm)
    val_rows = _all_sum(n_val_local, device, comm)
    if val_rows == 0:
        raise ValueError(f"validation set of {data} is empty")

    steps = _all_min(n_local // local_bs, device, comm)
    if cfg.max_steps_per_epoch:
        steps = min(steps, cfg.max_steps_per_epoch)
    if steps == 0:
        raise ValueError(
            f"a rank has fewer than {local_bs} training rows (global batch {cfg.batch_size}, "
            f"world_size {world_size}); lower batch_size or add data"
        )

    net = comm.wrap_model(model, device)
    opt = comm.wrap_optimizer(
        torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay), model
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, cfg.epochs * steps))

    history: list[EpochMetrics] = []
    best_loss, best_epoch, bad_epochs, start_epoch = math.inf, -1, 0, 0
    best_state: dict[str, Tensor] | None = None
    stopped = False
    ckpt_dir = cfg.checkpoint_dir or None
    best_path = join(ckpt_dir, "best.pt") if ckpt_dir else None

    if cfg.resume_from and store is not None:
        payload = store.load(cfg.resume_from)
        model.load_state_dict(payload["model_state"])
        opt.load_state_dict(payload["optimizer_state"])
        sched.load_state_dict(payload["scheduler_state"])
        history = [EpochMetrics(**m) for m in payload["history"]]
        best_loss, best_epoch = payload["best_val_loss"], payload["best_epoch"]
        bad_epochs, start_epoch = payload["bad_epochs"], payload["epoch"] + 1
        best_state = payload.get("best_state")
        torch.set_rng_state(payload["rng_state"][rank % len(payload["rng_state"])])
        stopped = bad_epochs >= cfg.patience
    comm.broadcast_start(model, opt)

    loss_keys: list[str] = []
    for epoch in range(start_epoch, cfg.epochs):
        if stopped:
            break
        t0 = time.perf_counter()
        model.train()
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch * 1009 + rank)
        perm = torch.randperm(n_local, generator=gen)[: steps * local_bs].view(steps, local_bs)
        terms = _Terms()
        norms = []
        for step in range(steps):
            idx = perm[step].to(device)
            batch = {k: v[idx] for k, v in train_data.items()}
            out = net(batch)
            parts = model.loss_parts(batch, out)
            loss_keys = sorted(parts)
            loss = model.combine({k: s / c.clamp_min(1) for k, (s, c) in parts.items()})
            # Horovod's optimiser has no set_to_none argument; None is torch's default.
            opt.zero_grad()
            loss.backward()
            comm.synchronize_grads(opt)
            max_norm = cfg.grad_clip if cfg.grad_clip is not None else math.inf
            norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), max_norm)))
            comm.step(opt)
            sched.step()
            terms.add(parts)
        train_means = terms.reduce(loss_keys, device, comm)
        val_terms = evaluate(model, val_data, cfg.eval_batch_size)
        # Every rank reduces the same keys in the same order, even one with no val rows.
        val_keys = sorted(set(loss_keys) | set(getattr(model, "metric_names", ())))
        val_means = val_terms.reduce(val_keys, device, comm)
        train_loss = _combine(model, train_means, loss_keys)
        val_loss = _combine(model, val_means, loss_keys)
        mean_norm = float(np.mean(norms)) if norms else math.nan
        metrics = EpochMetrics(
            epoch=epoch,
            train_loss=train_loss,
            val_loss=val_loss,
            lr=float(sched.get_last_lr()[0]),
            grad_norm=_mean_over_ranks(mean_norm, device, comm),
            steps=steps,
            samples=steps * cfg.batch_size,
            seconds=time.perf_counter() - t0,
            train_terms=train_means,
            val_terms=val_means,
        )
        history.append(metrics)
        improved = math.isfinite(val_loss) and val_loss < best_loss - cfg.min_delta
        if improved:
            best_loss, best_epoch, bad_epochs = val_loss, epoch, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        stopped = bad_epochs >= cfg.patience
        log.info(
            "rank %d epoch %d train %.5f val %.5f lr %.2e%s",
            rank,
            epoch,
            train_loss,
            val_loss,
            metrics.lr,
            " *" if improved else "",
        )
        rng_states = _gather_rng(comm) if ckpt_dir else None  # collective: every rank
        if ckpt_dir and store is not None and rank == 0:
            payload = {
                "model_config": config_to_dict(model_cfg),
                "train_config": dataclasses.asdict(cfg),
                "epoch": epoch,
                "val_loss": val_loss,
                "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "optimizer_state": opt.state_dict(),
                "scheduler_state": sched.state_dict(),
                "history": [dataclasses.asdict(m) for m in history],
                "best_val_loss": best_loss,
                "best_epoch": best_epoch,
                "bad_epochs": bad_epochs,
                "best_state": best_state,
                "rng_state": rng_states,
            }
            store.save(join(ckpt_dir, f"epoch-{epoch:03d}.pt"), payload)
            if improved and best_path is not None:
                store.save(best_path, payload)

    if cfg.restore_best and best_state is not None:
        model.load_state_dict(best_state)
    digest = param_digest(model)
    digests = [str(d) for d in comm.allgather_object(digest)]
    return TrainResult(
        model_kind=model_kind(model_cfg),
        model_config=config_to_dict(model_cfg),
        history=tuple(history),
        best_epoch=best_epoch,
        best_val_loss=best_loss,
        epochs_run=len(history),
        stopped_early=stopped and len(history) < cfg.epochs,
        checkpoint=best_path if best_epoch >= 0 else None,
        world_size=world_size,
        rank=rank,
        backend="local",
        device=str(device),
        param_digest=digest,
        rank_digests=tuple(digests),
        train_rows=train_rows,
        val_rows=val_rows,
        seconds=time.perf_counter() - t_start,
        state=(
            {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            if rank == 0
            else None
        ),
    )


def _mean_over_ranks(value: float, device: torch.device, comm: Comm) -> float:
    t = torch.tensor([value], dtype=torch.float64, device=device)
    return float(comm.allreduce_sum(t).item()) / comm.world_size


def _gather_rng(comm: Comm) -> list[Tensor]:
    """Every rank's CPU RNG state (a collective when distributed)."""
    return list(comm.allgather_object(torch.get_rng_state()))
