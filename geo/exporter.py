"""Write grid features to GeoPackage (GeoJSON is streamed by the CLI itself).

Geometry goes over as WKB straight from PostGIS, so coordinates are exact doubles:
an export re-imported gives the same polygons bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.raw

FIELDS = ("code", "name", "level", "chain", "parent_code", "floor_from", "floor_to")
LAYER = "node"


def write_gpkg(rows: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """Rows with FIELDS and `wkb` (WGS-84); returns the number of features written."""
    rows = list(rows)
    geometry = np.array([bytes(r["wkb"]) if r["wkb"] is not None else None for r in rows], dtype=object)
    ints = ("floor_from", "floor_to")
    # Integer columns cannot hold None in numpy; the mask writes NULL instead.
    field_data = [
        np.array([r[f] if r[f] is not None else 0 for r in rows], dtype=np.int32) if f in ints
        else np.array([r[f] for r in rows], dtype=object)
        for f in FIELDS
    ]  # fmt: skip
    mask = [np.array([r[f] is None for r in rows], dtype=bool) if f in ints else None for f in FIELDS]
    pyogrio.raw.write(
        str(path), geometry, field_data, list(FIELDS), field_mask=mask, layer=LAYER, driver="GPKG",
        geometry_type="MultiPolygon", crs="EPSG:4326",
    )  # fmt: skip
    return len(rows)
