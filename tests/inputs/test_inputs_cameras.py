"""Camera readers and writers: DROID-SLAM, TUM, SLAHMR cameras.npz, intrinsics, static camera."""

import math
import os
import stat

import numpy as np
import pytest
import torch

from slahmr_opt.geometry.rotations import rotvec_to_rotmat
from slahmr_opt.inputs.cameras import (
    read_cameras,
    static_cameras,
    write_cameras_npz,
    write_droid_traj,
)
from slahmr_opt.inputs.intrinsics import write_intrinsics_txt
from slahmr_opt.types import Cameras

SIZE = (480, 640)
TOL = {"rtol": 1e-6, "atol": 1e-6}


def _droid_rows(num: int, seed: int = 0) -> np.ndarray:
    """(N, 7) camera-to-world ``tx ty tz qx qy qz qw`` of a smooth random trajectory."""
    rng = np.random.default_rng(seed)
    quat = rng.normal(size=(num, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    quat[quat[:, 3] < 0] *= -1
    return np.concatenate([rng.normal(size=(num, 3)), quat], axis=1)


def _cameras(num: int = 12) -> Cameras:
    gen = torch.Generator().manual_seed(4)
    R = rotvec_to_rotmat(torch.randn(num, 3, generator=gen, dtype=torch.float64))
    intrins = torch.tensor([[600.0, 610.0, 321.5, 239.0]]).repeat(num, 1)
    intrins[:, 0] += torch.arange(num)
    return Cameras(R.float(), torch.randn(num, 3, generator=gen), intrins, SIZE)


# --- conventions ------------------------------------------------------------------------------


def test_quaternion_convention_90_deg_about_y(tmp_path):
    # camera-to-world: rotate 90 deg about y, camera centre at (1, 2, 3); real part last
    s = math.sqrt(0.5)
    np.save(tmp_path / "traj.npy", np.array([[1.0, 2.0, 3.0, 0.0, s, 0.0, s]]))
    cams = read_cameras(tmp_path / "traj.npy", image_size=SIZE)
    # R_c2w = Ry(90) = [[0,0,1],[0,1,0],[-1,0,0]] so R_w2c = [[0,0,-1],[0,1,0],[1,0,0]]
    expected_R = torch.tensor([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    torch.testing.assert_close(cams.R_w2c[0], expected_R, **TOL)
    # the world point one unit along +z from the camera centre is at x = -1 in the camera
    world_point = torch.tensor([1.0, 2.0, 4.0])
    camera_point = cams.R_w2c[0] @ world_point + cams.t_w2c[0]
    torch.testing.assert_close(camera_point, torch.tensor([-1.0, 0.0, 0.0]), **TOL)


def test_c2w_inversion_gives_camera_centres(tmp_path):
    rows = _droid_rows(20)
    np.save(tmp_path / "traj.npy", rows)
    cams = read_cameras(tmp_path / "traj.npy", image_size=SIZE)
    centres = -(cams.R_w2c.transpose(1, 2).double() @ cams.t_w2c.double()[..., None])[..., 0]
    torch.testing.assert_close(centres, torch.tensor(rows[:, :3]), **TOL)
    eye = torch.eye(3).expand(20, 3, 3)
    torch.testing.assert_close(cams.R_w2c @ cams.R_w2c.transpose(1, 2), eye, **TOL)


def test_tum_matches_droid(tmp_path):
    rows = _droid_rows(8)
    np.savetxt(tmp_path / "traj.txt", rows)
    stamps = 1.5 + np.arange(8)[:, None] / 30
    with open(tmp_path / "traj.tum", "w") as f:
        f.write("# timestamp tx ty tz qx qy qz qw\n")
        np.savetxt(f, np.concatenate([stamps, rows], axis=1))
    droid = read_cameras(tmp_path / "traj.txt", image_size=SIZE)
    tum = read_cameras(tmp_path / "traj.tum", image_size=SIZE)
    torch.testing.assert_close(tum.R_w2c, droid.R_w2c, **TOL)
    torch.testing.assert_close(tum.t_w2c, droid.t_w2c, **TOL)


def test_non_unit_quaternion_is_normalized(tmp_path):
    rows = _droid_rows(3)
    scaled = rows.copy()
    scaled[:, 3:] *= 2.5
    np.save(tmp_path / "a.npy", rows)
    np.save(tmp_path / "b.npy", scaled)
    a = read_cameras(tmp_path / "a.npy", image_size=SIZE)
    b = read_cameras(tmp_path / "b.npy", image_size=SIZE)
    torch.testing.assert_close(a.R_w2c, b.R_w2c, **TOL)


# --- intrinsics and static cameras -------------------------------------------------------------


def test_default_intrinsics_and_static_camera():
    cams = static_cameras(5, SIZE)
    assert cams.is_static and cams.num_frames == 5 and cams.image_size == SIZE
    torch.testing.assert_close(cams.R_w2c, torch.eye(3).expand(5, 3, 3))
    assert (cams.t_w2c == 0).all()
    torch.testing.assert_close(cams.intrins[3], torch.tensor([560.0, 560.0, 320.0, 240.0]))
    custom = static_cameras(5, SIZE, intrins=[500.0, 500.0, 300.0, 200.0])
    assert (custom.intrins[:, 0] == 500).all()
    assert read_cameras(None, num_frames=4, image_size=SIZE).is_static


def test_intrinsics_file_variants(tmp_path):
    np.save(tmp_path / "traj.npy", _droid_rows(3))
    (tmp_path / "one.txt").write_text("500 510 320 240\n")
    (tmp_path / "sized.txt").write_text("# fx fy cx cy W H\n500 510 320 240 640 480\n")
    (tmp_path / "per_frame.txt").write_text("500 510 320 240\n501 511 321 241\n502 512 322 242\n")
    one = read_cameras(tmp_path / "traj.npy", image_size=SIZE, intrinsics=tmp_path / "one.txt")
    assert (one.intrins == torch.tensor([500.0, 510.0, 320.0, 240.0])).all()
    sized = read_cameras(tmp_path / "traj.npy", intrinsics=tmp_path / "sized.txt")
    assert sized.image_size == SIZE
    half = read_cameras(
        tmp_path / "traj.npy", image_size=(240, 320), intrinsics=tmp_path / "sized.txt"
    )
    torch.testing.assert_close(half.intrins[0], torch.tensor([250.0, 255.0, 160.0, 120.0]))
    per = read_cameras(
        tmp_path / "traj.npy", image_size=SIZE, intrinsics=tmp_path / "per_frame.txt"
    )
    assert per.intrins[:, 0].tolist() == [500.0, 501.0, 502.0]


def test_cameras_npz_without_intrins_uses_focal(tmp_path):
    w2c = np.tile(np.eye(4, dtype=np.float32), (4, 1, 1))
    np.savez(tmp_path / "cameras.npz", w2c=w2c, focal=np.float32(700), height=480, width=640)
    cams = read_cameras(tmp_path)  # the camera folder of SLAHMR
    assert cams.image_size == SIZE and not cams.is_static
    torch.testing.assert_close(cams.intrins[2], torch.tensor([700.0, 700.0, 320.0, 240.0]))
    double = read_cameras(tmp_path / "cameras.npz", image_size=(960, 1280))
    torch.testing.assert_close(double.intrins[0], torch.tensor([1400.0, 1400.0, 640.0, 480.0]))


# --- round trips ------------------------------------------------------------------------------


def _assert_same(a: Cameras, b: Cameras) -> None:
    torch.testing.assert_close(a.R_w2c, b.R_w2c, **TOL)
    torch.testing.assert_close(a.t_w2c, b.t_w2c, **TOL)
    torch.testing.assert_close(a.intrins, b.intrins, **TOL)
    assert a.image_size == b.image_size and a.num_frames == b.num_frames


@pytest.mark.parametrize("name", ["traj.npy", "traj.txt"])
def test_droid_round_trip(tmp_path, name):
    cams = _cameras()
    write_droid_traj(tmp_path / name, cams)
    write_intrinsics_txt(tmp_path / "intrinsics.txt", cams.intrins, cams.image_size)
    saved = np.load(tmp_path / name) if name.endswith(".npy") else np.loadtxt(tmp_path / name)
    assert saved.shape == (12, 7)
    back = read_cameras(tmp_path / name, intrinsics=tmp_path / "intrinsics.txt")
    _assert_same(back, cams)


def test_cameras_npz_round_trip(tmp_path):
    cams = _cameras()
    write_cameras_npz(tmp_path / "cameras.npz", cams)
    with np.load(tmp_path / "cameras.npz") as data:
        assert data["w2c"].shape == (12, 4, 4) and data["w2c"].dtype == np.float32
        assert data["intrins"].dtype == np.float32 and data["focal"].shape == ()
        assert int(data["height"]) == 480 and int(data["width"]) == 640
    _assert_same(read_cameras(tmp_path / "cameras.npz"), cams)


def test_single_row_intrinsics_round_trip(tmp_path):
    cams = static_cameras(6, SIZE)
    write_intrinsics_txt(tmp_path / "intrinsics.txt", cams.intrins)
    assert len((tmp_path / "intrinsics.txt").read_text().strip().splitlines()) == 2  # header + row
    back = static_cameras(6, SIZE, intrins=tmp_path / "intrinsics.txt")
    _assert_same(back, cams)


def test_camera_writers_refuse_to_overwrite(tmp_path):
    cams = _cameras()
    for write, name in [(write_droid_traj, "t.npy"), (write_cameras_npz, "cameras.npz")]:
        write(tmp_path / name, cams)
        with pytest.raises(FileExistsError):
            write(tmp_path / name, cams)
        write(tmp_path / name, cams, overwrite=True)
    with pytest.raises(FileExistsError):
        write_intrinsics_txt(tmp_path / "t.npy", cams.intrins)


def test_written_files_get_the_usual_permissions(tmp_path):
    """Atomic writes go through a private temporary file; the result must not stay private."""
    old = os.umask(0o022)
    try:
        path = write_droid_traj(tmp_path / "t.npy", _cameras())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
