"""``slahmr-opt export`` (``slahmr_opt.cli.export``) through the command line."""

import argparse

import pytest
from export_helpers import write_small_result

from slahmr_opt.cli import main
from slahmr_opt.cli.common import parse_frames


def _run(*argv: str) -> int:
    return main(["export", *argv])


@pytest.fixture
def results(tmp_path, synthetic_body_path):
    return str(write_small_result(tmp_path / "fit", synthetic_body_path))


@pytest.mark.parametrize(
    ("fmt", "out", "made"),
    [
        ("glb", "scene.glb", ["scene.glb"]),
        ("bvh", "bvh", ["bvh/person_7.bvh", "bvh/person_b_2.bvh"]),
        ("tum", "camera.txt", ["camera.txt"]),
        ("obj", "meshes", ["meshes/person_7/frame_000005.obj"]),
        ("ply", "meshes", ["meshes/person_b_2/frame_000007.ply"]),
    ],
)
def test_each_format(tmp_path, results, capsys, fmt, out, made):
    assert _run("--results", results, "--format", fmt, "--out", str(tmp_path / out)) == 0
    assert all((tmp_path / m).is_file() for m in made)
    assert f"{fmt} file(s)" in capsys.readouterr().out


def test_refuses_to_overwrite(tmp_path, results, capsys):
    out = tmp_path / "scene.glb"
    args = ("--results", results, "--format", "glb", "--out", str(out))
    assert _run(*args) == 0
    before = out.read_bytes()
    out.write_bytes(b"keep me")
    assert _run(*args) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "--overwrite" in err
    assert out.read_bytes() == b"keep me"
    assert _run(*args, "--overwrite") == 0
    assert out.read_bytes() == before


def test_bad_format_is_a_usage_error(tmp_path, results, capsys):
    with pytest.raises(SystemExit) as exc:
        _run("--results", results, "--format", "fbx", "--out", str(tmp_path / "x"))
    assert exc.value.code == 2
    assert "invalid choice: 'fbx'" in capsys.readouterr().err


def test_missing_results_names_the_file(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "results.npz"
    assert _run("--results", str(missing), "--format", "tum", "--out", str(tmp_path / "t")) == 2
    err = capsys.readouterr().err
    assert err.startswith("slahmr-opt: error:") and str(missing) in err
    assert not (tmp_path / "t").exists()


def test_malformed_results_names_the_file(tmp_path, capsys):
    bad = tmp_path / "results.npz"
    bad.write_bytes(b"not a zip")
    assert _run("--results", str(bad), "--format", "bvh", "--out", str(tmp_path / "b")) == 2
    assert str(bad) in capsys.readouterr().err


def test_frames_option(tmp_path, results, capsys):
    out = tmp_path / "meshes"
    assert _run("--results", results, "--format", "ply", "--out", str(out), "--frames", "::4") == 0
    assert sorted(p.name for p in (out / "person_7").iterdir()) == [
        "frame_000005.ply", "frame_000009.ply", "frame_000013.ply",
    ]  # fmt: skip
    assert _run("--results", results, "--format", "glb", "--out", str(tmp_path / "s.glb"),
                "--frames", "0:3") == 2  # fmt: skip
    assert "--frames applies to obj and ply" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _run("--results", results, "--format", "obj", "--out", str(out), "--frames", "a:b")


def test_parse_frames():
    assert parse_frames("3") == slice(3, 4)
    assert parse_frames("-1") == slice(-1, None)
    assert parse_frames("2:10") == slice(2, 10)
    assert parse_frames(":10:2") == slice(None, 10, 2)
    for bad in ("", "1:2:3:4", "0:10:0", "x", "::-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_frames(bad)
