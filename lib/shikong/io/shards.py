"""Training shards: folders of Parquet files read per rank with pyarrow, plus ``meta.json``.

A Spark job writes each split with ``.repartition(n).write.parquet(folder)`` (every task
its own shard, nothing collected); :func:`write_shards` is the pyarrow writer for frames
already in one process (tests, small runs). :func:`read_rank_arrays` reads, on each
training rank, only the shards of that rank (shard ``i`` goes to rank ``i % world_size``)
and works on either writer's output. Locations are URIs or paths (see
:mod:`shikong.io.fs`); everything goes through ``pyarrow.fs``, so training processes read
shards without a JVM.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from shikong.io import fs

if TYPE_CHECKING:  # training ranks import this module; they need no pyspark
    from pyspark.sql import DataFrame, SparkSession

META_FILE = "meta.json"


@dataclass(frozen=True)
class DataPaths:
    """Shard folders of one training data set (any folder of ``*.parquet`` files).

    It is the ``data_paths`` the training loop reads (the ``TrainData`` protocol of
    :mod:`shikong.training.protocols`): picklable, so it travels to every rank.

    Attributes:
        train: Training shards.
        val: Validation shards (early stopping).
        test: Test shards (not read by the training loop).
        meta: Optional ``meta.json`` (vocabularies, standardiser, split, configs).
    """

    train: str
    val: str
    test: str | None = None
    meta: str | None = None

    @classmethod
    def under(cls, root: str) -> DataPaths:
        """The layout :func:`write_split_shards` and ``prepare_training_data`` write."""
        return cls(
            train=fs.join(root, "train"),
            val=fs.join(root, "val"),
            test=fs.join(root, "test"),
            meta=fs.join(root, META_FILE),
        )

    def rank_arrays(
        self, split: str, rank: int, world_size: int, columns: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """This rank's rows of ``split`` (``train``, ``val`` or ``test``), see
        :func:`read_rank_arrays`."""
        folder = {"train": self.train, "val": self.val, "test": self.test}[split]
        if folder is None:
            raise ValueError(f"no {split} folder in {self}")
        return read_rank_arrays(folder, rank, world_size, columns)


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    arrays, names = [], []
    for name in frame.columns:
        col = frame[name]
        first = col.iloc[0] if len(col) else None
        if isinstance(first, np.ndarray | list):
            rows = [np.asarray(v) for v in col]
            widths = {r.shape[0] for r in rows}
            width = widths.pop() if len(widths) == 1 else None
            if width:
                flat = np.concatenate(rows)
                arr: pa.Array = pa.FixedSizeListArray.from_arrays(pa.array(flat), width)
            elif width == 0:
                arr = pa.array(
                    [[] for _ in rows], type=pa.list_(pa.from_numpy_dtype(rows[0].dtype))
                )
            else:
                arr = pa.array([r.tolist() for r in rows])
        else:
            arr = pa.array(col.to_numpy() if col.dtype != object else col.tolist())
        arrays.append(arr)
        names.append(str(name))
    return pa.Table.from_arrays(arrays, names=names)


def write_shards(
    frame: pd.DataFrame, out_dir: str, num_shards: int, *, overwrite: bool = True
) -> list[str]:
    """Write a frame as ``num_shards`` Parquet files of (nearly) equal row counts.

    Row order is kept (shard ``i`` holds the ``i``-th contiguous block). Array columns
    become fixed-size list columns.

    Args:
        frame: Examples.
        out_dir: Folder (path or URI); its old ``*.parquet`` files are removed when
            ``overwrite``.
        num_shards: Files to write (use a multiple of the largest world size).
        overwrite: Replace existing shards; otherwise fail if any exist.

    Returns:
        The shard locations (``out_dir/part-XXXXX.parquet``), in order.
    """
    if num_shards < 1:
        raise ValueError("num_shards must be >= 1")
    out_dir = str(out_dir)
    old = [n for n in fs.listdir(out_dir) if n.endswith(".parquet")]
    if old and not overwrite:
        raise FileExistsError(f"{out_dir} already holds shards")
    for name in old:
        fs.delete(fs.join(out_dir, name))
    fs.makedirs(out_dir)
    filesystem, _ = fs.filesystem(out_dir)
    paths = []
    table = _to_arrow(frame.reset_index(drop=True))  # one schema for every shard
    bounds = np.linspace(0, len(frame), num_shards + 1).round().astype(int)
    for i in range(num_shards):
        uri = fs.join(out_dir, f"part-{i:05d}.parquet")
        _, path = fs.filesystem(uri)
        pq.write_table(
            table.slice(bounds[i], bounds[i + 1] - bounds[i]), path, filesystem=filesystem
        )
        paths.append(uri)
    return paths


def shard_files(folder: str) -> list[str]:
    """Every ``*.parquet`` under a folder (Spark part files included; ``_``/``.`` names and
    folders skipped), sorted so every rank sees the same order.

    Raises:
        FileNotFoundError: When ``folder`` is not a folder.
    """
    folder = str(folder)
    filesystem, root = fs.filesystem(folder)
    if filesystem.get_file_info(root).type != pafs.FileType.Directory:
        raise FileNotFoundError(f"no shard folder {folder}")
    base = root.rstrip("/")
    rels = []
    for info in filesystem.get_file_info(pafs.FileSelector(root, recursive=True)):
        if info.type != pafs.FileType.File or not info.path.endswith(".parquet"):
            continue
        rel = posixpath.relpath(info.path, base)
        if not any(part.startswith(("_", ".")) for part in rel.split("/")):
            rels.append(rel)
    return sorted(fs.join(folder, rel) for rel in rels)


def rank_shards(folder: str, rank: int, world_size: int) -> list[str]:
    """The shards of one rank: shard ``i`` belongs to rank ``i % world_size``.

    Raises:
        ValueError: When there are fewer shards than ranks (a rank would have no data).
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world_size {world_size}")
    files = shard_files(folder)
    if len(files) < world_size:
        raise ValueError(
            f"{folder}: {len(files)} shards for {world_size} ranks; write at least one per rank"
        )
    return files[rank::world_size]


def _column_to_numpy(col: pa.ChunkedArray) -> np.ndarray:
    arr = col.combine_chunks()
    if (
        pa.types.is_fixed_size_list(arr.type)
        or pa.types.is_list(arr.type)
        or pa.types.is_large_list(arr.type)
    ):
        n = len(arr)
        flat = arr.flatten().to_numpy(zero_copy_only=False)
        if n == 0:
            return flat.reshape(0, 0)
        if flat.size % n:
            raise ValueError("array column with rows of different lengths")
        return flat.reshape(n, flat.size // n)
    return arr.to_numpy(zero_copy_only=False)


def _read_table(uri: str, columns: Sequence[str] | None) -> pa.Table:
    filesystem, path = fs.filesystem(uri)
    return pq.read_table(path, columns=list(columns) if columns else None, filesystem=filesystem)


def read_arrays(
    files: Sequence[str], columns: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Read shards into one numpy array per column (array columns -> 2-D)."""
    tables = [_read_table(str(f), columns) for f in files]
    tables = [t for t in tables if t.num_rows] or tables[:1]
    if not tables:
        return {c: np.zeros(0) for c in columns or ()}
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return {name: _column_to_numpy(table.column(name)) for name in table.column_names}


def read_rank_arrays(
    folder: str, rank: int, world_size: int, columns: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Arrays of only this rank's shards (see :func:`rank_shards`)."""
    return read_arrays(rank_shards(folder, rank, world_size), columns)


def read_rank_frame(
    folder: str, rank: int, world_size: int, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """This rank's shards as a pandas frame (array columns as arrays per row)."""
    arrays = read_rank_arrays(folder, rank, world_size, columns)
    return pd.DataFrame({k: list(v) if v.ndim > 1 else v for k, v in arrays.items()})


def write_meta(folder: str, meta: Mapping[str, Any]) -> str:
    """Write ``folder/meta.json`` (indented JSON; non-JSON values as strings); its location."""
    uri = fs.join(str(folder), META_FILE)
    fs.write_text(uri, json.dumps(meta, indent=2, default=str))
    return uri


def read_meta(folder: str) -> dict[str, Any]:
    """``folder/meta.json`` as a dict.

    Raises:
        FileNotFoundError: When there is no such file.
    """
    uri = fs.join(str(folder), META_FILE)
    if not fs.is_file(uri):
        raise FileNotFoundError(f"{uri} is missing")
    return dict(json.loads(fs.read_text(uri)))


def write_split_shards(
    splits: Mapping[str, pd.DataFrame],
    out_dir: str,
    num_shards: int,
    meta: Mapping[str, Any] | None = None,
) -> DataPaths:
    """Write ``train``/``val``/``test`` splits as shard folders plus ``meta.json``."""
    root = str(out_dir)
    folders = {}
    for name in ("train", "val", "test"):
        if name in splits:
            folders[name] = fs.join(root, name)
            write_shards(splits[name], folders[name], num_shards)
    meta_path = write_meta(root, meta) if meta is not None else None
    return DataPaths(
        train=folders["train"],
        val=folders["val"],
        test=folders.get("test"),
        meta=meta_path,
    )


def write_spark_splits(
    splits: Mapping[str, DataFrame], root: str, num_shards: int
) -> dict[str, int]:
    """Write each split as ``num_shards`` Parquet files under ``<root>/<split>`` from Spark.

    The executors write (every rank later reads only its own files with pyarrow); the
    returned counts are read back from what was written.

    Returns:
        Rows per split.
    """
    rows = {}
    for name, df in splits.items():
        path = fs.join(root, name)
        df.repartition(num_shards).write.mode("overwrite").parquet(path)
        rows[name] = df.sparkSession.read.parquet(path).count()
    return rows


def read_spark_split(spark: SparkSession, root: str, split: str) -> DataFrame:
    """One split of shards as a Spark DataFrame (serving examples, baseline counts)."""
    return spark.read.parquet(fs.join(root, split))
