"""The ``slahmr-opt`` command: fit end to end, resume, refuse to overwrite, clear input errors;
the one error boundary; every command's help."""

import argparse
import json

import numpy as np
import pytest
from stages.scene import make_scene

from slahmr_opt.cli import build_parser, main
from slahmr_opt.cli.main import _parse
from slahmr_opt.errors import InputError
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


def _fit_args(inputs, out):
    return ["fit", "--tracks", str(inputs / "tracks.npz"), "--cameras",
            str(inputs / "cameras.npz"), "--out", str(out), "--quiet", *FAST]  # fmt: skip


def test_a_second_run_into_the_same_out_is_refused(inputs, tmp_path, capsys):
    """Two runs into one --out used to mix their files; now the second one is one line, exit 2,
    and writes nothing."""
    from slahmr_opt.files.outputs import claimed_output

    out = tmp_path / "shared"
    with claimed_output(out, overwrite=False):  # the first run, still going
        assert main([*_fit_args(inputs, out), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip()
    assert "in use by another run" in err and "\n" not in err
    assert not (out / "results.npz").exists() and not (out / "checkpoints").exists()


def test_an_unwritable_out_fails_before_the_fit(inputs, tmp_path, capsys, caplog):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    caplog.set_level("INFO")
    assert main(_fit_args(inputs, blocker / "out")) == 2
    assert "cannot write the output folder" in capsys.readouterr().err
    assert not any("stage" in r.getMessage() for r in caplog.records)  # nothing was solved


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


def _raise(error):
    def handle(args):
        raise error

    return handle


@pytest.fixture
def failing_eval(monkeypatch):
    """``eval`` whose handler raises the given error (the boundary under test is main's)."""

    def use(error):
        from slahmr_opt.cli import eval as eval_command

        real = eval_command.add_parser

        def add_parser(subparsers):
            p = real(subparsers)
            p.set_defaults(handler=_raise(error))
            return p

        monkeypatch.setattr(eval_command, "add_parser", add_parser)
        return ["eval", "--pred", "p.npz", "--gt", "g.npz"]

    return use


def test_user_error_is_one_line_and_exit_2(failing_eval, capsys):
    argv = failing_eval(InputError("some/tracks.npz", "has no keypoints"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == "slahmr-opt: error: some/tracks.npz: has no keypoints\n"
    assert main(["--debug", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.endswith("some/tracks.npz: has no keypoints\n")


def test_unexpected_error_is_one_line_and_exit_1(failing_eval, capsys):
    argv = failing_eval(RuntimeError("boom\nsecond line"))
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("slahmr-opt: unexpected error: RuntimeError: boom") and "--debug" in err
    for debug in (["--debug", *argv], [*argv, "--debug"]):
        assert main(debug) == 1
        err = capsys.readouterr().err
        assert "Traceback" in err and "RuntimeError: boom" in err


def test_existing_output_names_the_flag(failing_eval, capsys):
    argv = failing_eval(FileExistsError("out/scene.glb: exists; pass overwrite=True to replace it"))
    assert main(argv) == 2
    assert capsys.readouterr().err.endswith("pass --overwrite to replace it\n")


def _commands(parser, prefix=()):
    """Every (sub-)command path of ``parser``: ``("bench", "make")``, ..."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield (*prefix, name)
                yield from _commands(child, (*prefix, name))


COMMANDS = sorted(_commands(build_parser()))


def test_every_command_is_listed():
    names = {c[0] for c in COMMANDS}
    assert names == {"run", "fit", "demo", "eval", "bench", "ablate", "export", "render"}
    assert {c[1] for c in COMMANDS if len(c) == 2} == {"make", "run", "table", "compare"}


@pytest.mark.parametrize("command", [(), *COMMANDS], ids=lambda c: " ".join(c) or "main")
def test_help_exits_0(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    assert "usage: slahmr-opt" in capsys.readouterr().out


def test_command_modules_do_not_import_each_other():
    import ast
    from pathlib import Path

    import slahmr_opt.cli

    folder = Path(slahmr_opt.cli.__file__).parent
    shared = {"__init__", "__main__", "main", "common"}
    commands = {p.stem for p in folder.glob("*.py")} - shared
    assert commands == {"run", "fit", "demo", "eval", "bench", "ablate", "export", "render"}
    for name in commands:
        tree = ast.parse((folder / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            else:
                continue
            for module in modules:
                other = module.removeprefix("slahmr_opt.cli.")
                assert other == module or other not in commands, f"cli/{name}.py imports {module}"


def test_one_error_boundary():
    """Only ``cli/main.py`` catches errors for the commands."""
    from pathlib import Path

    import slahmr_opt.cli

    folder = Path(slahmr_opt.cli.__file__).parent
    for path in folder.glob("*.py"):
        text = path.read_text()
        caught = "except SlahmrOptError" in text or "except (SlahmrOptError" in text
        assert caught == (path.name == "main.py"), path.name
        assert "sys.stderr" not in text or path.name == "main.py", path.name


def test_run_flags_are_config_overrides(tmp_path):
    from slahmr_opt.cli import run as run_command
    from slahmr_opt.config import load_config
    from slahmr_opt.run import FrontEndSettings

    parser = build_parser()
    argv = ["run", "v.mp4", "data.min_track_len=10", "--out", str(tmp_path), "--static",
            "--max-people", "3", "--intrinsics", "500,510,320,240"]  # fmt: skip
    args = _parse(argv)
    assert args.video == ["v.mp4"] and args.overrides == ["data.min_track_len=10"]
    overrides = [*args.overrides, *run_command.flag_overrides(args)]
    cfg = load_config(None, overrides)
    assert cfg.frontend.static and cfg.frontend.max_people == 3
    assert cfg.data.intrinsics == [500.0, 510.0, 320.0, 240.0]
    assert FrontEndSettings.from_config(cfg) == FrontEndSettings(
        static=True, intrinsics=(500.0, 510.0, 320.0, 240.0), max_people=3, min_track_len=10
    )
    plain = ["run", "v.mp4", "--out", str(tmp_path)]
    cfg = load_config(None, run_command.flag_overrides(parser.parse_args(plain)))
    assert FrontEndSettings.from_config(cfg) == FrontEndSettings()
    assert main([*plain, "--intrinsics", "0,1,2,3"]) == 2


def test_render_flag_defaults_are_the_renderers():
    from slahmr_opt.render.render import RenderOptions

    args = build_parser().parse_args(["render", "--results", "r.npz", "--out", "r.mp4"])
    assert (args.view, args.width) == (RenderOptions.view, RenderOptions.width)


def test_demo_fits_and_reports(tmp_path, capsys):
    one = [f"stages.{s}.solver.iterations=1" for s in ("root", "smooth", "motion")]
    assert main(["demo", "--quiet", "--out", str(tmp_path), "costs.pose_prior=l2", *one]) == 0
    out = capsys.readouterr().out
    assert "bundled example: 150 frames" in out and "stage   motion (lm):   1 it" in out
    assert "camera scale alpha" in out and (tmp_path / "metrics.json").is_file()
