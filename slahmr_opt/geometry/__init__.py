"""Geometry: projection, alignment. Rotation conversions come from ``pytorch3d.transforms``."""
