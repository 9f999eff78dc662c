"""``bench/training.py``'s GPU rows merge into the training record without touching the CPU
rows (``merge_results``); checked against hand-written documents."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))
from training import merge_results  # noqa: E402 - bench/ is not a package

CPU_MACHINE = {"cores": 2, "memory_gb": 24, "python": "3.11.7", "spark": "4.0.1", "gpu": None}
GPU_RUN = {
    "git_commit": "abc1234",
    "measured_at": "2026-12-07T12:00:00Z",
    "machine": {"cores": 16, "gpu": "NVIDIA H100 80GB HBM3", "torch": "2.11.0"},
}


def row(name: str, value: float) -> dict:
    return {"name": name, "unit": "samples/s", "value": value, "baseline": None, "ratio": None}


def record(*rows: dict) -> dict:
    return {
        "area": "training",
        "git_commit": "6559a03",
        "measured_at": "2026-11-30T18:17:16Z",
        "machine": CPU_MACHINE,
        "results": list(rows),
    }


@pytest.mark.parametrize(
    ("existing", "new", "want_names", "want_values"),
    [
        pytest.param(
            [row("demand_train_1proc", 4617.6), row("demand_train_2proc", 3452.8)],
            [row("demand_train_gpu_local", 9e4)],
            ["demand_train_1proc", "demand_train_2proc", "demand_train_gpu_local"],
            [4617.6, 3452.8, 9e4],
            id="appends-after-cpu-rows",
        ),
        pytest.param(
            [row("demand_train_1proc", 4617.6), row("demand_train_gpu_local", 1.0)],
            [row("demand_train_gpu_local", 2.0), row("reco_train_gpu_local", 3.0)],
            ["demand_train_1proc", "demand_train_gpu_local", "reco_train_gpu_local"],
            [4617.6, 2.0, 3.0],
            id="rerun-replaces-same-names",
        ),
    ],
)
def test_merge_keeps_cpu_rows_and_replaces_reruns(existing, new, want_names, want_values) -> None:
    doc = record(*existing)
    before = copy.deepcopy(doc)
    out = merge_results(doc, new, GPU_RUN)
    assert [r["name"] for r in out["results"]] == want_names
    assert [r["value"] for r in out["results"]] == want_values
    # the CPU record's header is the CPU machine's; the GPU run is described apart
    assert out["machine"] == CPU_MACHINE and out["git_commit"] == "6559a03"
    assert out["gpu_run"] == GPU_RUN
    assert doc == before  # the input document is not modified


def test_merge_into_missing_file_and_refuses_other_areas() -> None:
    out = merge_results(None, [row("reco_train_gpu_local", 5.0)], GPU_RUN)
    assert out["area"] == "training" and out["machine"] == GPU_RUN["machine"]
    assert [r["name"] for r in out["results"]] == ["reco_train_gpu_local"]
    with pytest.raises(ValueError, match="area 'spatial'"):
        merge_results({"area": "spatial", "results": []}, [], GPU_RUN)
