"""GVHMR's ``hmr4d_results.pt`` -> one ``ToolPerson``.

Layout (zju3dv/GVHMR ``tools/demo/demo.py``: ``pred = model.predict(data, static_cam)``,
``torch.save(pred, paths.hmr4d_results)``; ``hmr4d/model/gvhmr/gvhmr_pl_demo.py``
``DemoPL.predict``)::

    {"smpl_params_global": {...}, "smpl_params_incam": {...},
     "K_fullimg": (L, 3, 3), "net_outputs": {...}}

with each ``smpl_params_*`` a dict of tensors ``body_pose (L, 63)``, ``betas (L, 10)``,
``global_orient (L, 3)``, ``transl (L, 3)``. L is the video length: GVHMR follows one person
(``Tracker.get_one_track``, the longest track, with boxes filled in over every frame), so row i is
video frame i. ``smpl_params_incam`` is in the OpenCV camera frame of ``K_fullimg`` (by default
``estimate_K``: focal = image diagonal, centre = image centre); ``transl`` is the ``transl`` of
GVHMR's body model, SMPL-X neutral with 10 betas (``make_smplx("supermotion")`` in
``hmr4d/utils/smplx_utils.py``), whose 21 body joints are SMPL's. ``smpl_params_global`` (a
gravity-aligned world of GVHMR's own, no camera extrinsics saved) is not used.

The file is read with ``torch.load(weights_only=True)``: tensors, dicts, lists and numbers only.
"""

from pathlib import Path

import numpy as np
import torch

from slahmr_opt.errors import InputError
from slahmr_opt.files.checks import READ_ERRORS, reason, require_file
from slahmr_opt.inputs.initializers.common import (
    REST_PELVIS,
    ToolPerson,
    float_array,
    require_keys,
)

INCAM_KEYS = ("global_orient", "body_pose", "betas", "transl")


def load_torch_file(path: Path, what: str):
    """``torch.load(weights_only=True)`` on the CPU; any failure becomes ``InputError``."""
    require_file(path, what)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except READ_ERRORS as exc:  # torch's weights-only message runs over many lines: the first
        message = str(exc).splitlines()[0] if str(exc) else reason(exc)
        raise InputError(path, f"cannot read as a {what} (torch.load, weights only): "
                         f"{message}") from None  # fmt: skip


def read_gvhmr(path: str | Path, image_size: tuple[int, int]) -> list[ToolPerson]:
    """Read the one person of a ``hmr4d_results.pt``.

    Args:
        path: the torch file.
        image_size: unused (GVHMR saves its camera); kept for the common reader signature.

    Raises:
        InputError: missing file, unreadable or refused content, or not GVHMR's layout.
    """
    path = Path(path)
    pred = load_torch_file(path, "GVHMR result (hmr4d_results.pt)")
    require_keys(pred, ("smpl_params_incam", "K_fullimg"), path, "GVHMR result")
    incam = pred["smpl_params_incam"]
    require_keys(incam, INCAM_KEYS, path, "GVHMR smpl_params_incam")
    orient = float_array(incam["global_orient"], path, "smpl_params_incam/global_orient", (-1, 3))
    n = len(orient)
    body_pose = float_array(incam["body_pose"], path, "smpl_params_incam/body_pose", (n, 63))
    transl = float_array(incam["transl"], path, "smpl_params_incam/transl", (n, 3))
    betas = float_array(incam["betas"], path, "smpl_params_incam/betas", (n, -1))
    K = float_array(pred["K_fullimg"], path, "K_fullimg", (-1, 3, 3))
    if len(K) == 1:
        K = K.repeat(n, 0)
    if len(K) != n:
        raise InputError(path, f"K_fullimg has {len(K)} frames, smpl_params_incam {n}")
    intrins = K[:, [0, 1, 0, 1], [0, 1, 2, 2]]
    return [
        ToolPerson(
            person_id="gvhmr",
            frames=np.arange(n),
            global_orient_c=orient,
            body_pose=body_pose.reshape(n, 21, 3),
            betas=betas,
            pelvis_c=transl + REST_PELVIS["smplx"],
            intrins=intrins,
            model="smplx",
        )
    ]
