"""``evaluate_result`` and ``slahmr-opt eval`` on small synthetic results with known answers."""

import json

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.cli import main
from slahmr_opt.errors import InputError
from slahmr_opt.eval.metrics import foot_sliding, jitter
from slahmr_opt.experiments.evaluate import FOOT_POINTS, METRIC_UNITS, evaluate_result

T = 12


@pytest.fixture(scope="module")
def truth():
    """One person walking past a moving camera: body parameters, joints, feet and cameras."""
    rng = np.random.default_rng(0)
    # Slow, curved walk with little pose change, so the feet are often in contact.
    steps = np.arange(T)[None, :, None]
    trans = steps * np.array([0.004, 0.0, 0.002]) + np.sin(steps / 3) * np.array([0, 0.01, 0])
    root_orient = np.tile([np.pi, 0.0, 0.0], (1, T, 1)) + rng.normal(size=(1, T, 3)) * 0.002
    pose_body = rng.normal(size=(1, 1, 63)) * 0.1 + rng.normal(size=(1, T, 63)) * 0.002
    betas = rng.normal(size=(1, 10)) * 0.5
    model = load_body_model(BodyConfig(), torch.float64)
    out = model(
        torch.from_numpy(betas)[:, None],
        torch.from_numpy(root_orient),
        torch.from_numpy(pose_body).reshape(1, T, 21, 3),
        torch.from_numpy(trans),
    )
    cam_R = Rotation.from_rotvec(np.linspace([0, 0, 0], [0, 0.3, 0], T)).as_matrix()
    cam_t = np.linspace([0.0, 0.0, 4.0], [0.5, 0.0, 4.0], T)
    return {
        "trans": trans,
        "root_orient": root_orient,
        "pose_body": pose_body,
        "betas": betas,
        "joints": out.joints.numpy(),
        "feet": out.keypoint_vertices[..., list(FOOT_POINTS), :].numpy(),
        "cam_R": cam_R,
        "cam_t": cam_t,
        "valid": np.ones((1, T), bool),
        "track_ids": np.array(["0"]),
        "alpha": np.array(0.5),
    }


def _prediction(truth, shift=(0.0, 0.0, 0.0)):
    """The true bodies in a world shifted by ``shift``, with cameras that see the same images."""
    shift = np.asarray(shift)
    cam_t = truth["cam_t"] - truth["cam_R"] @ shift
    return {
        "trans": truth["trans"] + shift,
        "root_orient": truth["root_orient"],
        "pose_body": truth["pose_body"],
        "betas": truth["betas"],
        "joints": truth["joints"] + shift,
        "cam_R": truth["cam_R"][None],
        "cam_t": cam_t[None],
        "track_mask": np.ones((1, T), bool),
        "track_ids": truth["track_ids"],
        "fps": np.array(30.0),
        "frame_offset": np.array(0),
        "world_scale": np.array([[0.5]]),
    }


def _write(tmp_path, pred, gt):
    np.savez(tmp_path / "results.npz", **pred)
    np.savez(tmp_path / "gt.npz", **gt)
    return tmp_path / "results.npz", tmp_path / "gt.npz"


def test_the_truth_in_another_world_scores_zero(tmp_path, truth):
    (tmp_path / "config.yaml").write_text("body:\n  num_betas: 10\n  gender: neutral\n")
    m = evaluate_result(*_write(tmp_path, _prediction(truth, (2.0, -1.0, 3.0)), truth))
    assert set(METRIC_UNITS) | {"frames", "alpha", "alpha_true"} == set(m)
    for key in ("w_mpjpe100", "wa_mpjpe100", "rte", "pa_mpjpe", "mpjpe", "pve", "accel_error"):
        assert m[key] == pytest.approx(0.0, abs=1e-4), key
    assert m["jitter"] == pytest.approx(jitter(truth["joints"][0], 30.0).mean())
    assert m["foot_sliding"] == pytest.approx(
        foot_sliding(truth["feet"][0], truth["feet"][0]).mean()
    )
    assert m["frames"] == T and m["alpha"] == m["alpha_true"] == 0.5


def test_feet_come_from_parameters_when_the_truth_has_no_feet_key(tmp_path, truth):
    gt = {k: v for k, v in truth.items() if k != "feet"}
    pred = _prediction(truth)
    pred["trans"] = pred["trans"] + np.arange(T)[None, :, None] * np.array([0.0, 0.0, 0.004])
    m = evaluate_result(*_write(tmp_path, pred, gt))
    # Sliding the body by 4 mm/frame adds that to every contact step's displacement, at most.
    base = foot_sliding(truth["feet"][0], truth["feet"][0]).mean()
    assert np.isfinite(base)
    assert base < m["foot_sliding"] <= base + 4.0 + 1e-6
    assert m["mpjpe"] == pytest.approx(0.0, abs=1e-4)  # joints were not moved


def test_a_camera_offset_shows_in_camera_frame_mpjpe_only(tmp_path, truth):
    pred = _prediction(truth)
    pred["joints"] = pred["joints"].copy()
    pred["joints"][..., 5, :] += 0.024  # one joint 24*sqrt(3) mm off: 41.6/24 mm per frame
    m = evaluate_result(*_write(tmp_path, pred, truth))
    assert m["mpjpe"] == pytest.approx(24 * 3**0.5 / 24, rel=1e-4)
    assert m["rte"] == pytest.approx(0.0, abs=1e-4)  # the root did not move


def test_missing_keys_name_the_file_and_the_key(tmp_path, truth):
    pred = _prediction(truth)
    del pred["cam_R"]
    with pytest.raises(InputError, match=r"results\.npz.*'cam_R'"):
        evaluate_result(*_write(tmp_path, pred, truth))
    gt = {k: v for k, v in truth.items() if k != "cam_t"}
    with pytest.raises(InputError, match=r"gt\.npz.*'cam_t'"):
        evaluate_result(*_write(tmp_path, _prediction(truth), gt))
    gt = {k: v for k, v in truth.items() if k not in ("feet", "betas")}
    with pytest.raises(InputError, match=r"gt\.npz.*'feet'.*'betas'"):
        evaluate_result(*_write(tmp_path, _prediction(truth), gt))


def test_frame_counts_that_disagree_are_refused(tmp_path, truth):
    short = {
        k: (v[:, : T - 2] if k in ("joints", "valid", "feet") else v) for k, v in truth.items()
    }
    short["cam_R"], short["cam_t"] = truth["cam_R"][: T - 2], truth["cam_t"][: T - 2]
    with pytest.raises(InputError, match=r"gt\.npz.*joints has 10 frames"):
        evaluate_result(*_write(tmp_path, _prediction(truth), short))
    bad = dict(truth, cam_R=truth["cam_R"][:-1])
    with pytest.raises(InputError, match=r"gt\.npz.*cam_R must be"):
        evaluate_result(*_write(tmp_path, _prediction(truth), bad))
    pred = _prediction(truth)
    pred["cam_t"] = pred["cam_t"][:, :-1]
    with pytest.raises(InputError, match=r"results\.npz.*cam_t must be"):
        evaluate_result(*_write(tmp_path, pred, truth))


def _eval(*argv):
    return main(["eval", *argv])


def test_run_eval_prints_units_and_writes_json(tmp_path, truth, capsys):
    pred_path, gt_path = _write(tmp_path, _prediction(truth), truth)
    out = tmp_path / "m" / "metrics.json"
    assert _eval("--pred", str(pred_path), "--gt", str(gt_path), "--json", str(out)) == 0
    text = capsys.readouterr().out
    for key, unit in METRIC_UNITS.items():
        assert key in text and unit in text
    assert json.loads(out.read_text())["frames"] == T


def test_run_eval_reports_bad_input_in_one_line(tmp_path, truth, capsys):
    pred_path, _ = _write(tmp_path, _prediction(truth), truth)
    assert _eval("--pred", str(pred_path), "--gt", str(tmp_path / "none.npz")) == 2
    err = capsys.readouterr().err
    assert err.startswith("slahmr-opt: error:") and "none.npz" in err
