"""The camera of a result as a TUM trajectory, and as lines to draw (path and frustums)."""

from pathlib import Path

import numpy as np
import torch

from slahmr_opt.files.checks import prepare_output, write_atomic
from slahmr_opt.geometry.camera import w2c_to_c2w_poses
from slahmr_opt.io.bodies import camera_arrays, intrinsics
from slahmr_opt.types import Cameras, Result


def tum_timestamps(result: Result) -> np.ndarray:
    """(T,) seconds of each result frame in the video: ``(frame_offset + t) / fps``."""
    return (result.frame_offset + np.arange(result.num_frames)) / result.fps


def write_tum_traj(
    path: str | Path, timestamps: np.ndarray, cameras: Cameras, overwrite: bool = False
) -> Path:
    """Write a TUM trajectory (``inputs.cameras.read_tum_traj``'s format, also evo's ``tum``): a
    ``#`` header, then ``timestamp tx ty tz qx qy qz qw`` per frame, camera-to-world, quaternion
    real part last.

    Args:
        path: the text file to write.
        timestamps: (N,) seconds, strictly increasing.
        cameras: N cameras; ``t_w2c`` is written as stored (apply ``alpha`` first for metres).
        overwrite: replace an existing file.
    """
    path = Path(path)
    timestamps = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    if timestamps.shape != (cameras.num_frames,) or np.any(np.diff(timestamps) <= 0):
        raise ValueError(
            f"{path}: need {cameras.num_frames} strictly increasing timestamps, got "
            f"shape {timestamps.shape}"
        )
    rows = np.concatenate([timestamps[:, None], w2c_to_c2w_poses(cameras.R_w2c, cameras.t_w2c)], 1)
    prepare_output(path, overwrite)
    header = "timestamp tx ty tz qx qy qz qw (camera-to-world)"
    write_atomic(path, lambda f: np.savetxt(f, rows, fmt=["%.6f"] + ["%.9f"] * 7, header=header))
    return path


def export_tum(result: Result, path: str | Path, overwrite: bool = False) -> Path:
    """Write the camera trajectory, camera-to-world in the result's world frame, metres.

    One line ``timestamp tx ty tz qx qy qz qw`` per result frame (``tum_timestamps``), readable
    by ``slahmr_opt.inputs.cameras.read_tum_traj`` and by evo (``evo_traj tum PATH``).
    """
    R_w2c, t_w2c = camera_arrays(result)
    cams = Cameras(
        R_w2c=torch.as_tensor(R_w2c),
        t_w2c=torch.as_tensor(t_w2c),
        intrins=torch.as_tensor(intrinsics(result)),
        image_size=result.cameras.image_size,
    )
    return write_tum_traj(path, tum_timestamps(result), cams, overwrite=overwrite)


def camera_path_points(centres: np.ndarray, min_step: float = 1e-6) -> np.ndarray:
    """(N, 3) camera centres ``centres`` (T, 3) without consecutive repeats (a still camera
    gives one point)."""
    keep = np.ones(len(centres), dtype=bool)
    keep[1:] = np.linalg.norm(np.diff(centres, axis=0), axis=1) > min_step
    return centres[keep]


def frustum_frames(num_frames: int, max_frustums: int) -> np.ndarray:
    """Frames that get a frustum: evenly spread, first and last included, at most
    ``max_frustums``."""
    if max_frustums <= 0:
        return np.zeros(0, dtype=np.int64)
    count = min(num_frames, max_frustums)
    return np.unique(np.round(np.linspace(0, num_frames - 1, count)).astype(np.int64))


def frustum_segments(
    R_c2w: np.ndarray,
    centres: np.ndarray,
    intrins: np.ndarray,
    image_size: tuple[int, int],
    depth: float = 0.2,
) -> np.ndarray:
    """Line segments of camera frustums (pyramids: apex at the centre, image plane at ``depth``).

    Args:
        R_c2w: (N, 3, 3) camera-to-world rotations (OpenCV camera axes: x right, y down).
        centres: (N, 3) camera centres.
        intrins: (N, 4) ``[fx, fy, cx, cy]`` pixels.
        image_size: ``(height, width)`` pixels.
        depth: distance of the drawn image plane from the centre, metres.
    Returns:
        (N * 9, 2, 3) segments: four edges from the apex, the image rectangle, and a tick from
        the top edge's middle upwards so that "up" can be told apart.
    """
    height, width = image_size
    u = np.array([0.0, width, width, 0.0])
    v = np.array([0.0, 0.0, height, height])
    fx, fy, cx, cy = (intrins[:, k : k + 1] for k in range(4))
    corners_c = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u - cx)], -1) * depth
    top_mid = corners_c[:, :2].mean(1)
    tick = top_mid.copy()
    tick[:, 1] -= 0.15 * depth * height / fy[:, 0]
    corners = np.einsum("nij,nkj->nki", R_c2w, corners_c) + centres[:, None]
    top_mid = np.einsum("nij,nj->ni", R_c2w, top_mid) + centres
    tick = np.einsum("nij,nj->ni", R_c2w, tick) + centres
    apex = np.broadcast_to(centres[:, None], corners.shape)
    sides = np.stack([apex, corners], 2)  # (N, 4, 2, 3)
    rim = np.stack([corners, np.roll(corners, -1, axis=1)], 2)  # (N, 4, 2, 3)
    up = np.stack([top_mid, tick], 1)[:, None]  # (N, 1, 2, 3)
    return np.concatenate([sides, rim, up], 1).reshape(-1, 2, 3)
