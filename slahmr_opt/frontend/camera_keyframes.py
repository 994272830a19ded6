"""Keyframes of the camera odometry: which frames, their observations, pose interpolation."""

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from slahmr_opt.frontend.camera_tracks import Tracks


def select_keyframes(
    tracks: Tracks, flow: float, keep: float, max_gap: int, min_tracks: int
) -> list[int]:
    """Frames where the background moved ``flow`` pixels (tracking size) since the last keyframe,
    kept less than ``keep`` of its tracks, or ``max_gap`` frames passed; plus the first and
    the last frame. Frames with fewer than ``min_tracks`` tracks (blank, blurred) are skipped.
    """
    usable = [f for f in range(tracks.num_frames) if len(tracks.ids[f]) >= min_tracks]
    if not usable:
        return []
    frames = [usable[0]]
    for f in usable[1:]:
        last = frames[-1]
        _, a, b = tracks.common(last, f)
        moved = np.median(np.linalg.norm(b - a, axis=1)) if len(a) else np.inf
        if moved > flow or len(a) < keep * len(tracks.ids[last]) or f - last >= max_gap:
            frames.append(f)
    if frames[-1] != usable[-1]:
        frames.append(usable[-1])
    return frames


@dataclass
class Keyframes:
    """Track observations at the keyframes, in normalized coordinates of the original image.

    Attributes:
        frames: (K,) frame index of each keyframe.
        ids: per keyframe, (n_k,) increasing track ids.
        xn: per keyframe, (n_k, 2) normalized coordinates.
        scale: tracking pixels per original pixel.
        intrins: (4,) ``[fx, fy, cx, cy]`` of the original image.
        rejected: ids of tracks dropped as moving on their own.
    """

    frames: list[int]
    ids: list[np.ndarray]
    xn: list[np.ndarray]
    scale: float
    intrins: np.ndarray
    rejected: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @classmethod
    def from_tracks(cls, tracks: Tracks, intrins: np.ndarray, settings) -> "Keyframes":
        long_side = max(tracks.size)
        frames = select_keyframes(
            tracks,
            settings.keyframe_flow * long_side,
            settings.keyframe_keep,
            settings.max_keyframe_gap,
            settings.min_points,
        )
        kf = cls(frames, [], [], tracks.scale, np.asarray(intrins, np.float64))
        kf.ids = [tracks.ids[f] for f in frames]
        kf.xn = [kf.normalize(tracks.points[f]) for f in frames]
        focal = float(np.mean(kf.intrins[:2])) * tracks.scale
        kf.rejected = kf._epipolar_outliers(settings.outlier_px / focal, settings.min_points)
        kf._first = kf._first_keyframes()
        return kf

    def _epipolar_outliers(self, threshold: float, min_points: int) -> np.ndarray:
        """Drop tracks that leave the epipolar geometry of two consecutive keyframes (things that
        move by themselves); returns their ids."""
        bad = []
        for k in range(1, len(self.frames)):
            ids, xa, xb = self.common(k - 1, k)
            if len(ids) < max(min_points, 8):
                continue
            _, mask = cv2.findEssentialMat(
                xa, xb, np.eye(3), method=cv2.RANSAC, prob=0.999, threshold=threshold
            )
            if mask is not None:
                bad.append(ids[mask.ravel() == 0])
        bad = np.unique(np.concatenate(bad)) if bad else np.zeros(0, np.int64)
        for k in range(len(self.frames)):
            keep = ~np.isin(self.ids[k], bad)
            self.ids[k], self.xn[k] = self.ids[k][keep], self.xn[k][keep]
        return bad

    def normalize(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) tracking pixels -> normalized coordinates of the original camera."""
        fx, fy, cx, cy = self.intrins
        orig = (points + 0.5) / self.scale - 0.5  # pixel centres of a resized image
        return np.stack([(orig[:, 0] - cx) / fx, (orig[:, 1] - cy) / fy], axis=1)

    def common(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Track ids seen in keyframes i and j, and their coordinates in each."""
        ids, a, b = np.intersect1d(
            self.ids[i], self.ids[j], assume_unique=True, return_indices=True
        )
        return ids, self.xn[i][a], self.xn[j][b]

    def _first_keyframes(self) -> tuple[np.ndarray, np.ndarray]:
        ids = np.concatenate(self.ids) if self.ids else np.zeros(0, np.int64)
        kf = (
            np.concatenate([np.full(len(i), k) for k, i in enumerate(self.ids)])
            if self.ids
            else ids
        )
        order = np.lexsort((kf, ids))
        ids, kf = ids[order], kf[order]
        first = np.ones(len(ids), bool)
        first[1:] = ids[1:] != ids[:-1]
        return ids[first], kf[first]

    def first_keyframe(self, ids: np.ndarray) -> np.ndarray:
        """(n,) index of the first keyframe that sees each track id (ids must be seen)."""
        known, first = self._first
        return first[np.searchsorted(known, ids)]

    def point_at(self, k: int, ids: np.ndarray) -> np.ndarray:
        """(n, 2) coordinates in keyframe k of tracks it sees."""
        return self.xn[k][np.searchsorted(self.ids[k], ids)]

    def point_at_each(self, ks: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """(n, 2) coordinates of track ``ids[i]`` in keyframe ``ks[i]``."""
        out = np.zeros((len(ids), 2))
        for k in np.unique(ks):
            sel = ks == k
            out[sel] = self.point_at(int(k), ids[sel])
        return out

    def observations(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All keyframe observations: keyframe (M,), track id (M,), coordinates (M, 2)."""
        cams = np.concatenate([np.full(len(i), k) for k, i in enumerate(self.ids)])
        return cams, np.concatenate(self.ids), np.concatenate(self.xn)


def interpolate_poses(
    frames: list[int], R: np.ndarray, t: np.ndarray, num_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera poses of every frame from keyframe poses: slerp of the rotations, linear
    interpolation of the camera centres; held constant before the first and after the last.

    Args:
        frames: (K,) increasing keyframe indices.
        R: (K, 3, 3); t: (K, 3) keyframe poses.

    Returns:
        (T, 3, 3) and (T, 3).
    """
    query = np.clip(np.arange(num_frames), frames[0], frames[-1])
    centres = -np.einsum("kji,kj->ki", R, t)
    if len(frames) == 1:
        return np.repeat(R, num_frames, 0), np.repeat(t, num_frames, 0)
    rots = Slerp(frames, Rotation.from_matrix(R))(query).as_matrix()
    c = np.stack([np.interp(query, frames, centres[:, i]) for i in range(3)], axis=1)
    return rots, -np.einsum("tij,tj->ti", rots, c)
