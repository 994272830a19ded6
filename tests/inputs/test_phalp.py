"""PHALP's output pickle as tracks: layout, shots, selection, keypoint sources, guesses, errors.

The fixture pickle is written the way PHALP writes it (``joblib.dump(..., compress=3)`` of a dict
keyed by frame path, every per-detection key of ``phalp/trackers/PHALP.py``) from the bundled
example tracks, so reading it back must reproduce the example's keypoints and SMPL guesses.
"""

import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from slahmr_opt.body.keypoints import adjust_hips
from slahmr_opt.errors import ConfigError, InputError
from slahmr_opt.inputs.cameras import read_cameras, write_cameras_npz
from slahmr_opt.inputs.observations import load_observations
from slahmr_opt.inputs.phalp import read_phalp
from slahmr_opt.inputs.track_dirs import COCO17_TO_OP25
from slahmr_opt.inputs.tracks import read_tracks

EXAMPLE = Path(__file__).resolve().parents[2] / "slahmr_opt" / "data" / "example"
SIZE = (720, 1280)  # the example's [H, W]
COCO = list(COCO17_TO_OP25)
GAP = range(60, 65)  # track 001 is occluded here (PHALP lists it, not in tracked_ids)
SHOT1 = range(150, 180)  # frames of the second shot


def _example():
    return read_tracks(EXAMPLE / "tracks.npz")


def _aa_to_matrices(aa: np.ndarray) -> np.ndarray:
    return Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().astype(np.float32)


def _camera_bbox(transl, center, bbox, height, width):
    """Invert SLAHMR's crop-camera -> transl formula."""
    focal = 0.5 * (height + width)
    box = max(bbox[2], bbox[3])
    tx, ty, tz = transl
    return np.array(
        [
            (2 * focal / tz - 1e-6) / box,
            tx - tz / focal * (center[0] - width / 2),
            ty - tz / focal * (center[1] - height / 2),
        ],
        dtype=np.float32,
    )


def _detection(coco_kp, orient, pose, betas, transl, joints2d=None, cls=0):
    """Every per-detection value PHALP stores, for one person (``get_human_features``)."""
    height, width = SIZE
    uv = coco_kp[coco_kp[:, 2] > 0, :2]
    x0, y0 = uv.min(0) - 20
    w, h = uv.max(0) - uv.min(0) + 40
    bbox = np.array([x0, y0, w, h])
    center = np.array([x0 + w / 2, y0 + h / 2])
    op25 = np.zeros((25, 3))
    op25[COCO] = coco_kp
    pose23 = np.concatenate([_aa_to_matrices(pose), np.tile(np.eye(3), (2, 1, 1))])
    return {
        "bbox": bbox,
        "tracked_bbox": bbox,
        "center": center,
        "scale": np.array([w, h]),
        "size": [height, width],
        "img_name": "x.jpg",
        "class_name": np.int64(cls),
        "conf": np.float32(0.95),
        "annotations": [],
        "smpl": {
            "global_orient": _aa_to_matrices(orient).reshape(1, 3, 3),
            "body_pose": pose23.astype(np.float32),
            "betas": betas.astype(np.float32),
        },
        "camera": np.array([0.1, 0.2, 30.0], dtype=np.float32),
        "camera_bbox": _camera_bbox(transl, center, bbox, height, width),
        "3d_joints": np.zeros((45, 3), dtype=np.float32),
        "2d_joints": np.zeros(90, dtype=np.float32) if joints2d is None else joints2d,
        "mask": [{"size": [height, width], "counts": "PZ1"}],
        "extra_data": op25,
    }


def _person(tracks, t, shift=0.0, **kw):
    kp = tracks.kp2d[0, t].double().numpy().copy()
    kp[:, 0] += shift
    g = tracks.smpl_guess
    transl = g.transl_c[0, t].double().numpy() + np.array([shift / 500, 0, 0])
    return _detection(
        kp,
        g.global_orient_c[0, t].double().numpy(),
        g.body_pose[0, t].double().numpy(),
        g.betas[0, t].double().numpy(),
        transl,
        **kw,
    )


def _frame(t, shot, tracked, stale=()):
    """One frame record; ``stale`` entries are listed in ``tid`` but not in ``tracked_ids``."""
    key = f"/data/images/seq/{t:06d}.jpg"
    record = {"time": t, "shot": shot, "frame_path": key, "tid": [], "tracked_ids": []}
    record["tracked_time"] = []
    for tid, det, detected in [(*d, True) for d in tracked] + [(*d, False) for d in stale]:
        record["tid"].append(tid)
        record["tracked_time"].append(0 if detected else 3)
        if detected:
            record["tracked_ids"].append(tid)
        for k, v in det.items():
            record.setdefault(k, []).append(v)
        record.setdefault("img_path", []).append(key)
    return key, record


def phalp_results(tracks, mutate=None):
    """Shot 0: frames 0..149 (track 1 with a gap, 4 on 20..99, 9 on 130..139, class-1 track 5 on
    0..49); shot 1: frames 150..179 (track 1). ``mutate(t, tid, det)`` edits a detection."""
    results = {}
    for t in range(180):
        src = t if t < 150 else t - 150
        people = {1: _person(tracks, src, shift=0.0 if t < 150 else 100.0)}
        if 20 <= t < 100:
            people[4] = _person(tracks, t, shift=200.0)
        if 130 <= t < 140:
            people[9] = _person(tracks, t, shift=-150.0)
        if t < 50:
            people[5] = _person(tracks, t, shift=50.0, cls=1)
        if mutate is not None:
            for tid, det in people.items():
                mutate(t, tid, det)
        stale = [(1, people.pop(1))] if t in GAP else []
        key, record = _frame(t, int(t == 150), sorted(people.items()), stale)
        results[key] = record
    return results


@pytest.fixture(scope="module")
def example():
    return _example()


@pytest.fixture(scope="module")
def phalp_pkl(tmp_path_factory, example) -> Path:
    path = tmp_path_factory.mktemp("phalp") / "seq.pkl"
    joblib.dump(phalp_results(example), path, compress=3)
    return path


def _as_op25(coco_kp: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(*coco_kp.shape[:-2], 25, 3)
    out[..., COCO, :] = coco_kp
    return out


def test_shot_0_reproduces_the_example(phalp_pkl, example):
    tracks = read_tracks(phalp_pkl)
    assert tracks.track_ids == ["001", "004"]  # 009 is too short, 005 is not a person
    assert tracks.kp_format == "op25" and tracks.num_frames == 150 and tracks.fps is None
    assert tracks.image_size == SIZE and tracks.absolute_frames
    assert tracks.frame_names[:2] == ["000000", "000001"]
    vis = tracks.vis_mask[0]
    assert not vis[list(GAP)].any() and vis.sum() == 145 and tracks.track_mask[0].all()
    seen = vis.clone()
    torch.testing.assert_close(tracks.kp2d[0, seen], _as_op25(example.kp2d[0, seen]))
    assert (tracks.kp2d[0, list(GAP)] == 0).all()
    assert tracks.vis_mask[1, 20:100].all() and tracks.vis_mask[1].sum() == 80
    torch.testing.assert_close(tracks.kp2d[1, 20:100, 0, 0], example.kp2d[0, 20:100, 0, 0] + 200)
    x0, y0 = tracks.bbox[0, 0, :2]
    assert x0 < tracks.kp2d[0, 0, COCO, 0].min() and y0 < tracks.kp2d[0, 0, COCO, 1].min()


def test_smpl_guesses_round_trip_through_camera_bbox(phalp_pkl, example):
    guess, want = read_tracks(phalp_pkl).smpl_guess, example.smpl_guess
    seen = guess.valid[0]
    assert seen.sum() == 145 and not seen[list(GAP)].any()

    def matrices(aa):
        return Rotation.from_rotvec(aa.reshape(-1, 3).double().numpy()).as_matrix()

    np.testing.assert_allclose(
        matrices(guess.global_orient_c[0, seen]), matrices(want.global_orient_c[0, seen]), atol=1e-5
    )
    np.testing.assert_allclose(
        matrices(guess.body_pose[0, seen]), matrices(want.body_pose[0, seen]), atol=1e-5
    )
    torch.testing.assert_close(guess.betas[0, seen], want.betas[0, seen])
    torch.testing.assert_close(
        guess.transl_c[0, seen], want.transl_c[0, seen], atol=1e-4, rtol=1e-4
    )
    assert guess.body_pose.shape == (2, 150, 21, 3)


def test_shot_selection_keeps_video_frame_indices(phalp_pkl, example):
    tracks = read_tracks(phalp_pkl, shot=1)
    assert tracks.track_ids == ["001"] and tracks.num_frames == 180
    assert tracks.vis_mask[0, list(SHOT1)].all() and tracks.vis_mask[0].sum() == 30
    torch.testing.assert_close(tracks.kp2d[0, 150, 0, 0], example.kp2d[0, 0, 0, 0] + 100)
    with pytest.raises(InputError, match=r"seq\.pkl: has shots 0\.\.1; shot 2 does not exist"):
        read_phalp(phalp_pkl, shot=2)
    with pytest.raises(ConfigError, match="data.shot"):
        read_phalp(phalp_pkl, shot=-1)


@pytest.mark.parametrize(
    "selection, min_len, expect",
    [
        ("all", 20, ["001", "004"]),
        ("all", 5, ["001", "004", "009"]),
        ("longest-1", 20, ["001"]),
        (["009", "001"], 20, ["009", "001"]),  # explicit ids: no length limit, given order
        ([4], 20, ["004"]),
    ],
)
def test_track_selection(phalp_pkl, selection, min_len, expect):
    assert read_tracks(phalp_pkl, selection, min_track_len=min_len).track_ids == expect


def test_unknown_or_untracked_ids_are_not_tracks(phalp_pkl):
    for tid in ("005", "002"):
        with pytest.raises(InputError, match=f"track '{tid}' not found"):
            read_tracks(phalp_pkl, [tid])


def test_load_observations_end_to_end(phalp_pkl):
    obs = load_observations(phalp_pkl, EXAMPLE / "cameras.npz", fps=30.0)
    assert obs.track_ids == ["001", "004"] and obs.num_frames == 150
    assert obs.cameras.image_size == SIZE and obs.frame_offset == 0
    assert obs.track_mask[0].all() and not obs.vis_mask[0, list(GAP)].any()
    assert obs.kp2d[..., 1, 2].eq(0).all()  # OpenPose neck ignored
    assert obs.smpl_guess.valid[1].sum() == 80
    # shot 1 keeps video frame indices: a camera file of 150 frames cannot cover frames 150..179
    with pytest.raises(InputError, match=r"cameras\.npz: has 150 camera frames"):
        load_observations(phalp_pkl, EXAMPLE / "cameras.npz", fps=30.0, shot=1)
    with pytest.raises(InputError, match="data.fps"):
        load_observations(phalp_pkl, EXAMPLE / "cameras.npz")


def test_a_camera_file_as_long_as_the_shot_starts_at_the_shot(phalp_pkl, tmp_path):
    """SLAHMR runs SLAM per shot: 30 camera frames for shot 1 (video frames 150..179)."""
    cams = read_cameras(EXAMPLE / "cameras.npz").slice(0, len(SHOT1))
    path = write_cameras_npz(tmp_path / "shot1.npz", cams)
    obs = load_observations(phalp_pkl, path, fps=30.0, shot=1)
    first_seen = int(obs.vis_mask.any(0).nonzero()[0])
    assert obs.num_frames <= len(SHOT1) and obs.track_ids == ["001"]
    assert obs.frame_offset == SHOT1[0] + first_seen
    torch.testing.assert_close(obs.cameras.R_w2c[0], cams.R_w2c[first_seen])


def test_uncompressed_joblib_and_plain_pickle(tmp_path, example):
    results = phalp_results(example)
    joblib.dump(results, tmp_path / "a.pkl")
    with open(tmp_path / "b.pkl", "wb") as f:
        pickle.dump(results, f)
    a, b = read_tracks(tmp_path / "a.pkl"), read_tracks(tmp_path / "b.pkl")
    torch.testing.assert_close(a.kp2d, b.kp2d)
    assert a.track_ids == b.track_ids == ["001", "004"]


def test_release_branch_layout(tmp_path, example, phalp_pkl):
    """SLAHMR's release branch: keypoints under ``vitpose``, crop camera under ``camera``."""

    def release(t, tid, det):
        det["vitpose"] = det.pop("extra_data")
        det["camera"] = det.pop("camera_bbox")

    joblib.dump(phalp_results(example, release), tmp_path / "r.pkl", compress=3)
    got, want = read_tracks(tmp_path / "r.pkl"), read_tracks(phalp_pkl)
    torch.testing.assert_close(got.kp2d, want.kp2d)
    torch.testing.assert_close(got.smpl_guess.transl_c, want.smpl_guess.transl_c)


def test_coco17_vitpose_entries(tmp_path, example, phalp_pkl):
    def coco(t, tid, det):
        det["extra_data"] = det["extra_data"][COCO]

    joblib.dump(phalp_results(example, coco), tmp_path / "c.pkl", compress=3)
    torch.testing.assert_close(read_tracks(tmp_path / "c.pkl").kp2d, read_tracks(phalp_pkl).kp2d)


def test_2d_joints_fallback_maps_to_pixels(tmp_path, example):
    """Plain PHALP / 4D-Humans: ``extra_data`` is the detection index; use ``2d_joints``."""
    height, width = SIZE
    side, top = max(SIZE), (max(SIZE) - height) // 2
    rng = np.random.default_rng(3)
    pixels = {}

    def model_joints(t, tid, det):
        uv = rng.uniform([0, 0], [width, height], size=(45, 2))
        pixels[t, tid] = uv[:25]
        det["2d_joints"] = ((uv + [0, top]) / side).reshape(-1).astype(np.float32)
        det["extra_data"] = 0

    joblib.dump(phalp_results(example, model_joints), tmp_path / "j.pkl", compress=3)
    tracks = read_phalp(tmp_path / "j.pkl")
    got, want = tracks.kp2d[0, 10].double().numpy(), pixels[10, 1]
    np.testing.assert_allclose(got[:, 2], 1.0)
    others = [k for k in range(25) if k not in (9, 12)]
    np.testing.assert_allclose(got[others, :2], want[others], atol=1e-3)
    left, right, mid = (torch.as_tensor(want[k]) for k in (12, 9, 8))
    np.testing.assert_allclose(got[12, :2], adjust_hips(left, right, mid).numpy(), atol=1e-3)
    np.testing.assert_allclose(got[9, :2], adjust_hips(right, left, mid).numpy(), atol=1e-3)


def _dump(tmp_path, results, name="bad.pkl") -> Path:
    path = tmp_path / name
    joblib.dump(results, path, compress=3)
    return path


def test_malformed_pickles_name_the_file(tmp_path, example):
    cases = {
        "list.pkl": ([1, 2, 3], "non-empty dict keyed by frame path"),
        "empty.pkl": ({}, "non-empty dict"),
        "intkey.pkl": ({(("v.mp4", 0)): {}}, "PHALP run on an image folder"),
    }
    for name, (payload, message) in cases.items():
        with pytest.raises(InputError, match=message) as err:
            read_phalp(_dump(tmp_path, payload, name))
        assert name in str(err.value)

    results = phalp_results(example)
    key = next(iter(results))
    del results[key]["tracked_ids"]
    with pytest.raises(InputError, match=r"bad\.pkl: frame '000000': 'tid' and 'tracked_ids'"):
        read_phalp(_dump(tmp_path, results))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(extra_data=np.zeros((20, 3))), "expected 25x3 or 17x3"),
        (lambda d: d.update(extra_data=None, **{"2d_joints": None}), "no keypoints"),
        (lambda d: d.update(bbox=np.array([1.0, 2.0, np.nan, 4.0])), "NaN"),
        (lambda d: d.update(size=[720]), "'size' has 1 values"),
        (lambda d: d["smpl"].pop("betas"), "'smpl' must be a dict"),
    ],
)
def test_malformed_detections_name_the_file_and_frame(tmp_path, example, edit, message):
    def mutate(t, tid, det):
        if t == 30 and tid == 4:
            edit(det)

    results = phalp_results(example, mutate)
    if "no keypoints" in message:  # a record without any keypoint key
        key = "/data/images/seq/000030.jpg"
        results[key].pop("2d_joints")
        results[key]["extra_data"] = [None] * len(results[key]["tid"])
    with pytest.raises(InputError, match=message) as err:
        read_phalp(_dump(tmp_path, results))
    assert "bad.pkl" in str(err.value) and "000030" in str(err.value)


def test_shot_applies_to_pickles_only(tmp_path):
    with pytest.raises(ConfigError, match="only PHALP pickles have shots"):
        read_tracks(EXAMPLE / "tracks.npz", shot=1)


def test_non_integer_frame_names_are_numbered_by_name(tmp_path, example):
    results = {
        key.replace("/seq/", "/seq/img_"): record for key, record in phalp_results(example).items()
    }
    tracks = read_phalp(_dump(tmp_path, results, "named.pkl"))
    assert not tracks.absolute_frames and tracks.num_frames == 150
    assert tracks.frame_names[:2] == ["img_000000", "img_000001"]
    assert tracks.vis_mask[0].sum() == 145
