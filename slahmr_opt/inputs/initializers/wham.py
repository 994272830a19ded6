"""WHAM's ``wham_output.pkl`` -> ``ToolPerson`` per track.

Layout (yohanshin/WHAM ``demo.py``, ``run(..., save_pkl=True)``): ``joblib.dump(results,
"<output>/<seq>/wham_output.pkl")`` where ``results`` is a ``defaultdict(dict)`` keyed by the
tracker's integer track id; per track:

=============  ===========  =============================================================
key            shape        meaning
=============  ===========  =============================================================
pose           (N, 72)      camera-frame axis-angle: root (``poses_root_cam``) + 23 joints
trans          (N, 3)       ``trans_cam - offset``: SMPL ``transl`` in the camera frame
pose_world     (N, 72)      world (y up, per-person origin) root + the same body joints
trans_world    (N, 3)       world translation (per-person world: not used here)
betas          (N, 10)      SMPL shape
verts          (N, 6890, 3) camera-frame vertices (not used)
frame_ids      (N,)         video frame indices (``tracking_results[id]['frame_id']``)
=============  ===========  =============================================================

``trans`` is an exact SMPL ``transl``: WHAM's ``lib/models/smpl.py`` ``get_output`` shifts the
vertices by ``offset`` (the mid-hip of its joint regressor) and ``trans_cam`` adds it back, so
``SMPL(transl=trans)`` reproduces ``verts``; the body model is SMPL neutral, 10 betas. WHAM's camera
is always ``compute_cam_intrinsics(res)`` (``lib/data/datasets/dataset_custom.py``,
``lib/utils/imutils.py``): focal = image diagonal, centre = image centre (``--calib`` only feeds
DPVO). WHAM's world frame (one per person, each starting at the origin) is not used.
"""

from pathlib import Path

from slahmr_opt.errors import InputError
from slahmr_opt.files.safe_pickle import load_pickle
from slahmr_opt.inputs.initializers.common import (
    REST_PELVIS,
    ToolPerson,
    diagonal_intrinsics,
    float_array,
    frame_indices,
    require_keys,
)

WHAM_KEYS = ("pose", "trans", "betas", "frame_ids")


def read_wham(path: str | Path, image_size: tuple[int, int]) -> list[ToolPerson]:
    """Read every track of a ``wham_output.pkl``.

    Args:
        path: the joblib pickle.
        image_size: ``(height, width)`` of the video, for WHAM's default focal length.

    Raises:
        InputError: missing file, refused pickle content, or not WHAM's layout.
    """
    path = Path(path)
    results = load_pickle(path, "WHAM output (wham_output.pkl)", torch_tensors=True)
    if not isinstance(results, dict) or not results:
        raise InputError(path, "WHAM output: expected a non-empty dict keyed by track id, found "
                         f"{type(results).__name__}")  # fmt: skip
    people = []
    for tid, track in sorted(results.items(), key=lambda kv: str(kv[0])):
        what = f"WHAM track {tid}"
        require_keys(track, WHAM_KEYS, path, what)
        pose = float_array(track["pose"], path, f"{tid}/pose", (-1, 72))
        n = len(pose)
        trans = float_array(track["trans"], path, f"{tid}/trans", (n, 3))
        betas = float_array(track["betas"], path, f"{tid}/betas", (n, -1))
        frames = frame_indices(track["frame_ids"], path, f"{tid}/frame_ids", n)
        people.append(
            ToolPerson(
                person_id=str(tid),
                frames=frames,
                global_orient_c=pose[:, :3],
                body_pose=pose[:, 3:66].reshape(n, 21, 3),
                betas=betas,
                pelvis_c=trans + REST_PELVIS["smpl"],
                intrins=diagonal_intrinsics(image_size, n),
                model="smpl",
            )
        )
    return people
