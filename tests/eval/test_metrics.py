"""Metrics on hand-built cases with known answers."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from slahmr_opt.eval.metrics import (
    accel_errors,
    chunked_world_errors,
    foot_sliding,
    jitter,
    mpjpe_errors,
    pa_errors,
    pve_errors,
    rte_errors,
    sequence_errors,
    summarize,
    to_camera,
    umeyama,
)


def _motion(T=250, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(1, 24, 3)) * 0.3
    path = np.cumsum(rng.normal(size=(T, 1, 3)) * 0.02, axis=0)
    return base + path + rng.normal(size=(T, 24, 3)) * 0.01


def test_umeyama_recovers_similarity():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(50, 3))
    R = Rotation.random(random_state=2).as_matrix()
    dst = 1.7 * src @ R.T + np.array([1.0, -2.0, 0.5])
    s, R_est, t = umeyama(src, dst)
    assert s == pytest.approx(1.7)
    np.testing.assert_allclose(R_est, R, atol=1e-10)
    np.testing.assert_allclose(t, [1.0, -2.0, 0.5], atol=1e-10)
    s_rigid, _, _ = umeyama(src, dst, with_scale=False)
    assert s_rigid == 1.0


def test_similarity_transformed_prediction_scores_zero():
    gt = _motion()
    R = Rotation.random(random_state=3).as_matrix()
    pred = 0.4 * gt @ R.T + np.array([3.0, 1.0, -2.0])
    errs = sequence_errors(pred, gt)
    for key in ("w_mpjpe100", "wa_mpjpe100", "pa_mpjpe"):
        assert errs[key].max() < 1e-6, key
    assert len(errs["w_mpjpe100"]) == len(gt)  # 100 + 100 + 50: the last chunk is short


def test_known_offset_gives_its_value():
    gt = _motion()
    pred = gt.copy()
    pred[:, 5] += np.array([0.024, 0.0, 0.0])  # one joint off by 24 mm -> 1 mm per frame mean
    assert mpjpe_errors(pred, gt).mean() == pytest.approx(1.0, abs=0.05)
    # Procrustes can only lower the sum of squares (24 mm^2 here); spread evenly over 24 joints
    # that bounds the mean distance by 24 / sqrt(24) = 4.9 mm.
    pa = pa_errors(pred, gt).mean()
    assert 0 < pa <= 24 / np.sqrt(24) + 1e-9


def test_w_mpjpe_uses_first_two_frames_only():
    gt = _motion(T=100)
    pred = gt.copy()
    pred[50:] += np.array([0.0, 0.1, 0.0])  # a 100 mm jump after frame 50
    w = chunked_world_errors(pred, gt, first_two=True)
    assert w[:50].max() < 1e-6
    np.testing.assert_allclose(w[50:], 100.0, rtol=1e-6)
    wa = chunked_world_errors(pred, gt, first_two=False)
    assert 0 < wa.mean() < 100.0


def test_summary_is_frame_weighted():
    a = {"m": np.full(10, 1.0)}
    b = {"m": np.full(30, 5.0)}
    assert summarize([a, b])["m"] == pytest.approx(4.0)


def test_summary_of_no_values_is_nan():
    assert np.isnan(summarize([{"m": np.zeros(0)}])["m"])


def test_rte_is_zero_for_a_rigid_transform():
    gt = _motion()[:, 0]
    R = Rotation.random(random_state=4).as_matrix()
    assert rte_errors(gt @ R.T + np.array([5.0, -1.0, 2.0]), gt).max() < 1e-9


@pytest.mark.filterwarnings("ignore:Optimal rotation is not uniquely")  # a line: any roll fits
def test_rte_does_not_fit_scale():
    # A root walking 1 m along x, predicted at twice the size about the centre: the rigid fit
    # keeps the size, so each frame is off by its distance to the centre.
    x = np.linspace(0.0, 1.0, 51)
    gt = np.stack([x, np.zeros_like(x), np.zeros_like(x)], 1)
    pred = 2 * (gt - gt.mean(0)) + gt.mean(0)
    rte = rte_errors(pred, gt)
    np.testing.assert_allclose(rte, np.abs(x - 0.5) / 1.0 * 100, atol=1e-9)
    assert rte.mean() == pytest.approx(np.abs(x - 0.5).mean() * 100)


def test_rte_of_a_static_root_is_undefined():
    assert rte_errors(np.zeros((10, 3)), np.zeros((10, 3))).size == 0


def test_jitter_of_constant_velocity_is_zero_and_of_a_cubic_is_its_jerk():
    fps, T = 30.0, 40
    t = np.arange(T) / fps
    base = _motion(T=1)[0]
    linear = base + t[:, None, None] * np.array([1.0, -2.0, 0.5])
    j = jitter(linear, fps)
    assert j.shape == (T - 3,)
    assert np.abs(j).max() < 1e-6
    a = 0.7  # x = a t^3: jerk 6a m/s^3 everywhere; jitter reports tens of m/s^3
    cubic = base + (a * t**3)[:, None, None] * np.array([1.0, 0.0, 0.0])
    np.testing.assert_allclose(jitter(cubic, fps), 6 * a / 10, rtol=1e-6)
    np.testing.assert_allclose(jitter(cubic, 60.0), 6 * a / 10 * 8, rtol=1e-6)


def test_accel_error_of_a_constant_acceleration():
    fps, T = 30.0, 20
    gt = _motion(T=T)
    t = np.arange(T) / fps
    b = 1.5  # pred = gt + b t^2 along y: 2b m/s^2 of extra acceleration on every joint
    pred = gt + (b * t**2)[:, None, None] * np.array([0.0, 1.0, 0.0])
    acc = accel_errors(pred, gt, fps)
    assert acc.shape == (T - 2,)
    np.testing.assert_allclose(acc, 2 * b, rtol=1e-6)
    assert accel_errors(gt + 0.3, gt, fps).max() < 1e-9


def test_foot_sliding():
    T = 15
    gt = np.zeros((T, 4, 3))
    gt[:, 2:, 0] = np.arange(T)[:, None] * 0.02  # right foot swings 2 cm/frame: no contact
    assert foot_sliding(gt, gt).max() < 1e-12
    pred = gt.copy()
    pred[:, :, 2] += np.arange(T)[:, None] * 0.005  # every point slides 5 mm/frame
    fs = foot_sliding(pred, gt)
    assert fs.shape == ((T - 1) * 2,)  # contacts: the left foot's two points, every step
    np.testing.assert_allclose(fs, 5.0, rtol=1e-9)


def test_pve_and_mpjpe_ignore_a_translation_and_see_an_offset():
    joints = _motion(T=5)
    verts = np.random.default_rng(5).normal(size=(5, 30, 3))
    shift = np.array([1.0, 2.0, 3.0])
    assert pve_errors(verts + shift, verts, joints + shift, joints).max() < 1e-9
    np.testing.assert_allclose(pve_errors(verts, verts, joints + shift, joints), 1000 * 14**0.5)


def test_to_camera_matches_per_frame_transform():
    rng = np.random.default_rng(6)
    pts = rng.normal(size=(3, 7, 3))
    R = Rotation.random(3, random_state=7).as_matrix()
    t = rng.normal(size=(3, 3))
    expected = np.stack([p @ r.T + tt for p, r, tt in zip(pts, R, t)])
    np.testing.assert_allclose(to_camera(pts, R, t), expected, atol=1e-12)
