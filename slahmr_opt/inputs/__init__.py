"""Readers (and matching writers) that turn input files into ``Observations``.

Formats are documented in ``docs/formats.md``. Entry point: ``load_observations``.
"""

from slahmr_opt.inputs.cameras import (
    read_cameras,
    static_cameras,
    write_cameras_npz,
    write_droid_traj,
)
from slahmr_opt.inputs.intrinsics import write_intrinsics_txt
from slahmr_opt.inputs.observations import load_observations
from slahmr_opt.inputs.track_data import TrackData, select_tracks
from slahmr_opt.inputs.tracks import read_tracks, write_track_dirs, write_tracks_npz

__all__ = [
    "TrackData",
    "load_observations",
    "read_cameras",
    "read_tracks",
    "select_tracks",
    "static_cameras",
    "write_cameras_npz",
    "write_droid_traj",
    "write_intrinsics_txt",
    "write_track_dirs",
    "write_tracks_npz",
]
