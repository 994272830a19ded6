"""``slahmr-opt run`` fits the front end's tracks and cameras as computed: the ``Observations``
made in memory equal those read back from the files the front end writes (``run._observations``,
what a rerun that reuses the front end reads), field by field and bit for bit."""

from dataclasses import fields, replace

import numpy as np
import pytest
import torch

from slahmr_opt.config import load_config
from slahmr_opt.errors import ConfigError
from slahmr_opt.frontend.camera import CameraDiagnostics, CameraEstimate, write_cameras
from slahmr_opt.geometry.rotations import rotvec_to_rotmat
from slahmr_opt.inputs.track_data import TrackData
from slahmr_opt.inputs.tracks import write_tracks_npz
from slahmr_opt.run import FrontEndSettings, _front_end_observations, _observations
from slahmr_opt.types import ScenePoints

P, T, SIZE = 3, 40, (360, 640)


def _front_end(motion: str = "general", seed: int = 0) -> tuple[TrackData, CameraEstimate]:
    """A front end's output: OpenPose tracks (one too short, a window that starts at frame 4)
    and a translating, rotating camera with background points."""
    rng = np.random.default_rng(seed)
    vis = np.zeros((P, T), bool)
    vis[0, 4:36] = True
    vis[1, 10:40] = True
    vis[2, 20:26] = True  # shorter than min_track_len
    vis[1, 15:18] = False
    kp2d = np.zeros((P, T, 25, 3))
    kp2d[..., 0] = rng.uniform(0, SIZE[1], (P, T, 25))
    kp2d[..., 1] = rng.uniform(0, SIZE[0], (P, T, 25))
    kp2d[..., 2] = rng.uniform(0, 1, (P, T, 25)) * vis[..., None]
    tracks = TrackData(
        kp2d=torch.as_tensor(kp2d, dtype=torch.float32),
        kp_format="op25",
        vis_mask=torch.as_tensor(vis),
        track_ids=["001", "002", "003"],
        fps=29.97,
        bbox=torch.as_tensor(rng.uniform(0, 100, (P, T, 4)), dtype=torch.float32),
        frame_names=[f"{t:06d}" for t in range(T)],
        image_size=SIZE,
    )
    static = motion == "static"
    R_c2w = rotvec_to_rotmat(torch.as_tensor(rng.normal(0, 0.1, (T, 3)))).numpy()
    t_c2w = np.zeros((T, 3)) if static else np.cumsum(rng.normal(0, 0.05, (T, 3)), axis=0)
    diag = CameraDiagnostics(np.zeros(T), np.zeros(T), np.zeros(T), np.zeros(T), 1.0)
    points = None
    if not static:
        frames = np.sort(rng.integers(0, T, (50, 2)), axis=1)
        points = ScenePoints(
            torch.as_tensor(rng.normal(0, 3, (50, 3))), torch.as_tensor(frames, dtype=torch.int64)
        )
    estimate = CameraEstimate(
        R_c2w=np.eye(3)[None].repeat(T, 0) if static else R_c2w,
        t_c2w=t_c2w,
        intrins=np.array([512.3, 512.3, 320.0, 180.0]),
        image_size=SIZE,
        motion=motion,
        diagnostics=diag,
        points=points,
    )
    return tracks, estimate


def _assert_same(a, b) -> None:
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, torch.Tensor):
            assert x.dtype == y.dtype and torch.equal(x, y), f.name
        elif f.name in ("cameras", "points") and x is not None:
            _assert_same(x, y)
        else:
            assert x == y, f.name


@pytest.mark.parametrize(
    ("motion", "overrides", "intrinsics"),
    [
        ("general", [], None),
        ("general", ["data.track_ids=longest-1", "data.min_conf=0.5"], (500.0, 501.0, 321, 181)),
        ("general", ["data.image_size=[720,1280]", "data.fps=25"], None),
        ("static", [], None),
        ("static", [], (500.0, 501.0, 321, 181)),
    ],
)
def test_in_memory_observations_equal_the_files(tmp_path, motion, overrides, intrinsics):
    tracks, estimate = _front_end(motion)
    folder = tmp_path / "frontend"
    write_tracks_npz(folder / "tracks.npz", tracks)
    write_cameras(estimate, folder)
    if estimate.is_static:
        (folder / "static.json").write_text('{"is_static": true}')
    cfg = load_config(None, ["data.min_track_len=10", *overrides])
    settings = FrontEndSettings(static=motion == "static", intrinsics=intrinsics)
    from_files = _observations(folder, cfg, settings)
    from_memory = _front_end_observations(
        folder, replace(tracks, source=folder / "tracks.npz"), estimate, cfg, settings
    )
    _assert_same(from_files, from_memory)
    assert from_memory.frame_offset == 4
    assert from_memory.num_people == (1 if "data.track_ids=longest-1" in overrides else 2)
    assert (from_memory.points is None) == (motion == "static")


def test_shots_are_refused_as_for_the_files(tmp_path):
    tracks, estimate = _front_end()
    cfg = load_config(None, ["data.shot=1"])
    with pytest.raises(ConfigError, match="only PHALP pickles have shots"):
        _front_end_observations(tmp_path, tracks, estimate, cfg, FrontEndSettings())
