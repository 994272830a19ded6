"""Mocap -> body: split rule, skeleton mapping, handedness, and fitting round trips."""

import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from slahmr_opt.body import SMPL_JOINT_NAMES, SMPL_PARENTS, BodyConfig, load_body_model
from slahmr_opt.errors import InputError
from slahmr_opt.geometry.rotations import rotvec_to_rotmat
from slahmr_opt.mocap.bvh import parse_bvh
from slahmr_opt.mocap.targets import (
    BANDAI_ROTATIONS,
    BANDAI_TO_SMPL,
    FitSettings,
    RelativeTerms,
    check_handedness,
    fit_body_to_joints,
    fit_sequences,
    joint_rotations,
    relative_terms,
    smpl_targets,
    split_of,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
BANDAI_TAR = SHARED / "data" / "mocap" / "bandai-namco-2.tar.xz"
BANDAI_JOINTS = {
    "joint_Root", "Hips", "Spine", "Chest", "Neck", "Head",
    *(f"{j}_{s}" for j in ("Shoulder", "UpperArm", "LowerArm", "Hand", "UpperLeg", "LowerLeg",
                           "Foot", "Toes") for s in "LR"),
}  # fmt: skip
EXACT = FitSettings(
    iterations=500, pose_weight=1e-4, shape_weight=1e-5, smooth_weight=0.0, dtype=torch.float64
)


@pytest.fixture(scope="module")
def body():
    return load_body_model(BodyConfig())


@pytest.fixture(scope="module")
def bandai_motion():
    if not BANDAI_TAR.exists():
        pytest.skip(f"shared mocap data not found at {BANDAI_TAR}")
    with tarfile.open(BANDAI_TAR, "r:xz") as archive:
        member = next(m for m in archive if m.name.endswith(".bvh"))
        text = archive.extractfile(member).read().decode()
    return parse_bvh(text, source=member.name, scale=0.01)


def _synthetic(body, num_frames: int, seed: int = 0):
    """Known body parameters and their joints (float64)."""
    g = torch.Generator().manual_seed(seed)
    params = {
        "betas": 0.7 * torch.randn(body.num_betas, generator=g, dtype=torch.float64),
        "global_orient": 0.3 * torch.randn(num_frames, 3, generator=g, dtype=torch.float64)
        + torch.tensor([0.0, 2.5, 0.0], dtype=torch.float64),
        "body_pose": 0.25 * torch.randn(num_frames, 21, 3, generator=g, dtype=torch.float64),
        "transl": torch.randn(num_frames, 3, generator=g, dtype=torch.float64),
    }
    with torch.no_grad():
        out = body.double()(**{**params, "betas": params["betas"].expand(num_frames, -1)})
    body.float()
    return params, out.joints.numpy()


def _global_rotations(orient, pose):
    rots = [rotvec_to_rotmat(orient)]
    for j in range(1, 22):
        rots.append(rots[SMPL_PARENTS[j]] @ rotvec_to_rotmat(pose[:, j - 1]))
    return torch.stack(rots, 1)


@pytest.mark.parametrize(
    ("name", "split"),
    [("dataset-2_walk_normal_001.bvh", "train"), ("dataset-2_run_active_010.bvh", "eval"),
     ("dataset-2_run_active_100.bvh", "eval"), ("a/b/dataset-2_wave_2_041.bvh", "train")],
)  # fmt: skip
def test_split_rule(name, split):
    assert split_of(name) == split


def test_split_rule_needs_a_take_number():
    with pytest.raises(InputError, match="take number"):
        split_of("walk.bvh")


def test_table_names_are_known():
    assert {s.smpl for s in BANDAI_TO_SMPL} == set(SMPL_JOINT_NAMES)
    assert {s.bvh for s in BANDAI_TO_SMPL if s.bvh} <= BANDAI_JOINTS
    assert {b for _, b, _, _ in BANDAI_ROTATIONS} <= BANDAI_JOINTS
    for _, _, axes, _ in BANDAI_ROTATIONS:
        np.testing.assert_allclose(np.linalg.det(np.asarray(axes, float)), 1.0)
    terms = relative_terms()
    assert (terms.anchors[terms.anchor_weights > 0] >= 0).all()


def _rest_joints(body, betas) -> np.ndarray:
    """(24, 3) joints of the rest pose for betas (B,)."""
    zero = torch.zeros(3, dtype=torch.float64)
    with torch.no_grad():
        out = body.double()(
            torch.as_tensor(betas).double(), zero, torch.zeros(21, 3).double(), zero
        )
    body.float()
    return out.joints.numpy()


@pytest.mark.slow
def test_fit_recovers_known_body(body):
    params, joints = _synthetic(body, num_frames=6)
    fit = fit_body_to_joints(body, joints, np.ones(24), EXACT)
    assert fit.pose_body.shape == (6, 21, 3) and fit.betas.shape == (body.num_betas,)
    assert np.nanmax(fit.joint_error_mm) < 3.0 and fit.residual_mm.mean() < 1.0
    # The shape (as its rest skeleton) and the root are recovered; joint rotations only up to
    # the twists that move no joint, so they are compared through the joints above.
    rest_error = np.abs(_rest_joints(body, fit.betas) - _rest_joints(body, params["betas"]))
    assert rest_error.max() < 3e-3
    np.testing.assert_allclose(fit.trans, params["transl"].numpy(), atol=3e-3)
    rot = rotvec_to_rotmat(torch.from_numpy(fit.root_orient))
    torch.testing.assert_close(rot, rotvec_to_rotmat(params["global_orient"]), atol=0.02,
                               rtol=0)  # fmt: skip


@pytest.mark.slow
def test_rotation_targets_recover_the_head_turn(body):
    params, joints = _synthetic(body, num_frames=4, seed=1)
    rots = _global_rotations(params["global_orient"], params["body_pose"])[:, [0, 15]]
    terms = RelativeTerms(rotation_joints=np.array([0, 15]), rotation_weights=np.ones(2))
    fit = fit_body_to_joints(body, joints, np.ones(24), EXACT, terms, rots.numpy())
    fitted = _global_rotations(torch.from_numpy(fit.root_orient), torch.from_numpy(fit.pose_body))
    torch.testing.assert_close(fitted[:, 15], rots[:, 1], atol=0.02, rtol=0)
    # Without the rotation targets the head's turn is unobserved and stays near zero.
    free = fit_body_to_joints(body, joints, np.ones(24), EXACT)
    assert np.abs(free.pose_body[:, 14]).max() < 0.02


@pytest.mark.slow
def test_sequences_keep_their_own_betas(body):
    (p0, j0), (p1, j1) = _synthetic(body, 3, seed=2), _synthetic(body, 4, seed=3)
    fits = fit_sequences(body, [j0, j1], np.ones(24), EXACT)
    assert [len(f.trans) for f in fits] == [3, 4]
    for fit, params in zip(fits, (p0, p1), strict=True):
        rest_error = np.abs(_rest_joints(body, fit.betas) - _rest_joints(body, params["betas"]))
        assert rest_error.max() < 5e-3


def test_bad_target_shape_is_reported(body):
    with pytest.raises(ValueError, match=r"\(T, 24, 3\)"):
        fit_body_to_joints(body, np.zeros((2, 22, 3)), np.ones(24))


def test_bandai_mapping_faces_forward(bandai_motion):
    targets, weights = smpl_targets(bandai_motion)
    assert targets.shape == (bandai_motion.num_frames, 24, 3) and weights.shape == (24,)
    assert check_handedness(targets, bandai_motion.source) > 0.9
    mirrored = targets * np.array([-1.0, 1.0, 1.0])
    with pytest.raises(InputError, match="mirrored"):
        check_handedness(mirrored, "mirrored.bvh")
    rots = joint_rotations(bandai_motion)
    assert rots.shape == (bandai_motion.num_frames, len(BANDAI_ROTATIONS), 3, 3)
    # The pelvis' left axis points from the right hip to the left one.
    left = targets[:, 1] - targets[:, 2]
    assert np.mean(np.einsum("tc,tc->t", rots[:, 0, :, 0], left) > 0) > 0.95


@pytest.mark.slow
def test_bandai_fit_is_close_and_plausible(body, bandai_motion):
    frames = slice(0, None, 4)
    targets, weights = smpl_targets(bandai_motion)
    fit = fit_body_to_joints(
        body, targets[frames], weights, FitSettings(smooth_weight=1.0 / 16), relative_terms(),
        joint_rotations(bandai_motion)[frames],
    )  # fmt: skip
    assert np.nanmean(fit.joint_error_mm) < 35.0
    assert np.abs(fit.betas).max() < 8.0
    # Limb bones follow the mocap skeleton's directions.
    for child, parent in ((4, 1), (7, 4), (18, 16), (20, 18)):
        a = fit.joints[:, child] - fit.joints[:, parent]
        b = targets[frames][:, child] - targets[frames][:, parent]
        cos = np.einsum("tc,tc->t", a, b) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        assert np.median(cos) > 0.98
