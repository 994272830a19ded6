"""Projection conventions and inverse pairs."""

import numpy as np
import torch
from roma import random_rotmat

from slahmr_opt.geometry.camera import (
    camera_centers,
    camera_to_world,
    invert_pose,
    project,
    world_to_camera,
)
from slahmr_opt.geometry.rotations import rotmat_to_rotvec, rotvec_to_rotmat


def test_world_camera_round_trip():
    R = random_rotmat(5, dtype=torch.float64)
    t = torch.randn(5, 3, dtype=torch.float64)
    X = torch.randn(5, 7, 3, dtype=torch.float64)
    x = world_to_camera(X, R, t, 0.5)
    torch.testing.assert_close(camera_to_world(x, R, t, 0.5), X)


def test_camera_centre_maps_to_origin():
    R = random_rotmat(4, dtype=torch.float64)
    t = torch.randn(4, 3, dtype=torch.float64)
    c = camera_centers(R, t, 2.0)
    torch.testing.assert_close(
        world_to_camera(c[:, None], R, t, 2.0)[:, 0], torch.zeros(4, 3, dtype=torch.float64)
    )


def test_projection_opencv_axes():
    intr = torch.tensor([1000.0, 900.0, 640.0, 360.0])
    pts = torch.tensor([[0.0, 0.0, 2.0], [1.0, 0.0, 2.0], [0.0, 1.0, 4.0]])
    uv = project(pts, intr)
    torch.testing.assert_close(uv, torch.tensor([[640.0, 360.0], [1140.0, 360.0], [640.0, 585.0]]))


def test_points_behind_camera_stay_finite():
    uv = project(torch.tensor([[0.1, 0.1, -1.0]]), torch.tensor([1000.0, 1000.0, 0.0, 0.0]))
    assert torch.isfinite(uv).all()


def test_axis_angle_round_trip():
    aa = torch.randn(100, 3, dtype=torch.float64)
    aa = aa / aa.norm(dim=-1, keepdim=True) * torch.rand(100, 1, dtype=torch.float64) * 3.0
    torch.testing.assert_close(rotmat_to_rotvec(rotvec_to_rotmat(aa)), aa)


def test_invert_pose_round_trips_for_torch_and_numpy():
    R = random_rotmat(6, dtype=torch.float64)
    t = torch.randn(6, 3, dtype=torch.float64)
    R_c2w, centre = invert_pose(R, t)
    torch.testing.assert_close(centre, camera_centers(R, t))
    R2, t2 = invert_pose(R_c2w, centre)
    torch.testing.assert_close(R2, R)
    torch.testing.assert_close(t2, t)
    R_np, t_np = invert_pose(R.numpy(), t.numpy())
    assert isinstance(t_np, np.ndarray)
    np.testing.assert_array_equal(t_np, centre.numpy())
    np.testing.assert_array_equal(R_np, R_c2w.numpy())
