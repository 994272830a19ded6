"""The keypoint regressor: features, architecture, training views, shipped weights."""

import math

import numpy as np
import pytest
import torch

from slahmr_priors.regressor.features import (
    FROM_OP25,
    KEYPOINT_NAMES,
    NUM_FEATURES,
    camera_angular_velocity,
    make_features,
    to_layout,
)
from slahmr_priors.regressor.model import SHIPPED, Regressor, rot6d_to_matrix
from slahmr_priors.regressor.synth import Window, mirror, observe, reverse
from slahmr_priors.regressor.train import local_joints


def test_layout_matches_openpose_names():
    from slahmr_opt.body.keypoints import COCO17_NAMES, OP25_NAMES

    op = {n.lower(): i for i, n in enumerate(OP25_NAMES)}
    alias = {"leye": "left_eye", "reye": "right_eye", "lear": "left_ear", "rear": "right_ear"}
    for slot, src in enumerate(FROM_OP25):
        name = OP25_NAMES[src]
        side = {"L": "left_", "R": "right_"}.get(name[0], "")
        words = alias.get(name.lower(), side + name[1:].lower() if side else name.lower())
        words = words.replace("bigtoe", "big_toe").replace("smalltoe", "small_toe")
        assert KEYPOINT_NAMES[slot] == words, (slot, name)
    assert tuple(KEYPOINT_NAMES[:17]) == COCO17_NAMES and len(op) == 25
    coco = torch.randn(4, 17, 3)
    assert torch.equal(to_layout(coco, "coco17")[:, :17], coco)
    assert (to_layout(coco, "coco17")[:, 17:] == 0).all()


def test_features_shape_and_box_invariance():
    T, K = 20, len(KEYPOINT_NAMES)
    uv = torch.rand(T, K, 2) * 200 + 300
    vis = torch.rand(T, K) > 0.2
    intr = torch.tensor([1000.0, 1000.0, 640.0, 360.0]).expand(T, 4)
    f = make_features(uv, vis, intr, torch.zeros(T, 3))
    assert f.shape == (T, NUM_FEATURES) and torch.isfinite(f).all()
    # Moving the person and the principal point together changes nothing.
    shift = torch.tensor([57.0, -31.0])
    g = make_features(uv + shift, vis, intr + torch.cat([torch.zeros(2), shift]), torch.zeros(T, 3))
    torch.testing.assert_close(f, g, atol=1e-5, rtol=1e-5)
    # An undetected frame gets the box of its neighbours and no keypoints.
    vis2 = vis.clone()
    vis2[5] = False
    h = make_features(uv, vis2, intr, torch.zeros(T, 3))
    assert h[5, -4] == 0 and (h[5, : 3 * K] == 0).all()
    assert h[5, -7:-4].sub(0.5 * (h[4, -7:-4] + h[6, -7:-4])).abs().max() < 1e-5


def test_camera_angular_velocity_of_a_pan():
    fps, w = 30.0, 0.5  # rad/s about the camera's y axis
    ang = torch.arange(10) * w / fps
    c, s = torch.cos(ang), torch.sin(ang)
    R = torch.zeros(10, 3, 3)
    R[:, 0, 0], R[:, 0, 2], R[:, 1, 1], R[:, 2, 0], R[:, 2, 2] = c, -s, 1, s, c
    v = camera_angular_velocity(R, fps)
    torch.testing.assert_close(v[:, 1].abs(), torch.full((10,), w), atol=2e-4, rtol=0)
    assert v[:, [0, 2]].abs().max() < 1e-6


def test_rot6d_gives_rotations():
    R = rot6d_to_matrix(torch.randn(50, 6))
    torch.testing.assert_close(R @ R.transpose(-1, -2), torch.eye(3).expand(50, 3, 3),
                               atol=1e-5, rtol=0)  # fmt: skip
    assert torch.allclose(torch.linalg.det(R), torch.ones(50), atol=1e-5)


def _window(B=3, L=24) -> Window:
    g = torch.Generator().manual_seed(0)
    rand = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    root = rot6d_to_matrix(rand(B, L, 6))
    pelvis = rand(B, L, 3) * 0.3 + torch.tensor([0.0, 0.9, 0.0])
    kp = pelvis[:, :, None] + rand(B, L, 23, 3) * 0.4
    return Window(kp, root, rand(B, L, 21, 3) * 0.3, pelvis, rand(B, L, 3),
                  (rand(B, L, 4) > 0).float(), rand(B, 10), rand(B, 24, 3) * 0.3,
                  rand(B, L, 22, 3) * 0.3)  # fmt: skip


def test_mirror_and_reverse_are_involutions():
    w = _window()
    yes = torch.tensor([True, False, True])
    for op in (mirror, reverse):
        twice = op(op(w, yes), yes)
        for name in Window.__dataclass_fields__:
            torch.testing.assert_close(getattr(twice, name), getattr(w, name), atol=1e-6, rtol=0)
        once = op(w, yes)
        torch.testing.assert_close(once.kp_w[1], w.kp_w[1])  # not selected
        assert not torch.allclose(once.kp_w[0], w.kp_w[0])
    m = mirror(w, yes)
    torch.testing.assert_close(torch.linalg.det(m.root), torch.ones(3, 24), atol=1e-5, rtol=0)
    assert torch.equal(m.contact[0], w.contact[0][:, [1, 0, 3, 2]])


def test_training_views_and_targets():
    w = _window(B=4, L=40)
    feats, tg = observe(w, torch.Generator().manual_seed(1), 30.0)
    assert feats.shape == (4, 40, NUM_FEATURES) and torch.isfinite(feats).all()
    up = tg["up_c"]
    torch.testing.assert_close(up.norm(dim=-1), torch.ones(4, 40))
    # The camera's up is the world's +y turned into the camera: R_w2c = root_c root^T.
    R_w2c = tg["root_c"] @ w.root.transpose(-1, -2)
    torch.testing.assert_close(R_w2c[..., :, 1], up, atol=1e-5, rtol=0)


def test_model_shapes_determinism_and_save(tmp_path):
    torch.manual_seed(0)
    model = Regressor(width=32, dilations=(1, 2)).eval()
    x = torch.randn(2, 15, NUM_FEATURES)
    out = model(x)
    assert out.root_c.shape == (2, 15, 3, 3) and out.pose.shape == (2, 15, 21, 3, 3)
    assert out.up_c.shape == out.vel_h.shape == (2, 15, 3) and out.contact.shape == (2, 15, 4)
    assert out.betas.shape == (2, 15, 10) and ((out.contact > 0) & (out.contact < 1)).all()
    assert torch.equal(model(x).pose, out.pose)
    # A single frame works too (sequences shorter than the receptive field).
    assert model(x[:, :1]).root_c.shape == (2, 1, 3, 3)
    model.save(tmp_path / "r.pt")
    again = Regressor.load(tmp_path / "r.pt")
    assert torch.equal(again(x).pose, out.pose)
    blob = torch.load(tmp_path / "r.pt", weights_only=True)
    blob["config"]["width"] = 48
    torch.save(blob, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="do not match"):
        Regressor.load(tmp_path / "bad.pt")


def test_forward_kinematics_of_rest_pose():
    rest = torch.randn(2, 24, 3)
    local = local_joints(torch.eye(3).expand(2, 5, 21, 3, 3), rest)
    torch.testing.assert_close(local, (rest[:, None, :22] - rest[:, None, :1]).expand(2, 5, 22, 3))


def test_shipped_regressor():
    model = Regressor.load()
    assert SHIPPED.stat().st_size < 8_000_000
    meta = model.metadata
    assert "training split" in meta["split"] and meta["counts"]["train_files"] > 2000
    scores = meta["scores_eval_split"]
    assert scores["mpjpe_local_mm"] < 60 and scores["facing_off45_pct"] < 5
    # No joint twisted about its bone (positions right, rotation half round).
    assert scores["worst_joint_rot_deg"] < 30 and scores["joint_rot_deg"] < 15
    assert not any(p.requires_grad for p in model.parameters())
    assert model.receptive_field > 60 and math.isfinite(scores["vel_m_s"])


def test_layout_indices_are_a_permutation():
    assert len(set(FROM_OP25)) == len(FROM_OP25) == 23
    assert not {1, 8} & set(FROM_OP25)  # neck and mid-hip are left out
    assert np.all(np.array(FROM_OP25) < 25)
