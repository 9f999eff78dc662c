"""Spatial features on Apache Sedona: CRS, clipping, joins, grids, hot spots, clusters."""
