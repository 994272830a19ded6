"""Person tracks as read from a file, before they meet the cameras: ``TrackData`` and its helpers.

Every track reader builds a ``TrackData``; its ``track_mask`` is always derived from ``vis_mask`` by
``track_mask_from_vis`` (the one place that defines "between the first and the last detection").
Track selection (``select_tracks``) and keypoint clean-up (``clean_keypoints``) follow SLAHMR
(``research/slahmr.md`` section 3.2): confidences below ``min_conf`` become 0, the OpenPose neck is
ignored, and ``"all"`` keeps up to 12 tracks with more than 20 detected frames, longest first.
"""

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor

from slahmr_opt.errors import ConfigError, InputError
from slahmr_opt.files.checks import check_range
from slahmr_opt.types import KEYPOINT_FORMATS, Observations, SMPLGuess

log = logging.getLogger(__name__)

MIN_KEYP_CONF = 0.4
"""SLAHMR's keypoint confidence threshold: lower confidences are set to 0."""
MIN_TRACK_LEN = 20
"""SLAHMR keeps tracks with more than this many detected frames (``"all"``, ``"longest-N"``)."""
MAX_NUM_TRACKS = 12
"""SLAHMR's cap on the number of tracks kept by ``"all"``."""
OP25_NECK = 1
"""OpenPose BODY_25 neck slot: its confidence is always set to 0 (SLAHMR ignores it)."""
NUM_KEYPOINTS = {"coco17": 17, "op25": 25}
KEYPOINT_RANGE = 10
"""Keypoint coordinates may lie up to this many image sizes (``max(H, W)``) from the origin:
detectors extrapolate limbs beyond the frame, but never by ten frames."""
MAX_KEYP_CONF = 1.5
"""Confidences above 1 up to this are clipped to 1 with a warning (heatmap peaks of ViTPose-like
detectors overshoot 1 a little); above it the file is refused. Negative confidences fall below
``min_conf`` and become 0 like any other low one."""

TrackSelection = str | Sequence[str]
"""``"all"``, ``"longest-N"`` or an explicit list of track ids such as ``["001", "003"]``."""


def track_mask_from_vis(vis_mask: Tensor) -> Tensor:
    """Mark the frames between each track's first and last detection (inclusive).

    Args:
        vis_mask: (P, T) bool, frames where each person was detected.

    Returns:
        (P, T) bool; all False for a track that is never detected.
    """
    vis = vis_mask.bool()
    seen_before = vis.cummax(dim=-1).values
    seen_after = vis.flip(-1).cummax(dim=-1).values.flip(-1)
    return seen_before & seen_after


def clean_keypoints(kp2d: Tensor, vis_mask: Tensor, kp_format: str, min_conf: float) -> Tensor:
    """Apply SLAHMR's keypoint rules: low confidences, the neck and undetected frames get 0.

    Args:
        kp2d: (P, T, K, 3) ``[u, v, confidence]``.
        vis_mask: (P, T) bool detections.
        kp_format: ``"coco17"`` or ``"op25"``.
        min_conf: confidences below this become 0.

    Returns:
        (P, T, K, 3) copy with cleaned confidences (pixel coordinates untouched).
    """
    kp2d = kp2d.clone()
    conf = kp2d[..., 2]
    conf[conf < min_conf] = 0.0
    if kp_format == "op25":
        conf[..., OP25_NECK] = 0.0
    conf[~vis_mask.bool()] = 0.0
    return kp2d


#: Integer frame names may spread over at most this many frames per named frame (and always
#: ``MIN_SPAN_LIMIT``): beyond it an outlying name (a stray ``1000000_keypoints.json``) would make
#: a fit of a million mostly empty frames.
MAX_SPAN_PER_FRAME = 20
MIN_SPAN_LIMIT = 10_000


def frame_numbering(names, where) -> tuple[list[int], list[str], bool]:
    """Frame index of each image name, the names of frames ``0..T-1``, and whether the index is
    the video's frame index; the one rule of the PHALP and SLAHMR-folder readers.

    SLAHMR extracts frames with ffmpeg as ``%06d.jpg``, numbered from ``000001``, and row 0 of its
    ``cameras.npz`` (DROID-SLAM over that folder) is the first image: when every name is an
    integer, frame ``000001`` is frame 0 (``index = name - 1``). Names that include ``0`` are
    numbered from 0 (``index = name``; our own front end and older writers). Other names are
    numbered by their sorted position (not video frames).

    Args:
        names: image file stems (``"000012"``); repeats allowed (one per detection).
        where: the file or folder, for messages.

    Raises:
        InputError: two integer names (``"12"``, ``"012"``) name the same frame, or the names
            spread over more than ``MAX_SPAN_PER_FRAME`` frames per name (at least
            ``MIN_SPAN_LIMIT``): the message names the outlying name.
    """
    names = list(names)
    unique = sorted(set(names))
    if unique and all(n.isdigit() for n in unique):
        first = 0 if any(int(n) == 0 for n in unique) else 1
        values = {n: int(n) - first for n in unique}
        if len(set(values.values())) != len(values):
            clash = sorted(unique, key=int)
            raise InputError(where, f"frame names {clash[:6]}... name the same frame twice")
        span = max(values.values()) - min(values.values()) + 1
        if span > max(MIN_SPAN_LIMIT, MAX_SPAN_PER_FRAME * len(unique)):
            ordered = sorted(unique, key=int)
            gaps = [int(b) - int(a) for a, b in zip(ordered[:-1], ordered[1:], strict=True)]
            k = max(range(len(gaps)), key=gaps.__getitem__)
            odd = ordered[k + 1] if k + 1 >= len(ordered) - k - 1 else ordered[k]
            raise InputError(where, f"frame names {ordered[0]}..{ordered[-1]} span {span} frames "
                             f"but only {len(unique)} are present; is {odd!r} a stray file? "
                             "(move it away, or select tracks with data.track_ids)")  # fmt: skip
        widths = {len(n) for n in unique}
        width = widths.pop() if len(widths) == 1 else 0
        frame_names = [f"{t + first:0{width}d}" for t in range(max(values.values()) + 1)]
        return [values[n] for n in names], frame_names, True
    log.warning("%s: frame names are not integers; frames are numbered by sorted name", where)
    rank = {n: t for t, n in enumerate(unique)}
    return [rank[n] for n in names], unique, False


@dataclass
class TrackData:
    """Keypoint tracks of P people over T frames, as stored in one tracks file or folder.

    Frame ``t`` is frame ``t`` of the video when ``absolute_frames`` is True (npz files; track
    folders whose frame names are integers), otherwise the position of the frame name among all
    names seen in the folder.

    Attributes:
        kp2d: (P, T, K, 3) float32 ``[u, v, confidence]`` in pixels; confidence 0 where not
            detected.
        kp_format: keypoint layout, ``"coco17"`` or ``"op25"``.
        vis_mask: (P, T) bool, frames where the person was detected.
        track_ids: P track names.
        fps: frames per second if the file records it, else None.
        bbox: (P, T, 4) float32 ``[x0, y0, w, h]`` boxes in pixels, or None.
        smpl_guess: per-frame SMPL estimates in camera coordinates, or None.
        frame_names: T frame names (image file stems), or None.
        image_size: ``(height, width)`` if the file records it, else None.
        absolute_frames: frame index = video frame index (see above).
        source: the file or folder these tracks were read from (None when built in memory).
        first_frame: the first frame of the shot these tracks come from (PHALP pickles; earlier
            frames hold no detections). A camera file exactly as long as the shot starts there.
        track_mask: (P, T) bool, derived from ``vis_mask``: between first and last detection.
            Not an argument: ``__post_init__`` computes it, so ``dataclasses.replace`` keeps it
            in step with ``vis_mask``.
    """

    kp2d: Tensor
    kp_format: str
    vis_mask: Tensor
    track_ids: list[str]
    fps: float | None = None
    bbox: Tensor | None = None
    smpl_guess: SMPLGuess | None = None
    frame_names: list[str] | None = None
    image_size: tuple[int, int] | None = None
    absolute_frames: bool = True
    source: Path | None = None
    first_frame: int = 0
    track_mask: Tensor = field(init=False)

    def __post_init__(self) -> None:
        if self.kp_format not in KEYPOINT_FORMATS:
            raise ValueError(f"kp_format must be one of {KEYPOINT_FORMATS}, got {self.kp_format!r}")
        num_people, num_frames = self.kp2d.shape[:2]
        if tuple(self.vis_mask.shape) != (num_people, num_frames):
            raise ValueError(
                f"vis_mask {tuple(self.vis_mask.shape)} does not match kp2d "
                f"{tuple(self.kp2d.shape)}"
            )
        if len(self.track_ids) != num_people:
            raise ValueError(f"{len(self.track_ids)} track ids for {num_people} tracks")
        self.vis_mask = self.vis_mask.bool()
        self.track_mask = track_mask_from_vis(self.vis_mask)

    @property
    def num_people(self) -> int:
        return self.kp2d.shape[0]

    @property
    def num_frames(self) -> int:
        return self.kp2d.shape[1]

    def subset(self, index: Sequence[int]) -> "TrackData":
        """Keep the tracks at ``index`` (in that order)."""
        idx = torch.as_tensor(list(index), dtype=torch.long)
        guess = self.smpl_guess
        if guess is not None:
            guess = replace(guess, **{f: getattr(guess, f)[idx] for f in _GUESS_FIELDS})
        return replace(
            self,
            kp2d=self.kp2d[idx],
            vis_mask=self.vis_mask[idx],
            track_ids=[self.track_ids[i] for i in idx.tolist()],
            bbox=None if self.bbox is None else self.bbox[idx],
            smpl_guess=guess,
        )

    def crop(self, start: int, stop: int) -> "TrackData":
        """Keep frames ``start:stop`` of every track."""
        guess = self.smpl_guess
        if guess is not None:
            guess = replace(guess, **{f: getattr(guess, f)[:, start:stop] for f in _GUESS_FIELDS})
        return replace(
            self,
            kp2d=self.kp2d[:, start:stop],
            vis_mask=self.vis_mask[:, start:stop],
            track_ids=list(self.track_ids),
            bbox=None if self.bbox is None else self.bbox[:, start:stop],
            smpl_guess=guess,
            frame_names=None if self.frame_names is None else self.frame_names[start:stop],
        )


_GUESS_FIELDS = ("global_orient_c", "body_pose", "betas", "transl_c", "valid")


def select_tracks(
    tracks: TrackData,
    selection: TrackSelection = "all",
    min_track_len: int = MIN_TRACK_LEN,
    max_tracks: int = MAX_NUM_TRACKS,
) -> TrackData:
    """Choose tracks the way SLAHMR does.

    Args:
        tracks: every track of the file.
        selection: ``"all"``: up to ``max_tracks`` tracks with more than ``min_track_len``
            detected frames, longest first; ``"longest-N"``: the N longest of those;
            a list of ids: exactly these, in this order (``min_track_len`` does not apply).
        min_track_len: tracks need more than this many detected frames (``"all"``, ``"longest-N"``).
        max_tracks: cap for ``"all"``.

    Returns:
        The selected tracks.

    Raises:
        ConfigError: ``selection`` is malformed.
        InputError: an id is not in the file, or no track is long enough.
    """
    counts = tracks.vis_mask.sum(dim=1).tolist()
    if isinstance(selection, str):
        match = re.fullmatch(r"longest-(\d+)", selection.strip())
        if selection.strip() == "all":
            limit = max_tracks
        elif match and int(match.group(1)) > 0:
            limit = int(match.group(1))
        else:
            raise ConfigError(
                f"track selection {selection!r}: expected 'all', 'longest-N' (N >= 1) or a list "
                "of track ids"
            )
        order = sorted(range(tracks.num_people), key=lambda i: -counts[i])
        keep = [i for i in order if counts[i] > min_track_len][:limit]
        if not keep:
            raise InputError(
                tracks.source,
                f"no track has more than min_track_len={min_track_len} detected frames "
                f"(longest: {max(counts, default=0)}); lower min_track_len or list track ids",
            )
    else:
        keep = [_find_track(tracks, tid) for tid in selection]
        if not keep:
            raise ConfigError("track selection is an empty list")
        if len(set(keep)) != len(keep):
            raise ConfigError(f"track selection {list(selection)} names a track twice")
    log.info(
        "%s: selected tracks %s of %d",
        tracks.source,
        [tracks.track_ids[i] for i in keep],
        tracks.num_people,
    )
    return tracks.subset(keep)


def _find_track(tracks: TrackData, tid: str | int) -> int:
    for i, name in enumerate(tracks.track_ids):
        if name == str(tid) or (isinstance(tid, int) and name.isdigit() and int(name) == tid):
            return i
    raise InputError(tracks.source, f"track {tid!r} not found; tracks: {tracks.track_ids}")


def check_confidences(tracks: TrackData) -> TrackData:
    """Refuse confidences above ``MAX_KEYP_CONF``; clip those in ``(1, MAX_KEYP_CONF]`` to 1.

    Raises:
        InputError: a confidence is above ``MAX_KEYP_CONF`` (names the track and frame).
    """
    conf = tracks.kp2d[..., 2]
    if not bool((conf > 1).any()):
        return tracks
    where = _worst(tracks, conf)
    check_range(conf.double().numpy(), tracks.source, f"keypoints ({where})", high=MAX_KEYP_CONF,
                what="confidences", why="confidences are in [0, 1]; up to "
                f"{MAX_KEYP_CONF:g} is clipped to 1")  # fmt: skip
    log.warning("%s: %d keypoint confidences above 1 (up to %.3g, %s) are clipped to 1",
                tracks.source, int((conf > 1).sum()), float(conf.max()), where)  # fmt: skip
    kp2d = tracks.kp2d.clone()
    kp2d[..., 2] = kp2d[..., 2].clamp(max=1.0)
    return replace(tracks, kp2d=kp2d, track_ids=list(tracks.track_ids))


def check_keypoint_range(tracks: TrackData, image_size: tuple[int, int]) -> None:
    """Refuse keypoint coordinates further than ``KEYPOINT_RANGE`` image sizes from the origin.

    Keypoints of confidence 0 are not looked at: nothing uses them, and trackers (and the
    benchmark's projection of joints that are behind the camera) leave any value there.

    Args:
        tracks: the tracks (any frames).
        image_size: ``(height, width)`` of the images the keypoints live in.

    Raises:
        InputError: a coordinate is out of range (names the file, track, frame and the limit).
    """
    extent = tracks.kp2d[..., :2].abs().amax(dim=-1)  # (P, T, K)
    extent = extent.where(tracks.kp2d[..., 2] > 0, 0.0)
    limit = KEYPOINT_RANGE * max(image_size)
    if bool((extent > limit).any()):
        check_range(extent.double().numpy(), tracks.source, f"keypoints ({_worst(tracks, extent)})",
                    high=limit, what="coordinates", unit=" px",
                    why=f"{KEYPOINT_RANGE} x the image size {max(image_size)}")  # fmt: skip


def _worst(tracks: TrackData, values: Tensor) -> str:
    """``track <id>, frame <name>`` of the largest of (P, T, K) ``values``."""
    flat = int(values.flatten().argmax())
    p, t = divmod(flat // values.shape[-1], values.shape[1])
    frame = tracks.frame_names[t] if tracks.frame_names is not None else str(t)
    return f"track {tracks.track_ids[p]}, frame {frame}"


def check_tracks_detected(tracks: TrackData) -> None:
    """Raise ``InputError`` for any track without a single detected frame."""
    empty = [
        tid
        for tid, row in zip(tracks.track_ids, tracks.vis_mask, strict=True)
        if not bool(row.any())
    ]
    if empty:
        raise InputError(tracks.source, f"tracks {empty} have no detected (visible) frames")


__all__ = [
    "MAX_NUM_TRACKS",
    "MIN_KEYP_CONF",
    "MIN_TRACK_LEN",
    "NUM_KEYPOINTS",
    "TrackData",
    "TrackSelection",
    "check_confidences",
    "check_keypoint_range",
    "check_tracks_detected",
    "clean_keypoints",
    "select_tracks",
    "track_mask_from_vis",
    "tracks_from_observations",
]


def tracks_from_observations(obs: Observations) -> TrackData:
    """The ``TrackData`` a tracker would have written for ``obs`` (to save synthetic scenes in
    the formats users' files come in)."""
    return TrackData(
        kp2d=obs.kp2d,
        kp_format=obs.kp_format,
        vis_mask=obs.vis_mask,
        track_ids=list(obs.track_ids),
        fps=obs.fps,
        bbox=obs.bbox,
        smpl_guess=obs.smpl_guess,
        image_size=obs.cameras.image_size,
    )
