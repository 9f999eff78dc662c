"""Landing -> bronze transforms: validation and quarantine rules, the Olist mapping.

Reading files and writing tables is the ``ingest`` stage's (through :mod:`shikong.io`).
"""

from shikong.ingest.olist import LAYER as OLIST_LAYER
from shikong.ingest.olist import STATUS_MAP, olist_frames
from shikong.ingest.validate import (
    SPECS,
    ColumnSpec,
    SourceSpec,
    accepted_rows,
    classify,
    quarantined_rows,
    with_row_hash,
)

__all__ = [
    "OLIST_LAYER",
    "SPECS",
    "STATUS_MAP",
    "ColumnSpec",
    "SourceSpec",
    "accepted_rows",
    "classify",
    "olist_frames",
    "quarantined_rows",
    "with_row_hash",
]
