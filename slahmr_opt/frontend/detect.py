"""The front end: a video in, person tracks (``tracks.npz``) and person masks (``masks.npz``) out.

``detect_people`` decodes the video once (``video.VideoFrames``), follows every person with
BlazePose (``people.PeopleTracker``), converts landmarks to op25 keypoints
(``keypoints.landmarks_to_op25``) and keeps the tracks seen on more than ``min_track_len``
frames (SLAHMR's rule, as ``inputs.track_data.select_tracks`` applies it). ``write_front_end``
writes ``tracks.npz`` (``slahmr_opt.inputs.tracks``) and ``masks.npz`` (``frontend.masks``).
"""

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from slahmr_opt.errors import InputError
from slahmr_opt.frontend.keypoints import landmarks_to_op25
from slahmr_opt.frontend.masks import PersonMasks, mask_grid_shape, write_masks_npz
from slahmr_opt.frontend.people import PeopleTracker, Track, TrackerSettings
from slahmr_opt.frontend.video import MAX_BAD_FRACTION, VideoFrames
from slahmr_opt.inputs.track_data import MIN_TRACK_LEN, TrackData
from slahmr_opt.inputs.tracks import write_tracks_npz

log = logging.getLogger(__name__)

TRACKS_FILE = "tracks.npz"
MASKS_FILE = "masks.npz"
MASK_SCALE = 0.25
"""Default mask cells per image pixel (a quarter of the frame size each way)."""


@dataclass
class FrontEndResult:
    """What the front end found in a video.

    Attributes:
        tracks: the kept tracks, op25 keypoints (confidence = BlazePose visibility), boxes,
            ``fps``, ``image_size`` and frame names ``"000000"...``; frame t = video frame t.
        masks: (T, h, w) bool union of the people's segmentations (``frontend.masks``).
        mask_scale: mask cells per image pixel.
        fps: frames per second of the video.
        image_size: ``(H, W)`` of the frames, pixels.
        timings: seconds spent decoding (``decode``), following tracks (``track``), searching
            for people (``search``), in all (``total``), and ``frames_per_second``.
        dropped: ids of tracks seen on too few frames -> their number of detected frames.
        bad_frames: frames that did not decode (nobody detected there).
    """

    tracks: TrackData
    masks: np.ndarray
    mask_scale: float
    fps: float
    image_size: tuple[int, int]
    timings: dict[str, float] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    bad_frames: list[int] = field(default_factory=list)

    @property
    def person_masks(self) -> PersonMasks:
        return PersonMasks(self.masks, self.mask_scale, self.image_size)


def detect_people(
    video_path: str | Path,
    max_people: int = 8,
    min_track_len: int = MIN_TRACK_LEN,
    max_frames: int | None = None,
    progress: bool = True,
    settings: TrackerSettings | None = None,
    mask_scale: float = MASK_SCALE,
    max_bad_fraction: float = MAX_BAD_FRACTION,
) -> FrontEndResult:
    """Find and follow the people of a video; 2D keypoints, boxes and masks per frame.

    Args:
        video_path: any video ffmpeg decodes.
        max_people: at most this many people tracked at once (overrides ``settings``).
        min_track_len: keep tracks detected on more than this many frames.
        max_frames: read only the first ``max_frames`` frames (None: all).
        progress: show a progress bar over frames.
        settings: search and tracking settings (defaults: ``TrackerSettings()``).
        mask_scale: mask cells per image pixel, in (0, 1].
        max_bad_fraction: refuse the video when more frames than this share fail to decode.

    Returns:
        The tracks, masks and timings; ``T`` = frames decoded.

    Raises:
        InputError: not a video, too many bad frames, nobody found, or no track long enough
            (the message lists the tracks and their lengths).
        FrontEndUnavailableError: mediapipe is not installed.
    """
    if not 0 < mask_scale <= 1:
        raise ValueError(f"mask_scale must be in (0, 1], got {mask_scale}")
    settings = replace(settings or TrackerSettings(), max_people=max_people)
    start = time.perf_counter()
    with VideoFrames(video_path, max_frames, max_bad_fraction) as video:
        info = video.info
        tracker = PeopleTracker(info.size, settings, mask_scale)
        grid_shape = mask_grid_shape(info.size, mask_scale)
        masks = []
        total = (
            info.num_frames
            if max_frames is None
            else min(max_frames, info.num_frames or max_frames)
        )
        try:
            for t, frame in tqdm(video, total=total or None, disable=not progress, unit="frame",
                                 desc="people"):  # fmt: skip
                grid = np.zeros(grid_shape, dtype=bool)
                tracker.step(t, frame, grid)
                masks.append(grid)
        finally:
            tracker.close()
        bad_frames = list(video.bad_frames)
    elapsed = time.perf_counter() - start
    num_frames = len(masks)
    if num_frames == 0:
        raise InputError(video_path, "no frames could be decoded")
    timings = dict(tracker.timings, total=elapsed)
    timings["decode"] = elapsed - timings["track"] - timings["search"]
    timings["frames_per_second"] = num_frames / elapsed
    tracks, dropped = _tracks_from(tracker.tracks, num_frames, info.size, min_track_len, video_path)
    tracks = replace(tracks, fps=info.fps, source=Path(video_path))
    log.info(
        "%s: %d frames, %d tracks kept %s, %.1f frames/s",
        video_path,
        num_frames,
        tracks.num_people,
        dict(zip(tracks.track_ids, tracks.vis_mask.sum(1).tolist(), strict=True)),
        timings["frames_per_second"],
    )
    return FrontEndResult(
        tracks, np.stack(masks), mask_scale, info.fps, info.size, timings, dropped, bad_frames
    )


def _tracks_from(
    tracks: list[Track],
    num_frames: int,
    image_size: tuple[int, int],
    min_track_len: int,
    video_path: str | Path,
) -> tuple[TrackData, dict[str, int]]:
    """(P, T) arrays of the tracks seen on more than ``min_track_len`` frames."""
    if not tracks:
        raise InputError(
            video_path,
            f"no person found in any of its {num_frames} frames (MediaPipe BlazePose needs a "
            "person about 40 pixels tall or more, mostly in view)",
        )
    lengths = {f"{tr.track_id:03d}": len(tr.detections) for tr in tracks}
    keep = [tr for tr in tracks if len(tr.detections) > min_track_len]
    dropped = {f"{tr.track_id:03d}": len(tr.detections) for tr in tracks if tr not in keep}
    if not keep:
        raise InputError(
            video_path,
            f"no person was tracked on more than min_track_len={min_track_len} frames "
            f"(detected frames per track: {lengths})",
        )
    if dropped:
        log.info("dropped %d short tracks (detected frames, need > %d): %s",
                 len(dropped), min_track_len, dropped)  # fmt: skip
    height, width = image_size
    kp2d = np.zeros((len(keep), num_frames, 25, 3))
    bbox = np.zeros((len(keep), num_frames, 4))
    vis = np.zeros((len(keep), num_frames), dtype=bool)
    for p, track in enumerate(keep):
        frames = sorted(track.detections)
        marks = np.stack([track.detections[t].landmarks for t in frames])
        kp2d[p, frames] = landmarks_to_op25(marks, image_size)
        boxes = np.stack([track.detections[t].box for t in frames])
        low = np.clip(boxes[:, :2], 0, [width, height])
        high = np.clip(boxes[:, :2] + boxes[:, 2:], 0, [width, height])
        bbox[p, frames] = np.concatenate([low, high - low], axis=1)
        vis[p, frames] = True
    data = TrackData(
        kp2d=torch.as_tensor(kp2d, dtype=torch.float32),
        kp_format="op25",
        vis_mask=torch.as_tensor(vis),
        track_ids=[f"{tr.track_id:03d}" for tr in keep],
        bbox=torch.as_tensor(bbox, dtype=torch.float32),
        frame_names=[f"{t:06d}" for t in range(num_frames)],
        image_size=image_size,
    )
    return data, dropped


def write_front_end(
    result: FrontEndResult, out_dir: str | Path, overwrite: bool = False
) -> tuple[Path, Path]:
    """Write ``tracks.npz`` and ``masks.npz`` into ``out_dir`` (made if missing).

    Returns:
        The two paths.

    Raises:
        FileExistsError: a file exists and ``overwrite`` is False.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tracks_path = write_tracks_npz(out_dir / TRACKS_FILE, result.tracks, overwrite=overwrite)
    masks_path = write_masks_npz(out_dir / MASKS_FILE, result.person_masks, overwrite=overwrite)
    return tracks_path, masks_path


__all__ = ["FrontEndResult", "detect_people", "write_front_end"]
