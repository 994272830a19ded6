"""The one point-set alignment (``geometry.align``): known transforms come back exactly, fits are
least squares, rotations stay proper, and the degenerate inputs give what callers rely on."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from slahmr_opt.geometry.align import MIN_SPREAD, Similarity, kabsch, umeyama


def _points(n=40, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 3))


@pytest.mark.parametrize("scale", [1.0, 0.37, 4.2])
def test_umeyama_recovers_a_known_similarity(scale):
    src = _points()
    R = Rotation.from_rotvec([0.4, -1.1, 2.3]).as_matrix()
    t = np.array([3.0, -1.0, 0.25])
    fit = umeyama(src, scale * src @ R.T + t)
    assert isinstance(fit, Similarity) and isinstance(fit.s, float)
    assert fit.s == pytest.approx(scale, rel=1e-12)
    np.testing.assert_allclose(fit.R, R, atol=1e-12)
    np.testing.assert_allclose(fit.t, t, atol=1e-12)
    np.testing.assert_allclose(fit.apply(src), scale * src @ R.T + t, atol=1e-12)


def test_rigid_fit_keeps_unit_scale_and_finds_the_rotation():
    src = _points(seed=1)
    R = Rotation.random(random_state=4).as_matrix()
    dst = 2.0 * src @ R.T + 1.0
    s, R_fit, t = umeyama(src, dst, with_scale=False)
    assert s == 1.0
    np.testing.assert_allclose(R_fit, R, atol=1e-12)  # the rotation does not depend on the scale
    np.testing.assert_allclose(t, dst.mean(0) - src.mean(0) @ R.T, atol=1e-12)


def test_fit_is_least_squares():
    """With noise, no nearby similarity has a smaller sum of squares."""
    rng = np.random.default_rng(2)
    src = _points(seed=2)
    dst = 1.3 * src @ Rotation.random(random_state=5).as_matrix().T + rng.normal(size=(40, 3)) * 0.1
    fit = umeyama(src, dst)
    best = ((fit.apply(src) - dst) ** 2).sum()
    for _ in range(50):
        dR = Rotation.from_rotvec(rng.normal(size=3) * 1e-3).as_matrix()
        other = Similarity(
            fit.s * (1 + rng.normal() * 1e-3), dR @ fit.R, fit.t + rng.normal(size=3) * 1e-3
        )
        assert ((other.apply(src) - dst) ** 2).sum() > best


def test_mirrored_points_give_a_proper_rotation():
    src = _points(seed=3)
    dst = src * np.array([1.0, 1.0, -1.0])  # a reflection: no rotation fits exactly
    fit = umeyama(src, dst)
    assert np.linalg.det(fit.R) == pytest.approx(1.0)
    np.testing.assert_allclose(fit.R @ fit.R.T, np.eye(3), atol=1e-12)
    assert 0 < fit.s < 1  # the best similarity shrinks towards the mirrored cloud's centre


def test_points_without_spread_get_zero_scale():
    dst = _points(5, seed=4)
    fit = umeyama(np.full((5, 3), 2.0), dst)
    assert fit.s == 0.0
    np.testing.assert_allclose(fit.t, dst.mean(0))
    tiny = np.full((5, 3), 2.0) + _points(5, seed=5) * np.sqrt(MIN_SPREAD) * 0.1
    assert umeyama(tiny, dst).s == 0.0
    assert umeyama(tiny, dst, with_scale=False).s == 1.0


def test_collinear_points_are_mapped_exactly():
    """Points on a line leave the rotation about it free; any optimal one maps the points."""
    line = np.linspace(-1, 1, 11)[:, None] * np.array([1.0, 2.0, -0.5])
    R = Rotation.from_rotvec([0.3, 0.2, -0.9]).as_matrix()
    dst = 1.5 * line @ R.T + 4.0
    fit = umeyama(line, dst)
    assert fit.s == pytest.approx(1.5)
    np.testing.assert_allclose(fit.apply(line), dst, atol=1e-12)
    assert np.linalg.det(fit.R) == pytest.approx(1.0)


def test_kabsch_is_batched_and_uncentred():
    rng = np.random.default_rng(6)
    src = rng.normal(size=(4, 20, 3))
    rots = Rotation.random(4, random_state=7).as_matrix()
    dst = np.einsum("bij,bnj->bni", rots, src)
    fits = kabsch(src, dst)
    assert fits.shape == (4, 3, 3)
    np.testing.assert_allclose(fits, rots, atol=1e-12)
    np.testing.assert_allclose(kabsch(src[2], dst[2]), rots[2], atol=1e-12)
    # a translation is not removed: the fit is about the origin
    shifted = kabsch(src[0], dst[0] + 5.0)
    assert not np.allclose(shifted, rots[0], atol=1e-3)
    assert np.allclose(np.linalg.det(shifted), 1.0)
