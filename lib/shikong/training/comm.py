"""The collectives of the training loop, one class per backend.

* :class:`Comm` (one process): no-ops.
* :class:`TorchDistComm`: ``torch.distributed`` and ``DistributedDataParallel`` (gloo on
  CPU, NCCL when ``use_gpu`` and CUDA is available).
* :class:`HorovodComm`: ``hvd.allreduce``/``allgather_object`` and
  ``hvd.DistributedOptimizer`` (gradients averaged like DDP), rank 0's parameters broadcast
  before the first step.
"""

from __future__ import annotations

import logging
import os
from types import ModuleType
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

log = logging.getLogger(__name__)


def select_device(use_gpu: bool, rank: int) -> tuple[torch.device, str]:
    """``(device, process-group backend)``: CUDA + NCCL when asked and available."""
    if use_gpu and torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count()
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank), "nccl"
    if use_gpu:
        log.warning("use_gpu=True but CUDA is not available: training on CPU with gloo")
    return torch.device("cpu"), "gloo"


class Comm:
    """The collectives :func:`train` uses; this base class is the single-process no-op.

    Subclasses give the same semantics on every backend: sums and minima over ranks,
    gathering one picklable object per rank, gradients averaged over ranks before
    :meth:`step`, and every rank starting from rank 0's parameters.

    Attributes:
        rank: This process's rank.
        world_size: Number of processes.
        local_rank: Rank on this host (picks the GPU).
        supports_gpu: Whether collectives accept CUDA tensors.
    """

    def __init__(self, rank: int = 0, world_size: int = 1, local_rank: int | None = None) -> None:
        self.rank = rank
        self.world_size = world_size
        self.local_rank = rank if local_rank is None else local_rank
        self.supports_gpu = True

    def allreduce_sum(self, t: Tensor) -> Tensor:
        """Element-wise sum over ranks."""
        return t

    def allreduce_min(self, t: Tensor) -> Tensor:
        """Element-wise minimum over ranks."""
        return t

    def allgather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order."""
        return [obj]

    def wrap_model(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The module to call in the training forward pass."""
        return model

    def wrap_optimizer(self, opt: torch.optim.Optimizer, model: nn.Module) -> torch.optim.Optimizer:
        """The optimiser to step (and to attach the LR schedule to)."""
        return opt

    def broadcast_start(self, model: nn.Module, opt: torch.optim.Optimizer) -> None:
        """Make every rank start from rank 0's weights (and optimiser state when resumed)."""

    def synchronize_grads(self, opt: torch.optim.Optimizer) -> None:
        """Wait until ``.grad`` holds the gradient averaged over ranks."""

    def step(self, opt: torch.optim.Optimizer) -> None:
        """One optimiser step on the (already averaged and clipped) gradients."""
        opt.step()


class TorchDistComm(Comm):
    """``torch.distributed`` on the default process group, with ``DistributedDataParallel``.

    DDP broadcasts rank 0's parameters when it wraps the model and averages gradients during
    ``backward()``, so :meth:`broadcast_start` and :meth:`synchronize_grads` have nothing to
    do.
    """

    def allreduce_sum(self, t: Tensor) -> Tensor:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def allreduce_min(self, t: Tensor) -> Tensor:
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return t

    def allgather_object(self, obj: Any) -> list[Any]:
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def wrap_model(self, model: nn.Module, device: torch.device) -> nn.Module:
        return nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )


class HorovodComm(Comm):
    """Horovod collectives for a process that has already called ``hvd.init()``.

    Gradients are averaged by ``hvd.DistributedOptimizer`` (allreduces started during
    ``backward()``, awaited by :meth:`synchronize_grads` so clipping sees the global
    gradient); :meth:`broadcast_start` sends rank 0's parameters with
    ``hvd.broadcast_parameters`` and, on a resumed optimiser, its state with
    ``hvd.broadcast_optimizer_state``. A fresh optimiser is NOT broadcast: every rank
    builds it identically, and Horovod would first materialise the empty state with a
    zero-gradient ``step()``, which for AdamW applies weight decay and advances the step
    count, so training would no longer match the DDP and local paths.

    Args:
        hvd: The ``horovod.torch`` module, initialised.
    """

    def __init__(self, hvd: ModuleType) -> None:
        super().__init__(hvd.rank(), hvd.size(), hvd.local_rank())
        self.hvd = hvd
        # A CPU-only Horovod build cannot reduce CUDA tensors.
        self.supports_gpu = bool(hvd.cuda_built() or hvd.rocm_built())
        self._calls = 0

    def _name(self, kind: str) -> str:
        # Explicit names, identical on every rank because every rank calls in the same order.
        self._calls += 1
        return f"shikong.{kind}.{self._calls}"

    def allreduce_sum(self, t: Tensor) -> Tensor:
        return self.hvd.allreduce(t, op=self.hvd.Sum, name=self._name("sum"))

    def allreduce_min(self, t: Tensor) -> Tensor:
        return self.hvd.allreduce(t, op=self.hvd.Min, name=self._name("min"))

    def allgather_object(self, obj: Any) -> list[Any]:
        return list(self.hvd.allgather_object(obj, name=self._name("gather")))

    def wrap_optimizer(self, opt: torch.optim.Optimizer, model: nn.Module) -> torch.optim.Optimizer:
        return self.hvd.DistributedOptimizer(
            opt, named_parameters=model.named_parameters(), op=self.hvd.Average
        )

    def broadcast_start(self, model: nn.Module, opt: torch.optim.Optimizer) -> None:
        self.hvd.broadcast_parameters(model.state_dict(), root_rank=0)
        if opt.state_dict()["state"]:
            self.hvd.broadcast_optimizer_state(opt, root_rank=0)

    def synchronize_grads(self, opt: torch.optim.Optimizer) -> None:
        opt.synchronize()  # type: ignore[attr-defined]

    def step(self, opt: torch.optim.Optimizer) -> None:
        # The gradients were reduced in synchronize_grads; don't reduce them twice.
        with opt.skip_synchronize():  # type: ignore[attr-defined]
            opt.step()
