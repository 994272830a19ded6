"""Native backend: linear blend skinning of any SMPL-layout model, with a keypoints-only fast path.

Joints come from forward kinematics of ``J_template + J_shapedirs @ betas`` (the joint
regressor folded into the template and shape space once), and only the 11 keypoint vertices
are skinned unless the full mesh is asked for. The maths is SMPL's (``smplx.lbs``), so the
results equal ``smplx.SMPLLayer``'s for the same file.
"""

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from smplx.lbs import batch_rigid_transform, blend_shapes
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS
from torch import Tensor

from slahmr_opt.body.keypoints import NUM_JOINTS, SMPLX_VERTEX_ID_KEYS
from slahmr_opt.body.model import BodyModel
from slahmr_opt.body.model_file import num_joints_of, validate_smpl_layout
from slahmr_opt.errors import InputError

log = logging.getLogger(__name__)
SMPL_NUM_VERTICES = 6890


def keypoint_vertex_ids(data: dict[str, Any], path: Path) -> np.ndarray:
    """(11,) ids of the keypoint vertices: the file's ``keypoint_vertex_ids`` if it has them,
    SMPL's (``smplx.vertex_ids['smplh']``) for a 6890-vertex mesh, else an InputError."""
    nv = np.shape(data["v_template"])[0]
    if "keypoint_vertex_ids" in data:
        ids = np.asarray(data["keypoint_vertex_ids"]).astype(np.int64).ravel()
        if ids.shape != (len(SMPLX_VERTEX_ID_KEYS),) or ids.min() < 0 or ids.max() >= nv:
            raise InputError(path, f"'keypoint_vertex_ids' must be 11 vertex ids below {nv}")
        return ids
    if nv == SMPL_NUM_VERTICES:
        return np.array([SMPLX_VERTEX_IDS["smplh"][k] for k in SMPLX_VERTEX_ID_KEYS])
    raise InputError(
        path, f"mesh has {nv} vertices (not SMPL's 6890) and no 'keypoint_vertex_ids' key"
    )


class NativeBodyModel(BodyModel):
    """SMPL-layout body model (24 joints) evaluated by our own LBS on smplx's building blocks.

    Args:
        data: SMPL-layout dict of numpy arrays (see ``model_file.validate_smpl_layout``).
        path: the file it came from (for messages).
        num_betas: shape coefficients to use, at most the file's.
        model_type, gender: recorded as attributes.
        dtype: floating point type of the model data.
    """

    def __init__(
        self,
        data: dict[str, Any],
        path: Path,
        num_betas: int = 10,
        model_type: str = "smpl",
        gender: str = "neutral",
        dtype: torch.dtype = torch.float32,
    ):
        validate_smpl_layout(data, path)
        nj = num_joints_of(data, path)
        if nj != NUM_JOINTS:
            raise InputError(path, f"the native backend needs 24 joints (SMPL), file has {nj}")
        v_template = np.asarray(data["v_template"], np.float64)
        shapedirs = np.asarray(data["shapedirs"], np.float64)
        if num_betas > shapedirs.shape[-1]:
            log.warning("%s has %d shape components; using those instead of %d", path,
                        shapedirs.shape[-1], num_betas)  # fmt: skip
            num_betas = shapedirs.shape[-1]
        shapedirs = shapedirs[..., :num_betas]
        nv = v_template.shape[0]
        super().__init__(model_type, gender, num_betas,
                         torch.as_tensor(np.asarray(data["f"], np.int64)), nv)  # fmt: skip
        kintree = np.asarray(data["kintree_table"]).astype(np.int64)
        parents = kintree[0].copy()
        parents[0] = -1
        if not np.array_equal(parents, self.parents.numpy()):
            raise InputError(path, f"kinematic tree {parents.tolist()} is not SMPL's")
        J_regressor = np.asarray(data["J_regressor"], np.float64)
        weights = np.asarray(data["weights"], np.float64)
        posedirs = np.asarray(data["posedirs"], np.float64)
        kp = keypoint_vertex_ids(data, path)

        def buf(name: str, value: np.ndarray | None) -> None:
            self.register_buffer(
                name, None if value is None else torch.as_tensor(value, dtype=dtype)
            )

        has_pose_blend = bool(np.any(posedirs))
        # (V, 3, P) -> (P, V * 3), smplx's layout for pose_feature @ posedirs.
        buf("posedirs", posedirs.reshape(-1, posedirs.shape[-1]).T if has_pose_blend else None)
        kp_posedirs = posedirs[kp].reshape(-1, posedirs.shape[-1]).T if has_pose_blend else None
        buf("v_template", v_template)
        buf("shapedirs", shapedirs)
        buf("lbs_weights", weights)
        buf("J_regressor", J_regressor)
        buf("J_template", J_regressor @ v_template)
        buf("J_shapedirs", np.einsum("jv,vkb->jkb", J_regressor, shapedirs))
        buf("kp_template", v_template[kp])
        buf("kp_shapedirs", shapedirs[kp])
        buf("kp_posedirs", kp_posedirs)
        buf("kp_weights", weights[kp])
        self.register_buffer("keypoint_vertex_ids", torch.as_tensor(kp), persistent=False)

    def skinning_weights(self) -> Tensor:
        return self.lbs_weights

    def _forward_flat(
        self, betas: Tensor, rotmats: Tensor, transl: Tensor, return_vertices: bool
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        n = betas.shape[0]
        eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
        rot = torch.cat([rotmats, eye.expand(n, NUM_JOINTS - rotmats.shape[1], 3, 3)], dim=1)
        rest_joints = self.J_template + blend_shapes(betas, self.J_shapedirs)  # (N, 24, 3)
        joints, rel = batch_rigid_transform(rot, rest_joints, self.parents, dtype=rot.dtype)
        pose_feature = (rot[:, 1:] - eye).reshape(n, -1)  # (N, 207)
        kp = self._skin(betas, pose_feature, rel, self.kp_template, self.kp_shapedirs,
                        self.kp_posedirs, self.kp_weights)  # fmt: skip
        verts = None
        if return_vertices:
            verts = self._skin(betas, pose_feature, rel, self.v_template, self.shapedirs,
                               self.posedirs, self.lbs_weights) + transl[:, None]  # fmt: skip
        return joints + transl[:, None], kp + transl[:, None], verts

    @staticmethod
    def _skin(
        betas: Tensor,
        pose_feature: Tensor,
        rel: Tensor,
        template: Tensor,
        shapedirs: Tensor,
        posedirs: Tensor | None,
        weights: Tensor,
    ) -> Tensor:
        """Shape, pose-correct and skin M vertices.

        Args:
            betas: (N, B); pose_feature: (N, 207) flattened ``R_k - I`` of joints 1..23;
            rel: (N, 24, 4, 4) joint transforms relative to the rest pose;
            template: (M, 3); shapedirs: (M, 3, B); posedirs: (207, M * 3) or None;
            weights: (M, 24) skinning weights.
        Returns:
            (N, M, 3) posed vertices (before ``transl``).
        """
        n = betas.shape[0]
        v = template + blend_shapes(betas, shapedirs)  # (N, M, 3)
        if posedirs is not None:
            v = v + (pose_feature @ posedirs).reshape(n, -1, 3)
        T = torch.matmul(weights, rel.reshape(n, NUM_JOINTS, 16)).reshape(n, -1, 4, 4)
        return (T[..., :3, :3] @ v[..., None])[..., 0] + T[..., :3, 3]
