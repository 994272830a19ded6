"""``person_summaries``: per-person stature, path and speed from ``results.npz`` arrays."""

import numpy as np
import pytest

from slahmr_opt.io.results import person_summaries


def _arrays(floor: bool) -> dict:
    fps, T = 30.0, 91
    t = np.arange(T) / fps
    joints = np.zeros((2, T, 24, 3), np.float32)
    joints[0, :, 0, 0] = 1.2 * t  # walks 1.2 m/s along x
    joints[0, :, 0, 1] = 0.9 + 0.03 * np.sin(2 * np.pi * 2 * t)  # bobs up and down
    joints[1, :, 0] = [2.0, 0.9, 3.0]  # stands
    joints[:, :, [7, 8, 10, 11], 1] = [0.08, 0.09, 0.03, 0.04]  # ankles, toes on the floor
    joints[0, ::2, [8, 11], 1] += 0.2  # the walker lifts the right foot every other frame
    stride = 0.15 * np.sin(2 * np.pi * 1.0 * t + 0.3)  # one stride (two steps) a second
    joints[0, :, 7, 0] = joints[0, :, 0, 0] + stride  # left ankle
    joints[0, :, 8, 0] = joints[0, :, 0, 0] - stride  # right ankle
    joints[1, :, [7, 8, 10, 11], 1] += 0.15  # the stander floats 15 cm above the floor
    mask = np.ones((2, T), bool)
    mask[1, 60:] = False
    return {
        "joints": joints,
        "track_mask": mask,
        "track_ids": np.array(["001", "002"]),
        "fps": np.array(fps),
        "stature": np.array([1.75, 1.62], np.float32),
        "floor_plane": np.array([0, 1, 0, 0.0]) if floor else np.full(4, np.nan),
    }


def test_walker_and_stander_on_the_floor():
    walker, stander = person_summaries(_arrays(floor=True))
    assert walker["track"] == "001" and walker["frames"] == 91 and stander["frames"] == 60
    assert (walker["stature_m"], stander["stature_m"]) == pytest.approx((1.75, 1.62))
    # 3 s at 1.2 m/s; the smoothing trims a little at the ends
    assert walker["speed_m_s"] == pytest.approx(1.2, rel=0.05)
    assert walker["displacement_m"] == pytest.approx(3.6, rel=0.05)
    assert stander["path_m"] == 0 and stander["speed_m_s"] == 0
    assert walker["foot_height_m"] == pytest.approx(0.03) and stander["foot_height_m"] == 0.18
    # two steps a second at 1.2 m/s: 0.6 m each; the stander takes none
    assert walker["steps_per_s"] == pytest.approx(2.0, rel=0.02)
    assert walker["step_length_m"] == pytest.approx(0.6, rel=0.05)
    assert "steps_per_s" not in stander


def test_slow_motion_halves_the_cadence_not_the_step_length():
    arrays = _arrays(floor=True)
    slow = dict(arrays, fps=np.array(15.0))
    (walker, _), (slowed, _) = person_summaries(arrays), person_summaries(slow)
    assert slowed["steps_per_s"] == pytest.approx(walker["steps_per_s"] / 2, rel=0.01)
    assert slowed["step_length_m"] == pytest.approx(walker["step_length_m"], rel=0.02)


def test_without_a_floor_the_bobbing_counts():
    walker, _ = person_summaries(_arrays(floor=False))
    on_floor, _ = person_summaries(_arrays(floor=True))
    assert walker["path_m"] > on_floor["path_m"]
    assert "foot_height_m" not in walker
