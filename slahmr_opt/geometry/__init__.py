"""Geometry: projection, alignment. Rotation conversions come from ``roma``."""
