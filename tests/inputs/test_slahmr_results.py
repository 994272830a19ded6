"""SLAHMR's ``world_results.npz`` read in our results layout, scored by ``slahmr-opt eval``.

Files are written in SLAHMR's layout (``init/tool_files.write_slahmr``) from the bundled example's
ground truth, in a world turned and shifted from the truth's.
"""

import argparse

import numpy as np
import pytest
import torch
from init.tool_files import write_slahmr
from scipy.spatial.transform import Rotation

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.cli import EXAMPLE_DIR
from slahmr_opt.cli import eval as eval_command
from slahmr_opt.errors import InputError
from slahmr_opt.experiments.evaluate import evaluate_result
from slahmr_opt.inputs.initializers import REST_PELVIS
from slahmr_opt.inputs.initializers.slahmr_results import is_slahmr_results, read_slahmr_results
from slahmr_opt.io.results import RESULT_KEYS

START = 6
"""SLAHMR's window starts at video frame 6 (``seq_interval``)."""
BODY16 = BodyConfig(num_betas=16)
"""The built-in body with 16 betas standing in for SLAHMR's SMPL-H (same role, known joints)."""


@pytest.fixture(scope="module")
def truth():
    gt = dict(np.load(EXAMPLE_DIR / "gt.npz"))
    G = Rotation.from_rotvec([0.2, -0.9, 0.1]).as_matrix()
    g = np.array([-1.0, 0.3, 2.0])
    model = load_body_model(BODY16, torch.float64)
    T = gt["joints"].shape[1]
    root, pose, trans = gt["root_orient"][0], gt["pose_body"][0], gt["trans"][0]
    betas = np.pad(gt["betas"][0], (0, 6))
    zero_t = np.zeros((T, 3))
    posed0 = model(
        torch.tensor(betas)[None],
        torch.tensor(root),
        torch.tensor(pose).reshape(T, 21, 3),
        torch.tensor(zero_t),
    ).joints.numpy()
    # x_s = G x_w + g: the body rotates about its pelvis, so the new transl moves the pelvis.
    pelvis0 = posed0[:, 0]
    root_s = Rotation.from_matrix(G @ Rotation.from_rotvec(root).as_matrix()).as_rotvec()
    trans_s = (G @ (trans + pelvis0).T).T + g - pelvis0
    cam_R = gt["cam_R"] @ G.T
    cam_t = gt["cam_t"] - np.einsum("tij,j->ti", cam_R, g)
    return {
        "gt": gt,
        "G": G,
        "g": g,
        "root": root_s,
        "pose": pose,
        "trans": trans_s,
        "betas": betas,
        "cam_R": cam_R,
        "cam_t": cam_t,
        "pelvis0": pelvis0,
        "T": T,
    }


def _write(tmp_path, truth, trans=None, betas=None, **kw):
    sl = slice(START, None)
    world = {
        "trans": (truth["trans"] if trans is None else trans)[None, sl],
        "root_orient": truth["root"][None, sl],
        "pose_body": truth["pose"][None, sl],
        "betas": (truth["betas"] if betas is None else betas)[None],
    }
    vis = np.ones((1, truth["T"]), bool)
    vis[:, :START] = False
    return write_slahmr(
        tmp_path,
        world,
        truth["cam_R"][sl],
        truth["cam_t"][sl],
        [1000.0, 1000.0, 640.0, 360.0],
        [1],
        vis,
        (START, truth["T"]),
        **kw,
    )


def test_layout_frames_ids_and_exact_joints(tmp_path, truth):
    path = _write(tmp_path, truth)
    res = read_slahmr_results(path, BODY16)
    assert set(RESULT_KEYS) <= set(res)
    T = truth["T"] - START
    assert res["joints"].shape == (1, T, 24, 3) and res["cam_R"].shape == (1, T, 3, 3)
    assert res["intrins"].shape == (T, 4) and res["track_ids"].tolist() == ["001"]
    assert int(res["frame_offset"]) == START and float(res["fps"]) == 30.0
    assert res["image_size"].tolist() == [720, 1280] and not res["is_static"]
    assert res["track_mask"].all() and float(res["world_scale"][0, 0]) == pytest.approx(0.37)
    joints_s = (truth["G"] @ truth["gt"]["joints"][0, START:].reshape(-1, 3).T).T + truth["g"]
    err = np.abs(res["joints"][0].reshape(-1, 3) - joints_s).max()
    assert err < 1e-4, err


def test_default_body_keeps_slahmrs_pelvis(tmp_path, truth):
    """Without SLAHMR's SMPL-H: the built-in body at zero betas, pelvis on SLAHMR's pelvis."""
    pelvis = truth["trans"] + truth["pelvis0"]
    betas = np.random.default_rng(0).normal(size=16)  # SMPL-H shape: ignored
    path = _write(tmp_path, truth, trans=pelvis - REST_PELVIS["smplh"], betas=betas)
    res = read_slahmr_results(path)
    assert (res["betas"] == 0).all()
    np.testing.assert_allclose(res["joints"][0, :, 0], pelvis[START:], atol=1e-5)


def test_eval_scores_a_slahmr_file(tmp_path, truth, capsys):
    path = _write(tmp_path, truth)
    metrics = evaluate_result(path, EXAMPLE_DIR / "gt.npz", slahmr_body=BODY16)
    assert metrics["frames"] == truth["T"] - START
    for key in ("pa_mpjpe", "mpjpe", "w_mpjpe100", "wa_mpjpe100", "pve"):
        assert metrics[key] < 0.1, (key, metrics[key])  # millimetres
    assert metrics["alpha"] == pytest.approx(0.37)
    parser = argparse.ArgumentParser()
    eval_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(
        ["eval", "--pred", str(path), "--gt", str(EXAMPLE_DIR / "gt.npz"), "--fps", "25"]
    )
    assert eval_command.handle(args) == 0
    assert "pa_mpjpe" in capsys.readouterr().out


def test_motion_chunks_layout(tmp_path):
    """Fewer body frames than cameras, zeros outside each track, ``track_mask`` given."""
    B, T, Tb = 2, 20, 15
    mask = np.zeros((B, Tb), bool)
    mask[0, :15], mask[1, 5:12] = True, True
    world = {
        "trans": np.where(mask[..., None], 1.0, 0.0) * [0, 0, 4.0],
        "root_orient": np.zeros((B, Tb, 3)),
        "pose_body": np.zeros((B, Tb, 63)),
        "betas": np.zeros((B, 16)),
    }
    vis = np.zeros((B, T), bool)
    vis[0, :15], vis[1, [5, 7, 11]] = True, True
    path = write_slahmr(
        tmp_path,
        world,
        np.tile(np.eye(3), (T, 1, 1)),
        np.zeros((T, 3)),
        [500.0, 500.0, 320.0, 240.0],
        [3, 12],
        vis,
        (0, T),
        stage="motion_chunks",
        track_mask=mask,
    )
    res = read_slahmr_results(path, fps=30)
    assert res["trans"].shape == (B, T, 3) and res["track_ids"].tolist() == ["003", "012"]
    assert (
        res["track_mask"][:, :Tb].tolist() == mask.tolist() and not res["track_mask"][:, Tb:].any()
    )
    assert res["vis_mask"][1].nonzero()[0].tolist() == [5, 7, 11]
    assert res["is_static"]


def test_without_track_info_or_fps(tmp_path, truth, caplog):
    path = _write(tmp_path, truth, fps=None)
    with pytest.raises(InputError, match="frame rate.*--fps"):
        read_slahmr_results(path)
    (tmp_path / "track_info.json").unlink()
    res = read_slahmr_results(path, BODY16, fps=24, frame_offset=3)
    assert "no track_info.json" in caplog.text
    assert res["track_ids"].tolist() == ["000"] and int(res["frame_offset"]) == 3
    assert float(res["fps"]) == 24


def test_malformed_files_name_the_file(tmp_path, truth):
    path = _write(tmp_path, truth)
    info = (tmp_path / "track_info.json").read_text().replace(f"[{START}, ", "[0, ")
    (tmp_path / "track_info.json").write_text(info)
    with pytest.raises(InputError, match="track_info.json.*seq_interval"):
        read_slahmr_results(path)
    data = dict(np.load(path))
    del data["cam_t"]
    np.savez(path, **data)
    with pytest.raises(InputError, match=r"world_results.npz.*missing keys \['cam_t'\]"):
        read_slahmr_results(path)


def test_our_results_are_not_taken_for_slahmrs():
    assert not is_slahmr_results({k: None for k in RESULT_KEYS})
    assert is_slahmr_results({k: None for k in RESULT_KEYS if k != "joints"})
