"""AMASS-style export: one ``.npz`` per person, read by aitviewer, Blender's SMPL add-ons and the
AMASS tooling.

Keys of ``person_<id>.npz``:

====================  ===========  ======================================================
key                   shape        meaning
====================  ===========  ======================================================
poses                 (N, 72)      SMPL axis-angle: root (world), 21 body joints, the two
                                   hand joints (0)
trans                 (N, 3)       SMPL ``transl``, metres, so that the pelvis is at
                                   ``J_0(betas) + trans``
betas                 (B,)         shape coefficients of the body model below
gender                ()           ``neutral``, ``male`` or ``female``
mocap_framerate       ()           frames per second
surface_model_type    ()           ``smpl``
frames                (N,)         video frame index of each row
body_model_*                       the body model (``results.npz``'s record of it)
====================  ===========  ======================================================

Rows are the person's first to last tracked frame (frames inside that span where the person
was not tracked hold the nearest tracked pose, as in the BVH and GLB exports). The world is
AMASS's: z up, the floor at z = 0 for a gravity-aligned result (the y-up export world of
``motion.export_world_rotation`` turned by +90 degrees about x).

The betas mean something only for the body model they were fitted with: the built-in model's
ten coefficients are not SMPL's (``body_model_builtin``), so a viewer loading real SMPL files
shows a different shape and places the pelvis a few centimetres off. A result fitted with the
user's own SMPL files (``body.model_path``) is in SMPL's own convention.
"""

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from slahmr_opt.body import BodyModel
from slahmr_opt.files.checks import prepare_output, write_atomic
from slahmr_opt.io.export.motion import export_world_rotation, person_motions
from slahmr_opt.io.results import body_record_arrays
from slahmr_opt.types import Result

#: The y-up export world -> AMASS's z-up world (+90 degrees about x: y -> z, z -> -y).
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def amass_arrays(result: Result, body_model: BodyModel) -> dict[str, dict[str, np.ndarray]]:
    """``person_<id>`` -> the AMASS arrays (module docstring) of every person with a tracked
    frame."""
    world = Y_UP_TO_Z_UP @ export_world_rotation(result)
    record = body_record_arrays(result.body_model)
    betas = result.body.betas.double().numpy()
    index = {track: p for p, track in enumerate(result.track_ids)}
    out = {}
    for motion in person_motions(result, body_model, world):
        tracked = np.flatnonzero(motion.visible)
        span = np.arange(tracked[0], tracked[-1] + 1)
        rotations = motion.rotations[span]  # (N, 24, 3, 3)
        poses = Rotation.from_matrix(rotations.reshape(-1, 3, 3)).as_rotvec().reshape(-1, 72)
        out[motion.name] = {
            "poses": poses,
            "trans": motion.root_position[span] - motion.rest_joints[0],
            "betas": betas[index[motion.track_id]],
            "gender": np.array(body_model.gender),
            "mocap_framerate": np.array(float(result.fps)),
            "surface_model_type": np.array("smpl"),
            "frames": span + result.frame_offset,
            **record,
        }
    return out


def export_amass(
    result: Result, body_model: BodyModel, out: str | Path, overwrite: bool = False
) -> list[Path]:
    """Write ``out/person_<id>.npz`` per person (``amass_arrays``); returns the files.

    Raises:
        FileExistsError: a file exists and ``overwrite`` is False (nothing is written then).
    """
    arrays = amass_arrays(result, body_model)
    paths = [Path(out) / f"{name}.npz" for name in arrays]
    for path in paths:
        prepare_output(path, overwrite)
    for path, data in zip(paths, arrays.values(), strict=True):
        write_atomic(path, lambda f, data=data: np.savez(f, **data))
    return paths
