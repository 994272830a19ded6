"""Rendered-video benchmark: the body is drawn where the truth says, gt.npz reads back,
BlazePose finds the person, and ``bench run --video`` scores (or records failures) end to end."""

import json
from pathlib import Path

import numpy as np
import pytest
from mocap_walks import extract_eval_walks

from slahmr_opt.cli import main
from slahmr_opt.experiments.evaluate import read_ground_truth
from slahmr_opt.experiments.video_bench_run import run_video_benchmark
from slahmr_opt.files.video import Mp4Writer, read_video_frames
from slahmr_opt.synth.video_benchmark import make_video_benchmark
from slahmr_opt.synth.video_render import COLORS, SCENE_CENTRE_XZ, SCENE_GROUND_Y, ScenePlacement

pytestmark = pytest.mark.slow

SIZE = (240, 320)
FRAMES = 40
FAST = ["stages.root.solver.iterations=2", "stages.smooth.solver.iterations=2",
        "stages.motion.solver.iterations=2"]  # fmt: skip


@pytest.fixture(scope="module")
def walk_bvh(tmp_path_factory) -> Path:
    """One evaluation-split walk from the Bandai-Namco archive."""
    return extract_eval_walks(tmp_path_factory.mktemp("mocap"), 1)[0]


@pytest.fixture(scope="module")
def vbench(walk_bvh, tmp_path_factory) -> Path:
    """One tracking-camera video, 40 frames at 320x240."""
    out = tmp_path_factory.mktemp("vbench") / "b"
    make_video_benchmark([walk_bvh], out, seed=3, cameras=("tracking",), max_frames=FRAMES,
                         image_size=SIZE, progress=False)  # fmt: skip
    return out


def _only_sequence(bench: Path) -> Path:
    (entry,) = json.loads((bench / "index.json").read_text())["sequences"]
    return bench / entry["name"]


def _projected_joints(gt: dict) -> np.ndarray:
    """(T, 24, 2) pixel positions of the true joints."""
    joints = gt["joints"][0].astype(np.float64)
    cam = np.einsum("tij,tkj->tki", gt["cam_R"], joints) + gt["cam_t"][:, None]
    fx, fy, cx, cy = gt["intrins"]
    return np.stack([fx * cam[..., 0] / cam[..., 2] + cx, fy * cam[..., 1] / cam[..., 2] + cy], -1)


def test_gt_reads_back(vbench):
    seq = _only_sequence(vbench)
    meta = json.loads((seq / "meta.json").read_text())
    gt = read_ground_truth(seq / "gt.npz")
    assert gt["joints"].shape == (1, FRAMES, 24, 3) and gt["feet"].shape == (1, FRAMES, 4, 3)
    assert gt["cam_R"].shape == (FRAMES, 3, 3) and gt["valid"].all()
    assert [str(s) for s in gt["track_ids"]] == ["001"]
    assert gt["pose_body"].shape == (1, FRAMES, 63) and gt["betas"].shape[0] == 1
    np.testing.assert_allclose(gt["cam_R"] @ gt["cam_R"].transpose(0, 2, 1),
                               np.broadcast_to(np.eye(3), (FRAMES, 3, 3)), atol=1e-5)  # fmt: skip
    assert tuple(gt["image_size"]) == SIZE
    assert gt["intrins"][0] == pytest.approx(meta["focal_true"]) == 0.5 * sum(SIZE)
    assert gt["stature"][0] == pytest.approx(meta["stature_true"])
    assert 1.3 < meta["stature_true"] < 2.1
    assert "alpha" not in gt  # depends on the front end's camera: measured by the runner


def test_body_drawn_where_the_joints_project(vbench):
    seq = _only_sequence(vbench)
    gt = read_ground_truth(seq / "gt.npz")
    frames, fps = read_video_frames(seq / "video.mp4")
    assert frames.shape == (FRAMES, *SIZE, 3) and fps == pytest.approx(30.0)
    uv = _projected_joints(gt)
    assert (uv[..., 0] > 0).all() and (uv[..., 0] < SIZE[1]).all()
    assert (uv[..., 1] > 0).all() and (uv[..., 1] < SIZE[0]).all()
    rgb = frames.astype(float)
    # the courtyard is tinted warm (blue below red everywhere); the shirt is blue
    shirt = rgb[..., 2] - rgb[..., 0] > 25
    assert np.array(COLORS["shirt"])[2] > np.array(COLORS["shirt"])[0]
    chest_hits = []
    inside = []
    for t in range(FRAMES):
        u, v = np.round(uv[t, 9]).astype(int)  # spine3, inside the chest
        chest_hits.append(shirt[t, v - 2 : v + 3, u - 2 : u + 3].mean())
        lo, hi = uv[t].min(0), uv[t].max(0)
        pad = 0.15 * (hi[1] - lo[1])
        rows, cols = np.nonzero(shirt[t])
        box = ((cols > lo[0] - pad) & (cols < hi[0] + pad) & (rows > lo[1] - pad)
               & (rows < hi[1] + pad))  # fmt: skip
        inside.append(box.mean() if len(box) else 0.0)
        assert shirt[t].sum() > 30, t  # the torso is seen in every frame
    assert np.mean(np.array(chest_hits) > 0.5) > 0.9  # chest joint on the shirt (back or front)
    assert min(inside) > 0.97  # no shirt pixels away from the body


def test_placement_puts_floor_on_ground_and_path_along_x():
    rng = np.random.default_rng(0)
    along = np.linspace(-4, 4, 50)
    path_xz = np.stack([3 + 0.6 * along, 7 + 0.8 * along], 1) + rng.normal(0, 0.05, (50, 2))
    place = ScenePlacement.fit(0.02, path_xz)
    assert np.linalg.det(place.R) == pytest.approx(1.0)
    np.testing.assert_allclose(place.R @ place.R.T, np.eye(3), atol=1e-12)
    pts = np.stack([path_xz[:, 0], np.full(50, 0.02), path_xz[:, 1]], 1) @ place.R.T + place.t
    np.testing.assert_allclose(pts[:, 1], SCENE_GROUND_Y, atol=1e-9)
    assert np.ptp(pts[:, 0]) > 7.5 and np.ptp(pts[:, 2]) < 0.5  # the walk runs along x
    centre = 0.5 * (pts.min(0) + pts.max(0))
    np.testing.assert_allclose(centre[[0, 2]], SCENE_CENTRE_XZ, atol=1e-9)
    head = place.R @ np.array([3.0, 1.8, 7.0]) + place.t
    assert head[1] < SCENE_GROUND_Y - 1.7  # y up becomes the courtyard's y down
    # camera: a world-to-camera pose maps to a scene camera seeing the same points
    R_w2c, t_w2c = np.eye(3), np.array([0.0, 0.0, 5.0])
    R_c2w, centre_s = place.camera_c2w(R_w2c, t_w2c)
    x_gt = np.array([0.3, 1.0, 2.0])
    x_s = place.R @ x_gt + place.t
    np.testing.assert_allclose(R_c2w.T @ (x_s - centre_s), R_w2c @ x_gt + t_w2c, atol=1e-12)


def test_same_seed_same_truth(vbench, walk_bvh, tmp_path):
    again = make_video_benchmark([walk_bvh], tmp_path / "b", seed=3, cameras=("tracking",),
                                 max_frames=FRAMES, image_size=SIZE, progress=False)  # fmt: skip
    seq = _only_sequence(again.parent)
    with np.load(seq / "gt.npz") as a, np.load(vbench / seq.name / "gt.npz") as b:
        assert a.files == b.files
        for k in a.files:
            assert a[k].tobytes() == b[k].tobytes(), k
    fa, _ = read_video_frames(seq / "video.mp4")
    fb, _ = read_video_frames(vbench / seq.name / "video.mp4")
    assert np.abs(fa.astype(int) - fb.astype(int)).mean() < 1.0


def test_blazepose_finds_the_person(vbench):
    from slahmr_opt.frontend import FrontEndUnavailableError, detect_people

    seq = _only_sequence(vbench)
    try:
        found = detect_people(seq / "video.mp4", max_people=2, min_track_len=5, progress=False)
    except FrontEndUnavailableError as e:
        pytest.skip(str(e))
    assert found.tracks.num_people == 1
    assert found.tracks.vis_mask.sum() >= 0.8 * FRAMES
    # its hips land near the true hips (op25 9, 12: right, left hip; SMPL 2, 1)
    gt = read_ground_truth(seq / "gt.npz")
    hips = _projected_joints(gt)[:, [2, 1]]
    vis = found.tracks.vis_mask[0].numpy()
    kp = found.tracks.kp2d[0][:, [9, 12], :2].numpy()
    err = np.linalg.norm(kp[vis].mean(1) - hips[vis].mean(1), axis=1)
    assert np.median(err) < 0.1 * np.ptp(_projected_joints(gt)[..., 1], axis=1).mean()


def test_bench_run_video_scores(vbench, tmp_path):
    pytest.importorskip("mediapipe")
    report = run_video_benchmark(vbench, tmp_path / "out", overrides=FAST)
    (name,) = report["sequences"]
    row = report["sequences"][name]
    assert not row["failed"] and report["failures"] == []
    assert row["detection_rate"] >= 0.8 and row["frames"] >= 0.8 * FRAMES
    for key in ("w_mpjpe100", "wa_mpjpe100", "pa_mpjpe", "rte"):
        assert np.isfinite(row[key]) and row[key] > 0, key
    assert row["pa_mpjpe"] < 250 and row["w_mpjpe100"] < 1500
    assert np.isfinite(row["alpha_true"]) and row["alpha_true"] > 0  # tracking camera moves
    assert 0.3 < row["alpha_ratio"] < 3.0
    assert row["camera_rot_deg"] < 2.0 and row["camera_ate_rel"] < 0.1
    assert abs(row["stature"] - row["stature_true"]) < 0.3
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["mean"]["detection_rate"] == pytest.approx(row["detection_rate"])
    assert set(saved["sequences"]) == {name}


def test_video_without_person_is_a_failure_row(vbench, tmp_path):
    pytest.importorskip("mediapipe")
    from slahmr_opt.synth.camera_video import make_video

    bench = tmp_path / "empty"
    seq = _only_sequence(vbench)
    dest = bench / "000_pan_nobody"
    dest.mkdir(parents=True)
    clip = make_video("pan", num_frames=FRAMES, size=SIZE)
    with Mp4Writer(dest / "video.mp4", SIZE, 30.0) as w:
        for frame in clip.frames:
            w.write(frame)
        w.commit()
    (dest / "gt.npz").write_bytes((seq / "gt.npz").read_bytes())
    (dest / "meta.json").write_text(json.dumps({"camera": "pan", "video": "video.mp4"}))
    (bench / "index.json").write_text(json.dumps({"video": True,
                                                  "sequences": [{"name": dest.name}]}))  # fmt: skip
    report = run_video_benchmark(bench, tmp_path / "out", overrides=FAST)
    row = report["sequences"][dest.name]
    assert row["failed"] and "no person" in row["reason"] and row["detection_rate"] == 0
    assert report["failures"] == [dest.name] and "w_mpjpe100" not in report["mean"]


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["bench", "make", "--video", "--mocap", "MOCAP", "--out", "OUT", "--size", "321x240"],
         "--size"),
        (["bench", "make", "--video", "--mocap", "MOCAP", "--out", "OUT", "--people", "2"],
         "--people"),
        (["bench", "make", "--video", "--mocap", "nowhere.tar.xz", "--out", "OUT"],
         "nowhere.tar.xz: mocap path not found"),
        (["bench", "run", "--video", "--bench", "BENCH", "--out", "OUT"],
         "index.json: benchmark index not found"),
        (["bench", "make", "--mocap", "MOCAP", "--out", "OUT", "--camera", "behind"],
         "need --video"),
    ],
)  # fmt: skip
def test_bad_input_one_line_exit_2(argv, problem, walk_bvh, tmp_path, capsys):
    subst = {"MOCAP": str(walk_bvh), "OUT": str(tmp_path / "o"), "BENCH": str(tmp_path / "b")}
    assert main([subst.get(a, a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and problem in err[0], err


def test_courtyard_depth_is_the_ground_planes():
    from slahmr_opt.synth.camera_video import courtyard, render_frame

    H, W = 60, 80
    f = 70.0
    # a camera 1.5 m above the ground looking along +z: a ray through row v below the
    # horizon meets the ground at depth 1.5 f / (v - cy)
    _, ids, depth = render_frame(courtyard(0, texels_per_m=10), np.array([f, f, W / 2, H / 2]),
                                 np.eye(3), np.zeros(3), (H, W), with_depth=True)  # fmt: skip
    rows = np.arange(H - 8, H)
    np.testing.assert_allclose(depth[rows, W // 2], 1.5 * f / (rows - H / 2), rtol=1e-4)
    assert (ids[rows, W // 2] == 0).all() and np.isinf(depth[0]).any()  # sky above the walls


def test_view_angle_front_side_back():
    from slahmr_opt.synth.video_benchmark import view_angles_deg

    turn = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, np.pi / 2, 0.0]])
    pelvis = np.zeros((4, 3))
    cams = np.array([[0.0, 1.0, 3.0], [3.0, 1.0, 0.0], [0.0, 1.0, -3.0], [3.0, 1.0, 0.0]])
    # facing +z: front, side, back; turned a quarter about y it faces +x, the camera's side
    np.testing.assert_allclose(view_angles_deg(turn, pelvis, cams), [0, 90, 180, 0], atol=1e-9)


def test_camera_accuracy_measures_the_scale(vbench, tmp_path):
    from slahmr_opt.experiments.video_bench_run import camera_accuracy
    from slahmr_opt.synth import observe as synth

    gt = read_ground_truth(_only_sequence(vbench) / "gt.npz")
    R, t = gt["cam_R"].astype(np.float64), gt["cam_t"].astype(np.float64)
    settings = synth.SynthSettings(alpha_true=0.37, slam_rot_drift_deg=0.0, slam_trans_noise=0.0)
    R_slam, t_slam = synth.slam_like(R, t, settings, np.random.default_rng(0))
    w2c = np.tile(np.eye(4), (len(R), 1, 1))
    w2c[:, :3, :3], w2c[:, :3, 3] = R_slam, t_slam
    np.savez(tmp_path / "cameras.npz", w2c=w2c)
    got = camera_accuracy(tmp_path, gt, 30.0)
    assert got["alpha_true"] == pytest.approx(0.37, rel=1e-4)
    assert got["camera_rot_deg"] < 0.05 and got["camera_ate_rel"] < 1e-4  # float32 truth
    (tmp_path / "camera_estimate.json").write_text(json.dumps({"is_static": True}))
    assert np.isnan(camera_accuracy(tmp_path, gt, 30.0)["alpha_true"])


def test_behind_and_side_cameras_film_from_there(walk_bvh, tmp_path):
    index = make_video_benchmark([walk_bvh], tmp_path / "v", seed=1, cameras=("behind", "side"),
                                 max_frames=20, image_size=(120, 160), progress=False)  # fmt: skip
    seqs = json.loads(index.read_text())["sequences"]
    assert [s["camera"] for s in seqs] == ["behind", "side"]
    views = [json.loads((index.parent / s["name"] / "meta.json").read_text())["view_deg_median"]
             for s in seqs]  # fmt: skip
    assert abs(views[0] - 180) < 30 and abs(views[1] - 90) < 30, views


def test_bench_run_video_refuses_other_benchmarks_and_missing_videos(vbench, tmp_path):
    from slahmr_opt.errors import InputError

    index = json.loads((vbench / "index.json").read_text())
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "index.json").write_text(json.dumps(index | {"video": False}))
    with pytest.raises(InputError, match="not a rendered-video benchmark"):
        run_video_benchmark(plain, tmp_path / "o1")
    broken = tmp_path / "broken"
    seq = broken / index["sequences"][0]["name"]
    seq.mkdir(parents=True)
    (broken / "index.json").write_text(json.dumps(index))
    for name in ("gt.npz", "meta.json"):
        (seq / name).write_bytes((vbench / seq.name / name).read_bytes())
    with pytest.raises(InputError, match="video.mp4: video not found"):
        run_video_benchmark(broken, tmp_path / "o2")


def test_bench_table_leaves_failure_rows_out(tmp_path):
    from slahmr_opt.experiments.bench_table import table

    scored = {"camera": "behind", "frames": 100, "w_mpjpe100": 200.0, "pa_mpjpe": 50.0,
              "alpha": 2.0, "alpha_true": 1.0, "failed": False}  # fmt: skip
    failed = {"camera": "behind", "failed": True, "reason": "no person", "detection_rate": 0.0}
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"sequences": {"000_behind_x_walk_y_010": scored,
                                              "001_behind_x_walk_y_020": failed}}))  # fmt: skip
    rows = {line.split("|")[1].strip(): line.split("|") for line in table(path).splitlines()
            if line.startswith("| ")}  # fmt: skip
    assert rows["behind"][2].strip() == "1"  # n: the scored sequence only
    assert rows["behind"][-2].strip() == "2.00"  # alpha / true of a moving camera
