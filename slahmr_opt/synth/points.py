"""A SLAM-like map of a synthetic scene: sparse background points with depth noise and outliers.

The scene around the filmed people is a textured ground plane, a few boxes and two walls at
several depths. A point enters the map when the camera sees it (in front, within ``MAX_DEPTH``,
inside the image) in ``MIN_VIEWS`` frames or more; the map keeps about ``per_frame`` points in
view per frame, like the front end's corner tracks. Each point is triangulated with a relative
depth error (``depth_noise``) along the ray of the frame that first saw it, some are gross
outliers, and all are written in that frame's SLAM camera, so that the map drifts with the SLAM
trajectory as a real one does.
"""

import numpy as np
import torch

from slahmr_opt.types import ScenePoints

#: Farthest point a camera keeps, metres.
MAX_DEPTH = 40.0
#: Frames that must see a point.
MIN_VIEWS = 3


def _scene(centre: np.ndarray, extent: float, floor_y: float, rng: np.random.Generator):
    """(N, 3) candidate points: ground, boxes and walls around ``centre`` (3,), metres."""
    ground = rng.uniform(-extent, extent, size=(12000, 2)) + centre[[0, 2]]
    parts = [np.stack([ground[:, 0], np.full(len(ground), floor_y), ground[:, 1]], 1)]
    for _ in range(6):  # boxes standing on the floor, 3-15 m away
        angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(3.0, 15.0)
        size = rng.uniform(0.5, 3.0, size=3)
        box = rng.uniform(-0.5, 0.5, size=(400, 3))
        face = rng.integers(0, 3, size=400)
        box[np.arange(400), face] = np.sign(box[np.arange(400), face]) * 0.5
        box = box * size + [0.0, size[1] / 2, 0.0]
        offset = [dist * np.cos(angle), floor_y, dist * np.sin(angle)]
        parts.append(box + centre * [1, 0, 1] + offset)
    for _ in range(2):  # walls 10-20 m away, 4 m tall
        angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(10.0, 20.0)
        normal = np.array([np.cos(angle), 0.0, np.sin(angle)])
        along = np.array([-normal[2], 0.0, normal[0]])
        u, h = rng.uniform(-15, 15, size=(1500, 1)), rng.uniform(0, 4, size=(1500, 1))
        base = centre * [1, 0, 1] + dist * normal + [0.0, floor_y, 0.0]
        parts.append(base + u * along + h * [0.0, 1.0, 0.0])
    return np.concatenate(parts)


def slam_points(
    R_true: np.ndarray,
    t_true: np.ndarray,
    R_slam: np.ndarray,
    t_slam: np.ndarray,
    alpha_true: float,
    intrins: np.ndarray,
    image_size: tuple[int, int],
    centre: np.ndarray,
    floor_y: float,
    rng: np.random.Generator,
    per_frame: int = 300,
    depth_noise: float = 0.02,
    outliers: float = 0.03,
) -> ScenePoints:
    """The map of a scene filmed by true metric cameras ``R_true, t_true`` (T, 3, 3), (T, 3) and
    reconstructed in the SLAM cameras ``R_slam, t_slam`` (units of ``1 / alpha_true`` metres).

    Args:
        intrins: (T, 4) ``[fx, fy, cx, cy]``; image_size: ``(height, width)``.
        centre: (3,) middle of the filmed people's path; floor_y: height of their floor.
        per_frame: points kept in view per frame (on average).
        depth_noise: relative depth error of a triangulated point (std).
        outliers: fraction of points placed at a wrong depth (0.6-1.6 times the true one).
    """
    extent = 25.0 + float(np.linalg.norm(t_true.std(0)))
    world = _scene(centre, extent, floor_y, rng)
    cam = np.einsum("tij,nj->tni", R_true, world) + t_true[:, None]  # (T, N, 3)
    z = cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = intrins[:, None, 0] * cam[..., 0] / z + intrins[:, None, 2]
        v = intrins[:, None, 1] * cam[..., 1] / z + intrins[:, None, 3]
    H, W = image_size
    seen = (z > 0.5) & (z < MAX_DEPTH) & (u >= 0) & (u < W) & (v >= 0) & (v < H)
    keep = seen.sum(0) >= MIN_VIEWS
    mean_in_view = seen[:, keep].sum(0).sum() / len(R_true)
    keep &= rng.uniform(size=len(world)) < per_frame / max(mean_in_view, 1.0)
    seen, world = seen[:, keep], world[keep]
    first = seen.argmax(0)
    last = len(R_true) - 1 - seen[::-1].argmax(0)
    ray = cam[first, np.flatnonzero(keep)]  # metric, camera of the first view
    factor = 1.0 + depth_noise * rng.normal(size=len(world))
    wrong = rng.uniform(size=len(world)) < outliers
    factor[wrong] = rng.uniform(0.6, 1.6, size=int(wrong.sum()))
    ray = ray * factor[:, None] / alpha_true
    slam = np.einsum("nji,nj->ni", R_slam[first], ray - t_slam[first])
    return ScenePoints(torch.from_numpy(slam), torch.from_numpy(np.stack([first, last], 1)))
