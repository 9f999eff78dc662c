"""Training data, loop and launchers for the deep models in :mod:`shikong.models`.

Typical use::

    paths = prepare_demand_data(series, DemandExampleConfig(...), split, out_dir, num_shards=8)
    result = launch(DemandModelConfig(...), TrainConfig(...), paths,
                    backend="torch_distributor", num_processes=2)
    rows = result.metric_records(run_id)   # one row per epoch, for a Delta metrics table
    model = result.load_model()

:mod:`shikong.training.data` imports neither torch nor pyspark; import the loop and the
launcher from their modules (they import torch).
"""

from shikong.training.data import (
    DataPaths,
    DemandExampleConfig,
    RecoExampleConfig,
    Standardizer,
    TimeSplit,
    Vocab,
    available_day,
    build_vocab,
    demand_examples,
    prepare_demand_data,
    rank_shards,
    read_rank_arrays,
    recommender_examples,
    time_split,
    write_shards,
    write_split_shards,
)

__all__ = [
    "DataPaths",
    "DemandExampleConfig",
    "RecoExampleConfig",
    "Standardizer",
    "TimeSplit",
    "Vocab",
    "available_day",
    "build_vocab",
    "demand_examples",
    "prepare_demand_data",
    "rank_shards",
    "read_rank_arrays",
    "recommender_examples",
    "time_split",
    "write_shards",
    "write_split_shards",
]
