"""Outputs of export, eval and render checked before any work, and results files whose keys
disagree refused naming the key (issue 16). Tests run as root, so an unwritable --out is a path
under a regular file."""

import json

import numpy as np
import pytest
from export_helpers import write_small_result

from slahmr_opt.cli import main
from slahmr_opt.experiments.evaluate import METRIC_UNITS


@pytest.fixture
def blocker(tmp_path):
    """A regular file: nothing can be created under it."""
    path = tmp_path / "a file"
    path.write_text("x")
    return path


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(
    ("command", "out"),
    [
        (["export", "--format", "glb"], "scene.glb"),
        (["export", "--format", "tum"], "camera.tum"),
        (["export", "--format", "bvh"], "bvh"),
        (["export", "--format", "obj"], "meshes"),
        (["render"], "video.mp4"),
    ],
)
def test_out_under_a_file_is_refused_before_reading_results(tmp_path, blocker, capsys, command,
                                                            out):  # fmt: skip
    missing = tmp_path / "nowhere" / "results.npz"  # never read: --out is checked first
    target = blocker / "sub" / out
    assert main([*command, "--results", str(missing), "--out", str(target)]) == 2
    assert _one_line(capsys) == (
        f"slahmr-opt: error: {target}: cannot be created: {blocker} is a file, not a folder"
    )
    assert blocker.read_text() == "x" and not (tmp_path / "nowhere").exists()


def test_folder_where_a_file_is_expected(tmp_path, capsys):
    folder = tmp_path / "scene.glb"
    folder.mkdir()
    argv = ["export", "--results", str(tmp_path / "r.npz"), "--format", "glb", "--out", str(folder)]
    assert main([*argv, "--overwrite"]) == 2
    assert _one_line(capsys).endswith(f"{folder}: is a folder; give a file name")


def test_file_where_a_folder_is_expected(tmp_path, blocker, capsys):
    results = str(tmp_path / "r.npz")
    argv = ["export", "--results", results, "--format", "ply", "--out", str(blocker)]
    assert main([*argv, "--overwrite"]) == 2
    assert _one_line(capsys).endswith(f"{blocker}: is a file; give a folder")


def test_eval_json_under_a_file(tmp_path, blocker, capsys):
    target = blocker / "metrics.json"
    argv = ["eval", "--pred", str(tmp_path / "p.npz"), "--gt", str(tmp_path / "g.npz")]
    assert main([*argv, "--json", str(target)]) == 2
    assert _one_line(capsys).endswith(f"{target}: cannot be created: {blocker} is a file, not a "
                                      "folder")  # fmt: skip


def test_eval_json_is_not_replaced_without_overwrite(tmp_path, capsys, monkeypatch):
    metrics = {**dict.fromkeys(METRIC_UNITS, 1.5), "frames": 7}
    monkeypatch.setattr("slahmr_opt.cli.eval.evaluate_result", lambda *a, **k: metrics)
    target = tmp_path / "metrics.json"
    target.write_text("earlier run")
    argv = ["eval", "--pred", "p.npz", "--gt", "g.npz", "--json", str(target)]
    assert main(argv) == 2
    assert _one_line(capsys).endswith(f"{target}: exists; pass --overwrite to replace it")
    assert target.read_text() == "earlier run"
    assert main([*argv, "--overwrite"]) == 0
    assert json.loads(target.read_text())["frames"] == 7
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary left


def _broken(tmp_path, body_path, key, value):
    res = write_small_result(tmp_path / "fit", body_path)
    arrays = dict(np.load(res))
    arrays[key] = value(arrays)
    np.savez(res, **arrays)
    return res


BROKEN = {
    "joints": (lambda a: a["joints"][:, :5], "'joints' has shape (2, 5, 24, 3), expected "
                                             "(P, T, J, 3) with T=12"),
    "track_ids": (lambda a: np.array(["a"]), "'track_ids' has shape (1,), expected (P) with P=2"),
    "world_transform": (lambda a: np.eye(3), "'world_transform' has shape (3, 3), expected (4, 4)"),
    "fps": (lambda a: np.array(1e6), "'fps' has values up to 1e+06 frames/s; the limit is 1000"),
    "trans": (lambda a: np.full((2, 12, 3), "a"), "'trans' must be numeric, got dtype <U1"),
    "frame_offset": (lambda a: np.array(-3), "'frame_offset' must be a frame index >= 0"),
}  # fmt: skip


@pytest.mark.parametrize("key", sorted(BROKEN))
@pytest.mark.parametrize("fmt", ["tum", "glb"])
def test_export_refuses_results_with_keys_that_disagree(tmp_path, synthetic_body_path, capsys,
                                                        key, fmt):  # fmt: skip
    value, expected = BROKEN[key]
    res = _broken(tmp_path, synthetic_body_path, key, value)
    out = tmp_path / f"out.{fmt}"
    argv = ["export", "--results", str(res), "--format", fmt, "--out", str(out)]
    assert main(argv) == 2
    line = _one_line(capsys)
    assert line.startswith(f"slahmr-opt: error: {res}: ") and expected in line
    assert not out.exists()


def test_eval_refuses_results_with_keys_that_disagree(tmp_path, synthetic_body_path, capsys):
    value, expected = BROKEN["joints"]
    res = _broken(tmp_path, synthetic_body_path, "joints", value)
    gt = tmp_path / "gt.npz"
    np.savez(gt, joints=np.zeros((1, 40, 24, 3)), valid=np.ones((1, 40), bool))
    assert main(["eval", "--pred", str(res), "--gt", str(gt)]) == 2
    assert expected in _one_line(capsys)
