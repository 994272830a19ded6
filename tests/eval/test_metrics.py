"""Metrics on hand-built cases with known answers."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from slahmr_opt.eval.metrics import (
    chunked_world_errors,
    mpjpe_errors,
    pa_errors,
    sequence_errors,
    summarize,
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
