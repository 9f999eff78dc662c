"""Build the packaged Brazilian geography resource from the shared public data.

Reads ``municipios.csv``, ``estados.csv`` and ``brazil-states.geojson`` (MIT, see
``/work/shared/data/README.md``) and writes ``lib/shikong/resources/geo/``:

* ``municipalities.csv``: ibge_code, name, name_norm, lat, lon, capital, uf
* ``states.csv``: uf, name, region, wkt (valid, simplified, polygonal parts only)
* ``LICENSE-geo.txt``: MIT notice and source attribution

Usage::

    .venv/bin/python scripts/build_geo_resource.py [--src ../shared/data/brazil] [--dst DIR]

The outputs are committed; rerun only when the source data or the format changes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import pandas as pd
import shapely
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.validation import make_valid

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "lib"))

from shikong.geo_resources import normalise_name  # noqa: E402

logger = logging.getLogger(__name__)

DEFAULT_SRC = REPO_ROOT.parent / "shared" / "data" / "brazil"
DEFAULT_DST = REPO_ROOT / "lib" / "shikong" / "resources" / "geo"
#: Degrees; ~1-2 km, enough for point-in-state and maps, keeps the file a few hundred kB.
SIMPLIFY_TOLERANCE = 0.015
#: Decimal places written to WKT (~10 m), far below the simplification error.
WKT_DECIMALS = 4
MAX_TOTAL_BYTES = 1_000_000

LICENSE_TEXT = """\
Geography data in this folder (municipalities.csv, states.csv) is derived from:

* kelvins/municipios-brasileiros (commit 503e2f70, csv/municipios.csv, csv/estados.csv)
  https://github.com/kelvins/municipios-brasileiros
  MIT License, Copyright (c) 2016 Kelvin S. do Prado
* codeforgermany/click_that_hood (commit 48ba05ad, public/data/brazil-states.geojson)
  https://github.com/codeforgermany/click_that_hood
  Declared "license": "MIT" in the project's package.json; the repository's LICENSE.md
  carries a BSD-3-Clause notice, Copyright (c) 2016, Code for America. Both notices are
  reproduced below so that either reading is honoured.

Changes: columns selected and renamed, an accent-free lower-case name added, state
polygons repaired with shapely make_valid, reduced to their polygonal parts and
simplified (tolerance {tol} degrees, topology preserved), coordinates rounded to
{dec} decimals.

----------------------------------------------------------------------------
MIT License

Copyright (c) 2016 Kelvin S. do Prado
(and, for the state polygons, the click_that_hood contributors)

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.

----------------------------------------------------------------------------
click_that_hood LICENSE.md (BSD-3-Clause)

Copyright (c) 2016, Code for America
All rights reserved.

Redistribution and use in source and binary forms, with or without modification,
are permitted provided that the following conditions are met:

* Redistributions of source code must retain the above copyright notice, this list
  of conditions and the following disclaimer.
* Redistributions in binary form must reproduce the above copyright notice, this
  list of conditions and the following disclaimer in the documentation and/or other
  materials provided with the distribution.
* Neither the name of Code for America nor the names of its contributors may be used
  to endorse or promote products derived from this software without specific prior
  written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND ANY
EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES
OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT
SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT,
INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED
TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR
BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN
CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN
ANY WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH
DAMAGE.
"""


def _polygonal(geom: shapely.Geometry) -> MultiPolygon:
    """Keep only the polygonal parts of a geometry (make_valid may emit lines/points)."""
    parts: list[Polygon] = []
    for g in getattr(geom, "geoms", [geom]):
        if isinstance(g, Polygon):
            parts.append(g)
        elif isinstance(g, MultiPolygon):
            parts.extend(g.geoms)
        elif hasattr(g, "geoms"):
            parts.extend(_polygonal(g).geoms)
    return MultiPolygon([p for p in parts if not p.is_empty])


def clean_state_geometry(geom: shapely.Geometry, tolerance: float = SIMPLIFY_TOLERANCE) -> str:
    """Repair, simplify and serialise one state polygon.

    Args:
        geom: Raw state geometry (may be invalid as published).
        tolerance: Douglas-Peucker tolerance in degrees.

    Returns:
        WKT of a valid (Multi)Polygon with rounded coordinates.
    """
    g = _polygonal(make_valid(geom))
    g = g.simplify(tolerance, preserve_topology=True)
    # Rounding can create tiny self-touches again: round on a grid then repair once more.
    g = shapely.set_precision(g, 10.0**-WKT_DECIMALS)
    if not g.is_valid:
        g = make_valid(g)
    g = _polygonal(g)
    if len(g.geoms) == 1:
        g = g.geoms[0]
    wkt = shapely.to_wkt(g, rounding_precision=WKT_DECIMALS, trim=True)
    if not shapely.from_wkt(wkt).is_valid:
        raise ValueError("simplified state polygon is not valid after WKT round trip")
    return wkt


def build(src: Path, dst: Path) -> dict[str, int]:
    """Write the geography resource files.

    Args:
        src: Folder holding ``municipios.csv``, ``estados.csv``, ``brazil-states.geojson``.
        dst: Output folder (created).

    Returns:
        Bytes written per file name.
    """
    dst.mkdir(parents=True, exist_ok=True)
    # utf-8-sig: estados.csv starts with a BOM.
    est = pd.read_csv(src / "estados.csv", encoding="utf-8-sig", dtype={"codigo_uf": int})
    mun = pd.read_csv(src / "municipios.csv", encoding="utf-8-sig",
                      dtype={"codigo_ibge": int, "codigo_uf": int})
    uf_by_code = dict(zip(est["codigo_uf"], est["uf"], strict=True))

    m = pd.DataFrame({
        "ibge_code": mun["codigo_ibge"],
        "name": mun["nome"],
        "name_norm": mun["nome"].map(normalise_name),
        "lat": mun["latitude"].round(5),
        "lon": mun["longitude"].round(5),
        "capital": mun["capital"].astype(int),
        "uf": mun["codigo_uf"].map(uf_by_code),
    })
    if m["uf"].isna().any():
        raise ValueError("municipality with unknown state code")
    m = m.sort_values("ibge_code", kind="stable").reset_index(drop=True)
    m.to_csv(dst / "municipalities.csv", index=False, lineterminator="\n")

    with open(src / "brazil-states.geojson", encoding="utf-8") as fh:
        features = json.load(fh)["features"]
    region_by_uf = dict(zip(est["uf"], est["regiao"], strict=True))
    name_by_uf = dict(zip(est["uf"], est["nome"], strict=True))
    rows = []
    for feat in features:
        uf = feat["properties"]["sigla"]
        rows.append({
            "uf": uf,
            "name": name_by_uf[uf],
            "region": region_by_uf[uf],
            "wkt": clean_state_geometry(shape(feat["geometry"])),
        })
    s = pd.DataFrame(rows).sort_values("uf", kind="stable").reset_index(drop=True)
    if len(s) != 27:
        raise ValueError(f"expected 27 states, got {len(s)}")
    s.to_csv(dst / "states.csv", index=False, lineterminator="\n")

    (dst / "LICENSE-geo.txt").write_text(
        LICENSE_TEXT.format(tol=SIMPLIFY_TOLERANCE, dec=WKT_DECIMALS), encoding="utf-8")

    sizes = {p.name: p.stat().st_size for p in sorted(dst.iterdir()) if p.is_file()}
    total = sum(sizes.values())
    logger.info("wrote %s (%d bytes total): %s", dst, total, sizes)
    if total > MAX_TOTAL_BYTES:
        raise ValueError(f"geo resource is {total} bytes, over the {MAX_TOTAL_BYTES} budget")
    return sizes


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        Process exit code.
    """
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", type=Path, default=DEFAULT_SRC, help="shared brazil data folder")
    p.add_argument("--dst", type=Path, default=DEFAULT_DST, help="resource output folder")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    build(args.src, args.dst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
