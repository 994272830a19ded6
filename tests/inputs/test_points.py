"""Scene points: round trips of every format, DROID-SLAM back-projection of a known plane, and
an ``InputError`` naming the file for every bad input."""

import sys

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from slahmr_opt.errors import InputError
from slahmr_opt.inputs.points import read_points, write_points_npz
from slahmr_opt.types import ScenePoints

POINTS = np.array([[0.5, -1.25, 3.0], [2.0, 0.0, 4.5], [-1.5, 0.75, 6.25], [0.1, 0.2, 0.3]])
FRAMES = np.array([[0, 3], [2, 2], [1, 7], [5, 9]])

# --- the synthetic DROID-SLAM scene: three keyframes looking at the plane n . X = d -----------
PLANE_N = np.array([0.1, -0.2, 1.0]) / np.linalg.norm([0.1, -0.2, 1.0])
PLANE_D = 6.0
TSTAMPS = np.array([0.0, 4.0, 9.0])
IMAGE_HW = (48, 64)
INTRINS_FULL = np.array([60.0, 62.0, 31.5, 24.5])  # [fx, fy, cx, cy] at image resolution
ROTVECS_C2W = np.array([[0.0, 0.0, 0.0], [0.05, -0.1, 0.02], [-0.08, 0.12, -0.05]])
CENTRES_W = np.array([[0.0, 0.0, 0.0], [0.4, -0.1, 0.3], [-0.5, 0.2, 0.6]])


def _w2c_rows(dtype) -> np.ndarray:
    """(K, 7) world-to-camera ``tx ty tz qx qy qz qw`` (lietorch SE3 data), rounded to dtype."""
    R_w2c = Rotation.from_rotvec(ROTVECS_C2W).inv()
    t_w2c = -R_w2c.apply(CENTRES_W)
    return np.concatenate([t_w2c, R_w2c.as_quat()], axis=1).astype(dtype)


def _plane_disparities(rows: np.ndarray, intrins: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(K, H, W) inverse depth of the plane seen by cameras ``rows`` with ``intrins`` (K, 4)."""
    rows, intrins = rows.astype(np.float64), intrins.astype(np.float64)
    v, u = np.meshgrid(np.arange(hw[0]), np.arange(hw[1]), indexing="ij")
    disps = []
    for row, (fx, fy, cx, cy) in zip(rows, intrins, strict=True):
        R_c2w = Rotation.from_quat(row[3:]).inv().as_matrix()
        centre = -R_c2w @ row[:3]
        ray_c = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones(hw)], axis=-1)
        depth = (PLANE_D - PLANE_N @ centre) / (ray_c @ R_c2w.T @ PLANE_N)
        disps.append(1.0 / depth)
    return np.stack(disps)


def _droid_folder(path, dtype=np.float32, full_res=True, images=True):
    """A folder as DROID-SLAM's ``demo.py --reconstruction_path`` writes it (``np.save``)."""
    path.mkdir()
    rows = _w2c_rows(dtype)
    intrins = np.tile(INTRINS_FULL / 8, (len(rows), 1)).astype(dtype)
    hw = IMAGE_HW if full_res else (IMAGE_HW[0] // 8, IMAGE_HW[1] // 8)
    grid_intrins = intrins * (8 if full_res else 1)
    np.save(path / "tstamps.npy", TSTAMPS.astype(np.float32))
    np.save(path / "poses.npy", rows)
    np.save(path / "intrinsics.npy", intrins)
    np.save(path / "disps.npy", _plane_disparities(rows, grid_intrins, hw).astype(dtype))
    if images:
        np.save(path / "images.npy", np.zeros((len(rows), 3, *IMAGE_HW), dtype=np.uint8))
    return path


def _plane_distance(points: torch.Tensor) -> np.ndarray:
    return np.abs(points.numpy() @ PLANE_N - PLANE_D)


def _raises(path, match: str, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        read_points(path, **kwargs)
    message = str(info.value)
    assert match in message, message
    assert str(path) in message, message
    return message


# --- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("frames", [FRAMES, None])
def test_npz_round_trip(tmp_path, frames):
    original = ScenePoints(
        torch.as_tensor(POINTS), None if frames is None else torch.as_tensor(frames)
    )
    path = write_points_npz(tmp_path / "points.npz", original)
    with np.load(path, allow_pickle=False) as data:
        assert data["points"].dtype == np.float64
        assert int(data["version"]) == 1
        assert ("frames" in data) == (frames is not None)
        if frames is not None:
            assert data["frames"].dtype == np.int64
    back = read_points(path, num_frames=10)
    assert back.points.dtype == torch.float64
    torch.testing.assert_close(back.points, original.points, rtol=0, atol=0)
    assert back.num_points == 4
    if frames is None:
        assert back.frames is None
    else:
        assert back.frames.dtype == torch.int64
        assert back.frames.tolist() == frames.tolist()


def test_npz_reader_accepts_float_frames_and_ignores_other_keys(tmp_path):
    np.savez(tmp_path / "p.npz", points=POINTS.astype(np.float32), frames=FRAMES * 1.0, note=[1])
    back = read_points(tmp_path / "p.npz")
    assert back.frames.tolist() == FRAMES.tolist()
    np.testing.assert_allclose(back.points.numpy(), POINTS, atol=1e-6)


def test_write_refuses_to_replace_unless_overwrite(tmp_path):
    path = tmp_path / "points.npz"
    write_points_npz(path, ScenePoints(torch.as_tensor(POINTS)))
    with pytest.raises(FileExistsError):
        write_points_npz(path, ScenePoints(torch.as_tensor(POINTS) * 2))
    assert read_points(path).points[0, 2].item() == 3.0
    write_points_npz(path, ScenePoints(torch.as_tensor(POINTS) * 2), overwrite=True)
    assert read_points(path).points[0, 2].item() == 6.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["points.npz"]  # no temporary left
    with pytest.raises(ValueError, match="must end in .npz"):
        write_points_npz(tmp_path / "points.npy", ScenePoints(torch.as_tensor(POINTS)))


def test_npy(tmp_path):
    np.save(tmp_path / "p.npy", POINTS.astype(np.float32))
    back = read_points(tmp_path / "p.npy", num_frames=1)
    assert back.frames is None
    assert back.points.dtype == torch.float64
    np.testing.assert_allclose(back.points.numpy(), POINTS, atol=1e-6)


def _vertices(points=POINTS, extra=True):
    fields = [("x", "f4"), ("y", "f4"), ("z", "f8")] + ([("red", "u1")] if extra else [])
    vertex = np.zeros(len(points), dtype=fields)
    for axis, name in enumerate("xyz"):
        vertex[name] = points[:, axis]
    if extra:
        vertex["red"] = [10, 20, 30, 40][: len(points)]
    return vertex


def _write_ply(path, elements: dict[str, np.ndarray], text=False, byte_order="="):
    """Write a PLY file with plyfile (skipping the test where it is not installed)."""
    plyfile = pytest.importorskip("plyfile")
    described = [plyfile.PlyElement.describe(data, name) for name, data in elements.items()]
    plyfile.PlyData(described, text=text, byte_order=byte_order).write(str(path))


@pytest.mark.parametrize(
    ("text", "byte_order", "header"),
    [
        (False, "<", b"binary_little_endian"),
        (False, ">", b"binary_big_endian"),
        (True, "=", b"ascii"),
    ],
)
def test_ply(tmp_path, text, byte_order, header):
    face = np.array([([0, 1, 2],)], dtype=[("vertex_indices", "i4", (3,))])
    elements = {"vertex": _vertices(), "face": face}
    _write_ply(tmp_path / "cloud.ply", elements, text=text, byte_order=byte_order)
    assert (tmp_path / "cloud.ply").read_bytes().startswith(b"ply\nformat " + header)
    back = read_points(tmp_path / "cloud.ply")
    assert back.frames is None and back.points.dtype == torch.float64
    np.testing.assert_allclose(back.points.numpy(), POINTS, atol=1e-6)


# --- DROID-SLAM reconstructions -----------------------------------------------------------------


def test_droid_plane_points_lie_on_plane_and_reproject(tmp_path):
    folder = _droid_folder(tmp_path / "recon", dtype=np.float64)
    scene = read_points(folder, num_frames=10)
    height, width = IMAGE_HW
    assert scene.num_points == 3 * height * width  # a plane ahead: every pixel is usable
    assert _plane_distance(scene.points).max() < 1e-6
    assert scene.frames.dtype == torch.int64
    assert torch.equal(scene.frames[:, 0], scene.frames[:, 1])
    assert sorted(set(scene.frames[:, 0].tolist())) == [0, 4, 9]
    # Each point reprojects onto an integer pixel of its keyframe (world-to-camera poses).
    rows = _w2c_rows(np.float64)
    fx, fy, cx, cy = INTRINS_FULL
    for k, tstamp in enumerate(TSTAMPS):
        pts = scene.points[scene.frames[:, 0] == int(tstamp)].numpy()
        assert len(pts) == height * width
        cam = Rotation.from_quat(rows[k, 3:]).apply(pts) + rows[k, :3]
        uv = np.stack([fx * cam[:, 0] / cam[:, 2] + cx, fy * cam[:, 1] / cam[:, 2] + cy], -1)
        np.testing.assert_allclose(uv, np.round(uv), atol=1e-6)
        assert uv[:, 0].min() > -0.5 and uv[:, 0].max() < width - 0.5


def test_droid_as_saved_float32_and_one_eighth_disparities(tmp_path):
    full = read_points(_droid_folder(tmp_path / "full"), num_frames=10)
    assert _plane_distance(full.points).max() < 1e-5
    small = read_points(_droid_folder(tmp_path / "small", full_res=False, images=False))
    assert small.num_points == 3 * (IMAGE_HW[0] // 8) * (IMAGE_HW[1] // 8)
    assert _plane_distance(small.points).max() < 1e-5


def test_droid_skips_bad_and_far_disparities(tmp_path):
    folder = _droid_folder(tmp_path / "recon", dtype=np.float64)
    disps = np.load(folder / "disps.npy")
    disps[0, 0, :4] = [0.0, -1.0, np.nan, np.inf]
    disps[1, 10:20, 10:20] = 1e-3  # a far patch (sky): below half the keyframe's mean disparity
    np.save(folder / "disps.npy", disps)
    scene = read_points(folder)
    assert scene.num_points == 3 * IMAGE_HW[0] * IMAGE_HW[1] - 4 - 100
    assert _plane_distance(scene.points).max() < 1e-6


def test_droid_subsampling_is_deterministic_and_stride_scales_frames(tmp_path):
    folder = _droid_folder(tmp_path / "recon", dtype=np.float64)
    full = read_points(folder)
    first = read_points(folder, max_points=50, frame_stride=3)
    second = read_points(folder, max_points=50, frame_stride=3)
    assert first.num_points == 50
    assert torch.equal(first.points, second.points)
    assert set(first.frames[:, 0].tolist()) <= {0, 12, 27}
    assert len(set(first.frames[:, 0].tolist())) == 3  # spread over the keyframes
    exact = "donot_use_mm_for_euclid_dist"
    distances = torch.cdist(first.points, full.points, compute_mode=exact).min(dim=1).values
    assert distances.max().item() < 1e-12  # a subset of the full back-projection
    _raises(folder, "outside the video's 27 frames", num_frames=27, frame_stride=3)


# --- bad inputs ---------------------------------------------------------------------------------


def test_missing_corrupt_and_unknown_files(tmp_path):
    for name in ["nope.npz", "nope.npy", "nope.ply", "nope_folder"]:
        _raises(tmp_path / name, "not found")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    _raises(tmp_path / "bad.npz", "not a readable .npz")
    (tmp_path / "bad.ply").write_bytes(b"garbage")
    _raises(tmp_path / "bad.ply", "not a readable PLY")
    (tmp_path / "points.txt").write_text("1 2 3\n")
    _raises(tmp_path / "points.txt", "unknown scene points format")
    np.save(tmp_path / "objects.npy", np.array([POINTS, None], dtype=object))
    _raises(tmp_path / "objects.npy", "not a readable .npy")


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"pts": POINTS}, "no 'points' key"),
        ({"points": POINTS[:, :2]}, "has shape (4, 2)"),
        ({"points": POINTS[None]}, "has shape (1, 4, 3)"),
        ({"points": np.where(POINTS == 2.0, np.nan, POINTS)}, "NaN/inf"),
        ({"points": POINTS[:2]}, "has 2 scene points, need at least 3"),
        ({"points": np.array([["a", "b", "c"]] * 3)}, "must be numeric"),
        ({"points": POINTS, "frames": FRAMES[:3]}, "'frames' has shape (3, 2)"),
        ({"points": POINTS, "frames": FRAMES[:, :1]}, "'frames' has shape (4, 1)"),
        ({"points": POINTS, "frames": FRAMES[:, ::-1]}, "row 0 ends before it starts"),
        ({"points": POINTS, "frames": FRAMES - 1}, "must be >= 0"),
        ({"points": POINTS, "frames": FRAMES + 0.5}, "whole frame numbers"),
        ({"points": POINTS, "frames": FRAMES + 1}, "row 3 ([6, 10]) lies outside the video's 10"),
        ({"points": POINTS, "version": 2}, "version 2 is not supported"),
    ],
)
def test_bad_npz(tmp_path, arrays, match):
    np.savez(tmp_path / "points.npz", **arrays)
    _raises(tmp_path / "points.npz", match, num_frames=10)


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (POINTS[:, :2], "has shape (4, 2)"),
        (POINTS.reshape(-1), "has shape (12,)"),
        (np.where(POINTS == 2.0, np.inf, POINTS), "NaN/inf"),
        (POINTS[:1], "has 1 scene points"),
    ],
)
def test_bad_npy(tmp_path, array, match):
    np.save(tmp_path / "points.npy", array)
    _raises(tmp_path / "points.npy", match)


@pytest.mark.parametrize(
    ("elements", "match"),
    [
        ({"point": _vertices()}, "no 'vertex' element"),
        ({"vertex": np.zeros(4, dtype=[("x", "f4"), ("y", "f4")])}, "lack properties ['z']"),
        ({"vertex": _vertices(POINTS * np.nan)}, "NaN/inf"),
        ({"vertex": _vertices(POINTS[:2], extra=False)}, "has 2 scene"),
    ],
)
def test_bad_ply(tmp_path, elements, match):
    _write_ply(tmp_path / "cloud.ply", elements)
    _raises(tmp_path / "cloud.ply", match)


def test_ply_without_plyfile_is_an_input_error(tmp_path, monkeypatch):
    _write_ply(tmp_path / "cloud.ply", {"vertex": _vertices()})
    monkeypatch.setitem(sys.modules, "plyfile", None)  # makes `import plyfile` fail
    _raises(tmp_path / "cloud.ply", "needs the Python package plyfile")


@pytest.mark.parametrize("missing", ["tstamps.npy", "disps.npy", "poses.npy", "intrinsics.npy"])
def test_droid_folder_missing_file(tmp_path, missing):
    folder = _droid_folder(tmp_path / "recon")
    (folder / missing).unlink()
    message = _raises(folder, "lacks " + missing)
    assert message.count(missing) == 2  # the missing one, then the list of expected files


def _edit(array_name: str, edit):
    def apply(folder):
        np.save(folder / array_name, edit(np.load(folder / array_name)))

    return apply


@pytest.mark.parametrize(
    ("name", "edit", "match"),
    [
        ("poses.npy", lambda a: a[:2], "'poses' has shape (2, 7), expected (K, 7) with K=3"),
        ("disps.npy", lambda a: a[:, None], "'disps' has shape (3, 1, 48, 64)"),
        ("intrinsics.npy", lambda a: a[:, :3], "'intrinsics' has shape (3, 3)"),
        ("tstamps.npy", lambda a: a + 0.5, "whole frame numbers"),
        ("tstamps.npy", lambda a: a - 1, "tstamps must be >= 0"),
        ("poses.npy", lambda a: np.where(a == a[1, 0], np.nan, a), "'poses' has 1 NaN/inf"),
        ("poses.npy", lambda a: np.concatenate([a[:, :3], 0 * a[:, 3:]], 1), "zero norm"),
        ("intrinsics.npy", lambda a: a * [-1, 1, 1, 1], "focal length' must be > 0"),
        ("intrinsics.npy", lambda a: a * [1, 1, 100, 100], "at neither 1/8 nor full"),
        ("disps.npy", lambda a: 0 * a, "only 0 usable disparities"),
        ("poses.npy", lambda a: np.array([[None] * 7] * 3), "not a readable .npy"),
        ("tstamps.npy", lambda a: np.array(["0", "4", "9"]), "must be numeric"),
    ],
)
def test_bad_droid_folder(tmp_path, name, edit, match):
    folder = _droid_folder(tmp_path / "recon")
    _edit(name, edit)(folder)
    message = _raises(folder, match, num_frames=10)
    assert name in message, message


def test_droid_keyframe_outside_video(tmp_path):
    _raises(_droid_folder(tmp_path / "recon"), "frame 9 lies outside the video's 9", num_frames=9)
