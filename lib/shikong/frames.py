"""Small helpers on Spark and pandas frames that every layer uses (core, no storage)."""

from __future__ import annotations

from typing import cast

import pandas as pd
from pyspark.sql import DataFrame, Row


def first_row(df: DataFrame) -> Row:
    """The first row of a DataFrame that must have one (aggregates always do)."""
    row = df.first()
    if row is None:
        raise ValueError("expected at least one row")
    return row


def to_pandas(df: DataFrame) -> pd.DataFrame:
    """Collect a small DataFrame (summaries, per-group tables) to pandas."""
    return cast(pd.DataFrame, df.toPandas())
