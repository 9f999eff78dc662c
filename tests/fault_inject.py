"""``python tests/fault_inject.py ARGS...``: the ``shikong`` command (``shikong.cli.main(ARGS)``)
with one injected fault, for ``tests/test_faults.py``; the package carries no test hook.

The panel forecast function (``forecast_panel``: the pandas function that ``forecast_arima``
runs on each group of series with ``applyInPandas``) raises on the first attempt of every
Spark task and works on the retry. Each call leaves a marker file
``stage<S>-part<P>-attempt<A>`` in ``$SHIKONG_FAULT_MARKERS``, so the test can tell that
the first attempts failed and the retries ran. Run it with a local master that retries
tasks (``local[2,2]``: two attempts per task).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import pandas as pd

import shikong.timeseries.distributed as distributed
from shikong.cli import main

MARKERS = os.environ["SHIKONG_FAULT_MARKERS"]
_forecast_panel = distributed.forecast_panel


class InjectedFaultError(RuntimeError):
    """The failure this wrapper injects."""


def failing_first_attempt(
    forecast: Callable[[pd.DataFrame, Any], pd.DataFrame],
) -> Callable[[pd.DataFrame, Any], pd.DataFrame]:
    """``forecast`` (a panel function), failing on attempt 0 of every task."""
    markers = MARKERS

    def fn(pdf: pd.DataFrame, config: Any) -> pd.DataFrame:
        from pyspark import TaskContext

        task = TaskContext.get()
        assert task is not None
        name = f"stage{task.stageId()}-part{task.partitionId()}-attempt{task.attemptNumber()}"
        with open(os.path.join(markers, name), "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
        if task.attemptNumber() == 0:
            raise InjectedFaultError(f"injected failure in {name}")
        return forecast(pdf, config)

    return fn


if __name__ == "__main__":
    # forecasts() looks the name up in its module when it runs.
    distributed.forecast_panel = failing_first_attempt(_forecast_panel)
    raise SystemExit(main(sys.argv[1:]))
