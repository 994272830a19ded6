"""The 3D-joint objective (slahmr_opt.mocap.stage): one objective for both minimisers, recovers
known bodies with Theseus LM, windows long sequences, and fits real mocap."""

import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from slahmr_opt.body import SMPL_PARENTS, BodyConfig, load_body_model
from slahmr_opt.geometry.rotations import rotvec_to_rotmat
from slahmr_opt.mocap.bvh import parse_bvh
from slahmr_opt.mocap.fit import _Batch
from slahmr_opt.mocap.stage import objective
from slahmr_opt.mocap.targets import (
    FitSettings,
    RelativeTerms,
    fit_body_to_joints,
    fit_sequences,
    joint_rotations,
    relative_terms,
    smpl_targets,
)

pytestmark = pytest.mark.slow

BANDAI_TAR = Path(__file__).resolve().parents[2].parent / "shared/data/mocap/bandai-namco-2.tar.xz"
LM = FitSettings(pose_weight=1e-4, shape_weight=1e-5, smooth_weight=0.0, solver="lm",
                 stage_iterations=12)  # fmt: skip


@pytest.fixture(scope="module")
def body():
    return load_body_model(BodyConfig())


def _synthetic(body, num_frames: int, seed: int = 0):
    """Known body parameters, their joints (T, 24, 3) and global rotations (T, 22, 3, 3)."""
    g = torch.Generator().manual_seed(seed)
    f64 = {"generator": g, "dtype": torch.float64}
    params = {
        "betas": 0.7 * torch.randn(body.num_betas, **f64),
        "global_orient": 0.3 * torch.randn(num_frames, 3, **f64) + torch.tensor([0.0, 2.5, 0]),
        "body_pose": 0.25 * torch.randn(num_frames, 21, 3, **f64),
        "transl": torch.randn(num_frames, 3, **f64),
    }
    with torch.no_grad():
        out = body.double()(**{**params, "betas": params["betas"].expand(num_frames, -1)})
    body.float()
    rots = [rotvec_to_rotmat(params["global_orient"])]
    for j in range(1, 22):
        rots.append(rots[SMPL_PARENTS[j]] @ rotvec_to_rotmat(params["body_pose"][:, j - 1]))
    return params, out.joints.numpy(), torch.stack(rots, 1).numpy()


def test_direct_and_stage_minimise_one_objective(body):
    """The direct L-BFGS fit and the LM stage, from the same start, reach the same value of
    the one objective (relative, direction and rotation terms and every regulariser on)."""
    _, joints, rots = _synthetic(body, 5, seed=4)
    x = joints + np.random.default_rng(0).normal(scale=0.02, size=joints.shape)
    s = FitSettings(dtype=torch.float64, smooth_weight=0.7, shape_weight=0.3, pose_weight=0.2,
                    iterations=400)  # fmt: skip
    rots = [rots[:2, [0, 15]], rots[2:, [0, 15]]]
    args = [body, [x[:2], x[2:]], np.linspace(0, 1, 24), s, relative_terms(), rots]
    values = []
    for solver in ("direct", "lm"):
        args[3] = replace(s, solver=solver, stage_iterations=40)
        fits = fit_sequences(*args)
        params = {
            k: torch.from_numpy(np.concatenate([getattr(f, k) for f in fits])).flatten(1)
            for k in ("root_orient", "trans", "pose_body")
        }
        params["betas"] = torch.from_numpy(np.stack([f.betas for f in fits]))
        targets = _Batch(body.double(), args[1], args[2], args[4], s, rots).targets
        values.append(float(objective(s, targets, body.double(), [2, 3], params)))
        body.float()
    assert abs(values[0] - values[1]) < 0.01 * values[1]


def test_stage_recovers_a_known_body(body):
    params, joints, rots = _synthetic(body, 3)
    fit = fit_body_to_joints(body, joints, np.ones(24), LM)
    assert fit.residual_mm.mean() < 1.0 and np.nanmax(fit.joint_error_mm) < 2.0
    np.testing.assert_allclose(fit.trans, params["transl"].numpy(), atol=2e-3)
    # With every joint's rotation as a target the full pose (twists included) is observed.
    every = RelativeTerms(rotation_joints=np.arange(22), rotation_weights=np.ones(22))
    fit = fit_body_to_joints(body, joints, np.ones(24), LM, every, rots)
    assert fit.residual_mm.mean() < 1.0
    fitted = rotvec_to_rotmat(torch.from_numpy(fit.pose_body))
    truth = rotvec_to_rotmat(params["body_pose"])
    assert (fitted - truth).abs().max() < 0.01
    np.testing.assert_allclose(fit.betas, params["betas"].numpy(), atol=0.05)


def test_long_sequences_are_solved_in_windows(body):
    """6 frames with at most 4 per solve: betas from every 2nd frame, then two windows."""
    (p0, j0, _), (p1, j1, _) = _synthetic(body, 6, seed=2), _synthetic(body, 2, seed=3)
    s = FitSettings(**{**vars(LM), "stage_max_frames": 4, "stage_iterations": 10})
    fits = fit_sequences(body, [j0, j1], np.ones(24), s)
    assert [len(f.trans) for f in fits] == [6, 2]
    for fit, params in zip(fits, (p0, p1), strict=True):
        assert fit.residual_mm.mean() < 1.0
        np.testing.assert_allclose(fit.trans, params["transl"].numpy(), atol=3e-3)


def test_unknown_solver_is_reported(body):
    with pytest.raises(ValueError, match="solver"):
        fit_body_to_joints(body, np.zeros((2, 24, 3)), np.ones(24), FitSettings(solver="gn"))


def test_stage_fits_real_mocap(body):
    if not BANDAI_TAR.exists():
        pytest.skip(f"shared mocap data not found at {BANDAI_TAR}")
    with tarfile.open(BANDAI_TAR, "r:xz") as archive:
        member = next(m for m in archive if m.name.endswith(".bvh"))
        motion = parse_bvh(archive.extractfile(member).read().decode(), member.name, scale=0.01)
    frames = slice(0, 48, 4)
    targets, weights = smpl_targets(motion)
    settings = FitSettings(smooth_weight=1.0 / 16, solver="lm", stage_iterations=10)
    fit = fit_body_to_joints(body, targets[frames], weights, settings, relative_terms(),
                             joint_rotations(motion)[frames])  # fmt: skip
    # The direct L-BFGS fit of whole files reaches 21 mm (priors/pose_gmm/README.md).
    assert np.nanmean(fit.joint_error_mm) < 30.0
    assert np.abs(fit.betas).max() < 8.0
