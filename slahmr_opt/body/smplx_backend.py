"""smplx backend: SMPL, SMPL-H and SMPL-X files through ``smplx``'s layer classes.

Files are read by ``model_file`` (never by smplx's own ``pickle.load``): SMPL and SMPL-H data
reach smplx as a ``data_struct``; SMPL-X's constructor insists on reading a file, so it reads a
sanitized .npz copy (plain numeric arrays only) written to a temporary folder.

The layers take rotation matrices (``SMPLLayer`` ignores ``pose2rot``). Hands (SMPL-H/X) stay
flat (identity finger rotations), SMPL-X's jaw and eyes at rest and its expression at zero.
"""

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import smplx
import torch
from smplx.utils import Struct
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS
from torch import Tensor

from slahmr_opt.body.keypoints import NUM_JOINTS, SMPLX_VERTEX_ID_KEYS
from slahmr_opt.body.model import BodyModel
from slahmr_opt.body.native import keypoint_vertex_ids

# Joints standing in for SMPL's hand joints (22, 23): the middle finger's first joint of each
# hand, in smplx's joint order of each model type.
HAND_JOINTS = {"smplh": (25, 40), "smplx": (28, 43)}
NUM_JOINTS_OF_TYPE = {"smpl": 24, "smplh": 52, "smplx": 55}


def _smpl_vertex_ids(data: dict[str, Any], kp: np.ndarray) -> dict[str, int]:
    """smplx's extra-joint vertex ids, made valid for any mesh size (their joints are unused)."""
    nv = np.shape(data["v_template"])[0]
    ids = {k: min(int(v), nv - 1) for k, v in SMPLX_VERTEX_IDS["smplh"].items()}
    ids.update({k: int(i) for k, i in zip(SMPLX_VERTEX_ID_KEYS, kp, strict=True)})
    return ids


class SmplxBodyModel(BodyModel):
    """A smplx layer behind the ``BodyModel`` interface.

    Args:
        data: the model file's arrays (from ``model_file.load_model_dict``).
        path: the model file (for messages).
        model_type: ``"smpl"``, ``"smplh"`` or ``"smplx"``.
        gender: recorded, and passed to smplx.
        num_betas: shape coefficients to use (smplx caps it at what the file has, and at 10
            for files with fewer than its full shape space).
        dtype: floating point type of the model data.
    """

    def __init__(
        self,
        data: dict[str, Any],
        path: Path,
        model_type: str = "smpl",
        gender: str = "neutral",
        num_betas: int = 10,
        dtype: torch.dtype = torch.float32,
    ):
        common = dict(gender=gender, num_betas=num_betas, dtype=dtype)
        if model_type == "smpl":
            kp = keypoint_vertex_ids(data, path)
            layer = smplx.SMPLLayer(model_path=str(path), data_struct=Struct(**data),
                                    vertex_ids=_smpl_vertex_ids(data, kp), **common)  # fmt: skip
        else:
            kp = np.array([SMPLX_VERTEX_IDS[model_type][k] for k in SMPLX_VERTEX_ID_KEYS])
            hand = dict(use_pca=False, flat_hand_mean=True)
            if model_type == "smplh":
                layer = smplx.SMPLHLayer(model_path=str(path), data_struct=Struct(**data),
                                         **hand, **common)  # fmt: skip
            else:
                layer = _smplx_layer_from_arrays(data, hand | common)
        super().__init__(model_type, gender, layer.num_betas, layer.faces_tensor,
                         layer.v_template.shape[0])  # fmt: skip
        self.layer = layer
        self.register_buffer("keypoint_vertex_ids", torch.as_tensor(kp), persistent=False)
        if model_type != "smpl":
            left, right = HAND_JOINTS[model_type]
            assert layer.parents[left] == 20 and layer.parents[right] == 21
            body = list(range(22)) + [left, right]
        else:
            body = list(range(NUM_JOINTS))
        self.register_buffer("joint_index", torch.tensor(body), persistent=False)

    def skinning_weights(self) -> Tensor:
        """The layer's weights folded onto the 24 joints: a finger, jaw or eye joint's weight
        goes to its nearest ancestor among them. Exact here, where those joints stay at rest
        and so move rigidly with that ancestor."""
        parents = self.layer.parents.tolist()
        kept = self.joint_index.tolist()
        target = []
        for j in range(len(parents)):
            while j not in kept:
                j = parents[j]
            target.append(kept.index(j))
        weights = self.layer.lbs_weights
        folded = weights.new_zeros(weights.shape[0], NUM_JOINTS)
        return folded.index_add_(1, torch.tensor(target), weights)

    def _forward_flat(
        self, betas: Tensor, rotmats: Tensor, transl: Tensor, return_vertices: bool
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        n = betas.shape[0]
        body_pose = rotmats[:, 1:]
        if self.model_type == "smpl":  # SMPL's two hand joints: identity
            eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
            body_pose = torch.cat([body_pose, eye.expand(n, 2, 3, 3)], dim=1)
        out = self.layer(betas=betas, global_orient=rotmats[:, :1], body_pose=body_pose,
                         transl=transl)  # fmt: skip
        joints = out.joints.index_select(1, self.joint_index)
        kp = out.vertices.index_select(1, self.keypoint_vertex_ids)
        return joints, kp, out.vertices if return_vertices else None


def _smplx_layer_from_arrays(data: dict[str, Any], kwargs: dict[str, Any]) -> smplx.SMPLXLayer:
    """Build ``smplx.SMPLXLayer`` from arrays via a sanitized temporary .npz."""
    numeric = {k: v for k, v in data.items()
               if isinstance(v, np.ndarray) and v.dtype != object}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        clean = Path(tmp) / "SMPLX_SANITIZED.npz"
        np.savez(clean, **numeric)
        return smplx.SMPLXLayer(model_path=str(clean), ext="npz", use_face_contour=False,
                                num_expression_coeffs=10, **kwargs)  # fmt: skip
