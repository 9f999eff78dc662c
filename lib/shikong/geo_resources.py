"""Packaged Brazilian geography: municipalities (points) and state polygons (WKT).

The files under ``shikong/resources/geo/`` are built by ``scripts/build_geo_resource.py``
from MIT-licensed public data (see ``LICENSE-geo.txt`` there). No Spark needed here.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from importlib import resources

import pandas as pd

_GEO_PACKAGE = "shikong"
_GEO_DIR = ("resources", "geo")

# Typographic apostrophes and backticks are folded into the ASCII one before it is
# replaced, so "d’Oeste", "d'Oeste" and "d Oeste" all normalise alike.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})
_SEPARATORS = re.compile(r"[\s'\-]+")


def normalise_name(s: str) -> str:
    """Normalise a place name for matching: no accents, lower case, single spaces.

    Apostrophes and hyphens become spaces, because sources disagree on them
    ("Santa Bárbara d'Oeste" vs "santa barbara d oeste", "Mogi-Guaçu" vs "mogi guacu").

    Args:
        s: A city or state name in any casing, with or without accents.

    Returns:
        The normalised name, e.g. ``"sao joao d alianca"``; ``""`` for None/blank.
    """
    if s is None:
        return ""
    decomposed = unicodedata.normalize("NFKD", str(s).translate(_APOSTROPHES))
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SEPARATORS.sub(" ", ascii_only.lower()).strip()


def _read_geo_csv(name: str, dtype: dict[str, str]) -> pd.DataFrame:
    ref = resources.files(_GEO_PACKAGE).joinpath(*_GEO_DIR, name)
    with ref.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype=dtype, keep_default_na=False)


@functools.lru_cache(maxsize=1)
def _municipalities() -> pd.DataFrame:
    df = _read_geo_csv(
        "municipalities.csv",
        {
            "ibge_code": "int64",
            "name": "str",
            "name_norm": "str",
            "lat": "float64",
            "lon": "float64",
            "capital": "int64",
            "uf": "str",
        },
    )
    df["capital"] = df["capital"].astype(bool)
    return df


@functools.lru_cache(maxsize=1)
def _states() -> pd.DataFrame:
    return _read_geo_csv("states.csv", {"uf": "str", "name": "str", "region": "str", "wkt": "str"})


def load_municipalities() -> pd.DataFrame:
    """Load the 5,571 Brazilian municipalities.

    Returns:
        A fresh DataFrame with columns ``ibge_code`` (int), ``name``, ``name_norm``
        (see :func:`normalise_name`), ``lat``, ``lon`` (float, WGS84), ``capital`` (bool)
        and ``uf`` (two-letter state code), sorted by ``ibge_code``.
    """
    return _municipalities().copy()


def load_states() -> pd.DataFrame:
    """Load the 27 federative units with their polygons.

    Returns:
        A fresh DataFrame with columns ``uf``, ``name``, ``region`` (Norte, Nordeste,
        Sudeste, Sul, Centro-Oeste) and ``wkt`` (valid, simplified (Multi)Polygon,
        WGS84 lon/lat), sorted by ``uf``.
    """
    return _states().copy()
