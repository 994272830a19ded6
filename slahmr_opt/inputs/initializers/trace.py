"""TRACE's ``<seq>.npz`` (``trace2 -i video``) -> one ``ToolPerson`` per TRACE track id.

Layout (Arthur151/ROMP, ``simple_romp/trace2``): ``main.py`` ``TRACE.save_results`` writes
``np.savez(<results_dir>/<seq>.npz, outputs=remove_large_keys(outputs), imgpaths=imgpaths)``:
``outputs`` a dict (stored pickled) of numpy arrays with one row per *detection*, flattened over
frames and people (``utils/infer_utils.py`` ``merge_output``, ``remove_large_keys`` drops
``verts``, ``world_verts``, ``params_pred``, ...), ``imgpaths`` the frame paths in video order.
The keys used here:

===============  ============  ===========================================================
key              shape         meaning
===============  ============  ===========================================================
smpl_thetas      (D, 72)       axis-angle: camera-frame root + 21 body joints + 2 zero hands
smpl_betas       (D, 10)       SMPL shape (the 11th, kid offset, is dropped by TRACE)
cam_trans        (D, 3)        camera-frame translation of the root-aligned body
j3d              (D, 44, 3)    root-aligned joints (row 0: SMPL pelvis)
reorganize_idx   (D,)          frame of each detection (index into ``imgpaths``)
track_ids        (D,)          TRACE's track id of each detection
===============  ============  ===========================================================

TRACE's SMPL (``models/smpl.py``, ``root_align=True``) subtracts the mid-point of two regressed
hip joints from vertices and joints, and ``utils/utils.py`` ``vertices_kp3d_projection`` places
the result at ``cam_trans`` (``denormalize_cam_params_to_trans``), so the pelvis in the camera is
``j3d[:, 0] + cam_trans`` (no SMPL rest offset involved). The camera (``utils/utils.py``:
``focal_length = 548`` on the 512 x 512 network input, i.e. a 50 degree field of view, and
``padding_image``/``convert_kp2d_from_input_to_orgimg``, the frame zero-padded to a centred
square of side max(H, W)) has, in original pixels, focal ``548 / 512 * max(H, W)`` and centre
``(W / 2, H / 2)``. Axes are OpenCV's (plain pinhole projection into image rows growing down).
"""

import logging
from pathlib import Path

import numpy as np

from slahmr_opt.errors import InputError
from slahmr_opt.files.safe_pickle import load_npz_objects
from slahmr_opt.inputs.initializers.common import (
    ToolPerson,
    float_array,
    frame_indices,
    require_keys,
    to_numpy,
)

log = logging.getLogger(__name__)

TRACE_KEYS = ("smpl_thetas", "smpl_betas", "cam_trans", "reorganize_idx", "track_ids")
TRACE_FOCAL, TRACE_INPUT = 548.0, 512.0
"""TRACE's focal length in pixels of its square network input of this side."""


def trace_intrinsics(image_size: tuple[int, int]) -> np.ndarray:
    """(4,) ``[fx, fy, cx, cy]`` of TRACE's fixed camera for a frame of ``(height, width)``."""
    h, w = image_size
    f = TRACE_FOCAL / TRACE_INPUT * max(h, w)
    return np.array([f, f, w / 2.0, h / 2.0])


def read_trace(path: str | Path, image_size: tuple[int, int]) -> list[ToolPerson]:
    """Read every track of a TRACE ``<seq>.npz``.

    Args:
        path: the ``.npz`` holding ``outputs`` and ``imgpaths``.
        image_size: ``(height, width)`` of the video (TRACE's focal scales with it).

    Raises:
        InputError: missing file, refused pickle content, or not TRACE's layout.
    """
    path = Path(path)
    data = load_npz_objects(path, "TRACE result (.npz)")
    require_keys(data, ("outputs",), path, "TRACE result")
    out = data["outputs"]
    require_keys(out, TRACE_KEYS, path, "TRACE outputs")
    thetas = float_array(out["smpl_thetas"], path, "outputs/smpl_thetas", (-1, 72))
    d = len(thetas)
    betas = float_array(out["smpl_betas"], path, "outputs/smpl_betas", (d, -1))
    cam_trans = float_array(out["cam_trans"], path, "outputs/cam_trans", (d, 3))
    frames = frame_indices(out["reorganize_idx"], path, "outputs/reorganize_idx", d)
    ids = to_numpy(out["track_ids"], path, "outputs/track_ids").reshape(-1)
    if len(ids) != d:
        raise InputError(path, f"outputs/track_ids has {len(ids)} rows, smpl_thetas {d}")
    if "j3d" in out:
        pelvis = float_array(out["j3d"], path, "outputs/j3d", (d, -1, 3))[:, 0] + cam_trans
    else:
        log.warning("%s: no 'j3d'; using cam_trans (the hip mid-point) as the pelvis", path)
        pelvis = cam_trans
    intrins = trace_intrinsics(image_size)
    people = []
    for tid in sorted(set(ids.tolist()), key=str):
        rows = np.nonzero(ids == tid)[0]
        rows = rows[np.argsort(frames[rows], kind="stable")]
        keep = np.concatenate([[True], np.diff(frames[rows]) > 0])
        if not keep.all():
            log.warning("%s: TRACE track %s has %d duplicate frames; keeping the first detection",
                        path, tid, int((~keep).sum()))  # fmt: skip
        rows = rows[keep]
        n = len(rows)
        people.append(
            ToolPerson(
                person_id=str(tid),
                frames=frames[rows],
                global_orient_c=thetas[rows, :3],
                body_pose=thetas[rows, 3:66].reshape(n, 21, 3),
                betas=betas[rows],
                pelvis_c=pelvis[rows],
                intrins=np.tile(intrins, (n, 1)),
                model="smpl",
            )
        )
    return people
