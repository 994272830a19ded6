"""Fixtures for the input readers: files in the exact layouts real tools write, built in tmp_path.

SLAHMR track folders are written here by hand (``json.dump`` of SLAHMR's dicts), not through our
writer, so that reader tests do not depend on the writer being right. Helpers are handed to tests
as factory fixtures (no imports between test modules).
"""

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from slahmr_opt.inputs.track_data import TrackData
from slahmr_opt.types import SMPLGuess


def op25_keypoints(seed: int, conf: float = 0.9) -> np.ndarray:
    """(25, 3) keypoints as SLAHMR exports them: OP slots 1, 8, 19-24 empty."""
    rng = np.random.default_rng(seed)
    kp = np.zeros((25, 3))
    filled = [0, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]
    kp[filled, :2] = rng.uniform(0, 500, (len(filled), 2))
    kp[filled, 2] = conf
    return kp


def smpl_entry(seed: int, num_joints: int = 23, num_betas: int = 10) -> dict:
    """One ``<frame>_smpl.json`` as SLAHMR's ``export_phalp.py`` writes it."""
    rng = np.random.default_rng(1000 + seed)
    return {
        "betas": rng.normal(size=num_betas).tolist(),
        "body_pose": rng.normal(scale=0.3, size=(num_joints, 3)).tolist(),
        "global_orient": rng.normal(size=3).tolist(),
        "cam_trans": [0.1, -0.2, 5.0 + seed * 0.01],
    }


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def write_slahmr_track(
    root: Path, tid: str, frames: list[int | str], nested: bool = True, smpl: bool = False
) -> dict[str, np.ndarray]:
    """Write one track folder; returns the (25, 3) keypoints written per frame name. An integer
    frame ``t`` (0-based video frame) is named as SLAHMR's extracted image: ``f"{t + 1:06d}"``."""
    written = {}
    for i, frame in enumerate(frames):
        name = f"{frame + 1:06d}" if isinstance(frame, int) else frame
        kp = op25_keypoints(seed=zlib.crc32(f"{tid}/{name}".encode()))
        payload = kp.tolist() if nested else kp.reshape(-1).tolist()
        write_json(
            root / tid / f"{name}_keypoints.json", {"people": [{"pose_keypoints_2d": payload}]}
        )
        if smpl:
            write_json(root / tid / f"{name}_smpl.json", smpl_entry(i))
        written[name] = kp
    return written


@pytest.fixture
def slahmr_dir(tmp_path: Path) -> Path:
    """Two tracks: 001 on frames 10..49 with a gap at 20..24, 002 on frames 12..36, SMPL on 001."""
    root = tmp_path / "track_preds" / "seq"
    write_slahmr_track(root, "001", [t for t in range(10, 50) if not 20 <= t < 25], smpl=True)
    write_slahmr_track(root, "002", list(range(12, 37)))
    return root


def make_tracks(
    num_people: int = 2, num_frames: int = 40, kp_format: str = "coco17", smpl: bool = True
) -> TrackData:
    """In-memory tracks with confidences above SLAHMR's threshold and a gap in track 0."""
    gen = torch.Generator().manual_seed(7)
    num_kp = 17 if kp_format == "coco17" else 25
    kp2d = torch.rand(num_people, num_frames, num_kp, 3, generator=gen) * 500
    kp2d[..., 2] = 0.5 + 0.5 * torch.rand(num_people, num_frames, num_kp, generator=gen)
    if kp_format == "op25":
        kp2d[..., 1, 2] = 0.0
    vis = torch.ones(num_people, num_frames, dtype=torch.bool)
    vis[0, 5:9] = False
    if num_people > 1:
        vis[1, :3] = False
        vis[1, -4:] = False
    kp2d[~vis] = 0.0  # undetected: no keypoints at all
    guess = None
    if smpl:
        shape = (num_people, num_frames)
        guess = SMPLGuess(
            global_orient_c=torch.randn(*shape, 3, generator=gen),
            body_pose=0.3 * torch.randn(*shape, 21, 3, generator=gen),
            betas=torch.randn(*shape, 10, generator=gen),
            transl_c=torch.randn(*shape, 3, generator=gen),
            valid=vis.clone(),
        )
        for name in ("global_orient_c", "body_pose", "betas", "transl_c"):
            getattr(guess, name)[~vis] = 0.0
    return TrackData(
        kp2d=kp2d,
        kp_format=kp_format,
        vis_mask=vis,
        track_ids=[f"{i + 1:03d}" for i in range(num_people)],
        fps=25.0,
        bbox=torch.rand(num_people, num_frames, 4, generator=gen) * 100,
        smpl_guess=guess,
        frame_names=[f"{t:06d}" for t in range(num_frames)],
        image_size=(480, 640),
    )


def npz_arrays(num_people: int = 2, num_frames: int = 30) -> dict[str, np.ndarray]:
    """A valid tracks .npz as a dict, to be broken one key at a time by the tests."""
    rng = np.random.default_rng(3)
    kp2d = rng.uniform(0, 400, (num_people, num_frames, 17, 3))
    kp2d[..., 2] = 0.8
    return {
        "kp2d": kp2d.astype(np.float32),
        "kp_format": np.asarray("coco17"),
        "vis_mask": np.ones((num_people, num_frames), dtype=bool),
        "track_ids": np.asarray([f"{i:03d}" for i in range(num_people)]),
        "fps": np.asarray(30.0),
        "smpl_global_orient_c": np.zeros((num_people, num_frames, 3), np.float32),
        "smpl_body_pose": np.zeros((num_people, num_frames, 21, 3), np.float32),
        "smpl_betas": np.zeros((num_people, num_frames, 10), np.float32),
        "smpl_transl_c": np.zeros((num_people, num_frames, 3), np.float32),
        "smpl_valid": np.ones((num_people, num_frames), dtype=bool),
    }


def save_npz(path: Path, arrays: dict) -> Path:
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


@pytest.fixture
def tracks_factory():
    return make_tracks


@pytest.fixture
def npz_factory():
    return npz_arrays


@pytest.fixture
def track_writer():
    return write_slahmr_track


@pytest.fixture
def json_writer():
    return write_json


@pytest.fixture
def npz_saver():
    return save_npz
