"""Bad camera inputs: every problem is an ``InputError`` whose message names the file."""

import numpy as np
import pytest

from slahmr_opt.errors import InputError
from slahmr_opt.inputs.cameras import read_cameras, static_cameras

SIZE = (480, 640)
GOOD_ROW = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]


def _raises(path, match: str, **kwargs) -> str:
    kwargs.setdefault("image_size", SIZE)
    with pytest.raises(InputError) as info:
        read_cameras(path, **kwargs)
    message = str(info.value)
    assert match in message, message
    return message


def _npy(tmp_path, array, name="traj.npy"):
    np.save(tmp_path / name, array)
    return tmp_path / name


def _text(tmp_path, text, name="traj.txt"):
    (tmp_path / name).write_text(text)
    return tmp_path / name


def _cams_npz(tmp_path, **arrays):
    base = {
        "w2c": np.tile(np.eye(4, dtype=np.float32), (3, 1, 1)),
        "intrins": np.tile(np.float32([500, 500, 320, 240]), (3, 1)),
        "focal": np.float32(500),
        "height": 480,
        "width": 640,
    }
    base.update(arrays)
    base = {k: v for k, v in base.items() if v is not None}
    np.savez(tmp_path / "cameras.npz", **base)
    return tmp_path / "cameras.npz"


# --- trajectories -----------------------------------------------------------------------------


def test_missing_and_corrupt_files(tmp_path):
    assert "nope.npy" in _raises(tmp_path / "nope.npy", "not found")
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    assert "bad.npy" in _raises(tmp_path / "bad.npy", "not a readable .npy")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    assert "bad.npz" in _raises(tmp_path / "bad.npz", "not a readable .npz")
    (tmp_path / "folder").mkdir()
    assert "folder" in _raises(tmp_path / "folder", "no cameras.npz")


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (np.zeros((5, 6)), "expected (N, 7)"),
        (np.zeros((5, 7, 1)), "expected (N, 7)"),
        (np.array([GOOD_ROW, [0, 0, 0, 0, 0, 0, 0]]), "zero norm (first at row 1)"),
        (np.array([GOOD_ROW, [np.nan, 0, 0, 0, 0, 0, 1]]), "NaN/inf"),
        (np.array([[0, 0, 0, 0, 0, 0, np.inf]]), "NaN/inf"),
        (np.array([["a"] * 7]), "must be numeric"),
    ],
)
def test_bad_droid_npy(tmp_path, rows, match):
    assert "traj.npy" in _raises(_npy(tmp_path, rows), match)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("0 0 0 0 0\n", "5 columns, expected 7"),
        ("0 0 0 0 0 0 1\n0 0 0 0 0 0\n", "not a numeric text table"),
        ("0 0 0 zero 0 0 1\n", "not a numeric text table"),
        ("# only a comment\n", "is empty"),
        ("0 0 0 0 0 0 0 0\n", "zero norm"),
        ("1 0 0 0 0 0 0 1\n1 0 0 0 0 0 0 1\n", "timestamps must increase strictly"),
    ],
)
def test_bad_text_trajectory(tmp_path, text, match):
    assert "traj.txt" in _raises(_text(tmp_path, text), match)


def test_image_size_unknown_says_how_to_pass_it(tmp_path):
    path = _npy(tmp_path, np.array([GOOD_ROW]))
    message = _raises(path, "image_size=(height, width)", image_size=None)
    assert "traj.npy" in message


def test_frame_count_mismatch(tmp_path):
    path = _npy(tmp_path, np.array([GOOD_ROW] * 4))
    assert "traj.npy" in _raises(path, "has 4 camera frames, expected 9", num_frames=9)


# --- intrinsics -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("500 500 320\n", "3 columns"),
        ("-500 500 320 240\n", "focal length' must be > 0"),
        ("500 0 320 240\n", "focal length' must be > 0"),
        ("500 500 nan 240\n", "NaN/inf"),
        ("500 500 320 240 640 480\n500 500 320 240 641 480\n", "different image sizes"),
        ("500 500 320 240\n500 500 320 240\n", "2 rows of intrinsics for 3"),
        ("500 500 320 240 640 500\n", "different aspect ratio"),
    ],
)
def test_bad_intrinsics_file(tmp_path, text, match):
    traj = _npy(tmp_path, np.array([GOOD_ROW] * 3))
    intr = _text(tmp_path, text, name="intrinsics.txt")
    assert "intrinsics.txt" in _raises(traj, match, intrinsics=intr)


def test_bad_intrinsics_values(tmp_path):
    traj = _npy(tmp_path, np.array([GOOD_ROW] * 3))
    _raises(traj, "must be > 0", intrinsics=[500.0, -1.0, 320.0, 240.0])
    with pytest.raises(InputError, match="must be two positive integers"):
        static_cameras(3, (480, 0))
    with pytest.raises(InputError, match="image_size"):
        static_cameras(3, None)
    with pytest.raises(InputError, match="num_frames"):
        static_cameras(0, SIZE)


# --- cameras.npz ------------------------------------------------------------------------------


def _not_rigid():
    w2c = np.tile(np.eye(4, dtype=np.float32), (3, 1, 1))
    w2c[1, :3, :3] *= 2.0
    return w2c


def _reflection():
    w2c = np.tile(np.eye(4, dtype=np.float32), (3, 1, 1))
    w2c[2, 0, 0] = -1.0
    return w2c


def _nan_w2c():
    w2c = np.tile(np.eye(4, dtype=np.float32), (3, 1, 1))
    w2c[0, 0, 3] = np.nan
    return w2c


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"w2c": None}, "no 'w2c' key"),
        ({"w2c": np.zeros((3, 3, 4))}, "'w2c' has shape"),
        ({"w2c": _not_rigid()}, "not rigid transforms (first: frame 1)"),
        ({"w2c": _reflection()}, "not rigid transforms (first: frame 2)"),
        ({"w2c": _nan_w2c()}, "NaN/inf"),
        ({"intrins": np.ones((2, 4))}, "'intrins' has shape"),
        ({"intrins": np.tile([0.0, 500, 320, 240], (3, 1))}, "must be > 0"),
        ({"intrins": None, "focal": None}, "neither 'intrins' nor 'focal'"),
        ({"intrins": None, "focal": np.float32(-3)}, "'focal' must be > 0"),
        ({"height": np.float32(480.5)}, "two positive integers"),
        ({"width": np.asarray([640, 2])}, "'width' must be a numeric scalar"),
    ],
)
def test_bad_cameras_npz(tmp_path, arrays, match):
    assert "cameras.npz" in _raises(_cams_npz(tmp_path, **arrays), match)


def test_cameras_npz_without_size_needs_image_size(tmp_path):
    path = _cams_npz(tmp_path, height=None, width=None)
    assert "cameras.npz" in _raises(path, "image size unknown", image_size=None)
    assert read_cameras(path, image_size=SIZE).image_size == SIZE
