"""Camera readers and writers: DROID-SLAM trajectories, SLAHMR ``cameras.npz``, TUM, static.

Formats (``research/slahmr.md`` sections 3.3-3.4):

* DROID-SLAM trajectory: ``(N, 7)`` rows ``tx ty tz qx qy qz qw``, **camera-to-world**, quaternion
  real part **last**, as ``.npy`` or whitespace text. Intrinsics come from an ``intrinsics.txt``
  (``slahmr_opt.inputs.intrinsics``), from values, or SLAHMR's default for the image size.
* TUM text trajectory: ``timestamp tx ty tz qx qy qz qw`` per line, camera-to-world, ``#``
  comments allowed, timestamps strictly increasing (one row per video frame).
* SLAHMR ``cameras.npz``: ``w2c (N, 4, 4)``, optional ``intrins (N, 4)`` ``[fx, fy, cx, cy]``
  (else ``[focal, focal, W/2, H/2]``), ``focal``, ``height``, ``width`` scalars. SLAHMR's random
  translation offset (its ``dataset.py`` L325) is deliberately not reproduced.
* Static camera: identity rotation, zero translation, default intrinsics, ``is_static=True``.

Everything is converted to world-to-camera extrinsics (OpenCV axes): ``R_w2c = R_c2w^T``,
``t_w2c = -R_c2w^T t_c2w``. Quaternion conversions use ``roma`` (real part last, as
DROID's ``[qx, qy, qz, qw]``).
"""

import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from slahmr_opt.errors import InputError
from slahmr_opt.files.checks import (
    MAX_TRANSLATION,
    as_positive_scalar,
    check_finite,
    check_range,
    check_shape,
    check_unit_quaternions,
    load_npy,
    load_npz,
    load_table,
    prepare_output,
    write_atomic,
)
from slahmr_opt.geometry.camera import w2c_to_c2w_poses
from slahmr_opt.geometry.rotations import unitquat_to_rotmat
from slahmr_opt.inputs.intrinsics import (
    IntrinsicsSource,
    check_focal,
    check_image_size,
    rescale_intrinsics,
    resolve_intrinsics,
)
from slahmr_opt.types import Cameras

log = logging.getLogger(__name__)

CAMERAS_NPZ = "cameras.npz"


def read_cameras(
    path: str | Path | None,
    num_frames: int | None = None,
    image_size: tuple[int, int] | None = None,
    intrinsics: IntrinsicsSource | None = None,
) -> Cameras:
    """Read cameras from any supported file, or build a static camera when ``path`` is None.

    Dispatch: a folder -> its ``cameras.npz``; ``.npz`` -> SLAHMR cameras; ``.npy`` -> DROID
    trajectory; text -> DROID trajectory (7 columns) or TUM trajectory (8 columns).

    Args:
        path: camera file or folder; None for a static camera.
        num_frames: frames of a static camera; for a file, the frame count it must have.
        image_size: ``(height, width)`` in pixels, needed when the file does not record it.
        intrinsics: ``intrinsics.txt`` path or ``[fx, fy, cx, cy]`` values (4,) / (T, 4); overrides
            the file's intrinsics. None: the file's, or SLAHMR's default.

    Returns:
        Cameras with (T, 3, 3) ``R_w2c``, (T, 3) ``t_w2c``, (T, 4) ``intrins``, float32.

    Raises:
        InputError: the file is missing, malformed or has the wrong number of frames, or the
            image size is unknown.
    """
    if path is None:
        if num_frames is None:
            raise InputError(None, "a static camera needs num_frames")
        return static_cameras(num_frames, image_size, intrinsics)
    path = Path(path)
    if path.is_dir():
        if not (path / CAMERAS_NPZ).is_file():
            raise InputError(path, f"camera folder has no {CAMERAS_NPZ}")
        path = path / CAMERAS_NPZ
    if path.suffix == ".npz":
        cameras = read_cameras_npz(path, image_size, intrinsics)
    elif path.suffix == ".npy":
        cameras = read_droid_traj(path, image_size, intrinsics)
    else:
        columns = load_table(path, "camera trajectory").shape[1]
        if columns == 7:
            cameras = read_droid_traj(path, image_size, intrinsics)
        elif columns == 8:
            cameras = read_tum_traj(path, image_size, intrinsics)
        else:
            raise InputError(
                path,
                f"trajectory rows have {columns} columns, expected 7 (DROID-SLAM "
                "'tx ty tz qx qy qz qw') or 8 (TUM 'timestamp tx ty tz qx qy qz qw')",
            )
    if num_frames is not None and cameras.num_frames != num_frames:
        raise InputError(path, f"has {cameras.num_frames} camera frames, expected {num_frames}")
    return cameras


def static_cameras(
    num_frames: int,
    image_size: tuple[int, int] | None,
    intrins: IntrinsicsSource | None = None,
) -> Cameras:
    """A camera that does not move: world frame = camera frame (SLAHMR's static option).

    Args:
        num_frames: T.
        image_size: ``(height, width)`` in pixels (required unless ``intrins`` is a file with W H).
        intrins: ``[fx, fy, cx, cy]`` (4,) / (T, 4) or an ``intrinsics.txt``; None: SLAHMR's
            default ``[F, F, W/2, H/2]``, ``F = 0.5 * (H + W)``.

    Returns:
        Cameras with identity rotations, zero translations and ``is_static=True``.
    """
    if not isinstance(num_frames, int) or num_frames < 1:
        raise InputError(None, f"a static camera needs num_frames >= 1, got {num_frames!r}")
    values, size = resolve_intrinsics(intrins, num_frames, image_size, "static camera")
    return Cameras(
        R_w2c=torch.eye(3).expand(num_frames, 3, 3).clone(),
        t_w2c=torch.zeros(num_frames, 3),
        intrins=values,
        image_size=size,
        is_static=True,
    )


def read_droid_traj(
    path: str | Path,
    image_size: tuple[int, int] | None = None,
    intrinsics: IntrinsicsSource | None = None,
) -> Cameras:
    """Read a DROID-SLAM trajectory: (N, 7) camera-to-world ``tx ty tz qx qy qz qw``.

    Args:
        path: ``.npy`` array or whitespace text file.
        image_size: ``(height, width)``, unless ``intrinsics`` is a file with W H columns.
        intrinsics: ``intrinsics.txt`` path or values; None: SLAHMR's default.
    """
    path = Path(path)
    if path.suffix == ".npy":
        poses = load_npy(path, "DROID-SLAM trajectory")
        if poses.dtype.kind not in "iuf":
            raise InputError(path, f"trajectory must be numeric, got dtype {poses.dtype}")
    else:
        poses = load_table(path, "DROID-SLAM trajectory")
    check_shape(poses, ("N", 7), path, "trajectory (tx ty tz qx qy qz qw)", {})
    return _cameras_from_c2w(poses.astype(np.float64), path, image_size, intrinsics)


def read_tum_traj(
    path: str | Path,
    image_size: tuple[int, int] | None = None,
    intrinsics: IntrinsicsSource | None = None,
) -> Cameras:
    """Read a TUM trajectory: ``timestamp tx ty tz qx qy qz qw`` per line, camera-to-world.

    Each line is one video frame, in order; timestamps must increase strictly.
    """
    path = Path(path)
    table = load_table(path, "TUM trajectory")
    check_shape(table, ("N", 8), path, "trajectory (timestamp tx ty tz qx qy qz qw)", {})
    check_finite(table[:, 0], path, "timestamp")
    if np.any(np.diff(table[:, 0]) <= 0):
        row = int(np.argmax(np.diff(table[:, 0]) <= 0)) + 1
        raise InputError(path, f"timestamps must increase strictly (row {row} does not)")
    return _cameras_from_c2w(table[:, 1:], path, image_size, intrinsics)


def c2w_poses_to_w2c(poses: np.ndarray, path: Path) -> tuple[Tensor, Tensor]:
    """Invert camera-to-world ``tx ty tz qx qy qz qw`` poses.

    Args:
        poses: (N, 7) float64.
        path: the file, for messages.

    Returns:
        (N, 3, 3) ``R_w2c`` and (N, 3) ``t_w2c``, float64.
    """
    check_finite(poses, path, "trajectory")
    check_translation(poses[:, :3], path, "trajectory translation (tx ty tz)")
    quat_xyzw = check_unit_quaternions(poses[:, 3:7], path, "quaternion (qx qy qz qw)")
    R_c2w = unitquat_to_rotmat(torch.as_tensor(quat_xyzw, dtype=torch.float64))
    t_c2w = torch.as_tensor(poses[:, :3], dtype=torch.float64)
    R_w2c = R_c2w.transpose(-1, -2)
    t_w2c = -(R_w2c @ t_c2w[..., None])[..., 0]
    return R_w2c, t_w2c


def _cameras_from_c2w(
    poses: np.ndarray,
    path: Path,
    image_size: tuple[int, int] | None,
    intrinsics: IntrinsicsSource | None,
) -> Cameras:
    R_w2c, t_w2c = c2w_poses_to_w2c(poses, path)
    intrins, size = resolve_intrinsics(intrinsics, len(poses), image_size, path)
    log.info("%s: read %d camera poses", path, len(poses))
    return Cameras(R_w2c.float(), t_w2c.float(), intrins, size)


def read_cameras_npz(
    path: str | Path,
    image_size: tuple[int, int] | None = None,
    intrinsics: IntrinsicsSource | None = None,
) -> Cameras:
    """Read SLAHMR's ``cameras.npz`` (``w2c``, ``intrins``, ``focal``, ``height``, ``width``).

    Args:
        path: the ``.npz`` file.
        image_size: ``(height, width)`` of the images; when it differs from the file's size the
            intrinsics are rescaled as SLAHMR does. Needed if the file lacks height/width.
        intrinsics: overrides the file's intrinsics.
    """
    path = Path(path)
    return cameras_from_npz_arrays(load_npz(path, "cameras file"), path, image_size, intrinsics)


def cameras_from_npz_arrays(
    data: dict[str, np.ndarray],
    path: Path | None,
    image_size: tuple[int, int] | None = None,
    intrinsics: IntrinsicsSource | None = None,
) -> Cameras:
    """The cameras of SLAHMR ``cameras.npz`` arrays (``read_cameras_npz``; ``path`` names them
    in messages): also the cameras of arrays made in memory by ``cameras_npz_arrays``, which
    are then exactly the cameras ``write_cameras_npz`` + ``read_cameras_npz`` give."""
    if "w2c" not in data:
        raise InputError(path, f"cameras file has no 'w2c' key (keys: {sorted(data)})")
    w2c = data["w2c"]
    if w2c.dtype.kind not in "iuf":
        raise InputError(path, f"'w2c' must be numeric, got dtype {w2c.dtype}")
    check_shape(w2c, ("N", 4, 4), path, "w2c", {})
    w2c = w2c.astype(np.float64)
    check_finite(w2c, path, "w2c")
    _check_rigid(w2c, path)
    check_translation(w2c[:, :3, 3], path, "w2c translation")
    file_size = None
    if "height" in data and "width" in data:
        file_size = check_image_size(
            (
                as_positive_scalar(data["height"], path, "height"),
                as_positive_scalar(data["width"], path, "width"),
            ),
            path,
        )
    size = image_size if image_size is not None else file_size
    if intrinsics is None and size is not None:
        intrinsics = _npz_intrinsics(data, path, len(w2c), file_size or size)
        if file_size is not None:
            intrinsics = rescale_intrinsics(intrinsics, file_size, size, path)
    intrins, size = resolve_intrinsics(intrinsics, len(w2c), size, path)
    R_w2c = torch.as_tensor(w2c[:, :3, :3], dtype=torch.float32)
    t_w2c = torch.as_tensor(w2c[:, :3, 3], dtype=torch.float32)
    log.info("%s: read %d cameras", path, len(w2c))
    return Cameras(R_w2c, t_w2c, intrins, size)


def _npz_intrinsics(data, path: Path, num_frames: int, size: tuple[int, int]) -> np.ndarray:
    if "intrins" in data:
        intrins = data["intrins"]
        if intrins.dtype.kind not in "iuf":
            raise InputError(path, f"'intrins' must be numeric, got dtype {intrins.dtype}")
        check_shape(intrins, (num_frames, 4), path, "intrins", {})
        intrins = intrins.astype(np.float64)
        check_focal(intrins, path, "intrins")
        return intrins
    if "focal" not in data:
        raise InputError(path, "cameras file has neither 'intrins' nor 'focal'")
    focal = as_positive_scalar(data["focal"], path, "focal")
    height, width = size
    return np.array([[focal, focal, width / 2, height / 2]])


def check_translation(t: np.ndarray, path: Path | None, name: str) -> None:
    """Refuse (N, 3) camera translations with a coordinate beyond ``MAX_TRANSLATION``."""
    check_range(np.abs(t), path, name, high=MAX_TRANSLATION, what="coordinates",
                why="metres, or SLAM units of the same order")  # fmt: skip


def _check_rigid(w2c: np.ndarray, path: Path) -> None:
    """Check (N, 4, 4) world-to-camera matrices: rotation block orthonormal, last row 0 0 0 1."""
    rot = w2c[:, :3, :3]
    ortho = np.abs(rot @ rot.transpose(0, 2, 1) - np.eye(3)).max(axis=(1, 2))
    bad = (ortho > 1e-3) | (np.linalg.det(rot) <= 0)
    bad |= np.abs(w2c[:, 3] - [0, 0, 0, 1]).max(axis=1) > 1e-6
    if bad.any():
        raise InputError(
            path,
            f"'w2c' has {int(bad.sum())} matrices that are not rigid transforms "
            f"(first: frame {int(np.argmax(bad))})",
        )


def write_droid_traj(path: str | Path, cameras: Cameras, overwrite: bool = False) -> Path:
    """Write a DROID-SLAM trajectory: (N, 7) camera-to-world ``tx ty tz qx qy qz qw``, float64.

    ``.npy`` paths get a numpy array, other paths whitespace text. ``t_w2c`` is written as stored
    (SLAM units unless the caller applied ``alpha``); intrinsics go to ``write_intrinsics_txt``.
    """
    path = Path(path)
    poses = w2c_to_c2w_poses(cameras.R_w2c, cameras.t_w2c)
    prepare_output(path, overwrite)
    if path.suffix == ".npy":
        write_atomic(path, lambda f: np.save(f, poses))
    else:
        write_atomic(path, lambda f: np.savetxt(f, poses, fmt="%.10g"))
    return path


def cameras_npz_arrays(cameras: Cameras) -> dict[str, np.ndarray]:
    """SLAHMR's ``cameras.npz`` arrays of ``cameras``: ``w2c`` (N, 4, 4), ``intrins`` (N, 4)
    float32, ``focal`` (mean of fx and fy over frames), ``height``, ``width``."""
    num = cameras.num_frames
    w2c = torch.eye(4, dtype=torch.float64).repeat(num, 1, 1)
    w2c[:, :3, :3] = cameras.R_w2c.detach().double()
    w2c[:, :3, 3] = cameras.t_w2c.detach().double()
    intrins = cameras.intrins.detach().double().numpy()
    height, width = cameras.image_size
    return {
        "w2c": w2c.numpy().astype(np.float32),
        "intrins": intrins.astype(np.float32),
        "focal": np.asarray(intrins[:, :2].mean(), dtype=np.float32),
        "height": np.asarray(height, dtype=np.int64),
        "width": np.asarray(width, dtype=np.int64),
    }


def write_cameras_npz(path: str | Path, cameras: Cameras, overwrite: bool = False) -> Path:
    """Write SLAHMR's ``cameras.npz``: ``w2c`` (N, 4, 4), ``intrins`` (N, 4) float32,
    ``focal`` (mean of fx and fy over frames), ``height``, ``width``.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"{path}: a cameras file must end in .npz")
    arrays = cameras_npz_arrays(cameras)
    prepare_output(path, overwrite)
    write_atomic(path, lambda f: np.savez(f, **arrays))
    return path
