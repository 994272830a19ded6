"""TRAM's ``results/<seq>/`` folder (``hps/hps_track_*.npy`` + ``camera.npy``) -> ``ToolPerson``s.

Layout (yufu-wang/tram):

* ``scripts/estimate_camera.py``: ``np.save(f"{seq_folder}/camera.npy", camera)`` with
  ``camera = {"pred_cam_R": (T, 3, 3), "pred_cam_T": (T, 3), "img_focal": f, "img_center": (2,)}``
  (numpy; ``pred_cam_*`` camera-to-world, metric; ``img_focal`` a scalar from
  ``calibrate_intrinsics``). Later versions add ``world_cam_R``/``world_cam_T`` and
  ``spec_focal``; only the intrinsics are used here.
* ``scripts/estimate_humans.py``: tracks sorted by length, then for track k
  ``np.save(f"{hps_folder}/hps_track_{k}.npy", results)`` with ``results`` the dict of torch
  tensors from ``HMR_VIMO.inference`` (``lib/models/hmr_vimo.py``): ``pred_cam (N, 3)``,
  ``pred_pose (N, 144)`` (6D), ``pred_shape (N, 10)``, ``pred_rotmat (N, 24, 3, 3)``,
  ``pred_trans (N, 1, 3)``, ``frame (N,)`` (video frame indices).

``pred_trans`` is the SMPL ``transl`` in the OpenCV camera frame of ``img_focal``/``img_center``:
``lib/pipeline/visualization.py`` poses ``SMPL(global_orient=pred_rotmat[:, [0]],
body_pose=pred_rotmat[:, 1:], betas=pred_shape, transl=pred_trans.squeeze())`` (SMPL neutral,
``lib/models/smpl.py``) and maps it to the world with ``pred_cam_R @ v + pred_cam_T``. The
rotation matrices are used (``pred_pose`` is the same rotations in 6D).
"""

from pathlib import Path

import numpy as np

from slahmr_opt.errors import InputError
from slahmr_opt.files.safe_pickle import load_npy_object
from slahmr_opt.inputs.initializers.common import (
    REST_PELVIS,
    ToolPerson,
    float_array,
    frame_indices,
    require_keys,
    rotmat_to_aa,
    to_numpy,
)

HPS_KEYS = ("pred_rotmat", "pred_shape", "pred_trans", "frame")


def tram_folder(path: str | Path) -> Path:
    """The ``results/<seq>`` folder from the folder itself, its ``hps`` folder or a track file."""
    path = Path(path)
    if path.is_file():
        path = path.parent
    if path.name == "hps" and not (path / "camera.npy").exists():
        path = path.parent
    if not path.is_dir():
        raise InputError(path, "TRAM results folder not found")
    return path


def _intrinsics(camera_path: Path) -> tuple[float, np.ndarray]:
    camera = load_npy_object(camera_path, "TRAM camera.npy", torch_tensors=True)
    require_keys(camera, ("img_focal", "img_center"), camera_path, "TRAM camera.npy")
    focal = to_numpy(camera["img_focal"], camera_path, "img_focal").astype(np.float64)
    if focal.size != 1 or not np.isfinite(focal).all() or float(focal.reshape(-1)[0]) <= 0:
        raise InputError(camera_path, f"'img_focal' must be one positive number, got {focal}")
    center = float_array(
        to_numpy(camera["img_center"], camera_path, "img_center").reshape(-1),
        camera_path,
        "img_center",
        (2,),
    )
    return float(focal.reshape(-1)[0]), center


def read_tram(path: str | Path, image_size: tuple[int, int]) -> list[ToolPerson]:
    """Read every ``hps/hps_track_*.npy`` of a TRAM results folder.

    Args:
        path: ``results/<seq>`` (or its ``hps`` folder, or one track file: the folder is used).
        image_size: unused (TRAM saves its camera); kept for the common reader signature.

    Raises:
        InputError: missing folder, ``camera.npy`` or track files; refused or malformed content.
    """
    folder = tram_folder(path)
    hps = sorted((folder / "hps").glob("hps_track_*.npy"), key=_track_number)
    if not hps:
        raise InputError(folder, "no hps/hps_track_*.npy files (TRAM's estimate_humans.py output)")
    focal, center = _intrinsics(folder / "camera.npy")
    people = []
    for track_path in hps:
        track = load_npy_object(track_path, "TRAM hps track", torch_tensors=True)
        require_keys(track, HPS_KEYS, track_path, "TRAM hps track")
        rotmat = float_array(track["pred_rotmat"], track_path, "pred_rotmat", (-1, 24, 3, 3))
        n = len(rotmat)
        trans = to_numpy(track["pred_trans"], track_path, "pred_trans")
        if trans.size != 3 * n:  # (N, 1, 3) as saved; (N, 3) accepted
            raise InputError(track_path, f"'pred_trans' has shape {trans.shape}, expected "
                             f"({n}, 1, 3)")  # fmt: skip
        trans = float_array(trans.reshape(n, 3), track_path, "pred_trans", (n, 3))
        aa = rotmat_to_aa(rotmat)
        people.append(
            ToolPerson(
                person_id=track_path.stem,
                frames=frame_indices(track["frame"], track_path, "frame", n),
                global_orient_c=aa[:, 0],
                body_pose=aa[:, 1:22],
                betas=float_array(track["pred_shape"], track_path, "pred_shape", (n, -1)),
                pelvis_c=trans + REST_PELVIS["smpl"],
                intrins=np.tile([focal, focal, center[0], center[1]], (n, 1)),
                model="smpl",
            )
        )
    return people


def _track_number(path: Path) -> int:
    suffix = path.stem.rsplit("_", 1)[-1]
    return int(suffix) if suffix.isdigit() else 1 << 30
