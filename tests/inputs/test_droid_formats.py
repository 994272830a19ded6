"""DROID-SLAM outputs against SLAHMR's conventions (``research/slahmr.md`` 3.3), checked with an
independent construction: scipy quaternions (``[qx, qy, qz, qw]``, DROID's order) and numpy
matrix inversion, as SLAHMR's ``run_slam.py`` turns DROID's c2w poses into ``cameras.npz``."""

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from slahmr_opt.inputs.cameras import read_cameras

SIZE = (480, 640)
TOL = {"rtol": 1e-5, "atol": 1e-5}


def _c2w_rows(num: int) -> np.ndarray:
    rng = np.random.default_rng(11)
    quat_xyzw = Rotation.random(num, random_state=12).as_quat()
    return np.concatenate([rng.normal(size=(num, 3)), quat_xyzw], axis=1)


def _slahmr_w2c(rows: np.ndarray) -> np.ndarray:
    """SLAHMR: ``w2c = SE3(c2w).inv().matrix()``, here with numpy."""
    c2w = np.tile(np.eye(4), (len(rows), 1, 1))
    c2w[:, :3, :3] = Rotation.from_quat(rows[:, 3:]).as_matrix()
    c2w[:, :3, 3] = rows[:, :3]
    return np.linalg.inv(c2w).astype(np.float32)


def test_every_trajectory_form_gives_slahmrs_cameras(tmp_path):
    rows = _c2w_rows(9)
    np.save(tmp_path / "traj.npy", rows)
    np.savetxt(tmp_path / "traj.txt", rows)
    np.savetxt(tmp_path / "traj.tum", np.concatenate([np.arange(9)[:, None] / 30, rows], axis=1))
    w2c = _slahmr_w2c(rows)
    height, width = SIZE
    focal = 0.5 * (height + width)
    np.savez(
        tmp_path / "cameras.npz",
        w2c=w2c,
        intrins=np.tile(np.float32([focal, focal, width / 2, height / 2]), (9, 1)),
        focal=np.float32(focal),
        height=height,
        width=width,
    )
    want = read_cameras(tmp_path / "cameras.npz")
    torch.testing.assert_close(want.R_w2c, torch.as_tensor(w2c[:, :3, :3]))
    for name in ("traj.npy", "traj.txt", "traj.tum"):
        got = read_cameras(tmp_path / name, image_size=SIZE)
        torch.testing.assert_close(got.R_w2c, want.R_w2c, **TOL)
        torch.testing.assert_close(got.t_w2c, want.t_w2c, **TOL)
        # no intrinsics given: SLAHMR's default [F, F, W/2, H/2], F = (H + W) / 2
        torch.testing.assert_close(got.intrins, want.intrins)


def test_quaternion_sign_does_not_matter(tmp_path):
    rows = _c2w_rows(4)
    flipped = rows.copy()
    flipped[:, 3:] *= -1
    np.save(tmp_path / "a.npy", rows)
    np.save(tmp_path / "b.npy", flipped)
    a, b = (read_cameras(tmp_path / n, image_size=SIZE) for n in ("a.npy", "b.npy"))
    torch.testing.assert_close(a.R_w2c, b.R_w2c, **TOL)
    torch.testing.assert_close(a.t_w2c, b.t_w2c, **TOL)


def test_per_frame_npz_intrinsics_follow_the_image_width(tmp_path):
    """SLAHMR multiplies ``cameras.npz['intrins']`` by ``img_w / width``."""
    intrins = np.float32([[500, 505, 320, 240], [510, 515, 321, 241]])
    np.savez(
        tmp_path / "cameras.npz",
        w2c=np.tile(np.eye(4, dtype=np.float32), (2, 1, 1)),
        intrins=intrins,
        focal=np.float32(507),
        height=480,
        width=640,
    )
    cams = read_cameras(tmp_path / "cameras.npz", image_size=(960, 1280))
    torch.testing.assert_close(cams.intrins, torch.as_tensor(intrins) * 2)
    assert cams.image_size == (960, 1280)
