"""Joint and keypoint layouts shared by every body model backend, and the body -> 2D-detector maps.

A body's keypoint source is the concatenation ``[joints (24), keypoint_vertices (11)]`` of a
``BodyOutput``: indices 0..23 are SMPL's joints (``SMPL_JOINT_NAMES``), 24..34 the surface
vertices of ``KEYPOINT_VERTEX_NAMES``. ``COCO17_FROM_BODY`` and ``OP25_FROM_BODY`` index that
concatenation.
"""

import torch
from torch import Tensor

SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)  # fmt: skip
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
NUM_JOINTS = 24
NUM_BODY_POSE_JOINTS = 21
#: SMPL's ankles and toe bases (left ankle, right ankle, left foot, right foot): where feet
#: touch the ground.
FOOT_JOINTS = (7, 8, 10, 11)

KEYPOINT_VERTEX_NAMES = (
    "nose", "right_eye", "left_eye", "right_ear", "left_ear", "left_big_toe", "left_small_toe",
    "left_heel", "right_big_toe", "right_small_toe", "right_heel",
)  # fmt: skip
# smplx.vertex_ids key of each keypoint vertex, in KEYPOINT_VERTEX_NAMES order.
SMPLX_VERTEX_ID_KEYS = (
    "nose", "reye", "leye", "rear", "lear", "LBigToe", "LSmallToe", "LHeel", "RBigToe",
    "RSmallToe", "RHeel",
)  # fmt: skip
NUM_KEYPOINT_VERTICES = len(KEYPOINT_VERTEX_NAMES)

COCO17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
OP25_NAMES = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)  # fmt: skip


def _body_index(name: str) -> int:
    """Index of a joint or keypoint-vertex name in the ``[joints, keypoint_vertices]`` source."""
    if name in SMPL_JOINT_NAMES:
        return SMPL_JOINT_NAMES.index(name)
    return NUM_JOINTS + KEYPOINT_VERTEX_NAMES.index(name)


_OP25_SOURCE = {
    "Nose": "nose", "Neck": "neck", "RShoulder": "right_shoulder", "RElbow": "right_elbow",
    "RWrist": "right_wrist", "LShoulder": "left_shoulder", "LElbow": "left_elbow",
    "LWrist": "left_wrist", "MidHip": "pelvis", "RHip": "right_hip", "RKnee": "right_knee",
    "RAnkle": "right_ankle", "LHip": "left_hip", "LKnee": "left_knee", "LAnkle": "left_ankle",
    "REye": "right_eye", "LEye": "left_eye", "REar": "right_ear", "LEar": "left_ear",
    "LBigToe": "left_big_toe", "LSmallToe": "left_small_toe", "LHeel": "left_heel",
    "RBigToe": "right_big_toe", "RSmallToe": "right_small_toe", "RHeel": "right_heel",
}  # fmt: skip

COCO17_FROM_BODY = tuple(_body_index(n) for n in COCO17_NAMES)
OP25_FROM_BODY = tuple(_body_index(_OP25_SOURCE[n]) for n in OP25_NAMES)
# (left hip, right hip) positions inside each format.
HIP_SLOTS = {
    "coco17": (COCO17_NAMES.index("left_hip"), COCO17_NAMES.index("right_hip")),
    "op25": (OP25_NAMES.index("LHip"), OP25_NAMES.index("RHip")),
}
KEYPOINT_MAPS = {"coco17": COCO17_FROM_BODY, "op25": OP25_FROM_BODY}
HIP_OUTWARD = 0.25  # of the hip-to-hip vector, outwards
HIP_DOWN = 0.5  # of the mid-hip-to-pelvis vector (SMPL's pelvis sits above its hip joints)


def adjust_hips(hip: Tensor, other: Tensor, pelvis: Tensor) -> Tensor:
    """SLAHMR's hip adjustment: move a SMPL hip joint to where 2D detectors put the hip.

    ``h' = h + 0.25 (h - o) + 0.5 (m - (h + o) / 2)`` for hip ``h``, other hip ``o`` and pelvis
    ``m``, all (..., 3). Detectors mark hips lower and wider than SMPL's hip joints.
    """
    return hip + HIP_OUTWARD * (hip - other) + HIP_DOWN * (pelvis - 0.5 * (hip + other))


def body_keypoints(
    joints: Tensor, keypoint_vertices: Tensor, fmt: str, hip_fix: bool = True
) -> Tensor:
    """Detector keypoints from body joints and keypoint vertices.

    Args:
        joints: (..., 24, 3) SMPL-order joints.
        keypoint_vertices: (..., 11, 3) vertices in ``KEYPOINT_VERTEX_NAMES`` order.
        fmt: ``"coco17"`` or ``"op25"``.
        hip_fix: apply ``adjust_hips`` to the two hip keypoints.
    Returns:
        (..., K, 3) keypoints, K = 17 or 25, in the format's order.
    """
    if fmt not in KEYPOINT_MAPS:
        raise ValueError(f"unknown keypoint format {fmt!r}; expected one of {list(KEYPOINT_MAPS)}")
    source = torch.cat([joints, keypoint_vertices], dim=-2)
    index = torch.as_tensor(KEYPOINT_MAPS[fmt], device=source.device)
    kp = source.index_select(-2, index)
    if not hip_fix:
        return kp
    left_slot, right_slot = HIP_SLOTS[fmt]
    left, right = joints[..., 1, :], joints[..., 2, :]
    pelvis = joints[..., 0, :]
    fixed = torch.stack([adjust_hips(left, right, pelvis), adjust_hips(right, left, pelvis)], -2)
    slots = torch.as_tensor([left_slot, right_slot], device=source.device)
    return kp.index_copy(-2, slots, fixed)
