"""What every initializer reader returns (``ToolPerson``) and the helpers the readers share.

Conventions (all readers): OpenCV camera axes (x right, y down, z forward), metres, axis-angle
rotations, video frame indices counted from 0. A person is described by its *pelvis position* in
the tool's camera rather than by the tool's SMPL ``transl``: ``transl`` places the body relative
to the rest-pose pelvis of the tool's body model (``pelvis = transl + J_pelvis(betas)``, since
SMPL-family models rotate about the pelvis and add ``transl`` after posing), and that rest
position differs between SMPL, SMPL-H, SMPL-X and our built-in body by up to ~35 cm. The pelvis
is the point every model agrees on.

``REST_PELVIS`` holds the rest-pose pelvis of each tool's body model at the mean shape. The
tools' shape spaces are not ours (our built-in body is not SMPL; ``initialize_bodies`` starts
betas at zero), so the betas-dependence of the pelvis (a few cm over +-2 sd) is ignored; the
root stage refits the position from the 2D keypoints anyway.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from slahmr_opt.errors import InputError

REST_PELVIS = {
    "smpl": np.array([-0.001795, -0.223333, 0.028219]),
    "smplh": np.array([-0.001795, -0.223333, 0.028219]),
    "smplx": np.array([0.003117, -0.351401, 0.012034]),
}
"""Pelvis joint (J_regressor row 0 applied to the template) of the neutral model at zero betas and
zero pose, metres, in the model's own frame (y up, facing +z). ``smpl``: SMPL_NEUTRAL.pkl (WHAM,
TRAM, TRACE); ``smplh``: SLAHMR's SMPL-H neutral ``model.npz``, whose body template is SMPL's (the
SMPL value is used); ``smplx``: SMPLX_NEUTRAL (GVHMR). The SMPL value is the one public code
hard-codes for the SMPL rest skeleton; the SMPL-X value was not checked against a model file
(none ships here) and is approximate (+-2 cm). An error here shifts the initial bodies by as much,
which the root stage absorbs."""


@dataclass
class ToolPerson:
    """One person estimated by another method, in that method's camera frame.

    Attributes:
        person_id: the tool's name for the person (its track id or file name).
        frames: (N,) int64 video frame indices (0-based), increasing.
        global_orient_c: (N, 3) root orientation in the tool's camera frame, axis-angle.
        body_pose: (N, 21, 3) body joint rotations (SMPL order, pelvis excluded), axis-angle.
        betas: (N, B) the tool's shape coefficients (its own model's shape space).
        pelvis_c: (N, 3) pelvis joint position in the tool's camera frame, metres.
        intrins: (N, 4) ``[fx, fy, cx, cy]`` of the camera the tool assumed, pixels.
        model: the tool's body model (a ``REST_PELVIS`` key), for messages.
    """

    person_id: str
    frames: np.ndarray
    global_orient_c: np.ndarray
    body_pose: np.ndarray
    betas: np.ndarray
    pelvis_c: np.ndarray
    intrins: np.ndarray
    model: str

    def __post_init__(self) -> None:
        n = len(self.frames)
        shapes = {
            "global_orient_c": (n, 3),
            "body_pose": (n, 21, 3),
            "pelvis_c": (n, 3),
            "intrins": (n, 4),
        }
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} {getattr(self, name).shape}, expected {shape}")
        if self.betas.ndim != 2 or len(self.betas) != n:
            raise ValueError(f"betas {self.betas.shape}, expected ({n}, B)")


def to_numpy(value: Any, path: Path, name: str) -> np.ndarray:
    """A float64 or int array from a numpy array, torch tensor, list or scalar."""
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"{name!r} is not an array ({exc})") from None


def float_array(value: Any, path: Path, name: str, shape: tuple) -> np.ndarray:
    """``value`` as float64 with the given shape (``-1`` matches any size); else ``InputError``."""
    array = to_numpy(value, path, name)
    if array.dtype.kind not in "iuf":
        raise InputError(path, f"{name!r} is not numeric (dtype {array.dtype})")
    ok = array.ndim == len(shape) and all(w in (-1, s) for s, w in zip(array.shape, shape))
    if not ok:
        want = "(" + ", ".join("N" if w == -1 else str(w) for w in shape) + ")"
        raise InputError(path, f"{name!r} has shape {array.shape}, expected {want}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise InputError(path, f"{name!r} holds NaN or infinite values")
    return array


def require_keys(data: Any, keys, path: Path, what: str) -> None:
    """``data`` must be a dict holding every key of ``keys``."""
    if not isinstance(data, dict):
        raise InputError(path, f"{what}: expected a dict, found {type(data).__name__}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise InputError(path, f"{what}: missing keys {missing} (has {sorted(map(str, data))})")


def frame_indices(value: Any, path: Path, name: str, n: int) -> np.ndarray:
    """(n,) non-negative int64 frame indices."""
    frames = to_numpy(value, path, name).reshape(-1)
    if len(frames) != n or frames.dtype.kind not in "iuf":
        raise InputError(path, f"{name!r} must be {n} frame indices, got {frames.dtype} "
                         f"{frames.shape}")  # fmt: skip
    if frames.dtype.kind == "f" and not np.all(frames == np.round(frames)):
        raise InputError(path, f"{name!r} holds non-integer frame indices")
    frames = frames.astype(np.int64)
    if (frames < 0).any():
        raise InputError(path, f"{name!r} holds negative frame indices")
    return frames


def rotmat_to_aa(rotmat: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle."""
    flat = rotmat.reshape(-1, 3, 3)
    return Rotation.from_matrix(flat).as_rotvec().reshape(*rotmat.shape[:-2], 3)


def aa_to_rotmat(aa: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices."""
    return Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(*aa.shape[:-1], 3, 3)


def diagonal_intrinsics(image_size: tuple[int, int], n: int) -> np.ndarray:
    """(n, 4) WHAM/GVHMR default camera: focal = image diagonal, centre = image centre."""
    h, w = image_size
    f = float(np.hypot(w, h))
    return np.tile([f, f, w / 2.0, h / 2.0], (n, 1))


def check_frames_increasing(people: list[ToolPerson], path: Path) -> None:
    """Every person's frames must increase (each frame at most once)."""
    for person in people:
        if len(person.frames) > 1 and not np.all(np.diff(person.frames) > 0):
            raise InputError(path, f"person {person.person_id}: frame indices do not increase")
