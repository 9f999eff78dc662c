"""Training examples, loop and launchers for the deep models in :mod:`shikong.models`.

Transforms only: storage is injected (:mod:`shikong.training.protocols`) and lives in
:mod:`shikong.io` (shards and ``meta.json``: :mod:`shikong.io.shards`; checkpoints and
model files: :mod:`shikong.io.checkpoints`; launcher results:
:mod:`shikong.io.train_results`; MLflow: :mod:`shikong.io.tracking`). Typical use::

    splits, meta = prepare_demand_splits(series, DemandExampleConfig(...), split)
    paths = write_split_shards(splits, out_dir, num_shards=8, meta=meta)   # shikong.io.shards
    result = launch(DemandModelConfig(...), TrainConfig(...), paths,
                    backend="torch_distributor", num_processes=2,
                    checkpoints=CheckpointFiles(), results=ResultFiles())
    rows = result.metric_records(run_id)   # one row per epoch, for a Delta metrics table
    model = result.load_model()

The example builders (:mod:`~shikong.training.common`,
:mod:`~shikong.training.demand_examples`, :mod:`~shikong.training.reco_examples`) import
neither torch nor pyspark; import the loop and the launcher from their modules (they
import torch).
"""

from shikong.training.common import (
    Standardizer,
    TimeSplit,
    day_number,
    epoch_seconds,
    time_split,
)
from shikong.training.demand_examples import (
    DemandExampleConfig,
    available_day,
    demand_examples,
    demand_score_examples,
    prepare_demand_splits,
    seasonal_naive_quantiles,
)
from shikong.training.protocols import CheckpointStore, ResultExchange, TrainData
from shikong.training.reco_examples import (
    RecoExampleConfig,
    Vocab,
    build_vocab,
    recommender_examples,
    recommender_score_examples,
)

__all__ = [
    "CheckpointStore",
    "DemandExampleConfig",
    "RecoExampleConfig",
    "ResultExchange",
    "Standardizer",
    "TimeSplit",
    "TrainData",
    "Vocab",
    "available_day",
    "build_vocab",
    "day_number",
    "demand_examples",
    "demand_score_examples",
    "epoch_seconds",
    "prepare_demand_splits",
    "recommender_examples",
    "recommender_score_examples",
    "seasonal_naive_quantiles",
    "time_split",
]
