"""Several people through a video with single-person BlazePose: search, crop, track.

BlazePose finds and follows one person. Here each track owns a video-mode ``BlazePose`` that
runs on a square crop around the track's predicted box (so mediapipe's own tracking keeps the
identity), and a static ``BlazePose`` searches for new people every ``detect_every`` frames:

1. Track: for every live track, crop around its box predicted by constant velocity from its last
   detection (the crop grows while the person is missed), run its BlazePose, and accept the
   person only if the box stays near the prediction (IoU or centre distance): a model that
   jumped to someone else is reset instead.
2. De-duplicate: two tracks on one person (box IoU above ``duplicate_iou``) keep the older one.
3. End every track unseen for more than ``max_gap`` frames (``tentative_gap`` for a track not yet
   seen on ``confirm_frames`` frames: most false finds are never found again).
4. Search (frame 0 and every ``detect_every`` frames, while fewer than ``max_people`` tracks
   live): grey out every live track's box, then run the detector on the whole frame and on a
   ``tiles x tiles`` grid of overlapping squares (small people are found in tiles); each person
   found is greyed out in turn and searched for again. A person becomes a new track when its
   shoulders and hips are visible enough, its box is tall enough (pixels, and for its width),
   and it does not overlap a live track.

The segmentation of every accepted person is pasted into the frame's mask grid
(``masks.paste_segmentation``).
"""

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from slahmr_opt.frontend.blazepose import PAD_VALUE, BlazePose, PoseOutput, SquareCrop
from slahmr_opt.frontend.keypoints import MP_NAMES
from slahmr_opt.frontend.masks import paste_segmentation

log = logging.getLogger(__name__)

TORSO = tuple(
    MP_NAMES.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")
)


@dataclass
class TrackerSettings:
    """How people are searched for and followed."""

    max_people: int = 8
    """At most this many people are tracked at once (each costs one BlazePose run a frame)."""
    detect_every: int = 5
    """Search for new people on frame 0 and every this many frames."""
    max_gap: int = 15
    """A track unseen for more than this many frames ends; a person seen later is a new track."""
    tiles: int = 3
    """Besides the whole frame, search a ``tiles x tiles`` grid of squares (0: whole frame only)."""
    tile_overlap: float = 0.25
    """Overlap of neighbouring search tiles, as a fraction of the tile side."""
    input_size: int = 384
    """Crops are resized to this square (pixels) before BlazePose."""
    crop_scale: float = 1.7
    """Track crop side / the larger side of the person's box."""
    min_detection_confidence: float = 0.5
    """BlazePose detector threshold."""
    min_tracking_confidence: float = 0.5
    """BlazePose landmark-presence threshold while tracking."""
    min_torso_visibility: float = 0.6
    """A new person needs this mean visibility of shoulders and hips."""
    min_height: float = 40.0
    """A new person's box must be at least this tall, pixels."""
    min_aspect: float = 0.7
    """A new person's box must be at least this tall for its width (height / width): lying
    skeletons found by the search are mostly bags and chairs."""
    confirm_frames: int = 3
    """A track with fewer detections than this is tentative: it ends after
    ``tentative_gap`` unseen frames instead of ``max_gap``."""
    tentative_gap: int = 2
    """Unseen frames that end a tentative track."""
    max_search_per_region: int = 3
    """People looked for in one search region before moving to the next."""
    duplicate_iou: float = 0.5
    """Two tracks whose boxes overlap more than this follow one person: the younger stops."""
    match_iou: float = 0.2
    """A tracked person must overlap its predicted box by this IoU (or stay close by)."""

    def __post_init__(self) -> None:
        for name in ("max_people", "detect_every", "input_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrackerSettings.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_gap < 0 or self.tiles < 0:
            raise ValueError(f"max_gap and tiles must be >= 0, got {self.max_gap}, {self.tiles}")


def person_box(landmarks: np.ndarray) -> np.ndarray:
    """``[x0, y0, w, h]`` around 33 landmarks (pixels), with room for the top of the head."""
    low, high = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
    w, h = high - low
    pad = 0.05 * max(w, h)
    top = 0.1 * h + pad  # the highest landmarks are the eyes
    return np.array([low[0] - pad, low[1] - top, w + 2 * pad, h + top + pad])


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``[x0, y0, w, h]`` boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _overlap_of(a: np.ndarray, b: np.ndarray) -> float:
    """Share of box ``a``'s area inside box ``b``."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / max(a[2] * a[3], 1e-9)


def search_tiles(image_size: tuple[int, int], tiles: int, overlap: float) -> list[SquareCrop]:
    """The whole frame, then a ``tiles x tiles`` grid of overlapping squares covering it."""
    regions = [SquareCrop.whole(image_size)]
    if tiles <= 0:
        return regions
    height, width = image_size
    side = max(height, width) / (tiles - (tiles - 1) * overlap)
    side = min(side, min(height, width)) if tiles > 1 else side
    for y in np.linspace(0, max(height - side, 0), tiles):
        for x in np.linspace(0, max(width - side, 0), tiles):
            regions.append(SquareCrop(int(round(x)), int(round(y)), int(round(side))))
    return regions


@dataclass
class Detection:
    """A person in one frame: (33, 3) ``[u, v, visibility]`` landmarks and its box."""

    landmarks: np.ndarray
    box: np.ndarray


@dataclass(eq=False)  # hashed by identity: one object per person
class Track:
    """One person followed through the video; ``detections`` maps frame -> ``Detection``."""

    track_id: int
    detections: dict[int, Detection] = field(default_factory=dict)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    pose: BlazePose | None = None

    @property
    def last_frame(self) -> int:
        return max(self.detections)

    def predicted_box(self, t: int) -> np.ndarray:
        """The box expected at frame ``t``: the last one moved at the track's velocity."""
        box = self.detections[self.last_frame].box.copy()
        box[:2] += self.velocity * (t - self.last_frame)
        return box

    def add(self, t: int, detection: Detection) -> None:
        if self.detections and t - self.last_frame == 1:
            step = _center(detection.box) - _center(self.detections[t - 1].box)
            self.velocity = 0.5 * self.velocity + 0.5 * step
        self.detections[t] = detection


def _center(box: np.ndarray) -> np.ndarray:
    return box[:2] + 0.5 * box[2:]


class PeopleTracker:
    """Finds and follows people frame by frame; call ``step`` for frames 0, 1, 2, ... in order.

    Args:
        image_size: ``(H, W)`` of the frames.
        settings: search and tracking settings.
        mask_scale: mask cells per image pixel of the grids ``step`` returns.
    """

    def __init__(self, image_size: tuple[int, int], settings: TrackerSettings, mask_scale: float):
        self.image_size = image_size
        self.settings = settings
        self.mask_scale = mask_scale
        self.tracks: list[Track] = []
        self.live: list[Track] = []
        self._regions = search_tiles(image_size, settings.tiles, settings.tile_overlap)
        self._finder = self._new_pose(video=False)
        self.timings = {"track": 0.0, "search": 0.0}

    def _new_pose(self, video: bool) -> BlazePose:
        s = self.settings
        return BlazePose(video, s.input_size, s.min_detection_confidence, s.min_tracking_confidence)

    def step(self, t: int, frame: np.ndarray | None, grid: np.ndarray) -> None:
        """Process frame ``t`` (None: undecodable, nobody seen) and OR its people into ``grid``."""
        if frame is not None:
            start = time.perf_counter()
            found = self._follow(t, frame)
            for track, out in found.items():
                track.add(t, Detection(out.landmarks, person_box(out.landmarks)))
                paste_segmentation(grid, out.segmentation, out.crop, self.mask_scale)
            self.timings["track"] += time.perf_counter() - start
        self._end_lost(t)
        if frame is not None and t % self.settings.detect_every == 0:
            start = time.perf_counter()
            self._search(t, frame, grid)
            self.timings["search"] += time.perf_counter() - start

    def _follow(self, t: int, frame: np.ndarray) -> dict[Track, PoseOutput]:
        s = self.settings
        found: dict[Track, PoseOutput] = {}
        predicted_boxes = {track: track.predicted_box(t) for track in self.live}
        for track in self.live:
            predicted = predicted_boxes[track]
            missed = t - track.last_frame - 1
            side = s.crop_scale * max(predicted[2:]) * min(1.0 + 0.1 * missed, 1.5)
            center = _center(predicted)
            crop = SquareCrop.around(center[0], center[1], side)
            others = [box for other, box in predicted_boxes.items() if other is not track]
            image = _hide_others(frame, crop, predicted, others)
            out = track.pose.run(image, crop)
            if out is None:
                continue
            box = person_box(out.landmarks)
            close = np.linalg.norm(_center(box) - center) < 0.5 * max(predicted[2:])
            if box_iou(box, predicted) >= s.match_iou or close:
                found[track] = out
            else:
                log.debug("frame %d: track %d jumped to another person (%s, expected %s); reset",
                          t, track.track_id, np.round(box), np.round(predicted))  # fmt: skip
                self._reset(track)
        return self._drop_duplicates(t, found)

    def _drop_duplicates(self, t: int, found: dict[Track, PoseOutput]) -> dict[Track, PoseOutput]:
        boxes = {track: person_box(out.landmarks) for track, out in found.items()}
        order = sorted(found, key=lambda track: track.track_id)
        for i, older in enumerate(order):
            for younger in order[i + 1 :]:
                if older in found and younger in found:
                    if box_iou(boxes[older], boxes[younger]) > self.settings.duplicate_iou:
                        log.debug("frame %d: tracks %d and %d on one person", t,
                                  older.track_id, younger.track_id)  # fmt: skip
                        del found[younger]
                        self._reset(younger)
        return found

    def _reset(self, track: Track) -> None:
        track.pose.close()
        track.pose = self._new_pose(video=True)

    def _end_lost(self, t: int) -> None:
        s = self.settings

        def allowed_gap(track: Track) -> int:
            return s.max_gap if len(track.detections) >= s.confirm_frames else s.tentative_gap

        for track in [tr for tr in self.live if t - tr.last_frame > allowed_gap(tr)]:
            log.debug("frame %d: track %d ends (last seen %d)", t, track.track_id, track.last_frame)
            track.pose.close()
            track.pose = None
            self.live.remove(track)

    def _search(self, t: int, frame: np.ndarray, grid: np.ndarray) -> None:
        s = self.settings
        if len(self.live) >= s.max_people:
            return
        occupied = [
            tr.detections[t].box if t in tr.detections else tr.predicted_box(t) for tr in self.live
        ]
        masked = frame.copy()
        for box in occupied:
            _grey_out(masked, box, 1.1)
        for region in self._regions:
            for _ in range(s.max_search_per_region):
                out = self._finder.run(masked, region)
                if out is None:
                    break
                box = person_box(out.landmarks)
                _grey_out(masked, box, 1.0)
                if not self._acceptable(out, box, occupied):
                    continue
                track = Track(len(self.tracks), pose=self._new_pose(video=True))
                track.add(t, Detection(out.landmarks, box))
                paste_segmentation(grid, out.segmentation, out.crop, self.mask_scale)
                self.tracks.append(track)
                self.live.append(track)
                occupied.append(box)
                log.debug("frame %d: new track %d at %s", t, track.track_id, np.round(box))
                if len(self.live) >= s.max_people:
                    return

    def _acceptable(self, out: PoseOutput, box: np.ndarray, occupied: list[np.ndarray]) -> bool:
        s = self.settings
        if out.landmarks[TORSO, 2].mean() < s.min_torso_visibility or box[3] < s.min_height:
            return False
        if box[3] < s.min_aspect * box[2]:
            return False
        return all(
            _overlap_of(box, other) < 0.5 and box_iou(box, other) < 0.3 for other in occupied
        )

    def close(self) -> None:
        """Release every BlazePose (tracks keep their detections)."""
        for track in self.live:
            track.pose.close()
            track.pose = None
        self.live = []
        if self._finder is not None:
            self._finder.close()
            self._finder = None


def _hide_others(
    frame: np.ndarray, crop: SquareCrop, own: np.ndarray, others: list[np.ndarray]
) -> np.ndarray:
    """``frame`` with the other people's boxes inside ``crop`` greyed out, except where they
    overlap the own box ``own`` (so BlazePose cannot jump to someone already tracked)."""
    square = np.array([crop.x0, crop.y0, crop.side, crop.side], dtype=np.float64)
    inside = [box for box in others if _overlap_of(box, square) > 0]
    if not inside:
        return frame
    image = frame.copy()
    for box in inside:
        _grey_out(image, box, 1.0)
    x0, y0 = (int(max(v, 0)) for v in own[:2])
    x1, y1 = (int(max(v, 0)) for v in own[:2] + own[2:])
    image[y0:y1, x0:x1] = frame[y0:y1, x0:x1]
    return image


def _grey_out(image: np.ndarray, box: np.ndarray, grow: float) -> None:
    """Grey out ``box`` (``[x0, y0, w, h]``, scaled by ``grow`` about its centre), in place."""
    center, half = _center(box), 0.5 * grow * box[2:]
    height, width = image.shape[:2]
    x0, y0 = (int(max(v, 0)) for v in center - half)
    x1, y1 = int(min(center[0] + half[0], width)), int(min(center[1] + half[1], height))
    if x1 > x0 and y1 > y0:
        image[y0:y1, x0:x1] = PAD_VALUE


__all__ = ["Detection", "PeopleTracker", "Track", "TrackerSettings", "box_iou", "person_box"]
