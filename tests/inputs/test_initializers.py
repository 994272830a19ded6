"""Readers of WHAM, TRACE, GVHMR and TRAM outputs on files in their exact layouts
(``init/tool_files.py``): values, cameras, frames; wrong layouts and hostile pickles."""

import collections
import os

import joblib
import numpy as np
import pytest
import torch
from init.tool_files import (
    CamBody,
    diagonal_camera,
    trace_camera,
    write_gvhmr,
    write_trace,
    write_tram,
    write_wham,
)
from scipy.spatial.transform import Rotation

from slahmr_opt.errors import InputError
from slahmr_opt.files.safe_pickle import load_npz_objects
from slahmr_opt.inputs.initializers import (
    INIT_KINDS,
    REST_PELVIS,
    parse_init_spec,
    read_initializer,
)

SIZE = (720, 1280)
OURS = np.array([1000.0, 1000.0, 640.0, 360.0])


def _body(n: int = 8, seed: int = 0, first: int = 0) -> CamBody:
    rng = np.random.default_rng(seed)
    return CamBody(
        frames=np.arange(first, first + n),
        orient_c=rng.normal(scale=0.5, size=(n, 3)) + [np.pi, 0, 0],
        pose=rng.normal(scale=0.2, size=(n, 21, 3)),
        pelvis_c=np.array([0.3, 0.2, 5.0]) + rng.normal(scale=0.1, size=(n, 3)),
        betas=rng.normal(size=10),
    )


def _mat(aa):
    """Rotation matrices (axis-angle is not unique once rotations pass through matrices)."""
    return Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix()


def _pixels(pelvis, cam):
    return np.stack(
        [
            cam[0] * pelvis[:, 0] / pelvis[:, 2] + cam[2],
            cam[1] * pelvis[:, 1] / pelvis[:, 2] + cam[3],
        ],
        -1,
    )


def _check(person, body: CamBody, cam: np.ndarray, model: str):
    """Values as written: rotations, pose, betas; the pelvis seen at our pixel by ``cam``."""
    assert person.model == model
    np.testing.assert_array_equal(person.frames, body.frames)
    np.testing.assert_allclose(_mat(person.global_orient_c), _mat(body.orient_c), atol=1e-5)
    np.testing.assert_allclose(_mat(person.body_pose), _mat(body.pose), atol=1e-5)
    np.testing.assert_allclose(
        person.betas[:, :10], np.tile(body.betas, (len(body.frames), 1)), atol=1e-5
    )
    np.testing.assert_allclose(person.intrins, np.tile(cam, (len(body.frames), 1)), rtol=1e-6)
    np.testing.assert_allclose(
        _pixels(person.pelvis_c, cam), _pixels(body.pelvis_c, OURS), atol=1e-3
    )
    np.testing.assert_allclose(
        person.pelvis_c[:, 2], body.pelvis_c[:, 2] * cam[0] / OURS[0], rtol=1e-5
    )


def test_wham(tmp_path):
    a, b = _body(seed=1), _body(n=5, seed=2, first=30)
    path = write_wham(tmp_path / "wham_output.pkl", {4: a, 11: b}, OURS, SIZE)
    people = read_initializer("wham", path, SIZE)
    assert [p.person_id for p in people] == ["11", "4"]  # sorted as strings
    _check(people[1], a, diagonal_camera(SIZE), "smpl")
    _check(people[0], b, diagonal_camera(SIZE), "smpl")


def test_trace_groups_flattened_detections(tmp_path):
    a, b = _body(seed=3), _body(n=4, seed=4, first=2)
    path = write_trace(tmp_path / "seq.npz", {1: a, 2: b}, OURS, SIZE)
    people = read_initializer("trace", path, SIZE)
    assert [p.person_id for p in people] == ["1", "2"]
    _check(people[0], a, trace_camera(SIZE), "smpl")
    _check(people[1], b, trace_camera(SIZE), "smpl")


def test_gvhmr(tmp_path):
    a = _body(seed=5)
    people = read_initializer("gvhmr", write_gvhmr(tmp_path / "r.pt", a, OURS, SIZE), SIZE)
    assert len(people) == 1
    _check(people[0], a, diagonal_camera(SIZE), "smplx")


def test_tram_folder_hps_folder_or_track_file(tmp_path):
    a, b = _body(seed=6), _body(n=3, seed=7, first=10)
    folder = write_tram(tmp_path / "seq", [a, b], OURS, 900.0, (630.0, 350.0))
    cam = np.array([900.0, 900.0, 630.0, 350.0])
    for path in (folder, folder / "hps", folder / "hps" / "hps_track_1.npy"):
        people = read_initializer("tram", path, SIZE)
        assert [p.person_id for p in people] == ["hps_track_0", "hps_track_1"]
        _check(people[0], a, cam, "smpl")
        _check(people[1], b, cam, "smpl")


def test_rest_pelvis_offsets_are_applied(tmp_path):
    """WHAM's ``trans`` is a SMPL ``transl``: the pelvis is ``trans + J_pelvis``."""
    a = _body(n=2)
    path = write_wham(tmp_path / "w.pkl", {0: a}, OURS, SIZE)
    person = read_initializer("wham", path, SIZE)[0]
    trans = joblib.load(path)[0]["trans"]
    np.testing.assert_allclose(
        person.pelvis_c - trans, np.tile(REST_PELVIS["smpl"], (2, 1)), atol=1e-6
    )


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_wham_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = _Evil()
    evil.marker = marker
    path = tmp_path / "wham_output.pkl"
    joblib.dump(collections.defaultdict(dict, {1: {"pose": evil}}), path)
    with pytest.raises(InputError) as info:
        read_initializer("wham", path, SIZE)
    assert "wham_output.pkl" in str(info.value) and "system" in str(info.value)
    assert not marker.exists()


def test_hostile_npz_member_and_torch_file_are_refused(tmp_path):
    evil = _Evil()
    evil.marker = tmp_path / "pwned"
    np.savez(tmp_path / "seq.npz", outputs=np.array(evil, dtype=object))
    with pytest.raises(InputError, match="seq.npz"):
        load_npz_objects(tmp_path / "seq.npz", "TRACE result")
    torch.save({"smpl_params_incam": evil}, tmp_path / "r.pt")
    with pytest.raises(InputError, match="r.pt"):
        read_initializer("gvhmr", tmp_path / "r.pt", SIZE)
    assert not evil.marker.exists()


def test_npz_objects_numeric_members_and_dicts(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.arange(3), d={"k": np.ones(2)}, s=np.array(["a", "b"]))
    data = load_npz_objects(tmp_path / "a.npz", "test archive")
    assert data["x"].tolist() == [0, 1, 2] and data["s"].tolist() == ["a", "b"]
    assert data["d"]["k"].tolist() == [1.0, 1.0]


def _wham_list(p):
    joblib.dump([1, 2], p / "w.pkl")
    return p / "w.pkl"


def _wham_no_trans(p):
    joblib.dump({1: {"pose": np.zeros((3, 72))}}, p / "w.pkl")
    return p / "w.pkl"


def _gvhmr_no_incam(p):
    torch.save({"K_fullimg": torch.eye(3)}, p / "r.pt")
    return p / "r.pt"


def _gvhmr_garbage(p):
    (p / "r.pt").write_bytes(b"garbage")
    return p / "r.pt"


def _trace_no_outputs(p):
    np.savez(p / "s.npz", imgpaths=["a"])
    return p / "s.npz"


def _trace_few_keys(p):
    np.savez(p / "s.npz", outputs={"smpl_thetas": np.zeros((2, 72))})
    return p / "s.npz"


def _tram_no_tracks(p):
    (p / "hps").mkdir()
    return p


@pytest.mark.parametrize(
    "kind, make, words",
    [
        ("wham", _wham_list, ["w.pkl", "dict"]),
        ("wham", _wham_no_trans, ["w.pkl", "missing keys", "trans"]),
        ("gvhmr", _gvhmr_no_incam, ["r.pt", "smpl_params_incam"]),
        ("gvhmr", _gvhmr_garbage, ["r.pt", "weights only"]),
        ("trace", _trace_no_outputs, ["s.npz", "outputs"]),
        ("trace", _trace_few_keys, ["s.npz", "missing keys", "cam_trans"]),
        ("tram", _tram_no_tracks, ["hps_track"]),
    ],
)
def test_wrong_layouts_name_the_file(kind, make, words, tmp_path):
    path = make(tmp_path)
    with pytest.raises(InputError) as info:
        read_initializer(kind, path, SIZE)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_wrong_shapes_name_the_key(tmp_path):
    a = _body()
    path = write_wham(tmp_path / "w.pkl", {0: a}, OURS, SIZE)
    data = joblib.load(path)
    data[0]["trans"] = np.zeros((3, 3))
    joblib.dump(data, path)
    with pytest.raises(InputError, match=r"w.pkl.*0/trans.*\(8, 3\)"):
        read_initializer("wham", path, SIZE)


def test_parse_init_spec(tmp_path):
    (tmp_path / "w.pkl").write_bytes(b"")
    assert parse_init_spec(f"WHAM:{tmp_path / 'w.pkl'}") == ("wham", tmp_path / "w.pkl")
    assert set(INIT_KINDS) == {"wham", "trace", "gvhmr", "tram", "slahmr"}
    with pytest.raises(InputError, match="unknown initializer kind 'vibe'"):
        parse_init_spec(f"vibe:{tmp_path / 'w.pkl'}")
    with pytest.raises(InputError, match="nope.pkl.*not found"):
        parse_init_spec(f"wham:{tmp_path / 'nope.pkl'}")
    with pytest.raises(InputError, match="expected a file"):
        parse_init_spec(f"gvhmr:{tmp_path}")
    with pytest.raises(InputError, match="KIND:PATH"):
        parse_init_spec("just-a-path")
