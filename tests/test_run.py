"""``slahmr-opt run`` end to end on two seconds of real video: front end, fit, GLB, render, rerun.

The fit runs two iterations a stage (this checks the plumbing, not accuracy; the README has the
full runs' wall times and accuracy notes).
"""

import json
from pathlib import Path

import numpy as np
import pytest

from slahmr_opt.cli import main
from slahmr_opt.files.video import Mp4Writer, read_video_frames

VIDEOS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos"
WALKING = VIDEOS / "walking-forest-tracking.mp4"
FAST = [
    "stages.root.solver.iterations=2",
    "stages.smooth.solver.iterations=2",
    "stages.motion.solver.iterations=2",
    "costs.pose_prior=l2",
    "data.min_track_len=10",
]
NUM_FRAMES = 48

#: Only the end-to-end test reads the shared footage; the refusals make their own inputs.
needs_shared_video = pytest.mark.skipif(
    not WALKING.is_file(), reason=f"the shared videos are not at {VIDEOS}"
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """The first two seconds of the tracking shot, downscaled to 480x270."""
    frames, fps = read_video_frames(WALKING)
    path = tmp_path_factory.mktemp("video") / "walk.mp4"
    small = frames[:NUM_FRAMES, ::2, ::2]
    with Mp4Writer(path, small.shape[1:3], fps) as writer:
        for frame in small:
            writer.write(np.ascontiguousarray(frame))
        writer.commit()
    return path


@pytest.mark.slow
@needs_shared_video
def test_run_end_to_end_and_rerun_reuses_the_front_end(clip, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", str(clip), "--out", str(out), "--quiet", "--max-people", "1", *FAST]
    assert main(args) == 0
    with np.load(out / "results.npz") as f:
        assert f["trans"].shape[:2] == (1, f["track_mask"].shape[1])
        assert f["track_mask"].shape[1] >= NUM_FRAMES - 2
        assert np.isfinite(f["joints"]).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["people"] == 1 and not summary["reused_front_end"]
    assert {"keypoints", "camera", "fit", "export", "render"} <= set(summary["seconds"])
    assert [s["name"] for s in summary["stages"]] == ["root", "smooth", "motion"]
    for name in ("frontend/tracks.npz", "frontend/masks.npz", "frontend/cameras.npz",
                 "frontend/points.npz", "scene.glb", "history.csv", "inputs.json"):  # fmt: skip
        assert (out / name).is_file(), name
    # the tracking shot's background points reach the solver: the scale comes from the contact
    stages = json.loads((out / "stages.json").read_text())
    scale = stages[1]["camera_scale"]
    assert scale["cue"] == "contact" and scale["ground_points"] > 100, scale
    (person,) = summary["per_person"]
    assert 1.4 < person["stature_m"] < 2.1 and person["frames"] == summary["frames"]
    assert person["path_m"] >= person["displacement_m"] > 0 and summary["world_scale"] > 0
    frames, _ = read_video_frames(out / "render.mp4")
    assert len(frames) == summary["frames"]
    assert "1 people" in capsys.readouterr().out
    # run exports the Result in memory; exporting the results.npz it wrote gives the same file
    again = tmp_path / "again.glb"
    assert main(["export", "--results", str(out / "results.npz"), "--format", "glb",
                 "--out", str(again), "--quiet"]) == 0  # fmt: skip
    assert again.read_bytes() == (out / "scene.glb").read_bytes()

    assert main(args) == 2  # results exist: refused without --overwrite
    other = [*args, "--overwrite", "--no-render", "stages.motion.solver.iterations=1"]
    assert main(other) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reused_front_end"] and "keypoints" not in summary["seconds"]

    fast = ["run", str(clip), "--out", str(out), "--quiet", "--max-people", "1", "--fast",
            "--overwrite", "--no-render", "data.min_track_len=10"]  # fmt: skip
    assert main(fast) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stages"] == [] and summary["reused_front_end"]
    with np.load(out / "results.npz") as f:
        assert np.isfinite(f["joints"]).all() and np.isfinite(f["world_scale"]).all()
    assert main([*fast, "--config", "stages_1_2"]) == 2
    assert "--fast is --config regressor_only" in capsys.readouterr().err


def test_run_refuses_a_video_without_people(tmp_path, capsys):
    path = tmp_path / "empty.mp4"
    rng = np.random.default_rng(0)
    with Mp4Writer(path, (120, 160), 25.0) as writer:
        for _ in range(30):
            writer.write(
                np.full((120, 160, 3), 90, np.uint8) + rng.integers(0, 20, (120, 160, 3), np.uint8)
            )
        writer.commit()
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "empty.mp4" in err and "no person" in err.lower()


def test_run_refuses_a_file_that_is_not_a_video(tmp_path, capsys):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video")
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "notes.mp4" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "o")]) == 2
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--intrinsics", "1,2"]) == 2


def test_run_several_videos_as_a_batch(tmp_path, capsys):
    """Two videos: each is a job with its own folder; a video without people fails alone (one
    line in the table and ``batch.csv``) and the command exits 1; a missing one is refused."""
    people_free = tmp_path / "empty.mp4"
    rng = np.random.default_rng(0)
    with Mp4Writer(people_free, (120, 160), 25.0) as writer:
        for _ in range(20):
            writer.write(np.full((120, 160, 3), 90, np.uint8)
                         + rng.integers(0, 20, (120, 160, 3), np.uint8))  # fmt: skip
        writer.commit()
    other = tmp_path / "more" / "empty.mp4"
    other.parent.mkdir()
    other.write_bytes(people_free.read_bytes())
    out = tmp_path / "batch"
    assert main(["run", str(people_free), str(other), "--out", str(out), "--quiet"]) == 1
    table = capsys.readouterr().out
    assert "| empty | failed |" in table and "| empty_2 | failed |" in table
    assert "no person" in table.lower()
    rows = (out / "batch.csv").read_text().splitlines()
    assert rows[0].startswith("name,status,attempts,seconds") and len(rows) == 3
    assert main(["run", str(people_free), str(tmp_path / "gone.mp4"), "--out", str(out)]) == 2
    assert "gone.mp4" in capsys.readouterr().err
