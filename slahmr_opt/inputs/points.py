"""Background scene points (SLAM map points): readers for ``.npz``, ``.npy``, ``.ply`` and
DROID-SLAM reconstruction folders, and the ``.npz`` writer.

Points live in the world frame and the SLAM units of the cameras they come with (the same unknown
scale as ``Cameras.t_w2c``). Formats (``docs/formats.md``, "Scene points"):

* ``.npz`` (this project's format, version 1): ``points`` (N, 3) float, optional ``frames`` (N, 2)
  int (first and last video frame observing each point, inclusive), optional ``version`` = 1.
* ``.npy``: one (N, 3) float array; no frames.
* ``.ply``: the ``x``, ``y``, ``z`` properties of the ``vertex`` element (ascii or binary).
* A DROID-SLAM reconstruction folder, as its ``demo.py --reconstruction_path`` writes it with
  ``np.save``: ``tstamps.npy`` (K,) frame index of each keyframe, ``poses.npy`` (K, 7)
  **world-to-camera** ``tx ty tz qx qy qz qw`` (lietorch ``SE3`` data, the inverse of the saved
  trajectory), ``intrinsics.npy`` (K, 4) ``[fx, fy, cx, cy]`` at 1/8 of the image resolution,
  ``disps.npy`` (K, H, W) inverse depth (``disps_up``: at image resolution; a 1/8-resolution
  ``disps`` is recognised too), ``images.npy`` (ignored). Keyframe pixels are back-projected.
"""

import logging
from pathlib import Path

import numpy as np
import torch

from slahmr_opt.errors import InputError
from slahmr_opt.files.checks import (
    check_finite,
    check_positive,
    check_shape,
    load_npy,
    load_npz,
    prepare_output,
    require_file,
    write_atomic,
)
from slahmr_opt.inputs.cameras import c2w_poses_to_w2c
from slahmr_opt.types import ScenePoints

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MIN_POINTS = 3
DEFAULT_MAX_POINTS = 20000
DROID_FILES = ("tstamps.npy", "disps.npy", "poses.npy", "intrinsics.npy")
# DROID-SLAM's own viewer hides pixels whose disparity is below half the keyframe's mean: far,
# weakly constrained depths (sky, distant background). We drop the same ones.
DROID_MIN_DISP_FRACTION = 0.5
DROID_GRID = 8  # DROID-SLAM's feature grid: intrinsics are stored at 1/8 of the image resolution
_SAMPLE_SEED = 0


def read_points(
    path: str | Path,
    num_frames: int | None = None,
    *,
    max_points: int = DEFAULT_MAX_POINTS,
    frame_stride: int = 1,
) -> ScenePoints:
    """Read background scene points from any supported file or a DROID-SLAM folder.

    Dispatch: a folder -> DROID-SLAM reconstruction; ``.npz`` -> this project's format;
    ``.npy`` -> (N, 3) array; ``.ply`` -> point cloud.

    Args:
        path: the file or folder.
        num_frames: T, when known: every frame index must lie in [0, T).
        max_points: DROID-SLAM folders only: at most this many back-projected points are kept.
        frame_stride: DROID-SLAM folders only: video frames per DROID-SLAM time step (its
            ``--stride``); a keyframe's video frame is ``tstamp * frame_stride``.

    Returns:
        ScenePoints with (N, 3) float64 ``points`` in SLAM units and (N, 2) int64 ``frames`` or
        None.

    Raises:
        InputError: the file is missing, malformed, or has fewer than 3 points or frames
            outside the video.
    """
    path = Path(path)
    if path.is_dir():
        return read_droid_reconstruction(path, num_frames, max_points, frame_stride)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return read_points_npz(path, num_frames)
    if suffix == ".npy":
        return read_points_npy(path)
    if suffix == ".ply":
        return read_points_ply(path)
    require_file(path, "scene points file")
    raise InputError(
        path,
        f"unknown scene points format '{path.suffix}' (expected .npz, .npy, .ply or a "
        "DROID-SLAM reconstruction folder)",
    )


def read_points_npz(path: str | Path, num_frames: int | None = None) -> ScenePoints:
    """Read this project's points ``.npz``: ``points`` (N, 3), optional ``frames`` (N, 2)."""
    path = Path(path)
    return points_from_npz_arrays(load_npz(path, "scene points file"), path, num_frames)


def points_from_npz_arrays(
    data: dict[str, np.ndarray], path: Path | None, num_frames: int | None = None
) -> ScenePoints:
    """The points of points ``.npz`` arrays (``read_points_npz``; ``path`` names them in
    messages): also of arrays made in memory by ``points_npz_arrays``, which are then exactly
    the points ``write_points_npz`` + ``read_points_npz`` give."""
    if "points" not in data:
        raise InputError(path, f"scene points file has no 'points' key (keys: {sorted(data)})")
    if "version" in data:
        version = data["version"]
        if version.size != 1 or version.dtype.kind not in "iu" or version.flat[0] != FORMAT_VERSION:
            raise InputError(
                path, f"version {version} is not supported (this reader knows {FORMAT_VERSION})"
            )
    dims: dict[str, int] = {}
    points = _check_points(data["points"], path, "points", dims)
    frames = None
    if "frames" in data:
        frames = _check_frames(data["frames"], path, num_frames, dims)
    log.info("%s: read %d scene points", path, len(points))
    return _scene_points(points, frames)


def read_points_npy(path: str | Path) -> ScenePoints:
    """Read one (N, 3) float ``.npy`` array of points (no frames)."""
    path = Path(path)
    points = _check_points(load_npy(path, "scene points array"), path, "points", {})
    log.info("%s: read %d scene points", path, len(points))
    return _scene_points(points, None)


def read_points_ply(path: str | Path) -> ScenePoints:
    """Read the ``x``, ``y``, ``z`` vertex properties of a PLY point cloud (ascii or binary)."""
    path = require_file(path, "PLY point cloud")
    try:
        from plyfile import PlyData, PlyParseError
    except ImportError:
        raise InputError(
            path, "reading .ply files needs the Python package plyfile (pip install 'plyfile>=1.1')"
        ) from None
    try:
        with open(path, "rb") as f:
            ply = PlyData.read(f, mmap=False)
    except (OSError, ValueError, TypeError, EOFError, PlyParseError) as exc:
        raise InputError(path, f"is not a readable PLY file ({exc})") from None
    elements = {element.name: element for element in ply.elements}
    if "vertex" not in elements:
        raise InputError(path, f"PLY file has no 'vertex' element (elements: {sorted(elements)})")
    vertex = elements["vertex"].data
    names = vertex.dtype.names or ()
    missing = [axis for axis in "xyz" if axis not in names]
    if missing:
        raise InputError(path, f"PLY vertices lack properties {missing} (have {list(names)})")
    columns = [vertex[axis] for axis in "xyz"]
    if any(column.dtype.kind not in "iuf" for column in columns):
        raise InputError(path, "PLY vertex properties x, y, z must be scalar numbers")
    points = _check_points(np.stack(columns, axis=-1), path, "vertex x y z", {})
    log.info("%s: read %d scene points", path, len(points))
    return _scene_points(points, None)


def read_droid_reconstruction(
    folder: str | Path,
    num_frames: int | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    frame_stride: int = 1,
) -> ScenePoints:
    """Back-project a DROID-SLAM reconstruction folder's keyframe depths into world points.

    Pixels with a non-finite or non-positive disparity, or a disparity below half the
    keyframe's mean (far, weakly constrained depths), are skipped; then at most ``max_points``
    points are kept, drawn without replacement by a fixed-seed generator (deterministic).
    Each point's frames are its keyframe's video frame, ``tstamp * frame_stride``, in both
    columns: the frame whose depth map produced it.

    Args:
        folder: the folder with ``tstamps.npy``, ``disps.npy``, ``poses.npy``,
            ``intrinsics.npy``.
        num_frames: T, when known: keyframe frames must lie in [0, T).
        max_points: upper bound on the points returned, >= 3.
        frame_stride: video frames per DROID-SLAM time step.

    Returns:
        ScenePoints in DROID-SLAM's world frame and units (those of its trajectory).
    """
    folder = Path(folder)
    if max_points < MIN_POINTS or frame_stride < 1:
        raise ValueError(f"need max_points >= {MIN_POINTS} and frame_stride >= 1")
    arrays = _load_droid_arrays(folder)
    tstamps, disps, poses, intrins = (arrays[name] for name in DROID_FILES)
    frame = _keyframe_frames(tstamps, folder / "tstamps.npy", num_frames, frame_stride)
    # c2w_poses_to_w2c inverts a pose: given DROID's world-to-camera rows it yields camera-to-world.
    R_c2w, t_c2w = (x.numpy() for x in c2w_poses_to_w2c(poses, folder / "poses.npy"))
    grid_intrins = intrins * _disparity_grid_scale(disps.shape, intrins, folder)
    masks = [_usable_disparities(disp) for disp in disps]
    counts = np.array([int(mask.sum()) for mask in masks])
    total = int(counts.sum())
    if total < MIN_POINTS:
        raise InputError(folder, f"only {total} usable disparities in disps.npy, need 3 points")
    keep = np.arange(total)
    if total > max_points:
        rng = np.random.default_rng(_SAMPLE_SEED)
        keep = np.sort(rng.choice(total, size=max_points, replace=False))
    starts = np.concatenate([[0], np.cumsum(counts)])
    points, frames = [], []
    for k, mask in enumerate(masks):
        local = keep[(keep >= starts[k]) & (keep < starts[k + 1])] - starts[k]
        pixels = np.flatnonzero(mask)[local]
        points_c = _backproject(disps[k], pixels, grid_intrins[k])
        points.append(points_c @ R_c2w[k].T + t_c2w[k])
        frames.append(np.full((len(pixels), 2), frame[k], dtype=np.int64))
    log.info(
        "%s: back-projected %d of %d usable pixels of %d keyframes",
        folder,
        len(keep),
        total,
        len(tstamps),
    )
    return _scene_points(np.concatenate(points), np.concatenate(frames))


def write_points_npz(path: str | Path, points: ScenePoints, overwrite: bool = False) -> Path:
    """Write this project's points ``.npz``: ``points`` (N, 3) float64, ``frames`` (N, 2) int64
    when known, ``version`` = 1.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"{path}: a scene points file must end in .npz")
    arrays = points_npz_arrays(points)
    if arrays["points"].ndim != 2 or arrays["points"].shape[1] != 3:
        raise ValueError(f"{path}: points must be (N, 3), got {tuple(arrays['points'].shape)}")
    prepare_output(path, overwrite)
    write_atomic(path, lambda f: np.savez(f, **arrays))
    return path


def points_npz_arrays(points: ScenePoints) -> dict[str, np.ndarray]:
    """The points ``.npz`` arrays of ``points``: ``points`` (N, 3) float64, ``frames`` (N, 2)
    int64 when known, ``version`` = 1."""
    arrays = {
        "points": points.points.detach().cpu().double().numpy(),
        "version": np.asarray(FORMAT_VERSION, dtype=np.int64),
    }
    if points.frames is not None:
        arrays["frames"] = points.frames.detach().cpu().numpy().astype(np.int64)
    return arrays


def _scene_points(points: np.ndarray, frames: np.ndarray | None) -> ScenePoints:
    return ScenePoints(
        points=torch.as_tensor(points, dtype=torch.float64),
        frames=None if frames is None else torch.as_tensor(frames, dtype=torch.int64),
    )


def _check_points(array: np.ndarray, path: Path, name: str, dims: dict[str, int]) -> np.ndarray:
    """(N, 3) finite numbers with N >= 3, as float64."""
    if array.dtype.kind not in "iuf":
        raise InputError(path, f"'{name}' must be numeric, got dtype {array.dtype}")
    check_shape(array, ("N", 3), path, name, dims)
    if len(array) < MIN_POINTS:
        raise InputError(path, f"has {len(array)} scene points, need at least {MIN_POINTS}")
    points = array.astype(np.float64)
    check_finite(points, path, name)
    return points


def _check_frames(
    array: np.ndarray, path: Path, num_frames: int | None, dims: dict[str, int]
) -> np.ndarray:
    """(N, 2) integer ``[first, last]`` frames with 0 <= first <= last (< T when given)."""
    frames = _as_frame_indices(array, path, "frames")
    check_shape(frames, ("N", 2), path, "frames", dims)
    if (frames < 0).any():
        row = int(np.argmax((frames < 0).any(axis=1)))
        raise InputError(path, f"'frames' must be >= 0, row {row} is {frames[row].tolist()}")
    backwards = frames[:, 1] < frames[:, 0]
    if backwards.any():
        row = int(np.argmax(backwards))
        raise InputError(path, f"'frames' row {row} ends before it starts ({frames[row].tolist()})")
    if num_frames is not None and (frames[:, 1] >= num_frames).any():
        row = int(np.argmax(frames[:, 1] >= num_frames))
        raise InputError(
            path,
            f"'frames' row {row} ({frames[row].tolist()}) lies outside the video's "
            f"{num_frames} frames",
        )
    return frames


def _as_frame_indices(array: np.ndarray, path: Path, name: str) -> np.ndarray:
    """Integers, or floats that hold integers (DROID-SLAM stores tstamps as float32), as int64."""
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind != "f":
        raise InputError(path, f"'{name}' must hold integers, got dtype {array.dtype}")
    check_finite(array, path, name)
    rounded = np.round(array)
    if np.abs(array - rounded).max(initial=0.0) > 1e-3:
        raise InputError(path, f"'{name}' must hold whole frame numbers")
    return rounded.astype(np.int64)


def _load_droid_arrays(folder: Path) -> dict[str, np.ndarray]:
    """Load and cross-check the four arrays of a DROID-SLAM reconstruction folder."""
    missing = [name for name in DROID_FILES if not (folder / name).is_file()]
    if missing:
        raise InputError(
            folder,
            f"DROID-SLAM reconstruction folder lacks {', '.join(missing)} (expects "
            f"{', '.join(DROID_FILES)})",
        )
    arrays = {name: load_npy(folder / name, f"DROID-SLAM {name}") for name in DROID_FILES}
    patterns = {
        "tstamps.npy": ("K",),
        "disps.npy": ("K", "H", "W"),
        "poses.npy": ("K", 7),
        "intrinsics.npy": ("K", 4),
    }
    dims: dict[str, int] = {}
    for name, pattern in patterns.items():
        array = arrays[name]
        if array.dtype.kind not in "iuf":
            raise InputError(folder / name, f"must be numeric, got dtype {array.dtype}")
        # The folder names the file, so that a mismatch says which one disagrees.
        check_shape(array, pattern, folder / name, name.removesuffix(".npy"), dims)
        # disps stay in their float type (often large); the rest becomes float64.
        if name != "tstamps.npy" and not (name == "disps.npy" and array.dtype.kind == "f"):
            arrays[name] = array.astype(np.float64)
    if dims["K"] == 0:
        raise InputError(folder / "tstamps.npy", "the reconstruction has no keyframes")
    check_finite(arrays["poses.npy"], folder / "poses.npy", "poses")
    check_finite(arrays["intrinsics.npy"], folder / "intrinsics.npy", "intrinsics")
    check_positive(arrays["intrinsics.npy"][:, :2], folder / "intrinsics.npy", "focal length")
    return arrays


def _keyframe_frames(
    tstamps: np.ndarray, path: Path, num_frames: int | None, frame_stride: int
) -> np.ndarray:
    """(K,) video frame of each keyframe: ``tstamp * frame_stride``, inside [0, T)."""
    frames = _as_frame_indices(tstamps, path, "tstamps") * frame_stride
    if (frames < 0).any():
        raise InputError(path, f"tstamps must be >= 0, found {int(frames.min())}")
    if num_frames is not None and (frames >= num_frames).any():
        raise InputError(
            path,
            f"keyframe at video frame {int(frames.max())} lies outside the video's "
            f"{num_frames} frames (frame_stride {frame_stride})",
        )
    return frames


def _disparity_grid_scale(shape: tuple[int, ...], intrins: np.ndarray, folder: Path) -> int:
    """8 when the disparities are at image resolution (``disps_up``), 1 when at the 1/8 grid
    of the stored intrinsics, told apart by where the principal point falls.

    ``shape`` is (K, H, W). At the disparity grid's resolution the principal point lies near
    the centre, so ``(W / 2cx) * (H / 2cy)`` is near 1 for a 1/8 grid and near 8^2 for
    full-resolution maps.
    """
    height, width = shape[1:]
    cx, cy = np.median(intrins[:, 2]), np.median(intrins[:, 3])
    if cx <= 0 or cy <= 0:
        raise InputError(
            folder / "intrinsics.npy", f"principal point ({cx:g}, {cy:g}) must be positive"
        )
    ratio = np.sqrt(width / (2 * cx) * height / (2 * cy))
    if not 1 / 3 <= ratio <= 3 * DROID_GRID:
        raise InputError(
            folder,
            f"intrinsics.npy's principal point ({cx:g}, {cy:g}) fits disps.npy maps of "
            f"{height}x{width} at neither 1/8 nor full resolution",
        )
    return DROID_GRID if ratio > np.sqrt(DROID_GRID) else 1


def _usable_disparities(disp: np.ndarray) -> np.ndarray:
    """(H, W) bool: finite, positive, and at least half the keyframe's mean usable disparity."""
    valid = np.isfinite(disp) & (disp > 0)
    if not valid.any():
        return valid
    return valid & (disp >= DROID_MIN_DISP_FRACTION * disp[valid].mean())


def _backproject(disp: np.ndarray, pixels: np.ndarray, intrins: np.ndarray) -> np.ndarray:
    """(M, 3) camera-frame points of flat pixel indices of an (H, W) inverse-depth map.

    ``intrins`` is ``[fx, fy, cx, cy]`` at the map's resolution, pixel centres at integers
    (DROID-SLAM's ``iproj``).
    """
    fx, fy, cx, cy = intrins
    rows, cols = np.divmod(pixels, disp.shape[1])
    depth = 1.0 / disp.reshape(-1)[pixels].astype(np.float64)
    return np.stack([(cols - cx) / fx * depth, (rows - cy) / fy * depth, depth], axis=-1)
