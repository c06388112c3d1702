"""Geometry: CRS conversion, the synthetic county, GeoJSON export. No HTTP, no ORM."""
