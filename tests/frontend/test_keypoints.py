"""BlazePose landmarks -> op25 keypoints (slots, confidences, hips, frame bounds)."""

import numpy as np
import pytest

from slahmr_opt.body.keypoints import OP25_NAMES
from slahmr_opt.frontend.keypoints import (
    MP_HIP_OUTWARD,
    MP_NAMES,
    OP25_FROM_MP,
    landmarks_to_op25,
    widen_hips,
)

EMPTY_SLOTS = ("Neck", "MidHip", "LSmallToe", "RSmallToe")


def _landmarks(shape=(), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    uv = rng.uniform(10, 90, (*shape, 33, 2))
    vis = rng.uniform(0.0, 1.0, (*shape, 33, 1))
    return np.concatenate([uv, vis], axis=-1)


def _slow_op25(landmarks: np.ndarray) -> np.ndarray:
    """Slot by slot, by name, without the hip fix."""
    names = {
        "Nose": "nose", "RShoulder": "right_shoulder", "RElbow": "right_elbow",
        "RWrist": "right_wrist", "LShoulder": "left_shoulder", "LElbow": "left_elbow",
        "LWrist": "left_wrist", "RHip": "right_hip", "RKnee": "right_knee",
        "RAnkle": "right_ankle", "LHip": "left_hip", "LKnee": "left_knee",
        "LAnkle": "left_ankle", "REye": "right_eye", "LEye": "left_eye", "REar": "right_ear",
        "LEar": "left_ear", "LBigToe": "left_foot_index", "LHeel": "left_heel",
        "RBigToe": "right_foot_index", "RHeel": "right_heel",
    }  # fmt: skip
    out = np.zeros((25, 3))
    for slot, name in enumerate(OP25_NAMES):
        if name in names:
            out[slot] = landmarks[MP_NAMES.index(names[name])]
    return out


def test_mapping_matches_names():
    marks = _landmarks()
    np.testing.assert_allclose(landmarks_to_op25(marks, hip_fix=False), _slow_op25(marks))


def test_left_right_by_name():
    for slot, name in enumerate(OP25_NAMES):
        source = OP25_FROM_MP[slot]
        if source < 0:
            assert name in EMPTY_SLOTS
        elif name[0] in "LR" and name not in ("LSmallToe", "RSmallToe"):
            assert MP_NAMES[source].startswith({"L": "left_", "R": "right_"}[name[0]]), name


def test_empty_slots_are_zero():
    out = landmarks_to_op25(_landmarks((4, 2)))
    assert out.shape == (4, 2, 25, 3)
    for name in EMPTY_SLOTS:
        assert (out[..., OP25_NAMES.index(name), :] == 0).all()


def test_confidence_is_visibility_clipped():
    marks = _landmarks()
    marks[0, 2] = 1.2  # nose
    marks[2, 2] = -0.1  # left eye
    out = landmarks_to_op25(marks)
    assert out[OP25_NAMES.index("Nose"), 2] == 1.0
    assert out[OP25_NAMES.index("LEye"), 2] == 0.0
    wrist = OP25_NAMES.index("RWrist")
    assert out[wrist, 2] == marks[MP_NAMES.index("right_wrist"), 2]


def test_hips_widened():
    marks = _landmarks()
    left, right = MP_NAMES.index("left_hip"), MP_NAMES.index("right_hip")
    marks[left, :2], marks[right, :2] = (60.0, 50.0), (40.0, 52.0)
    out = landmarks_to_op25(marks)
    lhip, rhip = out[OP25_NAMES.index("LHip"), :2], out[OP25_NAMES.index("RHip"), :2]
    np.testing.assert_allclose(lhip, (60 + MP_HIP_OUTWARD * 20, 50 - MP_HIP_OUTWARD * 2))
    np.testing.assert_allclose(rhip, (40 - MP_HIP_OUTWARD * 20, 52 + MP_HIP_OUTWARD * 2))
    # the midpoint stays, the width grows by 1 + 2 * outward; nothing else moves
    np.testing.assert_allclose((lhip + rhip) / 2, (50, 51))
    widened = widen_hips(marks)
    others = [i for i in range(33) if i not in (left, right)]
    np.testing.assert_array_equal(widened[others], marks[others])


def test_outside_image_has_no_confidence():
    marks = _landmarks()
    marks[MP_NAMES.index("left_ankle"), :2] = (50.0, 130.0)  # below a 100-row image
    marks[MP_NAMES.index("nose"), :2] = (-3.0, 20.0)
    out = landmarks_to_op25(marks, image_size=(100, 120))
    assert out[OP25_NAMES.index("LAnkle"), 2] == 0.0
    assert out[OP25_NAMES.index("Nose"), 2] == 0.0
    inside = landmarks_to_op25(marks)
    assert inside[OP25_NAMES.index("LAnkle"), 2] == marks[MP_NAMES.index("left_ankle"), 2]


def test_wrong_shape():
    with pytest.raises(ValueError, match=r"\(\.\.\., 33, 3\)"):
        landmarks_to_op25(np.zeros((17, 3)))
