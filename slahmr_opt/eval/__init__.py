"""Scoring: world- and camera-frame metrics with the field's semantics, and camera-trajectory
accuracy. Pure functions over arrays."""
