"""Accuracy and speed of the camera front end (``slahmr_opt.frontend.camera``).

Synthetic videos with a known camera (``camera_synth``: a ray-cast textured courtyard, 640 x 360,
Gaussian pixel noise of 2 grey levels, a box walking through the view as a stand-in for a
person): static, pan (pure rotation), tracking (sideways dolly that turns), forward (walking
behind someone) and handheld (drift plus shake). Each is run with the walker masked; some also
with the walker not masked, and one with intrinsics 15% off. Reported: the motion found, the
rotation error rate (mean over 1 s windows of the angle between estimated and true relative
rotations, deg/s), the mean and largest absolute rotation error, the ATE after a Sim(3)
alignment (metres of the synthetic scene, and as a fraction of the path length) and the time per
frame of the estimate (rendering excluded).

Real videos (``/work/shared/data/videos``, no ground truth): the motion found against the one
the file name promises, total rotation, the direction and length of the translation (in median
background depths), time per frame; ``--plots DIR`` draws each trajectory.

    nice .venv/bin/python bench/camera_accuracy.py [--frames 150] [--out FILE] [--plots DIR]
                                                   [--skip-real | --real-only]
"""

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from slahmr_opt.eval.camera_eval import rotation_angle_deg, trajectory_error
from slahmr_opt.frontend.camera import CameraSettings, estimate_cameras
from slahmr_opt.io.results import cpu_name
from slahmr_opt.synth.camera_video import make_video

REPO = Path(__file__).resolve().parents[1]
VIDEOS = Path("/work/shared/data/videos")
EXPECTED = {"static": "static", "pan": "rotation", "tracking": "general"}
NOTES = {
    "runner-indoor-pan.mp4": (
        "not a pure pan: the camera travels along the running track (a dolly shot). Over frames "
        "60-90 a pure rotation fits 16% of the tracks within 1.5 px (median residual 8.7 px at "
        "1920 px, whatever the focal length from 0.5x to 3x the default) while an essential "
        "matrix fits 98%; the lane lines keep their place in the image while the wall slides by"
    ),
    "tennis-static.mp4": (
        "the camera creeps: the background drifts 14 px (1.7% of the diagonal, about 1 degree) "
        "over the clip, confirmed by SIFT matches between frames 0 and 270; under the static "
        "threshold (2.5%). With static=False the estimate is a pure rotation (see "
        "rotation_if_not_static_deg)"
    ),
}
SYNTHETIC = [
    # (name, kind, masked walker, focal factor of the given intrinsics, or the default focal
    # used without intrinsics: "slahmr" is the true one, "diagonal" 1.47x too long here)
    ("static", "static", True, 1.0),
    ("pan", "pan", True, 1.0),
    ("tracking", "tracking", True, 1.0),
    ("forward", "forward", True, 1.0),
    ("handheld", "handheld", True, 1.0),
    ("pan_unmasked", "pan", False, 1.0),
    ("tracking_unmasked", "tracking", False, 1.0),
    ("handheld_unmasked", "handheld", False, 1.0),
    ("tracking_focal+15%", "tracking", True, 1.15),
    ("tracking_focal_measured", "tracking", True, "slahmr"),
    ("tracking_focal_measured_from_diagonal", "tracking", True, "diagonal"),
    ("handheld_focal_measured_from_diagonal", "handheld", True, "diagonal"),
    ("forward_focal_measured_from_diagonal", "forward", True, "diagonal"),
    ("pan_focal_default_diagonal", "pan", True, "diagonal"),
]


def _round(value, digits=4):
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


def synthetic(num_frames: int, size: tuple[int, int]) -> list[dict]:
    rows = []
    for name, kind, masked, focal_factor in SYNTHETIC:
        video = make_video(kind, num_frames=num_frames, size=size, mover=True)
        given = not isinstance(focal_factor, str)
        intrins = video.intrins * [focal_factor, focal_factor, 1, 1] if given else None
        settings = CameraSettings(default_focal="slahmr" if given else focal_factor)
        start = time.perf_counter()
        est = estimate_cameras(
            video.frames, video.masks if masked else None, intrins, settings=settings,
            progress=False,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        err = trajectory_error(est.R_c2w, est.t_c2w, video.R_c2w, video.t_c2w, video.fps)
        expected = {"static": "static", "pan": "rotation"}.get(kind, "general")
        rows.append({
            "name": name,
            "kind": kind,
            "walker_masked": masked,
            "focal_factor": focal_factor,
            "motion": est.motion,
            "motion_ok": est.motion == expected,
            "rot_err_deg_per_s": _round(err.rot_drift_deg_per_s),
            "rot_abs_deg_mean": _round(err.rot_abs_deg),
            "rot_abs_deg_max": _round(err.rot_max_deg),
            "ate_m": _round(err.ate_m),
            "ate_rel_path": _round(err.ate_rel),
            "true_path_m": _round(err.path_m, 3),
            "true_rotation_deg": _round(rotation_angle_deg(video.R_c2w[-1]), 2),
            "est_path_depths": _round(err.est_translation_rel),
            "keyframes": len(est.diagnostics.keyframes),
            "ba_rms_px": _round(est.diagnostics.ba_rms_px, 3),
            **_focal(est),
            "focal_over_true": _round(est.intrins[0] / video.intrins[0]),
            "ms_per_frame": _round(1000 * seconds / num_frames, 1),
        })  # fmt: skip
        logging.info("%s", rows[-1])
    return rows


def _focal(est) -> dict:
    diag = est.diagnostics
    return {
        "focal": diag.focal,
        "focal_px": _round(est.intrins[0], 1),
        "focal_factor_measured": _round(diag.focal_factor),
        "focal_range": [_round(v) for v in diag.focal_range],
    }


def _describe_direction(vec: np.ndarray) -> str:
    names = (("right", "left"), ("down", "up"), ("forward", "backward"))
    axis = int(np.argmax(np.abs(vec)))
    return names[axis][0 if vec[axis] > 0 else 1]


def real_videos(plots: Path | None) -> list[dict]:
    rows = []
    for path in sorted(VIDEOS.glob("*.mp4")):
        start = time.perf_counter()
        est = estimate_cameras(path, progress=False)
        seconds = time.perf_counter() - start
        expected = next((v for k, v in EXPECTED.items() if k in path.stem), None)
        angles = rotation_angle_deg(est.R_c2w)
        euler = Rotation.from_matrix(est.R_c2w[-1]).as_euler("YXZ", degrees=True)
        path_len = float(np.linalg.norm(np.diff(est.t_c2w, axis=0), axis=1).sum())
        end = est.t_c2w[-1]
        direction = end / np.linalg.norm(end) if np.linalg.norm(end) > 0 else end
        diag = est.diagnostics
        h, w = est.image_size
        rows.append({
            "video": path.name,
            "frames": est.num_frames,
            "size_hw": [h, w],
            "motion": est.motion,
            "expected_from_name": expected,
            "is_static": est.is_static,
            "background_moved_max_frac_diag": _round(
                diag.moved_px.max() / diag.tracking_scale / np.hypot(h, w)),
            "rotation_end_deg": _round(angles[-1], 2),
            "rotation_max_deg": _round(angles.max(), 2),
            "yaw_pitch_roll_end_deg": [round(float(v), 2) for v in euler],
            "path_length_depths": _round(path_len, 3),
            "translation_end_dir_cam0": [round(float(v), 3) for v in direction],
            "translation_end_dir": _describe_direction(direction) if path_len > 0 else "none",
            "keyframes": len(diag.keyframes),
            "ba_rms_px": _round(diag.ba_rms_px, 3),
            "median_tracks": int(np.median(diag.num_tracks)),
            "num_points": 0 if est.points is None else est.points.num_points,
            **_focal(est),
            "seconds": _round(seconds, 2),
            "ms_per_frame": _round(1000 * seconds / est.num_frames, 1),
            "warnings": diag.warnings,
        })  # fmt: skip
        if est.is_static:
            moving = estimate_cameras(path, static=False, progress=False)
            rows[-1]["motion_if_not_static"] = moving.motion
            rows[-1]["rotation_if_not_static_deg"] = _round(
                rotation_angle_deg(moving.R_c2w).max(), 2
            )
        if path.name in NOTES:
            rows[-1]["note"] = NOTES[path.name]
        logging.info("%s", rows[-1])
        if plots is not None:
            _plot(est, plots / f"camera_{path.stem}.png", path.name)
    return rows


def _plot(est, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.parent.mkdir(parents=True, exist_ok=True)
    euler = Rotation.from_matrix(est.R_c2w).as_euler("YXZ", degrees=True)
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    ax[0].plot(est.t_c2w[:, 0], est.t_c2w[:, 2])
    ax[0].set(xlabel="x (right)", ylabel="z (forward)", title=f"{title}: top view")
    ax[0].axis("equal")
    ax[1].plot(euler)
    ax[1].legend(["yaw", "pitch", "roll"])
    ax[1].set(xlabel="frame", ylabel="degrees", title=est.motion)
    ax[2].plot(est.diagnostics.num_tracks, label="tracks")
    ax[2].plot(est.diagnostics.inliers, label="inliers")
    ax[2].plot(est.diagnostics.moved_px, label="background moved (px)")
    ax[2].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=150, help="frames per synthetic video")
    parser.add_argument("--size", type=int, nargs=2, default=(360, 640), help="synthetic H W")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/camera_accuracy.json")
    parser.add_argument("--plots", type=Path, default=None, help="folder for trajectory PNGs")
    parser.add_argument("--skip-real", action="store_true", help="synthetic videos only")
    parser.add_argument(
        "--real-only", action="store_true", help="real videos only; keep --out's synthetic rows"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in ("slahmr_opt.frontend.camera", "slahmr_opt.frontend.camera_vo"):
        logging.getLogger(name).setLevel(logging.WARNING)
    result = {"machine": {"cpu": cpu_name(), "note": "2 cores shared with other jobs"}}
    if args.real_only:
        result["synthetic"] = json.loads(args.out.read_text())["synthetic"]
    else:
        result["synthetic"] = {
            "frames": args.frames,
            "size_hw": list(args.size),
            "fps": 30,
            "rows": synthetic(args.frames, tuple(args.size)),
        }
    if not args.skip_real and VIDEOS.is_dir():
        result["real"] = real_videos(args.plots)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    logging.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
