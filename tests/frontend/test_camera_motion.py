"""Camera motion from the background (``slahmr_opt.frontend.camera``) on synthetic videos with a
known camera (``camera_synth``: 320 x 240, 40 frames at 30 fps, a textured box walking through the
view with its mask), the bundle adjustment's Jacobians, and the files the solver reads."""

import functools
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from slahmr_opt.errors import InputError
from slahmr_opt.eval.camera_eval import rotation_angle_deg, trajectory_error, umeyama
from slahmr_opt.frontend.camera import (
    CameraSettings,
    default_intrinsics,
    estimate_cameras,
    parse_intrinsics,
    write_cameras,
)
from slahmr_opt.frontend.camera_ba import BundleProblem, _evaluate, bundle_adjust
from slahmr_opt.frontend.camera_geometry import bearings, rotation_ransac
from slahmr_opt.inputs import read_cameras
from slahmr_opt.inputs.cameras import read_droid_traj
from slahmr_opt.inputs.points import read_points
from slahmr_opt.synth.camera_video import courtyard, make_video

pytestmark = pytest.mark.slow

NUM_FRAMES = 40

# Bounds (measured values at 320 x 240, 40 frames, are about 5x below them; see
# bench/results/camera_accuracy.json for 640 x 360, 150 frames)
ROT_RATE_DEG_S = 0.5  # rotation error over 1 s windows, degrees per second
ROT_ABS_DEG = 0.5  # largest absolute rotation error
ATE_REL = 0.02  # camera-centre RMS error after Sim(3), fraction of the path length


@functools.cache
def video(kind: str):
    return make_video(kind, num_frames=NUM_FRAMES, size=(240, 320), mover=True)


def _estimate(kind: str, masked: bool = True, **kwargs):
    v = video(kind)
    est = estimate_cameras(
        v.frames, v.masks if masked else None, v.intrins, progress=False, **kwargs
    )
    return v, est, trajectory_error(est.R_c2w, est.t_c2w, v.R_c2w, v.t_c2w, v.fps)


def test_static_camera_is_detected():
    v, est, _ = _estimate("static")
    assert est.motion == "static" and est.is_static
    assert np.allclose(est.R_c2w, np.eye(3)) and np.allclose(est.t_c2w, 0)
    cams = est.to_cameras()
    assert cams.is_static and cams.num_frames == NUM_FRAMES
    assert est.diagnostics.moved_px.max() < 0.5


def test_pan_is_a_pure_rotation():
    v, est, err = _estimate("pan")
    assert est.motion == "rotation" and not est.is_static
    assert np.all(est.t_c2w == 0)
    assert err.rot_drift_deg_per_s < ROT_RATE_DEG_S
    assert err.rot_max_deg < ROT_ABS_DEG
    assert rotation_angle_deg(v.R_c2w[-1]) > 30  # the pan is real


@pytest.mark.parametrize("kind", ["tracking", "handheld"])
def test_moving_camera(kind):
    v, est, err = _estimate(kind)
    assert est.motion == "general"
    assert err.rot_drift_deg_per_s < ROT_RATE_DEG_S
    assert err.rot_max_deg < ROT_ABS_DEG
    assert err.ate_rel < ATE_REL
    assert est.diagnostics.ba_rms_px < 1.0
    assert np.allclose(est.R_c2w[0], np.eye(3)) and np.allclose(est.t_c2w[0], 0)
    # translations are in median background depths: the courtyard is ~5-12 m deep
    assert 0.5 / 12 < err.est_translation_rel / err.path_m < 1.0 / 3


def _distance_to_scene(points: np.ndarray, rects) -> np.ndarray:
    """(N,) distance of each point to the nearest rectangle of the synthetic scene, metres."""
    best = np.full(len(points), np.inf)
    for r in rects:
        rel = points - r.origin
        a = np.clip(rel @ r.axis_u / (r.axis_u @ r.axis_u), 0, 1)
        b = np.clip(rel @ r.axis_v / (r.axis_v @ r.axis_v), 0, 1)
        nearest = r.origin + a[:, None] * r.axis_u + b[:, None] * r.axis_v
        best = np.minimum(best, np.linalg.norm(points - nearest, axis=1))
    return best


@pytest.mark.parametrize(
    "kind, median_rel, within_5pc", [("tracking", 0.01, 0.9), ("handheld", 0.035, 0.8)]
)
def test_background_points_lie_on_the_scene(kind, median_rel, within_5pc):
    """The triangulated points, brought to metres with the scale of the camera path, lie on the
    courtyard's surfaces (the world of both is the first camera). Measured: distance over depth
    median 0.7 % (tracking, 2.5 m of baseline) and 2.2 % (handheld, 0.6 m), 94 % and 88 % of
    the points within 5 %."""
    v, est, _ = _estimate(kind)
    pts = est.points.points.numpy()
    frames = est.points.frames.numpy()
    assert len(pts) > 100
    assert (frames[:, 0] >= 0).all() and (frames[:, 1] < NUM_FRAMES).all()
    assert (frames[:, 1] > frames[:, 0]).all()
    s, _, _ = umeyama(est.t_c2w, v.t_c2w)
    metres = s * pts
    depth = np.linalg.norm(metres, axis=1)
    dist = _distance_to_scene(metres, courtyard(0))
    assert np.median(dist / depth) < median_rel
    assert np.mean(dist / depth < 0.05) > within_5pc
    # the unit is the median background depth of the first keyframes that saw each point
    assert 0.3 < np.median(np.linalg.norm(pts, axis=1)) < 3


@pytest.mark.parametrize("kind", ["tracking", "handheld"])
def test_focal_length_from_the_background(kind):
    """Without intrinsics, a default focal 1.43x too long (the image diagonal) is measured back
    to within 3 % (measured: 2.1 % tracking, 0.02 % handheld), and the trajectory stays as
    good as with the true focal; given intrinsics are kept."""
    v = video(kind)
    settings = CameraSettings(default_focal="diagonal")
    est = estimate_cameras(v.frames, v.masks, None, settings=settings, progress=False)
    diag = est.diagnostics
    assert diag.focal == "estimated" and diag.focal_factor == pytest.approx(0.7, rel=0.03)
    assert est.intrins[0] == pytest.approx(v.intrins[0], rel=0.03)
    assert diag.focal_range[0] <= diag.focal_factor <= diag.focal_range[1]
    err = trajectory_error(est.R_c2w, est.t_c2w, v.R_c2w, v.t_c2w, v.fps)
    assert err.ate_rel < ATE_REL and err.rot_max_deg < ROT_ABS_DEG
    _, given, _ = _estimate(kind)
    assert given.diagnostics.focal == "given" and np.allclose(given.intrins, v.intrins)


def test_rotation_and_static_cameras_have_no_points(tmp_path):
    for kind in ("pan", "static"):
        _, est, _ = _estimate(kind)
        assert est.points is None
        assert "points" not in write_cameras(est, tmp_path / kind)


def test_unmasked_walker_is_rejected_as_outlier():
    v, est, err = _estimate("tracking", masked=False)
    assert est.motion == "general"
    assert err.rot_max_deg < 2 * ROT_ABS_DEG
    assert err.ate_rel < 2 * ATE_REL


def test_masks_of_another_size_are_resized():
    v = video("tracking")
    small = SimpleNamespace(masks=v.masks[:, ::4, ::4])  # like frontend.masks.PersonMasks
    est = estimate_cameras(v.frames, small, v.intrins, progress=False)
    err = trajectory_error(est.R_c2w, est.t_c2w, v.R_c2w, v.t_c2w, v.fps)
    assert err.ate_rel < ATE_REL


def test_written_files_read_back(tmp_path):
    v, est, _ = _estimate("tracking")
    paths = write_cameras(est, tmp_path)
    H, W = est.image_size
    cams = read_droid_traj(paths["trajectory"], intrinsics=paths["intrinsics"])
    assert cams.image_size == (H, W) and not cams.is_static
    R_w2c = np.transpose(est.R_c2w, (0, 2, 1))
    t_w2c = -np.einsum("tij,tj->ti", R_w2c, est.t_c2w)
    assert np.allclose(cams.R_w2c.numpy(), R_w2c, atol=1e-5)
    assert np.allclose(cams.t_w2c.numpy(), t_w2c, atol=1e-5)
    assert np.allclose(cams.intrins.numpy(), np.tile(v.intrins, (NUM_FRAMES, 1)))
    # DROID rows are camera-to-world: the first three columns are the camera centres
    rows = np.load(paths["trajectory"])
    assert rows.shape == (NUM_FRAMES, 7) and np.allclose(rows[:, :3], est.t_c2w, atol=1e-6)
    npz = read_cameras(tmp_path, num_frames=NUM_FRAMES)
    assert np.allclose(npz.R_w2c.numpy(), R_w2c, atol=1e-5) and npz.image_size == (H, W)
    pts = read_points(paths["points"], num_frames=NUM_FRAMES)
    assert torch.allclose(pts.points, est.points.points)
    assert torch.equal(pts.frames, est.points.frames)
    with pytest.raises(FileExistsError):
        write_cameras(est, tmp_path)


def test_default_intrinsics_options():
    assert np.allclose(default_intrinsics((240, 320)), [280, 280, 160, 120])
    assert np.allclose(default_intrinsics((240, 320), "diagonal"), [400, 400, 160, 120])
    v = video("static")
    for focal, f in (("slahmr", 280.0), ("diagonal", 400.0)):
        settings = CameraSettings(default_focal=focal)
        est = estimate_cameras(v.frames[:3], settings=settings, progress=False)
        assert est.intrins[0] == f
    assert np.allclose(parse_intrinsics("500, 510,320,240"), [500, 510, 320, 240])
    for bad in ("500,500,320", "a,b,c,d", "-5,500,320,240"):
        with pytest.raises(InputError):
            parse_intrinsics(bad)


def test_bad_input():
    v = video("pan")
    with pytest.raises(ValueError, match="at least 2 frames"):
        estimate_cameras(v.frames[:1], progress=False)
    with pytest.raises(ValueError, match="masks"):
        estimate_cameras(v.frames[:5], v.masks[:4], progress=False)
    with pytest.raises(ValueError, match="shape"):
        estimate_cameras(v.frames[..., 0], progress=False)
    with pytest.raises(ValueError, match="intrinsics"):
        estimate_cameras(v.frames[:5], intrinsics=[1, 2, 3], progress=False)
    blank = np.full((10, 120, 160, 3), 128, np.uint8)
    est = estimate_cameras(blank, progress=False)
    assert est.is_static and "textureless" in est.diagnostics.warnings[0]


def test_blank_frames_inside_a_pan():
    v = video("pan")
    frames = v.frames.copy()
    frames[18:21] = 128  # a few blank frames: tracking restarts after them
    est = estimate_cameras(frames, v.masks, v.intrins, progress=False)
    assert est.motion in ("rotation", "general")
    assert np.isfinite(est.R_c2w).all() and np.isfinite(est.t_c2w).all()
    err = rotation_angle_deg(np.einsum("tji,tjk->tik", v.R_c2w, est.R_c2w))
    assert err[:17].max() < ROT_ABS_DEG


def test_video_file(tmp_path):
    from slahmr_opt.files.video import Mp4Writer

    v = video("static")
    path = tmp_path / "static.mp4"
    with Mp4Writer(path, (240, 320), 30) as writer:
        for frame in v.frames[:12]:
            writer.write(frame)
        writer.commit()
    est = estimate_cameras(path, progress=False)
    assert est.num_frames == 12 and est.is_static


def test_rotation_ransac_with_outliers():
    rng = np.random.default_rng(0)
    R = Rotation.from_rotvec([0.05, -0.2, 0.03]).as_matrix()
    xa = rng.uniform(-0.5, 0.5, (200, 2))
    fb = bearings(xa) @ R.T
    fb[:60] = bearings(rng.uniform(-0.5, 0.5, (60, 2)))
    fit, inliers, _ = rotation_ransac(bearings(xa), fb, 1e-3, rng)
    assert np.allclose(fit, R, atol=1e-9)
    assert inliers[60:].all() and inliers[:60].mean() < 0.1


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(30, 3))
    R = Rotation.from_rotvec([0.3, -0.1, 0.7]).as_matrix()
    dst = 2.5 * src @ R.T + [1, 2, 3]
    s, R_fit, t = umeyama(src, dst)
    assert np.isclose(s, 2.5) and np.allclose(R_fit, R) and np.allclose(t, [1, 2, 3])


def _random_problem(seed: int, rotation_only: bool = False) -> BundleProblem:
    rng = np.random.default_rng(seed)
    K, P, M = 4, 6, 30
    R = Rotation.from_rotvec(0.2 * rng.normal(size=(K, 3))).as_matrix()
    t = 0.3 * rng.normal(size=(K, 3))
    points = np.concatenate([0.3 * rng.normal(size=(P, 2)), rng.uniform(0.1, 0.5, (P, 1))], 1)
    return BundleProblem(
        R, t, points, rng.integers(0, K, P), rng.integers(0, K, M), rng.integers(0, P, M),
        0.1 * rng.normal(size=(M, 2)), np.array([500.0, 450.0]), rotation_only,
    )  # fmt: skip


def test_bundle_jacobians_match_finite_differences():
    pr = _random_problem(0)
    _, _, J_cam, J_anchor, J_point = _evaluate(pr)
    eps = 1e-6

    def errors(R, t, points):
        shifted = BundleProblem(R, t, points, pr.anchor, pr.obs_cam, pr.obs_point, pr.obs_xn,
                                pr.focal)  # fmt: skip
        return _evaluate(shifted, jacobians=False)[0]

    for k in range(len(pr.R)):
        numeric = np.zeros((len(pr.obs_cam), 2, 6))
        for d in range(6):
            for sign in (1, -1):
                R, t = pr.R.copy(), pr.t.copy()
                if d < 3:
                    R[k] = Rotation.from_rotvec(sign * eps * np.eye(3)[d]).as_matrix() @ R[k]
                else:
                    t[k, d - 3] += sign * eps
                numeric[:, :, d] += sign * errors(R, t, pr.points) / (2 * eps)
        analytic = np.zeros_like(numeric)
        analytic[pr.obs_cam == k] += J_cam[pr.obs_cam == k]
        in_anchor = pr.anchor[pr.obs_point] == k
        analytic[in_anchor] += J_anchor[in_anchor]
        assert np.allclose(analytic, numeric, atol=1e-4 * np.abs(numeric).max())
    numeric = np.zeros_like(J_point)
    for d in range(3):
        for sign in (1, -1):
            points = pr.points.copy()
            points[:, d] += sign * eps
            numeric[:, :, d] += sign * errors(pr.R, pr.t, points) / (2 * eps)
    assert np.allclose(J_point, numeric, atol=1e-4 * np.abs(numeric).max())


def test_bundle_adjustment_recovers_perturbed_poses():
    rng = np.random.default_rng(3)
    K, P = 5, 80
    R_true = Rotation.from_rotvec(0.1 * rng.normal(size=(K, 3))).as_matrix()
    R_true[0] = np.eye(3)
    centres = np.concatenate([np.zeros((1, 3)), 0.2 * rng.normal(size=(K - 1, 3))])
    t_true = -np.einsum("kij,kj->ki", R_true, centres)
    world = rng.uniform([-2, -1, 3], [2, 1, 6], (P, 3))
    anchor = np.zeros(P, int)
    cam = world @ R_true[0].T + t_true[0]
    points = np.concatenate([cam[:, :2] / cam[:, 2:], 1 / cam[:, 2:]], axis=1)
    obs_cam = np.repeat(np.arange(K), P)
    obs_point = np.tile(np.arange(P), K)
    proj = np.einsum("mij,mj->mi", R_true[obs_cam], world[obs_point]) + t_true[obs_cam]
    xn = proj[:, :2] / proj[:, 2:]
    R0 = Rotation.from_rotvec(0.01 * rng.normal(size=(K, 3))).as_matrix() @ R_true
    R0[0] = np.eye(3)
    t0 = t_true + 0.01 * rng.normal(size=(K, 3))
    t0[0] = 0
    pr = BundleProblem(R0, t0, points * [1, 1, 1.2], anchor, obs_cam, obs_point, xn,
                       np.array([500.0, 500.0]))  # fmt: skip
    err = bundle_adjust(pr, prior=1e-3, max_iterations=50)
    assert err.max() < 1e-3
    assert rotation_angle_deg(np.einsum("kji,kjl->kil", pr.R, R_true)).max() < 1e-3
    s = np.linalg.norm(t_true[1:]) / np.linalg.norm(pr.t[1:])  # the scale is free
    assert np.allclose(pr.t * s, t_true, atol=1e-4)


def test_cameras_for_the_solver():
    v, est, _ = _estimate("pan")
    cams = est.to_cameras()
    assert cams.R_w2c.dtype == torch.float32 and cams.image_size == (240, 320)
    assert torch.allclose(cams.R_w2c[5].T, torch.as_tensor(est.R_c2w[5], dtype=torch.float32))


def test_background_motion_is_capped_at_the_image_diagonal():
    """A chain of homographies whose perspective part builds up (what parallax does to them on a
    translating camera) sends the probe grid through infinity; the reported displacement stops at
    the diagonal instead of growing to hundreds of thousands of pixels."""
    from slahmr_opt.frontend.camera_geometry import background_motion
    from slahmr_opt.frontend.camera_tracks import Tracks

    rng = np.random.default_rng(0)
    base = np.c_[rng.uniform(0, 320, 60), rng.uniform(0, 240, 60), np.ones(60)]
    step = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0], [-0.0005, 0.0, 1.0]])
    points, H = [], np.eye(3)
    for _ in range(40):
        p = base @ H.T
        points.append(p[:, :2] / p[:, 2:])
        H = step @ H
    tracks = Tracks(ids=[np.arange(60)] * 40, points=points, size=(240, 320), lost=[False] * 40)
    moved, flow = background_motion(tracks)
    assert 10 < moved[1] < 100  # one step: a plain finite displacement
    assert np.all(moved <= np.hypot(240, 320)) and moved.max() == pytest.approx(400.0)
    assert np.all(np.isfinite(flow))
