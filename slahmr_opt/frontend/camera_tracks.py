"""Background feature tracks: Shi-Tomasi corners followed by pyramidal Lucas-Kanade flow.

Frames are tracked at a reduced size (``TrackSettings.max_size`` on the long side). People are
masked out before corners are detected and after every flow step, so that a track dies when it
runs into a person. A flow vector is kept only if tracking it back lands within
``fb_threshold`` pixels of where it started (forward-backward check). New corners are added in
every frame away from live tracks, so the features stay spread over the image.
"""

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

log = logging.getLogger(__name__)


@dataclass
class TrackSettings:
    """How background features are detected and tracked."""

    max_size: int = 640
    """Frames are downscaled so that their long side is at most this many pixels."""
    max_features: int = 600
    """Live tracks kept per frame; new corners fill up to this number."""
    min_distance: float = 0.015
    """Minimum distance between corners, as a fraction of the long side."""
    quality: float = 0.005
    """Shi-Tomasi quality level relative to the strongest corner of the frame."""
    fb_threshold: float = 0.7
    """Largest forward-backward flow error in tracking pixels."""
    mask_dilation: float = 0.02
    """Person masks grow by this fraction of the long side (their outlines are rough)."""
    win_size: int = 21
    """Lucas-Kanade window side in tracking pixels."""
    pyramid_levels: int = 3
    """Lucas-Kanade pyramid levels above the full tracking size."""
    relink_frames: int = 15
    """After up to this many blank or blurred frames, tracks resume from the last good frame."""


@dataclass
class Tracks:
    """Feature tracks of a video at tracking resolution.

    Attributes:
        ids: per frame, (n_t,) int64 track ids, increasing.
        points: per frame, (n_t, 2) float64 ``(x, y)`` pixel positions at tracking size.
        scale: tracking pixels per original pixel.
        size: ``(height, width)`` of the tracking frames.
        lost: per frame, True where the frame has tracks but (almost) none of them comes from
            earlier frames: the chain of tracks broke (a cut, or a long blank or blurred stretch).
    """

    ids: list[np.ndarray] = field(default_factory=list)
    points: list[np.ndarray] = field(default_factory=list)
    scale: float = 1.0
    size: tuple[int, int] = (0, 0)
    lost: list[bool] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return len(self.ids)

    def common(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Tracks seen in frames ``i`` and ``j``: ids (n,), points in i (n, 2), points in j."""
        ids, a, b = np.intersect1d(
            self.ids[i], self.ids[j], assume_unique=True, return_indices=True
        )
        return ids, self.points[i][a], self.points[j][b]


def tracking_size(size: tuple[int, int], max_size: int) -> tuple[tuple[int, int], float]:
    """The ``(height, width)`` frames are tracked at and its scale relative to ``size``."""
    height, width = size
    scale = min(1.0, max_size / max(height, width))
    return (round(height * scale), round(width * scale)), scale


def _prepare(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    if grey.shape != size:
        grey = cv2.resize(grey, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return grey


def _free_mask(mask: np.ndarray | None, size: tuple[int, int], dilation: int) -> np.ndarray:
    """uint8 mask (255 = background usable for features) at tracking size."""
    if mask is None:
        return np.full(size, 255, np.uint8)
    person = np.asarray(mask).astype(np.uint8)
    if person.shape != size:
        person = cv2.resize(person, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    if dilation > 0 and person.any():
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilation + 1,) * 2)
        person = cv2.dilate(person, kernel)
    return np.where(person > 0, 0, 255).astype(np.uint8)


def _on_background(points: np.ndarray, free: np.ndarray) -> np.ndarray:
    h, w = free.shape
    x = np.clip(np.round(points[:, 0]).astype(int), 0, w - 1)
    y = np.clip(np.round(points[:, 1]).astype(int), 0, h - 1)
    inside = (points[:, 0] >= 0) & (points[:, 0] <= w - 1)
    inside &= (points[:, 1] >= 0) & (points[:, 1] <= h - 1)
    return inside & (free[y, x] > 0)


class _Tracker:
    def __init__(self, settings: TrackSettings, size: tuple[int, int]):
        self.settings = settings
        self.size = size
        long_side = max(size)
        self.min_distance = max(3.0, settings.min_distance * long_side)
        self.dilation = round(settings.mask_dilation * long_side)
        self.lk = dict(
            winSize=(settings.win_size, settings.win_size),
            maxLevel=settings.pyramid_levels,
            criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01),
        )
        self.prev: np.ndarray | None = None
        self.ids = np.zeros(0, np.int64)
        self.points = np.zeros((0, 2), np.float32)
        self.next_id = 0
        self.good: tuple | None = None  # (grey, ids, points) of the last frame tracked well
        self.since_good = 0

    def step(self, grey: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Track into ``grey``; returns ids, points and how many tracks survived the step."""
        survived = 0
        if self.prev is not None and len(self.points):
            self.ids, self.points = self._flow(self.prev, grey, self.ids, self.points, free)
            survived = len(self.ids)
        healthy = self.settings.max_features // 10
        if (
            survived < healthy
            and self.good is not None
            and self.since_good <= self.settings.relink_frames
        ):
            # after blank or blurred frames, pick up the tracks of the last good frame
            ids, points = self._flow(self.good[0], grey, self.good[1], self.good[2], free)
            if len(ids) > survived:
                self.ids, self.points, survived = ids, points, len(ids)
        self._add_corners(grey, free)
        self.prev = grey
        if self.good is None or survived >= healthy:
            self.good, self.since_good = (grey, self.ids.copy(), self.points.copy()), 0
        else:
            self.since_good += 1
        return self.ids.copy(), self.points.astype(np.float64), survived

    def _flow(self, prev, grey, ids, points, free) -> tuple[np.ndarray, np.ndarray]:
        """Lucas-Kanade from ``prev`` to ``grey`` with the forward-backward check; the tracks
        that survive and stay on the background."""
        if len(points) == 0:
            return ids, points
        p0 = points.reshape(-1, 1, 2)
        p1, ok1, _ = cv2.calcOpticalFlowPyrLK(prev, grey, p0, None, **self.lk)
        back, ok2, _ = cv2.calcOpticalFlowPyrLK(grey, prev, p1, None, **self.lk)
        fb = np.linalg.norm((back - p0).reshape(-1, 2), axis=1)
        keep = (ok1.ravel() == 1) & (ok2.ravel() == 1) & (fb < self.settings.fb_threshold)
        p1 = p1.reshape(-1, 2)
        keep &= _on_background(p1, free)
        return ids[keep], p1[keep]

    def _add_corners(self, grey: np.ndarray, free: np.ndarray) -> None:
        wanted = self.settings.max_features - len(self.points)
        if wanted < self.settings.max_features // 10:
            return
        room = free.copy()
        radius = int(round(self.min_distance))
        for x, y in np.round(self.points).astype(int):
            cv2.circle(room, (int(x), int(y)), radius, 0, -1)
        corners = cv2.goodFeaturesToTrack(
            grey, wanted, self.settings.quality, self.min_distance, mask=room, blockSize=7
        )
        if corners is None:
            return
        corners = corners.reshape(-1, 2)
        new_ids = np.arange(self.next_id, self.next_id + len(corners), dtype=np.int64)
        self.next_id += len(corners)
        self.ids = np.concatenate([self.ids, new_ids])
        self.points = np.concatenate([self.points, corners.astype(np.float32)])


def track_features(
    frames: Iterable[np.ndarray],
    size: tuple[int, int],
    masks: Iterator[np.ndarray | None] | None = None,
    settings: TrackSettings | None = None,
    min_tracks: int = 8,
) -> Tracks:
    """Track background corners through a video.

    Args:
        frames: (H, W, 3) uint8 RGB frames of ``size``.
        size: ``(H, W)`` of the frames.
        masks: per frame, None or a bool person mask of any size (True = person), or None.
        settings: tracking settings; None for the defaults.
        min_tracks: a frame with at least this many tracks but fewer surviving from earlier
            frames is marked lost.

    Returns:
        Tracks at tracking size (``tracking_size(size, settings.max_size)``).
    """
    settings = settings or TrackSettings()
    track_hw, scale = tracking_size(size, settings.max_size)
    tracker = _Tracker(settings, track_hw)
    tracks = Tracks(scale=scale, size=track_hw)
    for index, frame in enumerate(frames):
        if frame.shape[:2] != tuple(size):
            raise ValueError(f"frame {index} is {frame.shape[:2]}, expected {tuple(size)}")
        mask = next(masks, None) if masks is not None else None  # too few: the caller says
        free = _free_mask(mask, track_hw, tracker.dilation)
        ids, points, survived = tracker.step(_prepare(frame, track_hw), free)
        tracks.ids.append(ids)
        tracks.points.append(points)
        tracks.lost.append(index > 0 and survived < min_tracks <= len(ids))
    return tracks
