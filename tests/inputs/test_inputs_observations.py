"""load_observations: tracks + cameras -> Observations (alignment, cropping, fps, errors)."""

import logging
from dataclasses import replace

import numpy as np
import pytest
import torch

from slahmr_opt.errors import ConfigError, InputError
from slahmr_opt.geometry.rotations import rotvec_to_rotmat
from slahmr_opt.inputs.cameras import read_cameras, write_cameras_npz, write_droid_traj
from slahmr_opt.inputs.observations import load_observations
from slahmr_opt.inputs.tracks import write_track_dirs, write_tracks_npz
from slahmr_opt.types import Cameras, Observations

SIZE = (480, 640)


def _moving_cameras(num: int) -> Cameras:
    angles = torch.zeros(num, 3)
    angles[:, 1] = torch.linspace(0, 1, num)
    t = torch.stack([torch.linspace(0, 2, num), torch.zeros(num), torch.ones(num)], dim=1)
    return Cameras(
        rotvec_to_rotmat(angles), t, torch.tensor([[500.0, 500, 320, 240]] * num), SIZE
    )


def test_folder_and_droid_are_cropped_to_the_tracked_window(tmp_path, slahmr_dir):
    cams = _moving_cameras(60)
    write_droid_traj(tmp_path / "traj.npy", cams)
    obs = load_observations(
        slahmr_dir, tmp_path / "traj.npy", image_size=SIZE, fps=25.0, min_track_len=10
    )
    assert isinstance(obs, Observations)
    # tracks cover video frames 10..49 -> T = 40, offset 10
    assert obs.num_frames == 40 and obs.cameras.num_frames == 40
    assert obs.frame_offset == 10 and obs.sources["frame_offset"] == "10"
    assert obs.sources["tracks"] == str(slahmr_dir)
    assert obs.sources["cameras"] == str(tmp_path / "traj.npy")
    torch.testing.assert_close(obs.cameras.t_w2c, cams.t_w2c[10:50], rtol=1e-6, atol=1e-6)
    assert obs.fps == 25.0 and obs.kp_format == "op25" and obs.track_ids == ["001", "002"]
    assert obs.vis_mask[1, 2:27].all() and not obs.vis_mask[1, :2].any()  # 002 starts at frame 12
    assert obs.track_mask[0].all() and not obs.vis_mask[0, 10:15].any()
    assert obs.smpl_guess.valid.shape == (2, 40) and obs.smpl_guess.valid[0, 0]


def test_npz_with_static_camera(tmp_path, tracks_factory):
    tracks = tracks_factory(num_people=2, num_frames=40)
    vis = tracks.vis_mask.clone()
    vis[:, :6] = False  # nobody in the first 6 frames
    path = write_tracks_npz(tmp_path / "t.npz", replace(tracks, vis_mask=vis))
    obs = load_observations(path, static=True, min_track_len=5)
    assert obs.cameras.is_static and obs.cameras.image_size == SIZE
    assert obs.num_frames == 34 and obs.frame_offset == 6
    assert obs.sources["cameras"] == "static"
    assert obs.fps == 25.0 and obs.bbox.shape == (2, 34, 4)
    torch.testing.assert_close(obs.cameras.intrins[0], torch.tensor([560.0, 560, 320, 240]))


def test_camera_file_with_extra_frames_and_intrinsics_override(tmp_path, tracks_factory):
    path = write_tracks_npz(tmp_path / "t.npz", tracks_factory(num_frames=40))
    write_cameras_npz(tmp_path / "cameras.npz", _moving_cameras(55))
    obs = load_observations(
        path, tmp_path / "cameras.npz", intrinsics=[700.0, 700, 300, 200], min_track_len=5
    )
    assert obs.num_frames == 40 and obs.cameras.num_frames == 40
    assert (obs.cameras.intrins[:, 0] == 700).all()


def test_fps_sources(tmp_path, slahmr_dir, tracks_factory, caplog):
    write_droid_traj(tmp_path / "traj.npy", _moving_cameras(50))
    with pytest.raises(InputError, match="track_preds/seq: no fps recorded.*pass fps"):
        load_observations(slahmr_dir, tmp_path / "traj.npy", image_size=SIZE, min_track_len=10)
    npz = write_tracks_npz(tmp_path / "t.npz", tracks_factory())
    with caplog.at_level(logging.WARNING):
        obs = load_observations(npz, static=True, fps=30.0, min_track_len=5)
    assert obs.fps == 25.0 and "ignoring fps=30" in caplog.text
    with pytest.raises(ConfigError, match="fps"):
        load_observations(npz, static=True, fps=-1.0, min_track_len=5)


def test_selection_and_min_conf_are_passed_on(tmp_path, slahmr_dir):
    write_droid_traj(tmp_path / "traj.npy", _moving_cameras(50))
    obs = load_observations(
        slahmr_dir,
        tmp_path / "traj.npy",
        image_size=SIZE,
        fps=30,
        track_selection=["002"],
        min_conf=0.95,
    )
    assert obs.track_ids == ["002"] and obs.num_frames == 25
    assert obs.frame_offset == 12
    assert (obs.kp2d[..., 2] == 0).all()  # every confidence (0.9) is below 0.95


def test_camera_file_shorter_than_tracks_names_both_files(tmp_path, slahmr_dir):
    write_droid_traj(tmp_path / "short.npy", _moving_cameras(45))
    with pytest.raises(InputError) as info:
        load_observations(
            slahmr_dir, tmp_path / "short.npy", image_size=SIZE, fps=30, min_track_len=10
        )
    assert "short.npy" in str(info.value) and "track_preds/seq" in str(info.value)
    assert "45 camera frames" in str(info.value)


def test_position_indexed_frames_need_equal_frame_counts(tmp_path, track_writer):
    names = [f"frame_{t:03d}" for t in range(30)]
    track_writer(tmp_path / "tracks", "001", names)
    write_droid_traj(tmp_path / "traj.npy", _moving_cameras(35))
    with pytest.raises(InputError, match="traj.npy.*non-integer frame names"):
        load_observations(tmp_path / "tracks", tmp_path / "traj.npy", image_size=SIZE, fps=30)
    write_droid_traj(tmp_path / "traj.npy", _moving_cameras(30), overwrite=True)
    obs = load_observations(tmp_path / "tracks", tmp_path / "traj.npy", image_size=SIZE, fps=30)
    assert obs.num_frames == 30


def test_static_needs_image_size(tmp_path, slahmr_dir):
    with pytest.raises(InputError, match="track_preds/seq: a static camera needs the image size"):
        load_observations(slahmr_dir, static=True, fps=30, min_track_len=10)
    obs = load_observations(slahmr_dir, static=True, fps=30, image_size=SIZE, min_track_len=10)
    assert obs.cameras.is_static and obs.num_frames == 40


def test_image_size_from_tracks_npz_feeds_the_camera_reader(tmp_path, tracks_factory):
    path = write_tracks_npz(tmp_path / "t.npz", tracks_factory())
    np.save(tmp_path / "traj.npy", np.tile([0.0, 0, 0, 0, 0, 0, 1], (40, 1)))
    obs = load_observations(path, tmp_path / "traj.npy", min_track_len=5)
    assert obs.cameras.image_size == SIZE
    assert read_cameras(tmp_path / "traj.npy", image_size=SIZE).num_frames == 40


@pytest.mark.parametrize("static", [True, False])
def test_camera_source_must_be_exactly_one(tmp_path, tracks_factory, static):
    path = write_tracks_npz(tmp_path / "t.npz", tracks_factory())
    cameras = tmp_path / "traj.npy" if static else None
    with pytest.raises(ConfigError, match="exactly one camera source"):
        load_observations(path, cameras, static=static)


def test_tracks_written_as_folder_read_back_through_observations(tmp_path, tracks_factory):
    tracks = tracks_factory(num_frames=40)
    write_track_dirs(tmp_path / "preds", tracks)
    write_cameras_npz(tmp_path / "cams" / "cameras.npz", _moving_cameras(40))
    obs = load_observations(tmp_path / "preds", tmp_path / "cams", fps=25, min_track_len=5)
    assert obs.num_frames == 40 and obs.frame_offset == 0
    assert torch.equal(obs.vis_mask, tracks.vis_mask)
