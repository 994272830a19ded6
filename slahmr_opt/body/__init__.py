"""Body models: SMPL-layout files (native LBS, including the built-in default) and smplx's
SMPL / SMPL-H / SMPL-X layers behind one stateless ``BodyModel`` interface."""

from slahmr_opt.body.config import (
    BodyConfig,
    body_model_record,
    default_body_path,
    load_body_model,
)
from slahmr_opt.body.keypoints import (
    COCO17_NAMES,
    KEYPOINT_VERTEX_NAMES,
    OP25_NAMES,
    SMPL_JOINT_NAMES,
    SMPL_PARENTS,
    adjust_hips,
    body_keypoints,
)
from slahmr_opt.body.model import BodyModel, BodyOutput
from slahmr_opt.body.native import NativeBodyModel
from slahmr_opt.body.smplx_backend import SmplxBodyModel

__all__ = [
    "BodyConfig",
    "BodyModel",
    "BodyOutput",
    "COCO17_NAMES",
    "KEYPOINT_VERTEX_NAMES",
    "NativeBodyModel",
    "OP25_NAMES",
    "SMPL_JOINT_NAMES",
    "SMPL_PARENTS",
    "SmplxBodyModel",
    "adjust_hips",
    "body_keypoints",
    "default_body_path",
    "body_model_record",
    "load_body_model",
]
