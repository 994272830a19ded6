"""The camera scale from the human-scene contact (``init.contact_scale``) on synthetic scenes with
a known scale: a camera walking beside a person at 1.5 m height, soles on the ground y = 0, a SLAM
map that is the true scene divided by the scale."""

import logging
from dataclasses import replace

import numpy as np
import pytest
import torch
from stages.scene import make_scene

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.config import load_config
from slahmr_opt.init.contact_scale import BODY_SIZE_REL_STD, contact_scale, fit_ground
from slahmr_opt.init.scale import scale_observable
from slahmr_opt.io.results import result_arrays
from slahmr_opt.solve import solve
from slahmr_opt.synth.guesses import GUESS_PRESETS
from slahmr_opt.synth.points import slam_points
from slahmr_opt.types import ScenePoints

ALPHA = 0.37
T = 60
UP = np.array([0.0, 1.0, 0.0])


def _scene():
    """True metric cameras (world-to-camera) and soles of a person walking 4 m ahead of them."""
    centres = np.stack([np.linspace(0, 3, T), np.full(T, 1.5), np.zeros(T)], 1)
    soles = centres * [1, 0, 1] + [0.0, 0.0, 4.0] + 0.1 * np.sin(np.arange(T))[:, None] * [1, 0, 0]
    R = []
    for c, s in zip(centres, soles, strict=True):
        fwd = (s + [0.0, 0.9, 0.0]) - c
        fwd /= np.linalg.norm(fwd)
        right = np.cross(fwd, UP)
        right /= np.linalg.norm(right)
        R.append(np.stack([right, np.cross(fwd, right), fwd]))
    R = np.stack(R)
    t = -np.einsum("tij,tj->ti", R, centres)
    sole_c = np.einsum("tij,tj->ti", R, soles) + t
    return R, t, sole_c[None]


def _estimate(world_points: np.ndarray, R, t, sole_c):
    points = ScenePoints(torch.from_numpy(world_points / ALPHA))
    return contact_scale(torch.from_numpy(sole_c), torch.ones(sole_c.shape[:2], dtype=torch.bool),
                         torch.from_numpy(R), torch.from_numpy(t / ALPHA), points,
                         torch.from_numpy(UP))  # fmt: skip


def _ground(rng, n, lo=(-5.0, -2.0), hi=(8.0, 12.0)):
    xz = rng.uniform(lo, hi, size=(n, 2))
    return np.stack([xz[:, 0], np.zeros(n), xz[:, 1]], 1)


def test_scale_from_points_near_the_feet():
    R, t, sole_c = _scene()
    rng = np.random.default_rng(0)
    est = _estimate(_ground(rng, 20000), R, t, sole_c)
    assert est.alpha == pytest.approx(ALPHA, rel=1e-6)
    assert est.local == T and est.frames == T
    assert est.log_std < 1e-6
    assert est.rel_std == pytest.approx(BODY_SIZE_REL_STD)  # what the body's size leaves


def test_scale_from_the_ground_plane_where_no_point_is_near_the_feet():
    """Only far ground (more than 4 m beside the path) and a wall: every frame falls back to the
    plane, which must still give the scale; depth noise of 2 % costs at most 2 %."""
    R, t, sole_c = _scene()
    rng = np.random.default_rng(1)
    far = _ground(rng, 3000, lo=(-15.0, -2.0), hi=(-6.0, 12.0))
    wall = np.stack([rng.uniform(-5, 8, 800), rng.uniform(0, 3, 800), np.full(800, 14.0)], 1)
    pts = np.concatenate([far, wall])
    pts = pts * (1 + 0.02 * rng.normal(size=(len(pts), 1)))  # noise along the rays from the origin
    est = _estimate(pts, R, t, sole_c)
    assert est.local == 0 and est.frames == T
    assert est.ground.inliers > 2000
    assert est.alpha == pytest.approx(ALPHA, rel=0.02)


def test_outliers_do_not_move_the_scale():
    R, t, sole_c = _scene()
    rng = np.random.default_rng(2)
    ground = _ground(rng, 4000)
    junk = rng.uniform([-5, -3, -2], [8, 5, 12], size=(1000, 3))  # 20 % anywhere, also below
    est = _estimate(np.concatenate([ground, junk]), R, t, sole_c)
    assert est.alpha == pytest.approx(ALPHA, rel=0.02)


def test_the_ground_is_under_the_walls_not_through_them():
    """Mostly walls and the sides of boxes, 0-3 m high, and a little floor (6 % of the points):
    a horizontal slab through the walls can hold more points than the floor, but half the scene
    lies under it; the ground is the plane with (almost) nothing below. Before that rule the fit
    cut through the walls (the rendered orbit walk: 2.9 times the true scale)."""
    R, t, sole_c = _scene()
    rng = np.random.default_rng(4)
    n = 2000
    walls = np.stack([rng.uniform(-5, 8, n), rng.uniform(0, 3, n), np.full(n, 14.0)], 1)
    walls[::2] = np.stack([np.full(n // 2, -6.0), rng.uniform(0, 3, n // 2),
                           rng.uniform(-2, 12, n // 2)], 1)  # fmt: skip
    floor = _ground(rng, 130)
    points = np.concatenate([walls, floor]) + rng.normal(0, 0.01, (n + 130, 3))
    centres = -np.einsum("tji,tj->ti", R, t)
    ground = fit_ground(points / ALPHA, UP, centres / ALPHA)
    assert ground is not None and abs(ground.offset * ALPHA) < 0.06  # the walls start on it
    # measured 1.049 of the truth: the foot of the walls, within the tolerance, lifts the plane
    assert _estimate(points, R, t, sole_c).alpha == pytest.approx(ALPHA, rel=0.06)


def test_no_ground_no_scale():
    """Points on a wall only: no plane within the tilt of the bodies' up axis, none near the
    soles: no estimate (the solver then falls back to the foot-still search)."""
    R, t, sole_c = _scene()
    rng = np.random.default_rng(3)
    wall = np.stack([rng.uniform(-5, 8, 2000), rng.uniform(0, 3, 2000), np.full(2000, 14.0)], 1)
    assert fit_ground(wall / ALPHA, UP, np.zeros((1, 3))) is None
    assert _estimate(wall, R, t, sole_c) is None


def test_fit_takes_the_camera_scale_from_the_points(caplog):
    """End to end (stages 1-2) on a synthetic tracking shot of a walk, keypoints only: with the
    scene's SLAM-like map the scale lands within the body-size error of the truth."""
    scene = make_scene(1, 60, "tracking", seed=4, guesses=GUESS_PRESETS["none"])
    obs, s = scene.obs, scene.settings
    R_true, t_true = scene.R_true, scene.t_true
    body = load_body_model(BodyConfig(), dtype=torch.float64)
    floor_y = float(scene.joints[..., [10, 11], 1].min()) - 0.05  # toes are ~5 cm up
    points = slam_points(R_true, t_true, obs.cameras.R_w2c.double().numpy(),
                         obs.cameras.t_w2c.double().numpy(), s.alpha_true,
                         obs.cameras.intrins.double().numpy(), obs.cameras.image_size,
                         scene.joints[0, :, 0].mean(0).numpy(), floor_y,
                         np.random.default_rng(0))  # fmt: skip
    cfg = load_config("stages_1_2", ["num_threads=1"])
    with caplog.at_level(logging.INFO, logger="slahmr_opt.stages.camera_scale"):
        result = solve(replace(obs, points=points), cfg, body_model=body, progress=False)
    assert "human-scene contact" in caplog.text
    assert result.cameras.alpha / s.alpha_true == pytest.approx(1.0, abs=0.08)


def test_scale_observable_tells_a_pan_from_a_moving_camera():
    R, t, _ = _scene()
    R, t = torch.as_tensor(R), torch.as_tensor(t) / ALPHA  # SLAM units
    ground = np.stack(np.meshgrid(np.linspace(-5, 8, 20), np.linspace(1, 15, 20)), -1)
    points = torch.as_tensor(
        np.stack([ground[..., 0], np.zeros_like(ground[..., 0]), ground[..., 1]], -1)
    ).reshape(-1, 3) / ALPHA
    assert scale_observable(t, R, points)[0]
    assert scale_observable(t, R, None)[0]
    # the same rotations from one place: SLAM translation noise of 1 % of the scene depth
    still = torch.randn(T, 3, generator=torch.Generator().manual_seed(0)).double() * 0.03
    observable, why = scale_observable(still, R, points)
    assert not observable and "scene depth" in why, why
    assert not scale_observable(torch.zeros(T, 3).double(), R, None)[0]


def test_a_pan_reports_no_world_scale(caplog):
    """End to end (stages 1-2) on a synthetic pan with SLAM-like translation noise and a SLAM-like
    map: the scale is not searched for, and results.npz says NaN instead of a meaningless one."""
    scene = make_scene(1, 40, "pan", seed=2, guesses=GUESS_PRESETS["none"])
    obs, s = scene.obs, scene.settings
    floor_y = float(scene.joints[..., [10, 11], 1].min()) - 0.05
    points = slam_points(scene.R_true, scene.t_true, obs.cameras.R_w2c.double().numpy(),
                         obs.cameras.t_w2c.double().numpy(), s.alpha_true,
                         obs.cameras.intrins.double().numpy(), obs.cameras.image_size,
                         scene.joints[0, :, 0].mean(0).numpy(), floor_y,
                         np.random.default_rng(0))  # fmt: skip
    body = load_body_model(BodyConfig(), dtype=torch.float64)
    cfg = load_config("stages_1_2", ["num_threads=1", "stages.smooth.solver.iterations=3"])
    with caplog.at_level(logging.INFO, logger="slahmr_opt.stages.camera_scale"):
        result = solve(replace(obs, points=points), cfg, body_model=body, progress=False)
    assert "scale cannot be observed" in caplog.text
    assert result.stages[1].camera_scale["cue"] == "none"
    assert np.isnan(result_arrays(result)["world_scale"]).all()
    assert torch.isfinite(result.joints).all()
