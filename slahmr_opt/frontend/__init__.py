"""Front end: person tracks and person masks from a raw video, offline on CPU (MediaPipe).

::

    result = detect_people("video.mp4", max_people=8, min_track_len=20)
    write_front_end(result, "out/")  # out/tracks.npz (inputs.tracks), out/masks.npz (masks)
"""

from slahmr_opt.frontend.blazepose import FrontEndUnavailableError
from slahmr_opt.frontend.detect import (
    MASKS_FILE,
    TRACKS_FILE,
    FrontEndResult,
    detect_people,
    write_front_end,
)
from slahmr_opt.frontend.masks import PersonMasks, read_masks_npz, write_masks_npz
from slahmr_opt.frontend.people import TrackerSettings
from slahmr_opt.frontend.video import VideoInfo, probe_video

__all__ = [
    "MASKS_FILE",
    "TRACKS_FILE",
    "FrontEndResult",
    "FrontEndUnavailableError",
    "PersonMasks",
    "TrackerSettings",
    "VideoInfo",
    "detect_people",
    "probe_video",
    "read_masks_npz",
    "write_front_end",
    "write_masks_npz",
]
