"""Per-person skeleton motion shared by the skinned (glTF) and BVH exports.

A person is SMPL's 24-joint tree (``SMPL_PARENTS``) bound at rest to the mesh of its ``betas``:
joint ``j`` sits at ``rest_joints[j]`` with identity orientation. At frame ``t`` the pelvis node
is at ``rest_joints[0] + trans[t]`` (SMPL rotates the root about the pelvis joint) with the root
orientation, every other joint at its rest offset from its parent with its local rotation, and
the hand joints (22, 23) at rest. This is exactly SMPL's forward kinematics, so the joints of the
exported skeletons equal ``results.npz``'s ``joints``.

Frames outside a person's ``track_mask`` hold the nearest tracked frame's pose ("clamp"): the
optimiser leaves those frames unconstrained, and holding keeps interpolation into them calm.
"""

from dataclasses import dataclass

import numpy as np

from slahmr_opt.body import BodyModel
from slahmr_opt.body.keypoints import NUM_JOINTS, SMPL_PARENTS
from slahmr_opt.io.bodies import local_rotations, rest
from slahmr_opt.io.export.files import person_names
from slahmr_opt.types import Result

#: Y-up view of a result left in the SLAM world (OpenCV axes: y down, z forward).
OPENCV_TO_Y_UP = np.diag([1.0, -1.0, -1.0])


@dataclass
class PersonMotion:
    """One person's skeleton animation.

    Attributes:
        track_id: the person's track name.
        name: ``person_<id>``, its file and node name (``files.person_names``).
        rest_joints: (24, 3) joints at rest, metres, body model frame.
        rest_vertices: (V, 3) mesh at rest, metres, body model frame (None if not asked for).
        rotations: (T, 24, 3, 3) local joint rotations (parent frame); the root's is in the
            export world; joints 22 and 23 are identity.
        root_position: (T, 3) pelvis joint in the export world, metres.
        visible: (T,) bool, the person's ``track_mask``.
    """

    track_id: str
    name: str
    rest_joints: np.ndarray
    rest_vertices: np.ndarray | None
    rotations: np.ndarray
    root_position: np.ndarray
    visible: np.ndarray

    @property
    def num_frames(self) -> int:
        return self.rotations.shape[0]

    @property
    def offsets(self) -> np.ndarray:
        """(24, 3) rest offset of each joint from its parent (the pelvis: from the origin)."""
        parents = np.asarray(SMPL_PARENTS)
        off = self.rest_joints.copy()
        off[1:] -= self.rest_joints[parents[1:]]
        return off


def export_world_rotation(result: Result) -> np.ndarray:
    """(3, 3) rotation from the result world to the y-up world the GLB, BVH and mesh files use.

    Identity for a gravity-aligned result (``Result.gravity_aligned``: y up, floor at y = 0);
    ``OPENCV_TO_Y_UP`` for a result left in the SLAM world (no floor estimated, or
    ``floor.align_output`` off), whose first camera looks along +z with y down.
    """
    return np.eye(3) if result.gravity_aligned else OPENCV_TO_Y_UP.copy()


def nearest_tracked(visible: np.ndarray) -> np.ndarray:
    """(T,) index of the nearest frame where ``visible`` (T,) is True (ties: the earlier)."""
    tracked = np.flatnonzero(visible)
    t = np.arange(len(visible))
    after = np.clip(np.searchsorted(tracked, t), 0, len(tracked) - 1)
    before = np.clip(after - 1, 0, len(tracked) - 1)
    lo, hi = tracked[before], tracked[after]
    return np.where(np.abs(t - lo) <= np.abs(hi - t), lo, hi)


def person_motions(
    result: Result,
    body_model: BodyModel,
    world_rotation: np.ndarray | None = None,
    vertices: bool = False,
) -> list[PersonMotion]:
    """The skeleton motion of every person with at least one tracked frame.

    Args:
        result: the result.
        body_model: the body model it was fitted with.
        world_rotation: (3, 3) applied to the root (export world = ``world_rotation @`` result
            world); None: identity.
        vertices: also compute each person's rest mesh.
    Returns:
        One ``PersonMotion`` per person, frames outside the track clamped (module docstring).
    """
    F = np.eye(3) if world_rotation is None else np.asarray(world_rotation, dtype=np.float64)
    rest_verts, rest_joints = rest(result, body_model, vertices)
    local = local_rotations(result)  # (P, T, 22, 3, 3)
    trans = result.body.trans.double().numpy()
    track_mask = result.track_mask.numpy().astype(bool)
    names = person_names(result.track_ids)
    motions = []
    for p in range(result.num_people):
        visible = track_mask[p]
        if not visible.any():
            continue
        src = nearest_tracked(visible)
        rot = np.broadcast_to(np.eye(3), (result.num_frames, NUM_JOINTS, 3, 3)).copy()
        rot[:, : local.shape[2]] = local[p, src]
        rot[:, 0] = F @ rot[:, 0]
        root = (rest_joints[p, 0] + trans[p, src]) @ F.T
        motions.append(
            PersonMotion(
                track_id=result.track_ids[p],
                name=names[p],
                rest_joints=rest_joints[p],
                rest_vertices=None if rest_verts is None else rest_verts[p],
                rotations=rot,
                root_position=root,
                visible=visible.copy(),
            )
        )
    return motions


def top_k_weights(weights: np.ndarray, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest skinning weights of each vertex, renormalised to sum to 1.

    Args:
        weights: (V, J) weights.
        k: influences kept per vertex.
    Returns:
        joints (V, k) int joint ids (largest first) and weights (V, k) float32.
    """
    order = np.argsort(-weights, axis=1, kind="stable")[:, :k]
    kept = np.take_along_axis(weights, order, axis=1)
    kept = np.where(kept > 0, kept, 0.0)
    kept = kept / kept.sum(axis=1, keepdims=True)
    # Unused slots point at joint 0 with weight 0, as glTF asks.
    order = np.where(kept > 0, order, 0)
    return order, kept.astype(np.float32)
