"""Benchmark generator and runner: determinism, file contents read back, scoring and resume."""

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from mocap_walks import extract_eval_walks

from slahmr_opt.cli.bench import add_parser as add_bench_parser
from slahmr_opt.cli.bench import format_table
from slahmr_opt.errors import InputError
from slahmr_opt.experiments.bench_run import fit_and_score, run_benchmark
from slahmr_opt.experiments.evaluate import read_ground_truth
from slahmr_opt.inputs.observations import load_observations
from slahmr_opt.synth.benchmark import list_motions, make_benchmark

pytestmark = pytest.mark.slow

FAST = ["stages.root.solver.iterations=2", "stages.smooth.solver.iterations=2",
        "stages.motion.solver.iterations=2"]


@pytest.fixture(scope="module")
def mocap_dir(tmp_path_factory) -> Path:
    """A folder with two evaluation-split walks extracted from the Bandai-Namco archive."""
    dest = tmp_path_factory.mktemp("mocap")
    extract_eval_walks(dest, 2)
    return dest


@pytest.fixture(scope="module")
def eval_bvh(mocap_dir) -> Path:
    return sorted(mocap_dir.iterdir())[0]


@pytest.fixture(scope="module")
def bench(eval_bvh, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "a"
    make_benchmark([eval_bvh], out, seed=5, cameras=("pan", "static"), max_frames=40)
    return out


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def test_index_contents(bench, eval_bvh):
    index = json.loads((bench / "index.json").read_text())
    assert index["seed"] == 5 and index["people"] == 1
    seqs = index["sequences"]
    assert [s["camera"] for s in seqs] == ["pan", "static"]
    for s in seqs:
        assert s["sources"] == [eval_bvh.name] and s["frames"] == 40 and s["people"] == 1
        assert (bench / s["name"] / "meta.json").is_file()


def test_same_seed_same_arrays(bench, eval_bvh, tmp_path):
    again = make_benchmark([eval_bvh], tmp_path / "b", seed=5, cameras=("pan", "static"),
                           max_frames=40)  # fmt: skip
    other = make_benchmark([eval_bvh], tmp_path / "c", seed=4, cameras=("pan",), max_frames=40)
    names = [s["name"] for s in json.loads(again.read_text())["sequences"]]
    for name in names:
        for f in ("tracks.npz", "cameras.npz", "gt.npz"):
            a, b = _arrays(bench / name / f), _arrays(again.parent / name / f)
            assert a.keys() == b.keys()
            for k in a:
                assert a[k].tobytes() == b[k].tobytes(), (name, f, k)
    pan = next(n for n in names if "_pan_" in n)
    kp_a = _arrays(bench / pan / "tracks.npz")["kp2d"]
    kp_c = _arrays(other.parent / pan / "tracks.npz")["kp2d"]
    assert not np.array_equal(kp_a, kp_c)


def test_guess_kinds_share_keypoints_and_cameras(bench, eval_bvh, tmp_path):
    """Only the guesses differ between guess kinds; realistic guesses are measurably worse."""
    kinds = {}
    for kind in ("near-true", "none"):
        make_benchmark([eval_bvh], tmp_path / kind, seed=5, cameras=("pan", "static"),
                       max_frames=40, guesses=kind)  # fmt: skip
        kinds[kind] = tmp_path / kind
    kinds["realistic"] = bench
    for name in (p.name for p in bench.glob("000_*")):
        tracks = {k: _arrays(d / name / "tracks.npz") for k, d in kinds.items()}
        for k in ("near-true", "none"):
            np.testing.assert_array_equal(tracks[k]["kp2d"], tracks["realistic"]["kp2d"])
            cams = (_arrays(d / name / "cameras.npz")["w2c"] for d in (kinds[k], bench))
            np.testing.assert_array_equal(*cams)
        assert not any(k.startswith("smpl_") for k in tracks["none"])
        assert "smpl_valid" in tracks["near-true"] and "smpl_valid" in tracks["realistic"]
        quality = {k: json.loads((kinds[k] / name / "meta.json").read_text())["guess_quality"]
                   for k in ("near-true", "realistic")}  # fmt: skip
        assert quality["realistic"]["pa_mpjpe_mm"] > quality["near-true"]["pa_mpjpe_mm"] + 3
        assert quality["near-true"]["facing_off45_pct"] == 0.0
        # Frames with fewer than 8 confident keypoints have no realistic guess.
        few = (tracks["realistic"]["kp2d"][..., 2] > 0).sum(-1) < 8
        assert not (tracks["realistic"]["smpl_valid"] & few).any()


def test_no_face(eval_bvh, tmp_path):
    make_benchmark([eval_bvh], tmp_path, seed=5, cameras=("static",), max_frames=40,
                   guesses="none", no_face=True)  # fmt: skip
    (seq,) = tmp_path.glob("000_*")
    kp = _arrays(seq / "tracks.npz")["kp2d"]
    assert (kp[..., :5, 2] == 0).all() and (kp[..., 5:, 2] > 0).any()
    assert json.loads((tmp_path / "index.json").read_text())["no_face"] is True


def test_files_read_back(bench):
    for seq in bench.glob("000_*"):
        obs = load_observations(seq / "tracks.npz", seq / "cameras.npz")
        gt = read_ground_truth(seq / "gt.npz")
        P, T = gt["valid"].shape
        assert (P, T) == (1, 40)
        assert obs.num_people == 1 and obs.num_frames <= T
        assert gt["feet"].shape == (1, 40, 4, 3) and gt["pose_body"].shape == (1, 40, 63)
        assert gt["cam_R"].shape == (40, 3, 3) and float(gt["alpha"]) in (0.37, 1.0)
        # Feet lie below the pelvis (y up) and within a body height of it.
        drop = gt["joints"][0, :, 0, 1] - gt["feet"][0, :, :, 1].mean(-1)
        assert (drop > 0.5).all() and (drop < 1.5).all()


def test_two_people_side_by_side(mocap_dir, tmp_path):
    index = make_benchmark(mocap_dir, tmp_path, seed=1, cameras=("handheld",), people=2,
                           max_frames=30)  # fmt: skip
    (entry,) = json.loads(index.read_text())["sequences"]
    assert entry["camera"] == "orbit" and len(entry["sources"]) == 2
    seq = tmp_path / entry["name"]
    gt = read_ground_truth(seq / "gt.npz")
    assert gt["joints"].shape == (2, 30, 24, 3) and list(gt["track_ids"]) == ["001", "002"]
    gap = np.linalg.norm(gt["joints"][0, 0, 0] - gt["joints"][1, 0, 0])
    assert gap == pytest.approx(1.5, abs=0.2)
    obs = load_observations(seq / "tracks.npz", seq / "cameras.npz")
    assert obs.num_people == 2


def test_training_file_refused(tmp_path):
    train = tmp_path / "dataset-2_walk_normal_001.bvh"
    train.write_text("HIERARCHY\n")
    with pytest.raises(InputError, match="training file"):
        list_motions([train])
    with pytest.raises(InputError, match="not found"):
        list_motions([tmp_path / "missing.bvh"])


def test_fit_and_score_and_resume(bench, tmp_path):
    name = next(bench.glob("000_static_*")).name
    score = fit_and_score(bench / name, tmp_path / "one", overrides=FAST)
    for key in ("w_mpjpe100", "pa_mpjpe", "seconds", "frames", "stage_seconds", "final_losses"):
        assert key in score
    assert set(score["stage_seconds"]) == {"root", "smooth", "motion"}
    assert (tmp_path / "one" / "results.npz").is_file()

    report = run_benchmark(bench, tmp_path / "run", overrides=FAST)
    assert set(report["sequences"]) == {p.name for p in bench.iterdir() if p.is_dir()}
    assert report["mean"]["frames"] == sum(s["frames"] for s in report["sequences"].values())
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics) >= {"sequences", "mean"} and "w_mpjpe100" in metrics["mean"]
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").glob("*/results.npz")}
    again = run_benchmark(bench, tmp_path / "run", overrides=FAST)
    assert {p: p.stat().st_mtime_ns for p in stamp} == stamp  # nothing solved again
    assert again["mean"] == report["mean"]
    assert "all" in format_table(again)


def test_cli_parser():
    parser = argparse.ArgumentParser()
    add_bench_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "make", "--mocap", "a.tar.xz", "--out", "b",
                              "--camera", "handheld", "--people", "2"])  # fmt: skip
    assert args.bench_command == "make" and args.camera == ["handheld"] and args.people == 2
    args = parser.parse_args(["bench", "run", "--bench", "b", "--out", "o", "x.y=1"])
    assert args.overrides == ["x.y=1"] and args.config is None


def test_reversed_and_mirrored_variants(eval_bvh, tmp_path):
    """``--variants``: the same motion played backwards (ground truth flipped in time) and
    mirrored (left and right joints swap, x -> -x about the start), named ``~variant``."""
    index = make_benchmark([eval_bvh], tmp_path / "v", seed=5, cameras=("static",), max_frames=30,
                           variants=("original", "reversed", "mirrored"))  # fmt: skip
    seqs = json.loads(index.read_text())["sequences"]
    assert [s["variant"] for s in seqs] == ["original", "reversed", "mirrored"]
    assert seqs[1]["name"] == seqs[0]["name"] + "~reversed"
    gt = [read_ground_truth(index.parent / s["name"] / "gt.npz") for s in seqs]
    orig, rev, mir = (g["joints"][0] for g in gt)
    np.testing.assert_allclose(rev, orig[::-1], atol=1e-5)
    # Mirrored: each joint is its partner's mirror image (the pelvis x flips about the origin).
    left, right = 1, 2  # the hips
    np.testing.assert_allclose(mir[:, left] * [-1, 1, 1], orig[:, right], atol=2e-3)
    np.testing.assert_allclose(mir[:, 0] * [-1, 1, 1], orig[:, 0], atol=2e-3)
    with pytest.raises(ValueError, match="variants"):
        make_benchmark([eval_bvh], tmp_path / "w", cameras=("static",), variants=("upside",))
    # One camera kind per motion and variant: kind (g + 2k) mod 4, the same sequences.
    one = make_benchmark([eval_bvh], tmp_path / "o", seed=5, max_frames=30, one_camera=True,
                         variants=("original", "reversed"))  # fmt: skip
    picked = [(s["camera"], s["variant"]) for s in json.loads(one.read_text())["sequences"]]
    assert picked == [("static", "original"), ("tracking", "reversed")]
    again = _arrays(index.parent / seqs[0]["name"] / "tracks.npz")
    for k, v in _arrays(one.parent / seqs[0]["name"] / "tracks.npz").items():
        assert v.tobytes() == again[k].tobytes(), k


def test_compare_flags_regressions_per_group(tmp_path):
    from slahmr_opt.experiments.bench_table import compare, table

    def row(camera, pa):
        return {"camera": camera, "frames": 10, "seconds": 1.0, "pa_mpjpe": pa, "rte": 1.0,
                "w_mpjpe100": 100.0, "wa_mpjpe100": 50.0, "alpha": 1.0, "alpha_true": 1.0}

    ref = {"000_static_dataset-2_walk_normal_010": row("static", 40.0),
           "000_static_dataset-2_walk_normal_010~reversed": row("static", 40.0)}
    new = {"000_static_dataset-2_walk_normal_010": row("static", 30.0),
           "000_static_dataset-2_walk_normal_010~reversed": row("static", 50.0)}
    for name, seqs in (("ref", ref), ("new", new)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"sequences": seqs}))
    text, regressions = compare({"ref": tmp_path / "ref.json", "new": tmp_path / "new.json"}, 0.05)
    assert regressions == ["reversed: new pa_mpjpe +25 %"]
    assert "| walk | new | 2 |" in text and "| original | new | 1 |" in text
    assert "| reversed | 1 |" in table(tmp_path / "new.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputError, match="no scored sequences"):
        table(tmp_path / "bad.json")


def test_alpha_column_skips_cameras_without_a_scale():
    from slahmr_opt.experiments.bench_table import _alpha

    def row(camera, alpha):
        return {"camera": camera, "alpha": alpha, "alpha_true": 0.5}

    assert _alpha([row("tracking", 0.55), row("orbit", 0.45), row("pan", 9.0)]) == "1.00"
    assert _alpha([row("tracking", float("nan")), row("orbit", 0.6)]) == "1.20 (1 not observed)"
    assert _alpha([row("static", 1.0)]) == "-"
