"""The ``slahmr-opt`` command: fit end to end, resume, refuse to overwrite, clear input errors."""

import json

import numpy as np
import pytest
from stages.scene import make_scene

from slahmr_opt.cli import main
from slahmr_opt.inputs.cameras import write_cameras_npz
from slahmr_opt.inputs.track_data import tracks_from_observations
from slahmr_opt.inputs.tracks import write_tracks_npz
from slahmr_opt.io.results import RESULT_KEYS

FAST = [
    "stages.root.solver.iterations=2",
    "stages.smooth.solver.iterations=2",
    "stages.motion.solver.iterations=2",
    "costs.pose_prior=l2",
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    scene = make_scene(num_people=1, num_frames=25, camera="orbit", seed=2)
    obs = scene.obs
    tracks = tracks_from_observations(obs)
    write_tracks_npz(d / "tracks.npz", tracks)
    write_cameras_npz(d / "cameras.npz", obs.cameras)
    write_cameras_npz(d / "short_cameras.npz", obs.cameras.slice(0, 10))
    return d


def test_fit_writes_results_and_resumes(inputs, tmp_path, caplog):
    out = tmp_path / "run"
    args = [
        "fit",
        "--tracks",
        str(inputs / "tracks.npz"),
        "--cameras",
        str(inputs / "cameras.npz"),
        "--out",
        str(out),
        "--quiet",
        *FAST,
    ]
    assert main(args) == 0
    with np.load(out / "results.npz") as f:
        assert set(RESULT_KEYS) <= set(f.files)
        P, T = f["trans"].shape[:2]
        assert (P, T) == (1, 25)
        assert f["pose_body"].shape == (1, 25, 63)
        assert f["cam_R"].shape == (1, 25, 3, 3)
        assert np.isfinite(f["joints"]).all()
        assert float(f["world_scale"][0, 0]) > 0
    for name in ("config.yaml", "versions.json", "history.csv", "loss.png", "stages.json"):
        assert (out / name).exists(), name
    sources = json.loads((out / "inputs.json").read_text())
    assert sources["tracks"].endswith("tracks.npz") and sources["cameras"].endswith("cameras.npz")
    assert main(args) == 2  # refuses to overwrite
    caplog.set_level("INFO")
    assert main([*args[: -len(FAST)], "--overwrite", *FAST]) == 0
    assert sum("resumed from" in r.getMessage() for r in caplog.records) == 3


def test_fit_init_regressor(inputs, tmp_path):
    out = tmp_path / "reg"
    args = ["fit", "--tracks", str(inputs / "tracks.npz"), "--cameras",
            str(inputs / "cameras.npz"), "--out", str(out), "--quiet", "--init", "regressor",
            *FAST]  # fmt: skip
    assert main(args) == 0
    assert json.loads((out / "inputs.json").read_text())["init"] == "regressor"
    assert "guesses: regressor" in (out / "config.yaml").read_text()


@pytest.mark.parametrize(
    "case, expect",
    [
        ("missing", "not found"),
        ("garbage", "tracks.npz"),
        ("short_cameras", "short_cameras.npz"),
        ("nan", "tracks.npz"),
        ("points_nan", "points.npz"),
        ("points_frames", "points.npz"),
    ],
)
def test_bad_inputs_exit_with_message(inputs, tmp_path, capsys, case, expect):
    tracks, cameras = inputs / "tracks.npz", inputs / "cameras.npz"
    points = []
    if case.startswith("points"):
        pts = np.random.default_rng(0).normal(size=(50, 3))
        frames = np.zeros((50, 2), np.int64)
        if case == "points_nan":
            pts[7, 1] = np.nan
        else:
            frames[3] = [5, 400]  # the video has 25 frames
        np.savez(tmp_path / "points.npz", points=pts, frames=frames)
        points = ["--points", str(tmp_path / "points.npz")]
    if case == "missing":
        tracks = tmp_path / "tracks.npz"
    elif case == "garbage":
        tracks = tmp_path / "tracks.npz"
        tracks.write_bytes(b"not an npz")
    elif case == "short_cameras":
        cameras = inputs / "short_cameras.npz"
    elif case == "nan":
        with np.load(inputs / "tracks.npz") as f:
            data = dict(f)
        data["kp2d"][0, 3, 2, 0] = np.nan
        tracks = tmp_path / "tracks.npz"
        np.savez(tracks, **data)
    out = tmp_path / "out"
    code = main(
        [
            "fit",
            "--tracks",
            str(tracks),
            "--cameras",
            str(cameras),
            "--out",
            str(out),
            "--quiet",
            *points,
            *FAST,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert expect in err and "Traceback" not in err
    assert not (out / "results.npz").exists()


def test_bad_override_exits_cleanly(inputs, tmp_path, capsys):
    code = main(
        [
            "fit",
            "--tracks",
            str(inputs / "tracks.npz"),
            "--static",
            "--out",
            str(tmp_path),
            "stages.root.solver.kind=newton",
        ]
    )
    assert code == 2
    assert "newton" in capsys.readouterr().err


def test_subcommands_are_wired(tmp_path, capsys):
    assert main(["eval", "--pred", str(tmp_path / "no.npz"), "--gt", str(tmp_path / "gt.npz")]) == 2
    assert "no.npz" in capsys.readouterr().err
    grid = tmp_path / "grid.yaml"
    grid.write_text("variants: {a: {overrides: [stages.root.solver.iters=1]}}\n")
    code = main(["ablate", "--grid", str(grid), "--bench", str(tmp_path), "--quiet"])
    assert code == 2
    with pytest.raises(SystemExit):
        main(["bench", "make", "--help"])


def test_bench_run_without_index_is_one_line_and_exit_2(tmp_path, capsys):
    assert (
        main(["bench", "run", "--bench", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "index.json" in err[0] and "Traceback" not in err[0]
