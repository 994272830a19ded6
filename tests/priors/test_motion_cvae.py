"""The CVAE motion prior: shipped weights, the solver's residual, the body-to-state map."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from slahmr_priors.motion_cvae import STATE_DIM, MotionCVAE, states_from_body
from slahmr_priors.motion_cvae.model import CONTACT_JOINTS, SHIPPED
from slahmr_priors.motion_cvae.scores import Motion, jittered, sliding
from slahmr_priors.motion_cvae.state import axis_angle_to_matrix, heading_frame

SAMPLE = Path(__file__).resolve().parents[2] / "priors" / "motion_cvae" / "eval_sample.npz"


@pytest.fixture(scope="module")
def prior() -> MotionCVAE:
    return MotionCVAE.load()


@pytest.fixture(scope="module")
def motions() -> list[Motion]:
    with np.load(SAMPLE) as data:
        starts = data["seq_start"]
        keys = ("root_orient", "pose_body", "joints", "contacts")
        return [Motion(*(data[k][starts[s] : starts[s + 1]].astype(np.float64) for k in keys[:3]),
                       data["contacts"][starts[s] : starts[s + 1]], float(data["fps"][s]))
                for s in range(len(starts) - 1)]  # fmt: skip


def test_shipped_weights_load(prior):
    assert SAMPLE.stat().st_size < 1_000_000
    assert prior.latent == 48 and not any(p.requires_grad for p in prior.parameters())
    assert prior.metadata["train_split"] == "train"
    assert prior.metadata["split"].startswith("trained on the train split only")
    assert SHIPPED.stat().st_size < 8_000_000
    blob = torch.load(SHIPPED, weights_only=True)
    assert set(blob) == {"state_dict", "config", "metadata"}


def test_state_shapes_and_bad_input(motions):
    m = motions[0]
    tr = m.transitions()
    assert tr.prev.shape == tr.cur.shape == (len(m.joints) - 2, STATE_DIM)
    # the previous state sits at its own canonical origin: pelvis above (0, 0)
    assert torch.allclose(
        tr.prev[:, 72:75:2], torch.zeros(len(tr.prev), 2, dtype=torch.float64), atol=1e-9
    )
    with pytest.raises(ValueError, match="expected root_orient"):
        states_from_body(torch.zeros(5, 3), torch.zeros(5, 62), torch.zeros(5, 22, 3), 30.0)
    with pytest.raises(ValueError, match="fps"):
        states_from_body(torch.zeros(5, 3), torch.zeros(5, 63), torch.zeros(5, 22, 3), 0.0)


def test_axis_angle_matches_exponential_map():
    aa = torch.tensor([[0.3, -1.2, 0.5], [1e-9, 0.0, 2e-9], [0.0, 0.0, 0.0]], dtype=torch.float64)
    skew = torch.zeros(3, 3, 3, dtype=torch.float64)
    skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = -aa[:, 2], aa[:, 1], -aa[:, 0]
    skew = skew - skew.transpose(1, 2)
    torch.testing.assert_close(axis_angle_to_matrix(aa), torch.linalg.matrix_exp(skew))


def test_rotation_helpers_gradcheck_at_and_near_zero():
    aa = torch.tensor([[0.0, 0.0, 0.0], [1e-5, -2e-5, 3e-6], [0.4, 1.0, -0.3]],
                      dtype=torch.float64, requires_grad=True)  # fmt: skip
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (aa,))
    assert torch.autograd.gradcheck(lambda a: heading_frame(axis_angle_to_matrix(a)), (aa,))


def test_motion_residual_is_local(motions):
    model = MotionCVAE.load().double()
    m = motions[3]
    args = [torch.from_numpy(a[:12].copy()) for a in (m.root_orient, m.pose_body, m.joints)]
    r = model.motion_residual(*args, m.fps)
    assert r.shape == (10, model.latent + STATE_DIM)
    args[2][7] += 0.05  # moving frame 7 changes only the transitions reading it: t = 7, 8, 9
    changed = (model.motion_residual(*args, m.fps) - r).abs().amax(-1) > 0
    assert changed.tolist() == [t in (7, 8, 9) for t in range(2, 12)]


def test_canonicalisation_invariant_to_yaw_and_horizontal_shift(motions):
    m = motions[1]
    tr = m.transitions()
    yaw, shift = 2.1, np.array([3.0, 0.0, -1.5])
    turn = axis_angle_to_matrix(torch.tensor([0.0, yaw, 0.0], dtype=torch.float64)).numpy()
    root = axis_angle_to_matrix(torch.from_numpy(m.root_orient)).numpy()
    moved_root = torch.from_numpy(turn @ root)
    # back to axis-angle through the quaternion (angles < pi here)
    moved_aa = _matrix_to_axis_angle(moved_root)
    moved = Motion(moved_aa.numpy(), m.pose_body, m.joints @ turn.T + shift, m.contacts, m.fps)
    tr2 = moved.transitions()
    torch.testing.assert_close(tr2.prev, tr.prev, atol=1e-9, rtol=0)
    torch.testing.assert_close(tr2.cur, tr.cur, atol=1e-9, rtol=0)


def _matrix_to_axis_angle(rot: torch.Tensor) -> torch.Tensor:
    angle = torch.arccos(((rot.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1, 1))
    axis = torch.stack([rot[:, 2, 1] - rot[:, 1, 2], rot[:, 0, 2] - rot[:, 2, 0],
                        rot[:, 1, 0] - rot[:, 0, 1]], -1)  # fmt: skip
    return axis / (2 * torch.sin(angle))[:, None] * angle[:, None]


def test_energy_is_half_squared_residual_plus_normalisers(prior, motions):
    tr = motions[0].transitions()
    model = MotionCVAE.load().double()
    prev, cur = tr.prev[:20], tr.cur[:20]
    r = model.transition_residual(prev, cur)
    assert r.shape == (20, model.latent + STATE_DIM) and torch.isfinite(r).all()
    z = model.posterior(prev, cur)[0]
    p_z = torch.distributions.Normal(model.prior(prev), model.prior_std)
    p_x = torch.distributions.Normal(model.decode(prev, z)[0], model.dec_std)
    nll = -(p_z.log_prob(z).sum(-1) + p_x.log_prob(cur).sum(-1))
    torch.testing.assert_close(0.5 * r.square().sum(-1) + model.const, nll)
    torch.testing.assert_close(model.energy(prev, cur), nll)
    probs = model.contact_probabilities(prev, cur)
    assert probs.shape == (20, len(CONTACT_JOINTS)) and ((probs >= 0) & (probs <= 1)).all()


def test_analytic_jacobians_match_autodiff(motions):
    model = MotionCVAE.load().double()
    tr = motions[4].transitions()
    prev, cur = tr.prev[5:9], tr.cur[5:9]
    r, jac_prev, jac_cur = model.transition_residual_and_jacobian(prev, cur)
    torch.testing.assert_close(r, model.transition_residual(prev, cur))
    auto = torch.func.vmap(torch.func.jacrev(model.transition_residual, argnums=(0, 1)))
    auto_prev, auto_cur = auto(prev, cur)
    assert auto_prev.abs().max() > 1  # the check is not vacuous
    torch.testing.assert_close(jac_prev, auto_prev, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(jac_cur, auto_cur, rtol=1e-9, atol=1e-9)


def test_residual_gradcheck_through_body_map(motions):
    model = MotionCVAE.load().double()
    m = motions[2]
    inputs = [torch.from_numpy(a[10:14].copy()).requires_grad_(True)
              for a in (m.root_orient, m.pose_body, m.joints)]  # fmt: skip

    def residual(root, pose, joints):
        tr = states_from_body(root, pose, joints, m.fps)
        return torch.cat([model.transition_residual(tr.prev, tr.cur),
                          model.contact_probabilities(tr.prev, tr.cur)], -1)  # fmt: skip

    # fast mode: checks random projections of the Jacobian (the full one takes minutes)
    assert torch.autograd.gradcheck(
        residual, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True
    )


def test_prior_prefers_real_motion_to_jitter_and_sliding(prior, motions):
    rng = np.random.default_rng(0)
    model = MotionCVAE.load().double()
    real_all, jit_all, real_c, slide_c = [], [], [], []
    for m in motions:
        energy = lambda mm: model.energy(*vars(mm.transitions()).values())  # noqa: E731
        e_real, e_jit, e_slide = energy(m), energy(jittered(m, rng)), energy(sliding(m))
        foot = torch.from_numpy(m.contacts[2:, :4].any(-1))
        real_all.append(e_real)
        jit_all.append(e_jit)
        real_c.append(e_real[foot])
        slide_c.append(e_slide[foot])
    real_all, jit_all, real_c, slide_c = map(torch.cat, (real_all, jit_all, real_c, slide_c))
    assert len(real_c) > 100
    # per transition, not only on average
    assert (real_all < jit_all).double().mean() > 0.95
    assert (real_c < slide_c).double().mean() > 0.9
    assert slide_c.mean() - real_c.mean() > 10 * math.log(10)


def test_augmented_motions_are_real_motion_mirrored_reversed_and_resampled(prior, motions):
    """``slahmr_priors.augment`` through ``data.motion_variants``: mirroring is an involution
    that keeps the prior's score of real motion (it learnt left and right); time reversal makes a
    walk the prior has never seen, unless it trained on reversed motion too (a walk backwards then
    scores about as well); speed changes keep the floor."""
    from slahmr_priors import augment
    from slahmr_priors.motion_cvae.data import motion_variants
    from slahmr_priors.motion_cvae.state import states_from_rotations

    m = max(motions, key=lambda x: np.ptp(x.joints[:, 0, 2]) + np.ptp(x.joints[:, 0, 0]))
    assert np.ptp(m.joints[:, 0, 2]) + np.ptp(m.joints[:, 0, 0]) > 1.0  # a walk or a run
    root = axis_angle_to_matrix(torch.from_numpy(m.root_orient))
    pose, joints = torch.from_numpy(m.pose_body), torch.from_numpy(m.joints)
    contacts = torch.from_numpy(m.contacts.astype(np.float32))
    variants = motion_variants(root, pose, joints, contacts, CONTACT_JOINTS,
                               ("mirror", "reverse", "speed"))  # fmt: skip
    assert len(variants) == 12  # 2 mirrors x 2 directions x 3 speeds
    r, p, j, c = variants[1]
    torch.testing.assert_close(augment.mirror_joints(j), joints)
    torch.testing.assert_close(augment.mirror_pose(p.reshape(-1, 21, 3)).reshape(-1, 63), pose)
    torch.testing.assert_close(augment.mirror_contacts(c, CONTACT_JOINTS), contacts)
    smpl24 = torch.randn(3, 24, 3, dtype=torch.float64)  # SMPL's 24 joints: the hands swap too
    torch.testing.assert_close(augment.mirror_joints(smpl24)[:, 22],
                               smpl24[:, 23] * augment.MIRROR.double())  # fmt: skip
    fast = variants[-1]  # mirrored, reversed, 1.25x
    assert len(fast[0]) == len(torch.arange(0.0, len(root) - 1 + 1e-9, 1.25))
    torch.testing.assert_close(fast[0].transpose(-1, -2) @ fast[0],
                               torch.eye(3, dtype=fast[0].dtype).expand_as(fast[0]))  # fmt: skip
    assert float(fast[2][..., 1].min()) > -0.05  # still on the floor

    def median_energy(v):
        tr = states_from_rotations(v[0], v[1], v[2], m.fps)
        return float(prior.energy(tr.prev.float(), tr.cur.float()).median())

    original, mirrored, backwards = (median_energy(variants[k]) for k in (0, 1, 2))
    # Nats per transition, measured on the shipped prior before augmentation: -716 as
    # recorded, -471 mirrored, +16,837 backwards.
    assert mirrored < original + 500
    if "reverse" in prior.metadata.get("model", {}).get("augment", []):
        assert backwards < original + 500
    else:
        assert backwards > original + 5000
