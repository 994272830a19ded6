"""Bad track inputs: every problem is an ``InputError`` whose message names the file."""

import json

import numpy as np
import pytest

from slahmr_opt.errors import InputError
from slahmr_opt.inputs.tracks import read_tracks


def _raises(path, match: str = ""):
    """Read ``path`` and return the InputError; its message must name the offending file."""
    with pytest.raises(InputError) as info:
        read_tracks(path, min_track_len=5)
    message = str(info.value)
    assert info.value.path is not None
    assert match in message, message
    return message


# --- npz --------------------------------------------------------------------------------------


def _object_ids(a):
    a["track_ids"] = np.asarray(["000", 1], dtype=object)


def _set(key, value):
    def change(a):
        a[key] = value

    return change


def _drop(key):
    def change(a):
        del a[key]

    return change


def _nan_kp2d(a):
    a["kp2d"][1, 3, 2, 0] = np.nan


def _inf_smpl(a):
    a["smpl_transl_c"][0, 0, 2] = np.inf


def _undetected_track(a):
    a["vis_mask"][1] = False


NPZ_CASES = {
    "missing key": (_drop("vis_mask"), "missing ['vis_mask']"),
    "unknown key": (_set("kp_2d", np.zeros(3)), "unknown ['kp_2d']"),
    "bad kp_format": (_set("kp_format", np.asarray("h36m")), "'kp_format' is 'h36m'"),
    "K disagrees with format": (_set("kp_format", np.asarray("op25")), "'kp2d' has shape"),
    "kp2d rank": (_set("kp2d", np.zeros((2, 30, 17))), "'kp2d' has shape"),
    "vis shape": (_set("vis_mask", np.ones((2, 29), bool)), "'vis_mask' has shape"),
    "vis dtype": (_set("vis_mask", np.full((2, 30), 0.5)), "'vis_mask' must be bool"),
    "track_ids count": (_set("track_ids", np.asarray(["a", "b", "c"])), "'track_ids' has shape"),
    "duplicate ids": (_set("track_ids", np.asarray(["a", "a"])), "not distinct"),
    "object array": (_object_ids, "Python objects"),
    "nan keypoints": (_nan_kp2d, "'kp2d' has 1 NaN/inf"),
    "inf smpl": (_inf_smpl, "'smpl_transl_c' has 1 NaN/inf"),
    "partial smpl": (_drop("smpl_betas"), "come together"),
    "smpl pose joints": (_set("smpl_body_pose", np.zeros((2, 30, 23, 3))), "'smpl_body_pose'"),
    "betas frames": (_set("smpl_betas", np.zeros((2, 31, 10))), "'smpl_betas' has shape"),
    "zero fps": (_set("fps", np.asarray(0.0)), "'fps' must be > 0"),
    "nan fps": (_set("fps", np.asarray(np.nan)), "'fps' has 1 NaN/inf"),
    "string fps": (_set("fps", np.asarray("30")), "'fps' must be a numeric scalar"),
    "bbox shape": (_set("bbox", np.zeros((2, 30, 5))), "'bbox' has shape"),
    "frame_names count": (_set("frame_names", np.asarray(["a"] * 29)), "'frame_names' has shape"),
    "image_size": (_set("image_size", np.asarray([480.5, 640])), "'image_size' must be"),
    "negative image_size": (_set("image_size", np.asarray([-480, 640])), "'image_size' must"),
    "version": (_set("format_version", np.asarray(7)), "format_version 7"),
    "undetected track": (_undetected_track, "['001'] have no detected"),
}


@pytest.mark.parametrize("case", NPZ_CASES, ids=list(NPZ_CASES))
def test_bad_npz(tmp_path, npz_factory, npz_saver, case):
    change, match = NPZ_CASES[case]
    arrays = npz_factory()
    change(arrays)
    path = tmp_path / "my_tracks.npz"
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    assert "my_tracks.npz" in _raises(path, match)


def test_missing_and_unreadable_npz(tmp_path):
    assert "gone.npz: tracks input not found" in _raises(tmp_path / "gone.npz")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 definitely not a zip archive")
    assert "corrupt.npz" in _raises(corrupt, "not a readable .npz")
    single = tmp_path / "single.npz"
    with open(single, "wb") as f:
        np.save(f, np.zeros(3))
    assert "single.npz" in _raises(single, "single array")


def test_unsupported_extension(tmp_path):
    path = tmp_path / "tracks.pkl"
    path.write_bytes(b"\x80")
    assert "tracks.pkl" in _raises(path, "unsupported")


# --- SLAHMR folders ---------------------------------------------------------------------------

KP = [[1.0, 2.0, 0.9]] * 25
FOLDER_CASES = {
    "invalid json": ("{people: [", "not valid JSON"),
    "no people key": ({"persons": []}, '{"people"'),
    "no keypoints key": ({"people": [{"face_keypoints_2d": []}]}, "pose_keypoints_2d"),
    "24 keypoints": ({"people": [{"pose_keypoints_2d": KP[:24]}]}, "72 values, expected 25x3"),
    "ragged": ({"people": [{"pose_keypoints_2d": [[1, 2, 3]] * 24 + [[1, 2]]}]}, "not numeric"),
    "strings": ({"people": [{"pose_keypoints_2d": [["a", "b", "c"]] * 25}]}, "not numeric"),
    "nan": ({"people": [{"pose_keypoints_2d": [[float("nan"), 1, 1]] + KP[1:]}]}, "NaN/inf"),
}


@pytest.mark.parametrize("case", FOLDER_CASES, ids=list(FOLDER_CASES))
def test_bad_keypoints_json(tmp_path, track_writer, case):
    content, match = FOLDER_CASES[case]
    track_writer(tmp_path, "001", list(range(30)))
    bad = tmp_path / "001" / "000017_keypoints.json"
    bad.write_text(content if isinstance(content, str) else json.dumps(content))
    assert "001/000017_keypoints.json" in _raises(tmp_path, match)


SMPL_CASES = {
    "missing key": (
        {"betas": [0.0] * 10, "body_pose": [[0.0] * 3] * 23, "global_orient": [0] * 3},
        "expected keys",
    ),
    "short pose": (
        {
            "betas": [0.0] * 10,
            "body_pose": [[0.0] * 3] * 20,
            "global_orient": [0] * 3,
            "cam_trans": [0, 0, 1],
        },
        "at least 21x3",
    ),
    "orient size": (
        {
            "betas": [0.0] * 10,
            "body_pose": [[0.0] * 3] * 23,
            "global_orient": [0] * 4,
            "cam_trans": [0, 0, 1],
        },
        "'global_orient' has 4 values",
    ),
    "betas length": (
        {
            "betas": [0.0] * 11,
            "body_pose": [[0.0] * 3] * 23,
            "global_orient": [0] * 3,
            "cam_trans": [0, 0, 1],
        },
        "other files have 10",
    ),
    "inf trans": (
        {
            "betas": [0.0] * 10,
            "body_pose": [[0.0] * 3] * 23,
            "global_orient": [0] * 3,
            "cam_trans": [0, 0, float("inf")],
        },
        "'cam_trans' has 1 NaN/inf",
    ),
}


@pytest.mark.parametrize("case", SMPL_CASES, ids=list(SMPL_CASES))
def test_bad_smpl_json(tmp_path, track_writer, json_writer, case):
    content, match = SMPL_CASES[case]
    track_writer(tmp_path, "001", list(range(30)), smpl=True)
    json_writer(tmp_path / "001" / "000029_smpl.json", content)
    assert "001/000029_smpl.json" in _raises(tmp_path, match)


def test_folder_structure_errors(tmp_path, track_writer, json_writer):
    assert "nowhere" in _raises(tmp_path / "nowhere", "tracks input not found")
    (tmp_path / "empty").mkdir()
    assert "empty" in _raises(tmp_path / "empty", "no track sub-folders")
    track_writer(tmp_path / "a", "001", list(range(30)))
    (tmp_path / "a" / "002").mkdir()
    assert "a/002" in _raises(tmp_path / "a", "no *_keypoints.json")
    track_writer(tmp_path / "b", "001", list(range(30)))
    for t in range(5):
        json_writer(tmp_path / "b" / "002" / f"{t:06d}_keypoints.json", {"people": []})
    assert "/b:" in _raises(tmp_path / "b", "['002'] have no detected")


def test_frame_names_naming_one_frame_twice(tmp_path, track_writer):
    track_writer(tmp_path, "001", list(range(30)))
    track_writer(tmp_path, "002", ["12", "13"])
    assert str(tmp_path) in _raises(tmp_path, "name the same frame twice")
