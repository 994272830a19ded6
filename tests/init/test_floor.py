"""Floor plane: the robust estimate recovers a known tilted plane from synthetic feet, the
parameterisation round-trips, the gravity alignment puts the floor at y = 0 without changing
the world metrics, and the contact heuristic finds planted feet."""

import math

import numpy as np
import pytest
import torch
from stages.scene import make_scene

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.eval import metrics
from slahmr_opt.init.floor import (
    FloorError,
    FloorPlane,
    estimate_floor,
    floor_reference,
    gravity_transform,
    heuristic_contacts,
    plane_from_params,
)
from slahmr_opt.stages.floor_frame import align_to_floor
from slahmr_opt.types import BodyParams, Cameras

DT = torch.float64


def _rotation(axis, angle) -> torch.Tensor:
    from roma import rotvec_to_rotmat

    return rotvec_to_rotmat(torch.nn.functional.normalize(torch.tensor(axis, dtype=DT), dim=0)
                                * angle)  # fmt: skip


def _walking_feet(P=2, T=120, seed=0):
    """Feet (P, T, 6, 3) of people walking straight lines on y = 0 (y up): a foot is planted
    (height 0-2 cm, still) or swinging (up to 15 cm high, moving), plus 1 cm noise and 5% of
    frames with a 30 cm outlier; pelvis 0.9 m above the feet."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(T, dtype=DT)
    feet = torch.zeros(P, T, 6, 3, dtype=DT)
    for p in range(P):
        heading = 0.7 * p
        direction = torch.tensor([math.cos(heading), 0.0, math.sin(heading)], dtype=DT)
        for side in range(2):
            phase = (t / 30.0 + 0.5 * side) % 1.0
            swing = phase > 0.6
            step_pos = torch.floor(t / 30.0 + 0.5 * side) + torch.where(
                swing, (phase - 0.6) / 0.4, torch.zeros_like(phase)
            )
            lift = torch.where(swing, 0.15 * torch.sin(math.pi * (phase - 0.6) / 0.4), 0.0 * t)
            base = step_pos[:, None] * 1.4 * direction + torch.tensor([0, 0, 2.0 * p], dtype=DT)
            base = base + (0.1 if side else -0.1) * torch.tensor([0, 0, 1.0], dtype=DT)
            for k, height in enumerate((0.01, 0.02, 0.015)):
                feet[p, :, 3 * side + k] = base + (0.1 * k) * direction
                feet[p, :, 3 * side + k, 1] = height + lift
    feet += 0.01 * torch.randn(feet.shape, generator=gen, dtype=DT)
    outliers = torch.rand(P, T, generator=gen) < 0.05
    feet[outliers] += torch.tensor([0.0, -0.3, 0.0], dtype=DT)
    pelvis = feet.mean(-2) + torch.tensor([0.0, 0.9, 0.0], dtype=DT)
    return feet, pelvis


def test_estimate_recovers_tilted_plane():
    feet, pelvis = _walking_feet()
    R = _rotation([1.0, 0.3, -0.5], 2.5)  # an arbitrary world: the floor is tilted and far
    t = torch.tensor([0.4, -1.3, 2.0], dtype=DT)
    feet_w = feet @ R.T + t
    # The body axis is 8 degrees off the true normal (people lean); the fit must not follow it.
    lean = _rotation([0.0, 0.0, 1.0], math.radians(8))
    body_up = (pelvis - feet.mean(-2)) @ lean.T @ R.T
    mask = torch.ones(feet.shape[:2], dtype=torch.bool)
    plane = estimate_floor(feet_w, body_up, mask, fps=30.0)
    n_true = R @ torch.tensor([0.0, 1.0, 0.0], dtype=DT)
    angle = math.degrees(math.acos(min(1.0, float(plane.normal @ n_true))))
    assert angle < 1.0
    # The planted feet are 1-2 cm above y = 0 (with noise): the plane passes through them.
    true_offset = float(n_true @ t) + 0.015
    assert abs(plane.offset - true_offset) < 0.01
    assert 0.5 < plane.inliers < 1.0


def test_estimate_needs_points():
    feet, pelvis = _walking_feet(P=1, T=5)
    with pytest.raises(FloorError):
        estimate_floor(feet, pelvis - feet.mean(-2), torch.ones(1, 5, dtype=torch.bool), 30.0)


def test_parameters_round_trip():
    n = torch.nn.functional.normalize(torch.tensor([0.1, 0.9, -0.3], dtype=DT), dim=0)
    plane = FloorPlane(n, 1.7)
    back = plane_from_params(torch.zeros(1, 3, dtype=DT), floor_reference(plane))
    torch.testing.assert_close(back.normal, n, rtol=0, atol=1e-12)
    assert abs(back.offset - 1.7) < 1e-12


def _pose(model, b: BodyParams) -> torch.Tensor:
    P, T = b.trans.shape[:2]
    return model(b.betas[:, None].expand(P, T, -1), b.root_orient, b.pose_body, b.trans).joints


@pytest.fixture(scope="module")
def scene():
    return make_scene(num_people=1, num_frames=40, camera="orbit", seed=2)


def test_gravity_alignment_puts_floor_at_zero_and_keeps_metrics(scene):
    body_model = load_body_model(BodyConfig(), dtype=DT)
    obs = scene.obs
    P, T = obs.track_mask.shape
    gen = torch.Generator().manual_seed(0)
    body = BodyParams(
        root_orient=torch.randn(P, T, 3, dtype=DT, generator=gen) * 0.5,
        trans=torch.randn(P, T, 3, dtype=DT, generator=gen),
        pose_body=torch.randn(P, T, 21, 3, dtype=DT, generator=gen) * 0.2,
        betas=torch.randn(P, 10, dtype=DT, generator=gen),
    )
    joints = _pose(body_model, body)
    cams = Cameras(obs.cameras.R_w2c.to(DT), obs.cameras.t_w2c.to(DT), obs.cameras.intrins,
                   obs.cameras.image_size, alpha=0.4)  # fmt: skip
    plane = FloorPlane(torch.nn.functional.normalize(torch.tensor([0.2, -1.0, 0.1], dtype=DT),
                                                     dim=0), -1.2)  # fmt: skip
    origin = -cams.R_w2c[0].T @ (cams.alpha * cams.t_w2c[0])
    G = gravity_transform(plane, forward=cams.R_w2c[0, 2], origin=origin)
    body2, cams2, joints2 = align_to_floor(body, cams, joints, G, body_model)
    # The floor maps to y = 0 with the normal to +y; the first camera sits above the origin.
    on_floor = plane.offset * plane.normal + torch.randn(3, dtype=DT).cross(plane.normal, dim=0)
    torch.testing.assert_close((G[:3, :3] @ on_floor + G[:3, 3])[1], torch.tensor(0.0, dtype=DT))
    torch.testing.assert_close(G[:3, :3] @ plane.normal, torch.tensor([0.0, 1.0, 0.0], dtype=DT))
    centre = -cams2.R_w2c[0].T @ (cams2.alpha * cams2.t_w2c[0])
    torch.testing.assert_close(centre[[0, 2]], torch.zeros(2, dtype=DT), rtol=0, atol=1e-9)
    # Posing the moved parameters gives the moved joints; camera-frame joints are unchanged.
    posed = _pose(body_model, body2)
    torch.testing.assert_close(posed, joints2, rtol=1e-9, atol=1e-9)
    cam_before = metrics.to_camera(joints[0].numpy(), cams.R_w2c.numpy(),
                                   (cams.alpha * cams.t_w2c).numpy())  # fmt: skip
    cam_after = metrics.to_camera(joints2[0].numpy(), cams2.R_w2c.numpy(),
                                  (cams2.alpha * cams2.t_w2c).numpy())  # fmt: skip
    np.testing.assert_allclose(cam_after, cam_before, atol=1e-9)
    # World metrics (similarity / rigid fits) are unchanged.
    gt = scene.joints[0].double().numpy()
    for first_two in (True, False):
        np.testing.assert_allclose(
            metrics.chunked_world_errors(joints2[0].numpy(), gt, first_two),
            metrics.chunked_world_errors(joints[0].numpy(), gt, first_two), rtol=1e-6,
        )  # fmt: skip
    np.testing.assert_allclose(
        metrics.rte_errors(joints2[0, :, 0].numpy(), gt[:, 0]),
        metrics.rte_errors(joints[0, :, 0].numpy(), gt[:, 0]),
        rtol=1e-6,
    )


def test_heuristic_contacts_find_planted_feet():
    # Two joints sets: a standing body (feet on the floor, still) and one whose feet swing high.
    T = 30
    joints = torch.zeros(1, T, 24, 3, dtype=DT)
    joints[..., 0, 1] = 0.9
    joints[..., [7, 8], 1] = 0.08
    joints[..., [10, 11], 1] = 0.03
    joints[0, :, 8, 1] += 0.3 * torch.sin(torch.linspace(0, math.pi, T, dtype=DT))  # right ankle
    joints[0, :, 8, 0] += torch.linspace(0, 1.0, T, dtype=DT)
    plane = FloorPlane(torch.tensor([0.0, 1.0, 0.0], dtype=DT), 0.0)
    c = heuristic_contacts(joints, torch.ones(1, T, dtype=torch.bool), plane, 30.0, 1.0)
    assert c.shape == (1, T, 4)
    assert c[0, :, [0, 2, 3]].min() == 1.0  # left ankle, both toes: still on the floor
    assert c[0, 5:-5, 1].max() == 0.0  # the right ankle is lifted and moving
