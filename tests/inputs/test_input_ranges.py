"""Plausible ranges where inputs enter (issue 16): each case is refused with one ``InputError``
(or ``ConfigError`` for an argument) naming the file, the key and the limit; nothing is fitted."""

import logging
from dataclasses import replace

import numpy as np
import pytest
import torch

from slahmr_opt.cli.main import main
from slahmr_opt.errors import ConfigError, InputError
from slahmr_opt.inputs import load_observations, write_cameras_npz, write_tracks_npz
from slahmr_opt.inputs.cameras import read_cameras, static_cameras
from slahmr_opt.inputs.intrinsics import write_intrinsics_txt


def _tracks_file(tmp_path, factory, **changes):
    tracks = factory(num_people=2, num_frames=30)
    return write_tracks_npz(tmp_path / "tracks.npz", replace(tracks, **changes))


def test_keypoints_far_outside_the_image_are_refused(tmp_path, tracks_factory):
    kp2d = tracks_factory(num_people=2, num_frames=30).kp2d.clone()
    kp2d[1, 12, 3, 0] = 1e12
    path = _tracks_file(tmp_path, tracks_factory, kp2d=kp2d)
    with pytest.raises(InputError) as exc:
        load_observations(path, static=True, min_track_len=5)
    message = str(exc.value)
    assert message.startswith(f"{path}: 'keypoints (track 002, frame 000012)'")
    assert "coordinates up to 1e+12 px; the limit is 6400 px (10 x the image size 640)" in message


def test_keypoints_just_inside_the_limit_are_fitted(tmp_path, tracks_factory):
    kp2d = tracks_factory(num_people=2, num_frames=30).kp2d.clone()
    kp2d[1, 12, 3, 0] = -6400.0  # extrapolated limbs beyond the frame are kept
    path = _tracks_file(tmp_path, tracks_factory, kp2d=kp2d)
    obs = load_observations(path, static=True, min_track_len=5)
    assert float(obs.kp2d[..., 0].min()) == -6400.0


def test_undetected_keypoints_are_not_range_checked(tmp_path, tracks_factory):
    """A keypoint of confidence 0 may hold anything finite: ``bench make`` projects joints that
    are behind the camera to 1e5 px and marks them undetected (the 40-sequence dev set has 75)."""
    kp2d = tracks_factory(num_people=2, num_frames=30).kp2d.clone()
    kp2d[1, 12, 3] = torch.tensor([-3.4e5, 2.0e5, 0.0])
    path = _tracks_file(tmp_path, tracks_factory, kp2d=kp2d)
    obs = load_observations(path, static=True, min_track_len=5)
    assert float(obs.kp2d[..., 2][obs.kp2d[..., 0].abs() > 6400].max()) == 0.0


def test_confidences_above_one_are_clipped_with_a_warning(tmp_path, tracks_factory, caplog):
    kp2d = tracks_factory(num_people=2, num_frames=30).kp2d.clone()
    kp2d[0, 2, 5, 2] = 1.2
    path = _tracks_file(tmp_path, tracks_factory, kp2d=kp2d)
    with caplog.at_level(logging.WARNING):
        obs = load_observations(path, static=True, min_track_len=5)
    assert float(obs.kp2d[..., 2].max()) == 1.0
    assert "1 keypoint confidences above 1 (up to 1.2, track 001, frame 000002)" in caplog.text


def test_confidences_far_above_one_are_refused(tmp_path, tracks_factory):
    kp2d = tracks_factory(num_people=2, num_frames=30).kp2d.clone()
    kp2d[0, 2, 5, 2] = 1e6
    path = _tracks_file(tmp_path, tracks_factory, kp2d=kp2d)
    with pytest.raises(InputError, match=r"confidences up to 1e\+06; the limit is 1.5 "):
        load_observations(path, static=True, min_track_len=5)


def test_tracks_fps_above_the_limit(tmp_path, tracks_factory):
    path = _tracks_file(tmp_path, tracks_factory, fps=5000.0)
    with pytest.raises(InputError) as exc:
        load_observations(path, static=True, min_track_len=5)
    assert str(exc.value) == (
        f"{path}: 'fps' has values up to 5000 frames/s; the limit is 1000 frames/s"
    )


def test_fps_argument_above_the_limit(slahmr_dir):  # a track folder records no fps
    with pytest.raises(ConfigError, match=r"fps must be a number in \(0, 1000\], got 5000"):
        load_observations(slahmr_dir, static=True, image_size=(480, 640), fps=5000)


def _cameras(num_frames=30, t=None):
    cams = static_cameras(num_frames, (480, 640))
    if t is not None:
        cams = replace(cams, t_w2c=t, is_static=False)
    return cams


def test_camera_translation_far_away(tmp_path):
    t = torch.zeros(30, 3)
    t[7, 2] = 1e9
    path = write_cameras_npz(tmp_path / "cameras.npz", _cameras(t=t))
    with pytest.raises(InputError) as exc:
        read_cameras(path)
    assert str(exc.value).startswith(f"{path}: 'w2c translation' has coordinates up to 1e+09;")
    assert "the limit is 1e+04" in str(exc.value)


def test_droid_trajectory_translation_far_away(tmp_path):
    poses = np.tile([0.0, 0, 0, 0, 0, 0, 1], (10, 1))
    poses[4, 0] = -3e7
    path = tmp_path / "traj.txt"
    np.savetxt(path, poses)
    with pytest.raises(InputError, match=r"translation \(tx ty tz\)' has coordinates up to 3e\+07"):
        read_cameras(path, image_size=(480, 640))


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ([1e9, 1e9, 320, 240], r"'intrinsics focal length' has values up to 1e\+09 px; the limit "
                               r"is 6.4e\+04 px \(100 x the image size 640\)"),
        ([500, 500, 5e4, 240], r"'intrinsics cx' has values up to 5e\+04 px; the limit is 1280 px"),
        ([500, 500, 320, -1e4], r"'intrinsics cy' has values down to -1e\+04 px; the limit is "
                                r"-480 px"),
    ],
)  # fmt: skip
def test_implausible_intrinsics_file(tmp_path, row, expected):
    path = write_intrinsics_txt(tmp_path / "intrinsics.txt", torch.tensor(row))
    with pytest.raises(InputError, match=expected) as exc:
        static_cameras(5, (480, 640), path)
    assert str(exc.value).startswith(str(path))


def test_the_fit_command_refuses_far_keypoints(tmp_path, tracks_factory, capsys):
    kp2d = tracks_factory(num_people=2, num_frames=30).kp2d.clone()
    kp2d[0, 3, 0, 1:] = torch.tensor([1e12, 0.8])  # a detected keypoint
    path = _tracks_file(tmp_path, tracks_factory, kp2d=kp2d)
    out = tmp_path / "out"
    assert main(["fit", "--tracks", str(path), "--static", "--out", str(out),
                 "data.min_track_len=5"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "the limit is 6400 px" in err[0]
    assert not (out / "results.npz").exists()
