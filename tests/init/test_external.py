"""``apply_initializer`` + ``initialize_bodies`` recover the bundled example's true bodies from
WHAM, TRACE, GVHMR, TRAM and SLAHMR files made from them, and pick the right person and track.

The example's ground truth (``slahmr_opt/data/example/gt.npz``, built-in body) is written in each
tool's layout in camera coordinates (``tool_files``). Initial bodies start at the mean shape, so
they are compared with the true pose and pelvis trajectory posed at zero betas; a wrong rotation
convention or frame would be off by decimetres.
"""

import logging
from dataclasses import replace

import numpy as np
import pytest
import torch
from init.tool_files import (
    CamBody,
    write_gvhmr,
    write_slahmr,
    write_trace,
    write_tram,
    write_wham,
)
from scipy.spatial.transform import Rotation

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.cli import EXAMPLE_DIR
from slahmr_opt.errors import InputError
from slahmr_opt.init.external import apply_initializer
from slahmr_opt.init.from_tracks import initialize_bodies
from slahmr_opt.inputs.initializers import REST_PELVIS
from slahmr_opt.inputs.track_data import track_mask_from_vis
from slahmr_opt.types import Cameras, Observations, SMPLGuess

OFFSET = 6
"""Video frame of observation frame 0 (the tracks start being seen there)."""
TOL_M = 2e-3
"""Joint tolerance on the frames a tool covers (float32 round trips; errors are ~1e-5 m)."""


@pytest.fixture(scope="module")
def scene():
    """True bodies in the camera frame, the expected mean-shape joints and our intrinsics."""
    gt = np.load(EXAMPLE_DIR / "gt.npz")
    intr = np.load(EXAMPLE_DIR / "cameras.npz")["intrins"].astype(np.float64)
    model = load_body_model(BodyConfig(), torch.float64)
    T = gt["joints"].shape[1]
    R, t = gt["cam_R"].astype(np.float64), gt["cam_t"].astype(np.float64)
    root, trans = gt["root_orient"][0], gt["trans"][0]
    pose = gt["pose_body"][0].reshape(T, 21, 3)

    def joints(betas, trans_):
        return model(
            torch.tensor(betas)[None], torch.tensor(root), torch.tensor(pose), torch.tensor(trans_)
        ).joints.numpy()

    pelvis_w = joints(gt["betas"][0], trans)[:, 0]
    rest = joints(np.zeros(10), np.zeros((T, 3)))[0, 0]
    orient_c = Rotation.from_matrix(R @ Rotation.from_rotvec(root).as_matrix()).as_rotvec()
    body = CamBody(
        np.arange(T), orient_c, pose, np.einsum("tij,tj->ti", R, pelvis_w) + t, gt["betas"][0]
    )
    return {
        "gt": gt,
        "body": body,
        "expected": joints(np.zeros(10), pelvis_w - rest),
        "ours": intr[0],
        "intrins": intr,
        "world": {"root": root, "pose": pose, "pelvis_w": pelvis_w, "R": R, "t": t},
    }


def _observations(scene, decoy_track: bool = False) -> Observations:
    """The example's tracks and the true metric cameras, cropped as ``load_observations`` would."""
    tr = np.load(EXAMPLE_DIR / "tracks.npz")
    sl = slice(OFFSET, None)
    kp = torch.tensor(tr["kp2d"][:, sl])
    vis = torch.tensor(tr["vis_mask"][:, sl])
    names = ("smpl_global_orient_c", "smpl_body_pose", "smpl_betas", "smpl_transl_c", "smpl_valid")
    guess = [torch.tensor(tr[k][:, sl]) for k in names]
    ids = ["001"]
    if decoy_track:  # a second person 300 px to the right, with the tracker's guesses
        kp = torch.cat([kp, kp + torch.tensor([300.0, 0.0, 0.0])])
        vis = torch.cat([vis, vis])
        guess = [torch.cat([g, g]) for g in guess]
        ids = ["001", "002"]
    w = scene["world"]
    cams = Cameras(
        R_w2c=torch.tensor(w["R"][sl], dtype=torch.float32),
        t_w2c=torch.tensor(w["t"][sl], dtype=torch.float32),
        intrins=torch.tensor(scene["intrins"][sl], dtype=torch.float32),
        image_size=(720, 1280),
    )
    return Observations(
        kp2d=kp,
        kp_format="coco17",
        track_mask=track_mask_from_vis(vis),
        vis_mask=vis,
        cameras=cams,
        fps=30.0,
        track_ids=ids,
        smpl_guess=SMPLGuess(*guess),
        frame_offset=OFFSET,
    )


def _decoy(body: CamBody, shift=(1.5, 0.0, 0.0)) -> CamBody:
    return CamBody(
        body.frames, body.orient_c, body.pose, body.pelvis_c + np.asarray(shift), body.betas
    )


def _slahmr_file(tmp_path, scene, people: list[CamBody]):
    """SLAHMR's bodies in a world of its own (turned and shifted) with cameras to match."""
    w = scene["world"]
    G = Rotation.from_rotvec([0.1, 0.7, -0.2]).as_matrix()
    g = np.array([2.0, -1.0, 0.5])
    R_s = w["R"] @ G.T  # x_c = R x_w + t = R G^T (x_s - g) + t
    t_s = w["t"] - np.einsum("tij,j->ti", R_s, g)
    world = {"trans": [], "root_orient": [], "pose_body": [], "betas": []}
    for b in people:
        pelvis_s = np.einsum("tji,tj->ti", R_s, b.pelvis_c - t_s)
        orient_s = Rotation.from_matrix(
            np.transpose(R_s, (0, 2, 1)) @ Rotation.from_rotvec(b.orient_c).as_matrix()
        ).as_rotvec()
        world["trans"].append(pelvis_s - REST_PELVIS["smplh"])
        world["root_orient"].append(orient_s)
        world["pose_body"].append(b.pose.reshape(-1, 63))
        world["betas"].append(np.zeros(16))
    world = {k: np.stack(v) for k, v in world.items()}
    # SLAHMR cropped to the same window: its frame 0 is video frame OFFSET
    T = len(people[0].frames)
    vis = np.ones((len(people), T), bool)
    vis[:, :OFFSET] = False
    sl = slice(OFFSET, None)
    world = {k: v[:, sl] if v.ndim == 3 else v for k, v in world.items()}
    return write_slahmr(
        tmp_path / "slahmr", world, R_s[sl], t_s[sl], scene["ours"], [9, 1], vis, (OFFSET, T)
    )


def _write(kind: str, tmp_path, scene, people: list[CamBody]) -> str:
    ours, size = scene["ours"], (720, 1280)
    if kind == "wham":
        return str(write_wham(tmp_path / "wham_output.pkl", dict(zip([3, 7], people)), ours, size))
    if kind == "trace":
        return str(write_trace(tmp_path / "seq.npz", dict(zip([2, 5], people)), ours, size))
    if kind == "gvhmr":
        return str(write_gvhmr(tmp_path / "hmr4d_results.pt", people[-1], ours, size))
    if kind == "tram":
        return str(write_tram(tmp_path / "seq", people, ours, 1100.0, (641.0, 355.0)))
    return str(_slahmr_file(tmp_path, scene, people))


def _initial_joints(obs: Observations) -> np.ndarray:
    model = load_body_model(BodyConfig())
    body = initialize_bodies(obs, model, alpha=1.0)
    assert (body.betas == 0).all()  # the tool's betas are another shape space
    return model(body.betas[:, None], body.root_orient, body.pose_body, body.trans).joints.numpy()


@pytest.mark.parametrize("kind", ["wham", "trace", "gvhmr", "tram", "slahmr"])
def test_recovers_true_bodies_and_skips_decoy(kind, scene, tmp_path, caplog):
    """The true person listed after a decoy 1.5 m to the side; joints within 2 mm."""
    body = scene["body"]
    people = [body] if kind == "gvhmr" else [_decoy(body), body]
    spec = f"{kind}:{_write(kind, tmp_path, scene, people)}"
    obs = _observations(scene)
    with caplog.at_level(logging.INFO, logger="slahmr_opt.init.external"):
        out = apply_initializer(obs, spec)
    assert out.sources["init"].startswith(kind) and obs.smpl_guess is not out.smpl_guess
    assert out.smpl_guess.valid.all()
    assert "track 001 <-" in caplog.text
    err = np.linalg.norm(_initial_joints(out)[0] - scene["expected"][OFFSET:], axis=-1)
    assert err.max() < TOL_M, f"{kind}: max joint error {err.max() * 1000:.2f} mm"


def test_partial_coverage_and_frame_offset(scene, tmp_path):
    """WHAM sees video frames 20..149 only: obs frames 0..13 (video 6..19) get no guess."""
    keep = scene["body"].frames >= 20
    spec = f"wham:{_write('wham', tmp_path, scene, [scene['body'].rows(keep)])}"
    out = apply_initializer(_observations(scene), spec)
    valid = out.smpl_guess.valid[0]
    assert not valid[: 20 - OFFSET].any() and valid[20 - OFFSET :].all()
    err = np.linalg.norm(_initial_joints(out)[0, 20 - OFFSET :] - scene["expected"][20:], axis=-1)
    assert err.max() < TOL_M


def test_decoy_track_keeps_its_own_guesses(scene, tmp_path, caplog):
    """Two tracks, one GVHMR person: the person goes to the true track; the other is untouched."""
    obs = _observations(scene, decoy_track=True)
    spec = f"gvhmr:{_write('gvhmr', tmp_path, scene, [scene['body']])}"
    with caplog.at_level(logging.INFO, logger="slahmr_opt.init.external"):
        out = apply_initializer(obs, spec)
    assert "no person matches track 002" in caplog.text
    for name in ("global_orient_c", "body_pose", "transl_c", "valid"):
        assert torch.equal(getattr(out.smpl_guess, name)[1], getattr(obs.smpl_guess, name)[1])
    err = np.linalg.norm(_initial_joints(out)[0] - scene["expected"][OFFSET:], axis=-1)
    assert err.max() < TOL_M


def test_far_person_is_not_matched(scene, tmp_path, caplog):
    """A person 3 m away from every track changes nothing."""
    obs = _observations(scene)
    spec = f"wham:{_write('wham', tmp_path, scene, [_decoy(scene['body'], (3.0, 0, 0))])}"
    with caplog.at_level(logging.WARNING, logger="slahmr_opt.init.external"):
        out = apply_initializer(obs, spec)
    assert "keeps the tracker's guesses" in caplog.text
    assert torch.equal(out.smpl_guess.transl_c, obs.smpl_guess.transl_c)


def test_tracks_without_guesses_get_them(scene, tmp_path):
    obs = replace(_observations(scene), smpl_guess=None)
    out = apply_initializer(obs, f"gvhmr:{_write('gvhmr', tmp_path, scene, [scene['body']])}")
    assert out.smpl_guess.valid.all()


def test_bad_specs_name_the_file(scene, tmp_path):
    obs = _observations(scene)
    (tmp_path / "x.pkl").write_bytes(b"not a pickle")
    for spec, words in [
        (f"hmr2:{tmp_path / 'x.pkl'}", ["x.pkl", "unknown initializer kind"]),
        (f"wham:{tmp_path / 'missing.pkl'}", ["missing.pkl", "not found"]),
        (f"wham:{tmp_path / 'x.pkl'}", ["x.pkl", "WHAM"]),
        ("wham", ["KIND:PATH"]),
    ]:
        with pytest.raises(InputError) as info:
            apply_initializer(obs, spec)
        assert all(w in str(info.value) for w in words), str(info.value)


def test_tracker_guesses_from_smpl_keep_their_pelvis(scene, tmp_path):
    """PHALP's guesses are SMPL ``transl`` (``rest_pelvis`` = SMPL's): the untouched track's
    initial bodies are the same before and after the merge with another tool's guesses."""
    obs = _observations(scene, decoy_track=True)
    smpl_rest = torch.tensor([-0.001795, -0.223333, 0.028219])
    g = obs.smpl_guess
    obs = replace(
        obs, smpl_guess=replace(g, transl_c=g.transl_c - smpl_rest, rest_pelvis=smpl_rest)
    )
    out = apply_initializer(obs, f"gvhmr:{_write('gvhmr', tmp_path, scene, [scene['body']])}")
    assert out.smpl_guess.rest_pelvis is None
    before, after = _initial_joints(obs)[1], _initial_joints(out)[1]
    assert np.abs(before - after).max() < 1e-5
    plain = _initial_joints(_observations(scene, decoy_track=True))[1]  # same pelvis, no offset
    assert np.abs(before - plain).max() < 1e-5
