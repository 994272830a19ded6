"""Gravity, world velocities, the velocity scale cue and the fused trajectory on synthetic scenes
with a known camera scale."""

import numpy as np
import pytest
import torch

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.geometry.rotations import rotvec_to_rotmat
from slahmr_opt.init.trajectory import (
    fuse_trajectory,
    gravity_up,
    heading_frames,
    scale_from_velocities,
    world_velocities,
)
from slahmr_opt.synth import observe as synth


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(3)
    body = load_body_model(BodyConfig(), dtype=torch.float64)
    root, trans, pose, betas = synth.walking_bodies(1, 150, 30.0, rng)
    s = synth.SynthSettings(camera="orbit", alpha_true=0.37)
    sc = synth.observe_bodies(body, root, trans, pose, betas, s, rng)
    return sc, root


def _slam_from_true(sc):
    """Rotations taking true-world vectors into the SLAM world, per frame: R_slam^T R_true."""
    R_true = torch.from_numpy(sc.R_true)
    return sc.obs.cameras.R_w2c.double().transpose(-1, -2) @ R_true


def test_gravity_and_scale_from_true_motion(scene):
    sc, root = scene
    cams = sc.obs.cameras
    R_true, t_true = torch.from_numpy(sc.R_true), torch.from_numpy(sc.t_true)
    up_c = R_true[None, :, :, 1]  # the true world's +y seen from each camera
    mask = torch.ones(1, 150, dtype=torch.bool)
    up = gravity_up(up_c, cams.R_w2c, mask)
    expected = (_slam_from_true(sc) @ torch.tensor([0.0, 1.0, 0.0]).double()).mean(0)
    assert torch.dot(up, torch.nn.functional.normalize(expected, dim=0)) > 0.9999
    pelvis_w = sc.joints[:, :, 0].double()
    pelvis_c = torch.einsum("tij,ptj->pti", R_true, pelvis_w) + t_true
    vel_true = torch.from_numpy(np.gradient(pelvis_w.numpy(), 1 / 30.0, axis=1))
    # Heading-frame velocities of the truth, then back into the SLAM world.
    root_true = rotvec_to_rotmat(root.double())
    vel_h = (heading_frames(root_true, torch.tensor([0.0, 1.0, 0.0]).double()).transpose(-1, -2)
             @ vel_true[..., None])[..., 0]  # fmt: skip
    root_slam = _slam_from_true(sc)[None] @ root_true
    vel_w = world_velocities(vel_h, root_slam, up)
    torch.testing.assert_close(vel_w, (_slam_from_true(sc)[None] @ vel_true[..., None])[..., 0],
                               atol=0.03, rtol=0)  # fmt: skip
    alpha = scale_from_velocities(pelvis_c, vel_w, cams.R_w2c, cams.t_w2c, mask, 30.0)
    assert alpha == pytest.approx(0.37, rel=0.05)
    # Doubling the SLAM translation halves the scale; a static camera tells nothing.
    alpha2 = scale_from_velocities(pelvis_c, vel_w, cams.R_w2c, 2 * cams.t_w2c, mask, 30.0)
    assert alpha2 == pytest.approx(alpha / 2, rel=1e-6)
    still = scale_from_velocities(pelvis_c, vel_w, cams.R_w2c, 0 * cams.t_w2c, mask, 30.0)
    assert still is None


def test_fused_trajectory_beats_noisy_positions():
    rng = np.random.default_rng(0)
    T, fps = 200, 30.0
    t = np.arange(T) / fps
    x = np.stack([np.sin(t), 0.1 * t, 1.2 * t], -1)
    vel = np.gradient(x, 1 / fps, axis=0)
    noisy = x + rng.normal(size=x.shape) * 0.15
    have = np.ones(T, bool)
    have[50:80] = False  # a gap the velocities bridge
    noisy[~have] = np.nan
    fused = fuse_trajectory(torch.tensor(noisy), torch.tensor(vel), torch.tensor(have), fps)
    err = np.linalg.norm(fused.numpy() - x, axis=-1)
    assert err.mean() < 0.05 and np.isfinite(fused.numpy()).all()
    assert np.linalg.norm(noisy[have] - x[have], axis=-1).mean() > 0.2
