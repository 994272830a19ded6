"""Track readers and writers: SLAHMR track folders and the tracks .npz (smoke, cardinality, values,
selection, round trips). Bad inputs are in ``test_inputs_tracks_errors.py``."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from slahmr_opt.errors import ConfigError, InputError
from slahmr_opt.inputs.track_data import TrackData, select_tracks, track_mask_from_vis
from slahmr_opt.inputs.track_dirs import COCO17_TO_OP25
from slahmr_opt.inputs.tracks import read_tracks, write_track_dirs, write_tracks_npz


def _slow_track_mask(vis: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(vis)
    for p in range(vis.shape[0]):
        idx = [t for t in range(vis.shape[1]) if vis[p, t]]
        if idx:
            out[p, idx[0] : idx[-1] + 1] = True
    return out


# --- smoke and cardinality -------------------------------------------------------------------


def test_read_slahmr_dir_smoke(slahmr_dir):
    tracks = read_tracks(slahmr_dir, min_track_len=10)
    assert tracks.kp_format == "op25"
    assert tracks.track_ids == ["001", "002"]
    # SLAHMR's image names: 000001 is frame 0, so T = last name
    assert tracks.kp2d.shape == (2, 50, 25, 3)
    assert tracks.absolute_frames and tracks.fps is None and tracks.bbox is None
    assert tracks.frame_names[0] == "000001" and tracks.frame_names[12] == "000013"
    assert tracks.source == slahmr_dir


def test_read_slahmr_dir_masks(slahmr_dir):
    tracks = read_tracks(slahmr_dir, min_track_len=10)
    vis, mask = tracks.vis_mask, tracks.track_mask
    assert vis[0, 10:20].all() and not vis[0, 20:25].any() and vis[0, 25:50].all()
    assert mask[0, 10:50].all() and not mask[0, :10].any()  # the gap is occluded, inside the track
    assert vis[1, 12:37].all() and not vis[1, 37:].any() and not mask[1, 37:].any()
    assert (tracks.kp2d[0, 20:25, :, 2] == 0).all()


def test_read_slahmr_dir_smpl(slahmr_dir):
    tracks = read_tracks(slahmr_dir, min_track_len=10)
    guess = tracks.smpl_guess
    assert guess.body_pose.shape == (2, 50, 21, 3)
    assert guess.betas.shape == (2, 50, 10)
    assert guess.valid[0].sum() == 35 and not guess.valid[1].any()
    entry = json.loads((slahmr_dir / "001" / "000011_smpl.json").read_text())
    torch.testing.assert_close(guess.body_pose[0, 10], torch.tensor(entry["body_pose"][:21]))
    torch.testing.assert_close(guess.transl_c[0, 10], torch.tensor(entry["cam_trans"]))
    torch.testing.assert_close(guess.global_orient_c[0, 10], torch.tensor(entry["global_orient"]))


def test_flat_and_nested_keypoints_agree(tmp_path, track_writer):
    nested = track_writer(tmp_path / "a", "001", list(range(25)), nested=True)
    track_writer(tmp_path / "b", "001", list(range(25)), nested=False)
    a = read_tracks(tmp_path / "a", min_conf=0.0)
    b = read_tracks(tmp_path / "b", min_conf=0.0)
    torch.testing.assert_close(a.kp2d, b.kp2d)
    torch.testing.assert_close(a.kp2d[0, 3, :, :2], torch.tensor(nested["000004"][:, :2]).float())


def test_frames_are_numbered_as_slahmr_extracts_them(tmp_path, track_writer):
    """SLAHMR's ffmpeg names images %06d from 000001 and camera row 0 is the first image: a
    person in the last image (000060 of 60) is frame 59, inside a 60-camera file."""
    track_writer(tmp_path / "a", "001", [f"{n:06d}" for n in range(31, 61)])
    tracks = read_tracks(tmp_path / "a")
    assert tracks.num_frames == 60 and tracks.vis_mask[0, 30:].all()
    assert not tracks.vis_mask[0, :30].any()
    # Names that include 000000 (our front end, older writers) count from 0.
    track_writer(tmp_path / "b", "001", [f"{n:06d}" for n in range(0, 30)])
    tracks = read_tracks(tmp_path / "b")
    assert tracks.num_frames == 30 and tracks.frame_names[0] == "000000"


def test_non_integer_frame_names_use_sorted_position(tmp_path, track_writer):
    names = [f"img_{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    track_writer(tmp_path, "001", names[2:25])
    track_writer(tmp_path, "002", names[:24])
    tracks = read_tracks(tmp_path, track_selection=["001", "002"])
    assert not tracks.absolute_frames
    assert tracks.frame_names == names[:25]
    assert not tracks.vis_mask[0, :2].any() and tracks.vis_mask[0, 2:].all()


def test_empty_people_is_not_detected(tmp_path, track_writer, json_writer):
    track_writer(tmp_path, "001", list(range(30)))
    json_writer(tmp_path / "001" / "000016_keypoints.json", {"people": []})  # frame 15
    tracks = read_tracks(tmp_path)
    assert not tracks.vis_mask[0, 15] and tracks.track_mask[0, 15]


def test_read_npz_smoke(tmp_path, npz_factory, npz_saver):
    path = npz_saver(tmp_path / "tracks.npz", npz_factory())
    tracks = read_tracks(path)
    assert tracks.kp2d.shape == (2, 30, 17, 3) and tracks.kp2d.dtype == torch.float32
    assert tracks.kp_format == "coco17" and tracks.fps == 30.0
    assert tracks.smpl_guess.body_pose.shape == (2, 30, 21, 3)
    assert tracks.frame_names is None and tracks.image_size is None and tracks.bbox is None


# --- values -----------------------------------------------------------------------------------


def test_track_mask_matches_slow_version():
    vis = torch.rand(6, 50, generator=torch.Generator().manual_seed(1)) > 0.7
    vis[0] = False
    vis[1] = True
    assert torch.equal(track_mask_from_vis(vis), _slow_track_mask(vis))


def test_track_mask_is_derived_on_replace(tracks_factory):
    tracks = tracks_factory()
    vis = tracks.vis_mask.clone()
    vis[0, :20] = False
    changed = replace(tracks, vis_mask=vis)
    assert torch.equal(changed.track_mask, _slow_track_mask(vis))


def test_low_confidence_and_neck_are_zeroed(tmp_path, json_writer):
    kp = np.zeros((25, 3))
    kp[:, :2] = 100.0
    kp[:, 2] = np.linspace(0.0, 1.0, 25)
    kp[1, 2] = 0.99  # a confident neck is still ignored
    for t in range(25):
        json_writer(
            tmp_path / "007" / f"{t:04d}_keypoints.json",
            {"people": [{"pose_keypoints_2d": kp.tolist()}]},
        )
    tracks = read_tracks(tmp_path, min_conf=0.4)
    conf = tracks.kp2d[0, 0, :, 2].double()
    expected = torch.tensor(np.where(kp[:, 2] < 0.4, 0.0, kp[:, 2]))
    expected[1] = 0.0
    torch.testing.assert_close(conf, expected, rtol=0, atol=1e-7)
    assert (tracks.kp2d[0, 0, :, :2] == 100.0).all()  # pixel coordinates are kept


def test_npz_confidence_zero_where_not_visible(tmp_path, npz_factory, npz_saver):
    arrays = npz_factory()
    arrays["vis_mask"][0, 4] = False
    tracks = read_tracks(npz_saver(tmp_path / "t.npz", arrays), track_selection=["000"])
    assert (tracks.kp2d[0, 4, :, 2] == 0).all() and (tracks.kp2d[0, 5, :, 2] > 0).all()


# --- selection --------------------------------------------------------------------------------


def _tracks_with_lengths(lengths: list[int]) -> TrackData:
    vis = torch.zeros(len(lengths), 60, dtype=torch.bool)
    for p, n in enumerate(lengths):
        vis[p, :n] = True
    return TrackData(
        torch.zeros(len(lengths), 60, 17, 3),
        "coco17",
        vis,
        [f"{p:03d}" for p in range(len(lengths))],
    )


def test_select_all_filters_short_tracks_longest_first():
    tracks = _tracks_with_lengths([20, 21, 50, 35])
    assert select_tracks(tracks, "all").track_ids == ["002", "003", "001"]
    assert select_tracks(tracks, "all", min_track_len=30).track_ids == ["002", "003"]


def test_select_all_caps_the_number_of_tracks():
    tracks = _tracks_with_lengths([30 + p for p in range(14)])
    selected = select_tracks(tracks, "all")
    assert len(selected.track_ids) == 12 and selected.track_ids[0] == "013"
    assert len(select_tracks(tracks, "all", max_tracks=3).track_ids) == 3


def test_select_longest_n():
    tracks = _tracks_with_lengths([25, 40, 10, 30])
    assert select_tracks(tracks, "longest-2").track_ids == ["001", "003"]
    assert select_tracks(tracks, "longest-9").track_ids == ["001", "003", "000"]


def test_select_explicit_keeps_order_and_ignores_min_len():
    tracks = _tracks_with_lengths([25, 40, 10, 30])
    selected = select_tracks(tracks, ["002", "000"])
    assert selected.track_ids == ["002", "000"]
    assert torch.equal(selected.vis_mask, tracks.vis_mask[[2, 0]])
    assert select_tracks(tracks, [3]).track_ids == ["003"]


@pytest.mark.parametrize("bad", ["longest-0", "longest", "everything", []])
def test_select_malformed_is_config_error(bad):
    with pytest.raises(ConfigError):
        select_tracks(_tracks_with_lengths([30]), bad)


def test_select_unknown_or_too_short_names_the_file(tmp_path, npz_factory, npz_saver):
    path = npz_saver(tmp_path / "short.npz", npz_factory(num_frames=15))
    with pytest.raises(InputError, match="short.npz.*not found"):
        read_tracks(path, track_selection=["042"])
    with pytest.raises(InputError, match="short.npz.*min_track_len"):
        read_tracks(path)
    assert read_tracks(path, track_selection=["001"]).track_ids == ["001"]


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("kp_format", ["coco17", "op25"])
def test_npz_round_trip(tmp_path, tracks_factory, kp_format):
    tracks = tracks_factory(kp_format=kp_format)
    back = read_tracks(write_tracks_npz(tmp_path / "t.npz", tracks), min_track_len=5)
    assert back.track_ids == tracks.track_ids and back.kp_format == kp_format
    assert back.fps == tracks.fps and back.image_size == tracks.image_size
    assert back.frame_names == tracks.frame_names
    torch.testing.assert_close(back.kp2d, tracks.kp2d, rtol=0, atol=0)
    assert torch.equal(back.vis_mask, tracks.vis_mask)
    assert torch.equal(back.track_mask, tracks.track_mask)
    torch.testing.assert_close(back.bbox, tracks.bbox, rtol=0, atol=0)
    for name in ("global_orient_c", "body_pose", "betas", "transl_c", "valid"):
        torch.testing.assert_close(getattr(back.smpl_guess, name), getattr(tracks.smpl_guess, name))


def test_dirs_round_trip_coco17(tmp_path, tracks_factory):
    tracks = tracks_factory(kp_format="coco17")
    root = write_track_dirs(tmp_path / "preds", tracks)
    assert sorted(p.name for p in (root / "001").iterdir())[:2] == [
        "000000_keypoints.json",
        "000000_smpl.json",
    ]
    back = read_tracks(root, min_track_len=5)
    assert back.kp_format == "op25" and back.track_ids == tracks.track_ids
    num_frames = back.num_frames  # the folder ends at the last detection
    assert torch.equal(back.vis_mask, tracks.vis_mask[:, :num_frames])
    torch.testing.assert_close(back.kp2d[:, :, list(COCO17_TO_OP25)], tracks.kp2d[:, :num_frames])
    empty = [k for k in range(25) if k not in COCO17_TO_OP25]
    assert (back.kp2d[:, :, empty] == 0).all()
    for name in ("global_orient_c", "body_pose", "betas", "valid"):
        want = getattr(tracks.smpl_guess, name)[:, :num_frames]
        torch.testing.assert_close(getattr(back.smpl_guess, name), want)
    # cam_trans is SMPL's transl: the folder keeps the pelvis (transl + the model's rest pelvis);
    # the in-memory guesses were made with a body whose rest pelvis is at the origin.
    assert back.smpl_guess.rest_pelvis[1] == pytest.approx(-0.2233, abs=1e-4)
    valid = back.smpl_guess.valid
    pelvis = back.smpl_guess.transl_c + back.smpl_guess.rest_pelvis
    torch.testing.assert_close(pelvis[valid], tracks.smpl_guess.transl_c[:, :num_frames][valid])


def test_dirs_round_trip_op25_custom_names(tmp_path, tracks_factory):
    tracks = replace(
        tracks_factory(kp_format="op25", smpl=False),
        frame_names=[f"frame{t:03d}" for t in range(40)],
    )
    back = read_tracks(write_track_dirs(tmp_path / "p", tracks), min_track_len=5)
    assert back.frame_names == tracks.frame_names and back.smpl_guess is None
    torch.testing.assert_close(back.kp2d, tracks.kp2d)


def test_writers_refuse_to_overwrite(tmp_path, tracks_factory):
    tracks = tracks_factory()
    write_tracks_npz(tmp_path / "t.npz", tracks)
    write_track_dirs(tmp_path / "d", tracks)
    with pytest.raises(FileExistsError):
        write_tracks_npz(tmp_path / "t.npz", tracks)
    with pytest.raises(FileExistsError):
        write_track_dirs(tmp_path / "d", tracks)


def test_dirs_overwrite_removes_stale_frames(tmp_path, tracks_factory):
    write_track_dirs(tmp_path / "d", tracks_factory(num_frames=40))
    short = tracks_factory(num_people=1, num_frames=30)
    write_track_dirs(tmp_path / "d", short, overwrite=True)
    back = read_tracks(tmp_path / "d", min_track_len=5)
    assert back.track_ids == ["001"] and back.num_frames == 30


def test_writer_rejects_undetected_track(tmp_path, tracks_factory):
    tracks = tracks_factory()
    vis = tracks.vis_mask.clone()
    vis[1] = False
    with pytest.raises(ValueError, match="002"):
        write_track_dirs(tmp_path / "d", replace(tracks, vis_mask=vis))


def test_a_stray_far_frame_is_refused_by_name(tmp_path, track_writer):
    """One stray ``1000000_keypoints.json`` beside 40 real frames used to make a fit of a million
    frames that ran out of memory."""
    track_writer(tmp_path, "001", list(range(40)))
    track_writer(tmp_path, "002", ["1000000"])
    with pytest.raises(InputError, match="'1000000' a stray file"):
        read_tracks(tmp_path)
    # A person seen at both ends of a long clip is fine.
    track_writer(tmp_path / "ok", "001", list(range(40)) + list(range(9000, 9040)))
    assert read_tracks(tmp_path / "ok").num_frames == 9040
