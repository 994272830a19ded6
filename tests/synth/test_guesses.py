"""Regressor-like guesses of the benchmark: mirroring, flips, bursts, the facing metric."""

from dataclasses import replace

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from slahmr_opt.eval.metrics import facing_errors
from slahmr_opt.geometry.rotations import rotvec_to_rotmat
from slahmr_opt.synth.guesses import (
    GUESS_PRESETS,
    _bursts,
    regressor_guess,
)
from slahmr_priors.augment import SMPL_PAIRS, mirror_pose


def test_mirror_pose_is_an_involution_that_swaps_sides():
    pose = torch.randn(5, 21, 3, dtype=torch.float64)
    torch.testing.assert_close(mirror_pose(mirror_pose(pose)), pose)
    m = mirror_pose(pose)
    a, b = (j - 1 for j in SMPL_PAIRS[0])  # the hips, as pose_body indices
    torch.testing.assert_close(m[:, a], pose[:, b] * torch.tensor([1.0, -1.0, -1.0]).double())
    spine = 2  # spine1 has no partner: only its y and z components change sign
    torch.testing.assert_close(m[:, spine, 0], pose[:, spine, 0])


def test_bursts_cover_about_the_fraction():
    rng = np.random.default_rng(0)
    valid = np.ones(300, bool)
    valid[100:150] = False
    hit = _bursts(valid, 0.05, (3, 15), rng)
    assert not hit[100:150].any()
    assert 0.05 * 250 <= hit.sum() <= 0.05 * 250 + 4


def test_facing_errors():
    R = Rotation.from_rotvec([[0, 0, 0]] * 3).as_matrix()
    R2 = Rotation.from_rotvec([[0, np.radians(30), 0], [0, np.radians(60), 0], [np.pi, 0, 0]])
    np.testing.assert_array_equal(facing_errors(R2.as_matrix(), R), [0.0, 100.0, 100.0])


def test_flipped_frames_face_away():
    P, T = 1, 200
    root = torch.zeros(P, T, 3, dtype=torch.float64)
    pose = torch.zeros(P, T, 21, 3, dtype=torch.float64)
    pelvis = torch.zeros(P, T, 3, dtype=torch.float64)
    pelvis[..., 2] = 4.0
    R, t = torch.eye(3).expand(T, 3, 3).double(), torch.zeros(T, 3).double()
    vis = torch.ones(P, T, dtype=bool)
    s = replace(GUESS_PRESETS["realistic"], rot_deg=0, rot_bias_deg=0, missing_frac=0)
    g = regressor_guess(root, pose, pelvis, torch.zeros(3), R, t, vis, s, np.random.default_rng(1))
    off = facing_errors(rotvec_to_rotmat(g.global_orient_c.double())[0].numpy(),
                        np.eye(3)[None].repeat(T, 0))  # fmt: skip
    assert 100 * s.flip_frac <= off.mean() <= 100 * s.flip_frac + 3
    assert g.valid.all()
