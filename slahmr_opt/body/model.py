"""The body model interface every backend implements: ``BodyModel`` in, ``BodyOutput`` out."""

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from slahmr_opt.body.keypoints import NUM_BODY_POSE_JOINTS, SMPL_PARENTS, body_keypoints
from slahmr_opt.geometry.rotations import rotvec_to_rotmat


@dataclass
class BodyOutput:
    """Posed bodies, in the frame of the inputs (``transl`` applied).

    Attributes:
        joints: (..., 24, 3) joints in SMPL order (``keypoints.SMPL_JOINT_NAMES``). For SMPL-H
            and SMPL-X models, 0..21 are their body joints (the same as SMPL's) and 22, 23 their
            left and right middle-finger base (MCP) joints, the nearest match of SMPL's hand
            joints.
        keypoint_vertices: (..., 11, 3) surface points in ``keypoints.KEYPOINT_VERTEX_NAMES``
            order (nose, eyes, ears, toes, heels).
        vertices: (..., V, 3) mesh vertices, or None when not asked for.
    """

    joints: Tensor
    keypoint_vertices: Tensor
    vertices: Tensor | None = None


class BodyModel(nn.Module):
    """A parametric body: shape ``betas`` and joint rotations -> joints, keypoints and mesh.

    Stateless: it holds the model's data only, never a batch size or parameters, so any leading
    batch shape works. Subclasses implement ``_forward_flat``.

    Attributes:
        model_type: ``"smpl"``, ``"smplh"`` or ``"smplx"``.
        gender: ``"neutral"``, ``"male"`` or ``"female"`` (as configured).
        num_betas: B, the number of shape coefficients the model uses.
        num_vertices: V.
        faces: (F, 3) long vertex ids of the mesh triangles (buffer).
        parents: (24,) long parent of each SMPL joint, -1 for the pelvis (buffer).
    """

    faces: Tensor
    parents: Tensor

    def __init__(self, model_type: str, gender: str, num_betas: int, faces: Tensor, nv: int):
        super().__init__()
        self.model_type = model_type
        self.gender = gender
        self.num_betas = int(num_betas)
        self.num_vertices = int(nv)
        self.register_buffer("faces", faces.long(), persistent=False)
        self.register_buffer("parents", torch.tensor(SMPL_PARENTS), persistent=False)

    @property
    def dtype(self) -> torch.dtype:
        """Floating point type of the model's data (and of its outputs)."""
        return next(b for b in self.buffers() if b.is_floating_point()).dtype

    def forward(
        self,
        betas: Tensor,
        global_orient: Tensor,
        body_pose: Tensor,
        transl: Tensor,
        return_vertices: bool = False,
    ) -> BodyOutput:
        """Pose bodies.

        Leading dimensions of all inputs broadcast against each other, e.g. betas (P, 1, B)
        with body_pose (P, T, 21, 3). Inputs are cast to the model's dtype.

        Args:
            betas: (..., B') shape coefficients, B' <= ``num_betas`` (zero-padded).
            global_orient: (..., 3) root (pelvis) rotation, axis-angle, radians.
            body_pose: (..., 21, 3) body joint rotations relative to their parents, axis-angle,
                SMPL-H body order (SMPL's joints 1..21; SMPL's hand joints get identity).
            transl: (..., 3) translation added to every output point, metres.
            return_vertices: also return the full mesh (slower for the native backend).
        Returns:
            ``BodyOutput`` with leading shape the broadcast of the inputs' leading shapes.
        """
        batch, flat = self._flatten_inputs(betas, global_orient, body_pose, transl)
        joints, kp_verts, verts = self._forward_flat(*flat, return_vertices)
        n = math.prod(batch)
        assert joints.shape[0] == n
        return BodyOutput(
            joints=joints.reshape(*batch, *joints.shape[1:]),
            keypoint_vertices=kp_verts.reshape(*batch, *kp_verts.shape[1:]),
            vertices=None if verts is None else verts.reshape(*batch, *verts.shape[1:]),
        )

    def rest_pose(self, betas: Tensor, return_vertices: bool = True) -> BodyOutput:
        """Bodies of shape ``betas`` at rest: every rotation identity, no translation.

        The mesh and joints a skinned export binds to (pose blend shapes vanish at rest).

        Args:
            betas: (..., B') shape coefficients, B' <= ``num_betas``.
            return_vertices: also return the (..., V, 3) mesh.
        Returns:
            ``BodyOutput`` with joints (..., 24, 3), metres, in the model's frame.
        """
        zeros = betas.new_zeros(*betas.shape[:-1], 3)
        pose = betas.new_zeros(*betas.shape[:-1], NUM_BODY_POSE_JOINTS, 3)
        return self(betas, zeros, pose, zeros, return_vertices=return_vertices)

    def stature(self, betas: Tensor) -> Tensor:
        """(...,) standing height of bodies of shape ``betas``, metres: the rest mesh's extent
        along the model's up axis (y), heel to crown."""
        y = self.rest_pose(betas).vertices[..., 1]
        return y.amax(-1) - y.amin(-1)

    def skinning_weights(self) -> Tensor:
        """(V, 24) linear blend skinning weights of each vertex on SMPL's 24 joints (rows sum
        to 1), in the model's dtype."""
        raise NotImplementedError

    def keypoints(self, out: BodyOutput, fmt: str, hip_fix: bool = True) -> Tensor:
        """(..., K, 3) detector-format keypoints of posed bodies (K = 17 'coco17', 25 'op25').

        ``hip_fix`` moves the hip keypoints where detectors put hips (``keypoints.adjust_hips``).
        """
        return body_keypoints(out.joints, out.keypoint_vertices, fmt, hip_fix=hip_fix)

    def _forward_flat(
        self, betas: Tensor, rotmats: Tensor, transl: Tensor, return_vertices: bool
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Pose N bodies.

        Args:
            betas: (N, num_betas); rotmats: (N, 22, 3, 3) root then body rotations;
            transl: (N, 3).
        Returns:
            joints (N, 24, 3), keypoint vertices (N, 11, 3), vertices (N, V, 3) or None.
        """
        raise NotImplementedError

    def _flatten_inputs(
        self, betas: Tensor, global_orient: Tensor, body_pose: Tensor, transl: Tensor
    ) -> tuple[tuple[int, ...], tuple[Tensor, Tensor, Tensor]]:
        """Check shapes, pad betas, broadcast and flatten the leading dimensions."""
        if betas.ndim < 1 or global_orient.shape[-1:] != (3,) or transl.shape[-1:] != (3,):
            raise ValueError(
                f"expected betas (..., B), global_orient (..., 3), transl (..., 3); got "
                f"{tuple(betas.shape)}, {tuple(global_orient.shape)}, {tuple(transl.shape)}"
            )
        if body_pose.shape[-2:] != (NUM_BODY_POSE_JOINTS, 3):
            raise ValueError(
                f"expected body_pose (..., {NUM_BODY_POSE_JOINTS}, 3), got {tuple(body_pose.shape)}"
            )
        nb = betas.shape[-1]
        if nb > self.num_betas:
            raise ValueError(f"betas has {nb} coefficients, the model only {self.num_betas}")
        try:
            batch = torch.broadcast_shapes(
                betas.shape[:-1], global_orient.shape[:-1], body_pose.shape[:-2], transl.shape[:-1]
            )
        except RuntimeError as exc:
            raise ValueError(
                f"leading shapes do not broadcast: betas {tuple(betas.shape)}, global_orient "
                f"{tuple(global_orient.shape)}, body_pose {tuple(body_pose.shape)}, transl "
                f"{tuple(transl.shape)}"
            ) from exc
        dtype = self.dtype
        betas = betas.to(dtype)
        if nb < self.num_betas:
            betas = torch.nn.functional.pad(betas, (0, self.num_betas - nb))
        n = math.prod(batch)
        root = global_orient.to(dtype).expand(*batch, 3)[..., None, :]
        body = body_pose.to(dtype).expand(*batch, NUM_BODY_POSE_JOINTS, 3)
        pose = torch.cat([root, body], dim=-2).reshape(n, NUM_BODY_POSE_JOINTS + 1, 3)
        return batch, (
            betas.expand(*batch, self.num_betas).reshape(n, self.num_betas),
            rotvec_to_rotmat(pose),
            transl.to(dtype).expand(*batch, 3).reshape(n, 3),
        )
