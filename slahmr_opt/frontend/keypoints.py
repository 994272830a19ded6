"""MediaPipe BlazePose's 33 landmarks -> the OpenPose BODY_25 (``op25``) slots the costs use.

Slot filling follows SLAHMR's ViTPose tracks (``slahmr_opt.inputs.track_dirs``): every slot with
a matching landmark gets it, with the landmark's visibility as confidence; the other slots are
``[0, 0, 0]``:

- Neck (1): no landmark, and the costs ignore it (``clean_keypoints`` zeroes it anyway).
- MidHip (8): the body model puts SMPL's pelvis joint there, which is not the midpoint of the
  two hip landmarks (SLAHMR's ViTPose tracks leave it empty too).
- LSmallToe (20), RSmallToe (23): no landmark. The big toes come from ``foot_index`` (the tip
  of the foot), the heels from ``heel``.

Hips. The body model's hip keypoints are SMPL's hip joints moved outwards by
``HIP_OUTWARD = 0.25`` of the hip-to-hip vector and towards the pelvis
(``slahmr_opt.body.keypoints.adjust_hips``), where OpenPose and ViTPose mark hips. MediaPipe
marks them closer together. Measured on 84 renders of the built-in body
(``python scripts/hip_study.py``: 4 poses, 3 shapes, 7 view directions), the
least-squares fit of ``adjusted - mediapipe`` on ``(h - o, shoulders_mid - hips_mid)`` gives
0.36 outwards and 0.02 towards the shoulders (negligible); the mean distance to the adjusted
hips, in torso lengths, is 0.128 for raw MediaPipe hips, 0.061 after
``h' = h + MP_HIP_OUTWARD (h - o)`` with ``MP_HIP_OUTWARD = 0.35`` (0.072 with 0.25, 0.057 for
the full fit). ``landmarks_to_op25`` applies that widening. The measurement uses the built-in
(MakeHuman-based) body; an SMPL file may place its hip joints somewhat differently.
"""

import numpy as np

from slahmr_opt.body.keypoints import OP25_NAMES

MP_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip
"""BlazePose landmark order (``mediapipe.solutions.pose.PoseLandmark``)."""
NUM_MP_LANDMARKS = len(MP_NAMES)

_OP25_SOURCE = {
    "Nose": "nose", "RShoulder": "right_shoulder", "RElbow": "right_elbow",
    "RWrist": "right_wrist", "LShoulder": "left_shoulder", "LElbow": "left_elbow",
    "LWrist": "left_wrist", "RHip": "right_hip", "RKnee": "right_knee", "RAnkle": "right_ankle",
    "LHip": "left_hip", "LKnee": "left_knee", "LAnkle": "left_ankle", "REye": "right_eye",
    "LEye": "left_eye", "REar": "right_ear", "LEar": "left_ear", "LBigToe": "left_foot_index",
    "LHeel": "left_heel", "RBigToe": "right_foot_index", "RHeel": "right_heel",
}  # fmt: skip
OP25_FROM_MP = tuple(
    MP_NAMES.index(_OP25_SOURCE[name]) if name in _OP25_SOURCE else -1 for name in OP25_NAMES
)
"""BlazePose landmark of each op25 slot, -1 for the slots left empty (neck, mid-hip, small
toes)."""

MP_HIP_OUTWARD = 0.35
"""Hips move outwards by this fraction of the hip-to-hip vector (see the module docstring)."""
_HIPS = (MP_NAMES.index("left_hip"), MP_NAMES.index("right_hip"))


def widen_hips(landmarks: np.ndarray, outward: float = MP_HIP_OUTWARD) -> np.ndarray:
    """Move MediaPipe's hip landmarks to where OpenPose/ViTPose mark hips.

    Args:
        landmarks: (..., 33, C) with ``[u, v]`` in the first two channels.
        outward: fraction of the hip-to-hip vector each hip moves away from the other.

    Returns:
        A copy with ``h' = h + outward (h - o)`` for each hip ``h`` and other hip ``o``.
    """
    out = np.array(landmarks, dtype=np.float64, copy=True)
    left, right = landmarks[..., _HIPS[0], :2], landmarks[..., _HIPS[1], :2]
    out[..., _HIPS[0], :2] = left + outward * (left - right)
    out[..., _HIPS[1], :2] = right + outward * (right - left)
    return out


def landmarks_to_op25(
    landmarks: np.ndarray, image_size: tuple[int, int] | None = None, hip_fix: bool = True
) -> np.ndarray:
    """BlazePose landmarks -> op25 keypoints.

    Args:
        landmarks: (..., 33, 3) ``[u, v, visibility]``, pixels of the full image.
        image_size: ``(height, width)``; when given, landmarks outside the image get
            confidence 0 (BlazePose extrapolates limbs beyond the frame).
        hip_fix: widen the hips (``widen_hips``).

    Returns:
        (..., 25, 3) ``[u, v, confidence]``; empty slots are ``[0, 0, 0]``.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape[-2:] != (NUM_MP_LANDMARKS, 3):
        raise ValueError(f"expected (..., 33, 3) landmarks, got {landmarks.shape}")
    if hip_fix:
        landmarks = widen_hips(landmarks)
    source = np.asarray(OP25_FROM_MP)
    out = landmarks[..., np.maximum(source, 0), :].copy()
    out[..., source < 0, :] = 0.0
    out[..., 2] = np.clip(out[..., 2], 0.0, 1.0)
    if image_size is not None:
        height, width = image_size
        u, v = out[..., 0], out[..., 1]
        outside = (u < 0) | (u > width) | (v < 0) | (v > height)
        out[..., 2][outside] = 0.0
    return out


__all__ = [
    "MP_HIP_OUTWARD",
    "MP_NAMES",
    "NUM_MP_LANDMARKS",
    "OP25_FROM_MP",
    "landmarks_to_op25",
    "widen_hips",
]
