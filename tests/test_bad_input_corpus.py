"""Bad input to every command, as a new user (or a hostile file) would give it: each case ends
with exit code 2 and one line ``slahmr-opt: error: ...`` naming the file or key, writes nothing
in the output folder but the lock file, and runs no pickled payload. Cases are generated: every
file a command reads x the ways a file goes wrong (missing, empty, random bytes, truncated, a
folder, a pickle that runs code, wrong values), plus bad settings and outputs. The must-work
cases (unicode and spaces in paths) end with exit code 0."""

import json
import os
import pickle
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from slahmr_opt.cli import main
from slahmr_opt.cli.common import EXAMPLE_DIR
from slahmr_opt.files.outputs import LOCK_NAME, claimed_output

GOLDEN = Path(__file__).resolve().parent / "io/data/main_36f2ef3"
FAST = [
    "stages.root.solver.iterations=2",
    "stages.smooth.solver.iterations=2",
    "stages.motion.solver.iterations=2",
    "costs.pose_prior=l2",
]
BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0.0 90.0 0.0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Spine
  {
    OFFSET 0.0 10.0 0.0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0.0 10.0 0.0
    }
  }
}
MOTION
Frames: 3
Frame Time: 0.0333333
0 90 0 0 0 0 0 0 0
0 90 1 0 0 0 0 0 0
0 90 2 0 0 0 0 0 0
"""


class Payload:
    """Unpickling this writes the marker file: loaders must refuse it, never call it."""

    marker: Path

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@dataclass
class Env:
    """Where a case runs: ``base`` holds valid inputs, ``work`` is the case's own folder."""

    base: Path
    work: Path

    @property
    def out(self) -> Path:
        return self.work / "out"

    @property
    def marker(self) -> Path:
        return self.work / "PAYLOAD_RAN"


# ------------------------------------------------------------------ ways a file goes wrong


def _bytes_of(kind: str, valid: Path | None, env: Env) -> bytes | None:
    if kind == "empty":
        return b""
    if kind == "garbage":
        return np.random.default_rng(len(str(env.work))).bytes(700)
    if kind == "text":
        return "ceci n'est pas un fichier ✓\n".encode()
    if kind == "truncated":
        data = valid.read_bytes()
        return data[: len(data) // 2]
    if kind == "payload":
        Payload.marker = env.marker
        return pickle.dumps({"frame": Payload()})
    raise ValueError(kind)


def bad_file(name: str, kind: str, valid: Path | None, env: Env) -> Path:
    """``work/name`` gone wrong in the way ``kind`` says."""
    path = env.work / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "missing":
        return path
    if kind == "folder":
        path.mkdir()
        return path
    path.write_bytes(_bytes_of(kind, valid, env))
    return path


def npz_with(valid: Path, env: Env, name: str, change: Callable[[dict], None]) -> Path:
    """A copy of the archive ``valid`` with its arrays changed by ``change``."""
    with np.load(valid) as f:
        data = {k: f[k].copy() for k in f.files}
    change(data)
    path = env.work / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **data)
    return path


def results_with(env: Env, change: Callable[[dict], None]) -> Path:
    """A results folder (results.npz and its config.yaml) with the arrays changed."""
    path = npz_with(GOLDEN / "results.npz", env, "res/results.npz", change)
    shutil.copy(GOLDEN / "config.yaml", path.parent / "config.yaml")
    return path


# ------------------------------------------------------------------ the commands


def fit(env: Env, tracks=None, cameras=None, *extra: str) -> list[str]:
    tracks = tracks or env.base / "tracks.npz"
    cameras = ["--cameras", str(cameras or env.base / "cameras.npz")]
    return ["fit", "--tracks", str(tracks), *cameras, "--out", str(env.out), "--quiet",
            *extra, *FAST]  # fmt: skip


def export(env: Env, results=None, fmt="glb", out=None, *extra: str) -> list[str]:
    results = results or env.base / "res" / "results.npz"
    out = out or env.out / f"scene.{fmt}"
    return ["export", "--results", str(results), "--format", fmt, "--out", str(out), "--quiet",
            *extra]  # fmt: skip


def render(env: Env, results=None, out=None, *extra: str) -> list[str]:
    results = results or env.base / "res" / "results.npz"
    out = out or env.out / "render.mp4"
    return ["render", "--results", str(results), "--out", str(out), "--quiet", "--width", "128",
            "--frames", "0:2", *extra]  # fmt: skip


def evaluate(env: Env, pred=None, gt=None, *extra: str) -> list[str]:
    pred = pred or env.base / "res" / "results.npz"
    gt = gt or env.base / "gt.npz"
    return ["eval", "--pred", str(pred), "--gt", str(gt), *extra]


def bench_make(env: Env, mocap, *extra: str) -> list[str]:
    return ["bench", "make", "--mocap", str(mocap), "--out", str(env.out), "--max-frames", "10",
            "--camera", "static", *extra]  # fmt: skip


def bench_run(env: Env, bench, *extra: str) -> list[str]:
    return ["bench", "run", "--bench", str(bench), "--out", str(env.out), *extra, *FAST]


# ------------------------------------------------------------------ the cases

Build = Callable[[Env], tuple[list[str], str]]
CASES: dict[str, Build] = {}


def case(name: str, build: Build) -> None:
    assert name not in CASES, name
    CASES[name] = build


BYTE_KINDS = ("missing", "empty", "garbage", "text", "truncated", "folder", "payload")

# 1. every input file of fit x every way a file goes wrong
FIT_FILES = {
    "tracks_npz": ("tracks.npz", "tracks.npz", lambda e, f: fit(e, tracks=f)),
    "cameras_npz": ("cameras.npz", "cameras.npz", lambda e, f: fit(e, cameras=f)),
    "cameras_tum": ("cameras.txt", None, lambda e, f: fit(e, cameras=f)),
    "points_npz": ("points.npz", "points.npz", lambda e, f: fit(e, None, None, "--points", str(f))),
    "phalp_pkl": ("phalp.pkl", "phalp.pkl", lambda e, f: fit(e, tracks=f)),
    "wham_init": ("wham_output.pkl", "phalp.pkl",
                  lambda e, f: fit(e, None, None, "--init", f"wham:{f}")),
    "config_yaml": ("config.yaml", "config.yaml", lambda e, f: fit(e, None, None, "--config",
                                                                  str(f))),
    "body_model": ("model.pkl", "model.pkl", lambda e, f: fit(e, None, None,
                                                             f"body.model_path={f}")),
}  # fmt: skip
for slot, (name, valid, command) in FIT_FILES.items():
    for kind in BYTE_KINDS:
        if (valid is None and kind == "truncated") or (slot == "config_yaml" and kind == "empty"):
            continue  # an empty YAML file is a config without overrides: valid
        if slot == "tracks_npz" and kind == "folder":
            continue  # a folder is SLAHMR's track layout: its own cases below

        def build(env, name=name, kind=kind, valid=valid, command=command):
            path = bad_file(name, kind, valid and env.base / valid, env)
            return command(env, path), name

        case(f"fit-{slot}-{kind}", build)

# 2. results and ground truth read by export, render and eval
READERS = {
    "export": lambda e, f: export(e, results=f),
    "render": lambda e, f: render(e, results=f),
    "eval_pred": lambda e, f: evaluate(e, pred=f),
}
for command_name, command in READERS.items():
    for kind in ("missing", "empty", "garbage", "truncated", "folder", "payload"):

        def build(env, kind=kind, command=command):
            path = bad_file("results.npz", kind, env.base / "res" / "results.npz", env)
            return command(env, path), "results.npz"

        case(f"{command_name}-results-{kind}", build)
for kind in ("missing", "empty", "garbage", "truncated", "folder", "payload"):

    def build(env, kind=kind):
        return evaluate(env, gt=bad_file("gt.npz", kind, env.base / "gt.npz", env)), "gt.npz"

    case(f"eval_gt-{kind}", build)

# 3. values that do not belong in a file of the right format


def _set(key, index, value):
    def change(data):
        data[key][index] = value

    return change


def _drop(key):
    return lambda data: data.pop(key)


VALUE_CASES = {
    "tracks-nan": ("tracks.npz", _set("kp2d", (0, 3, 2, 0), np.nan), "tracks.npz"),
    "tracks-huge_px": ("tracks.npz", _set("kp2d", (0, 3, 2, 0), 1e12), "tracks.npz"),
    "tracks-no_kp2d": ("tracks.npz", _drop("kp2d"), "kp2d"),
    "tracks-zero_fps": ("tracks.npz", lambda d: d.update(fps=np.float64(0.0)), "fps"),
    "tracks-inf_fps": ("tracks.npz", lambda d: d.update(fps=np.float64(np.inf)), "fps"),
    "tracks-vis_shape": ("tracks.npz", lambda d: d.update(vis_mask=d["vis_mask"][:, :7]),
                         "vis_mask"),
    "cameras-nan": ("cameras.npz", _set("w2c", (4, 0, 3), np.nan), "cameras.npz"),
    "cameras-short": ("cameras.npz", lambda d: d.update(w2c=d["w2c"][:10],
                                                        intrins=d["intrins"][:10]),
                      "cameras.npz"),
    "cameras-not_rotation": ("cameras.npz", _set("w2c", (4, 0, 0), 7.0), "cameras.npz"),
    "cameras-negative_focal": ("cameras.npz", _set("intrins", (slice(None), 0), -500.0),
                               "cameras.npz"),
    "points-nan": ("points.npz", _set("points", (7, 1), np.nan), "points.npz"),
    "points-frame_past_end": ("points.npz", _set("frames", (3, 1), 400), "points.npz"),
}  # fmt: skip
for label, (name, change, expect) in VALUE_CASES.items():

    def build(env, name=name, change=change, expect=expect):
        path = npz_with(env.base / name, env, name, change)
        slot = {"tracks.npz": {"tracks": path}, "cameras.npz": {"cameras": path}}.get(name)
        extra = ["--points", str(path)] if name == "points.npz" else []
        return fit(env, *(slot or {}).values(), *extra) if slot else fit(env, None, None,
                                                                         *extra), expect

    case(f"fit-{label}", build)

RESULT_VALUES = {
    "nan_trans": (_set("trans", (0, 3, 1), np.nan), "trans"),
    "inf_cam": (_set("cam_t", (0, 2, 0), np.inf), "cam_t"),
    "no_trans": (_drop("trans"), "trans"),
    "short_pose": (lambda d: d.update(pose_body=d["pose_body"][:, :5]), "pose_body"),
}
for label, (change, expect) in RESULT_VALUES.items():
    for command_name, command in READERS.items():

        def build(env, change=change, expect=expect, command=command):
            return command(env, results_with(env, change)), expect

        case(f"{command_name}-results-{label}", build)

GT_VALUES = {
    "nan_joints": (_set("joints", (0, 5, 3, 1), np.nan), "gt.npz"),
    "no_joints": (_drop("joints"), "joints"),
}
for label, (change, expect) in GT_VALUES.items():

    def build(env, change=change, expect=expect):
        return evaluate(env, gt=npz_with(env.base / "gt.npz", env, "gt.npz", change)), expect

    case(f"eval_gt-{label}", build)


# 4. SLAHMR track folders


def _track_folder(env: Env, change: Callable[[Path], None]) -> Path:
    root = env.work / "in" / "track_preds"
    shutil.copytree(env.base / "track_preds", root)
    change(root)
    return root


def _stray_frame(root: Path) -> None:
    shutil.copy(root / "001" / "000001_keypoints.json", root / "001" / "1000000_keypoints.json")


def _bad_json(root: Path) -> None:
    (root / "001" / "000005_keypoints.json").write_text('{"people": [{"pose_keypoints_2d": [1, ')


def _nan_json(root: Path) -> None:
    path = root / "001" / "000005_keypoints.json"
    data = json.loads(path.read_text())
    data["people"][0]["pose_keypoints_2d"][0] = float("nan")
    path.write_text(json.dumps(data))


def _short_keypoints(root: Path) -> None:
    path = root / "001" / "000005_keypoints.json"
    path.write_text(json.dumps({"people": [{"pose_keypoints_2d": [1.0, 2.0, 0.5]}]}))


def _no_tracks(root: Path) -> None:
    shutil.rmtree(root / "001")


for label, change, expect in (
    ("stray_far_frame", _stray_frame, "1000000"),
    ("bad_json", _bad_json, "000005_keypoints.json"),
    ("nan_json", _nan_json, "000005_keypoints.json"),
    ("short_keypoints", _short_keypoints, "000005_keypoints.json"),
    ("empty_folder", _no_tracks, "track_preds"),
):

    def build(env, change=change, expect=expect):
        return fit(env, tracks=_track_folder(env, change)), expect

    case(f"fit-track_folder-{label}", build)

# 5. settings: config values and overrides
for label, override, expect in (
    ("nan_weight", "stages.smooth.weights.kp2d=nan", "kp2d"),
    ("negative_weight", "stages.root.weights.joints_smooth=-1", "joints_smooth"),
    ("zero_sigma", "costs.robust_sigma=0", "robust_sigma"),
    ("negative_damping", "stages.smooth.solver.damping=-1", "damping"),
    ("zero_inner", "stages.smooth.solver.lbfgs_inner=0", "lbfgs_inner"),
    ("unknown_key", "stages.smooth.solver.speed=11", "speed"),
    ("bad_enum", "stages.root.solver.kind=newton", "newton"),
    ("not_a_number", "stages.smooth.solver.iterations=many", "iterations"),
    ("no_value", "stages.smooth.solver.iterations=", "iterations"),
):
    case(f"fit-override-{label}", lambda env, o=override, e=expect: (fit(env, None, None, o), e))

for label, text, expect in (
    ("unclosed_list", "stages:\n  smooth: [1, 2\n", "config.yaml"),
    ("top_level_list", "- 1\n- 2\n", "config.yaml"),
    ("unknown_key", "costs:\n  robust_sigma: 3\n  speed: 3\n", "speed"),
    ("wrong_type", "costs:\n  robust_sigma: [3]\n", "robust_sigma"),
    ("tab_indent", "stages:\n\tsmooth: 1\n", "config.yaml"),
):

    def build(env, text=text, expect=expect):
        path = env.work / "in" / "config.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return fit(env, None, None, "--config", str(path)), expect

    case(f"fit-config-{label}", build)
case("fit-config-unknown_name", lambda env: (fit(env, None, None, "--config", "nosuch"), "nosuch"))


def _crafted_model(env: Env) -> tuple[list[str], str]:
    m = sp.csc_matrix(np.eye(24, 50))
    m.indices[0] = 10**7  # a stored index far outside the shape: toarray() would write there
    path = env.work / "in" / "model.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"J_regressor": m, "f": np.arange(6)}, protocol=2))
    return fit(env, None, None, f"body.model_path={path}"), "model.pkl"


case("fit-body_model-crafted_sparse", _crafted_model)

# 6. outputs: taken, existing, impossible


def _blocker(env: Env) -> Path:
    """A regular file: paths under it can be neither folders nor files."""
    env.work.mkdir(parents=True, exist_ok=True)
    path = env.work / "a_file"
    path.write_text("x")
    return path


def _locked(env: Env) -> tuple[list[str], str]:
    env.out.mkdir(parents=True)
    env.hold = claimed_output(env.out, overwrite=False)
    env.hold.__enter__()
    return fit(env, None, None, "--overwrite"), "in use by another run"


def _existing(env: Env) -> tuple[list[str], str]:
    env.out.mkdir(parents=True)
    (env.out / "results.npz").write_bytes(b"an earlier run's results")
    return fit(env), "--overwrite"


case("fit-out-locked", _locked)
case("fit-out-results_exist", _existing)


def _fit_under_file(env: Env) -> tuple[list[str], str]:
    argv = fit(env)
    argv[argv.index("--out") + 1] = str(_blocker(env) / "out")
    return argv, "a_file"


case("fit-out-under_file", _fit_under_file)
case("demo-out-under_file", lambda env: (["demo", "--out", str(_blocker(env) / "o"), "--quiet",
                                          *FAST], "a_file"))  # fmt: skip
case("run-out-under_file", lambda env: (["run", str(EXAMPLE_DIR / "tracks.npz"), "--out",
                                         str(_blocker(env) / "o")], "a_file"))  # fmt: skip
for fmt in ("glb", "tum", "bvh", "obj"):

    def build(env, fmt=fmt):
        return export(env, None, fmt, _blocker(env) / f"x.{fmt}"), "a_file"

    case(f"export-{fmt}-out_under_file", build)


def _export_exists(env: Env) -> tuple[list[str], str]:
    env.out.mkdir(parents=True)
    (env.out / "scene.glb").write_bytes(b"earlier")
    return export(env), "scene.glb"


case("export-glb-exists", _export_exists)
case("render-out-under_file", lambda env: (render(env, None, _blocker(env) / "r.mp4"),
                                           "a_file"))  # fmt: skip
case("render-out-not_mp4", lambda env: (render(env, None, env.out / "r.avi"), "r.avi"))


def _render_exists(env: Env) -> tuple[list[str], str]:
    env.out.mkdir(parents=True)
    (env.out / "render.mp4").write_bytes(b"earlier")
    return render(env), "render.mp4"


case("render-out-exists", _render_exists)
case("eval-json-under_file",
     lambda env: (evaluate(env, None, None, "--json", str(_blocker(env) / "m.json")), "a_file"))
case("bench_make-out-under_file", lambda env: (
    ["bench", "make", "--mocap", str(env.base / "walk_000.bvh"), "--out",
     str(_blocker(env) / "b"), "--max-frames", "10", "--camera", "static"], "a_file"))  # fmt: skip

# 7. the video of run, the render's input video
for kind in ("missing", "empty", "garbage", "text", "folder"):

    def build(env, kind=kind):
        path = bad_file("clip.mp4", kind, None, env)
        return ["run", str(path), "--out", str(env.out), "--quiet", "--no-render"], "clip.mp4"

    case(f"run-video-{kind}", build)
for kind in ("missing", "garbage"):

    def build(env, kind=kind):
        return render(env, None, None, "--video", str(bad_file("clip.mp4", kind, None, env))), \
            "clip.mp4"  # fmt: skip

    case(f"render-video-{kind}", build)

# 8. motion capture for bench make, benchmark folders for bench run and ablate
for kind in ("missing", "empty", "garbage", "text", "truncated"):

    def build(env, kind=kind):
        return bench_make(env, bad_file("walk_000.bvh", kind, env.base / "walk_000.bvh", env)), \
            "walk_000.bvh"  # fmt: skip

    case(f"bench_make-bvh-{kind}", build)


def _empty_archive(env: Env) -> tuple[list[str], str]:
    path = env.work / "in" / "mocap.tar.xz"
    path.parent.mkdir(parents=True)
    with tarfile.open(path, "w:xz"):
        pass
    return bench_make(env, path), "mocap.tar.xz"


def _not_an_archive(env: Env) -> tuple[list[str], str]:
    return bench_make(env, bad_file("mocap.tar.xz", "garbage", None, env)), "mocap.tar.xz"


def _empty_mocap_folder(env: Env) -> tuple[list[str], str]:
    path = env.work / "in" / "mocap"
    path.mkdir(parents=True)
    return bench_make(env, path), "mocap"


def _nan_bvh(env: Env) -> tuple[list[str], str]:
    path = env.work / "in" / "walk_000.bvh"
    path.parent.mkdir(parents=True)
    path.write_text(BVH.replace("0 90 1 0", "0 nan 1 0"))
    return bench_make(env, path), "walk_000.bvh"


case("bench_make-archive-empty", _empty_archive)
case("bench_make-archive-garbage", _not_an_archive)
case("bench_make-folder-empty", _empty_mocap_folder)
case("bench_make-bvh-nan", _nan_bvh)


def _bench_folder(env: Env, index: str | None) -> Path:
    path = env.work / "in" / "bench"
    path.mkdir(parents=True)
    if index is not None:
        (path / "index.json").write_text(index)
    return path


for label, index in (
    ("no_index", None),
    ("index_garbage", "{not json"),
    ("index_empty", json.dumps({"sequences": []})),
    ("index_list", "[1, 2]"),
    ("index_missing_files", json.dumps({"sequences": [{"name": "s0", "dir": "s0"}]})),
):

    def build(env, index=index):
        return bench_run(env, _bench_folder(env, index)), "bench"

    case(f"bench_run-{label}", build)
case("bench_run-bench-missing", lambda env: (bench_run(env, env.work / "nosuch"), "nosuch"))
case("ablate-no_index", lambda env: (["ablate", "--grid", "priors", "--bench",
                                      str(_bench_folder(env, None)),
                                      "--out", str(env.out), "--quiet"], "bench"))  # fmt: skip


# ------------------------------------------------------------------ running them


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """Valid inputs every case starts from."""
    from slahmr_opt.inputs.track_dirs import write_track_dirs
    from slahmr_opt.inputs.tracks import read_tracks

    base = tmp_path_factory.mktemp("base")
    for name in ("tracks.npz", "cameras.npz", "points.npz", "gt.npz"):
        shutil.copy(EXAMPLE_DIR / name, base / name)
    (base / "res").mkdir()
    for name in ("results.npz", "config.yaml"):
        shutil.copy(GOLDEN / name, base / "res" / name)
    write_track_dirs(base / "track_preds", read_tracks(base / "tracks.npz"))
    phalp = {"000001.jpg": {"tid": [1], "bbox": [[0, 0, 1, 1]]}}
    (base / "phalp.pkl").write_bytes(pickle.dumps(phalp))
    (base / "config.yaml").write_text("stages:\n  smooth:\n    solver:\n      iterations: 3\n")
    (base / "model.pkl").write_bytes(pickle.dumps({"J_regressor": np.eye(24, 50),
                                                    "f": np.arange(6)}))  # fmt: skip
    (base / "walk_000.bvh").write_text(BVH)
    return base


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(name, base, tmp_path, capsys):
    env = Env(base=base, work=tmp_path / "case ü")
    env.work.mkdir()
    argv, expect = CASES[name](env)
    before = _files(env.out) if env.out.exists() else set()
    try:
        code = main(argv)
    finally:
        hold = getattr(env, "hold", None)
        if hold is not None:
            hold.__exit__(None, None, None)
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if line.startswith("slahmr-opt:")]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(said) == 1 and said[0].startswith("slahmr-opt: error: "), err
    assert expect in said[0], said[0]
    assert not env.marker.exists(), "a pickled payload ran"
    after = _files(env.out) if env.out.exists() else set()
    assert after - before <= {LOCK_NAME}, sorted(after - before)


def test_the_corpus_is_large():
    assert len(CASES) >= 80


def test_unicode_and_spaces_in_paths_work(base, tmp_path, capsys):
    """The must-work cases: inputs and outputs under names with spaces and non-ASCII letters."""
    from stages.scene import make_scene

    from slahmr_opt.inputs.cameras import write_cameras_npz
    from slahmr_opt.inputs.track_data import tracks_from_observations
    from slahmr_opt.inputs.tracks import write_tracks_npz

    where = tmp_path / "données d'entrée ü 名前"
    where.mkdir()
    obs = make_scene(num_people=1, num_frames=25, camera="orbit", seed=2).obs
    write_tracks_npz(where / "pistes 1.npz", tracks_from_observations(obs))
    write_cameras_npz(where / "caméras.npz", obs.cameras)
    out = tmp_path / "résultats ✓" / "run 1"
    argv = ["fit", "--tracks", str(where / "pistes 1.npz"), "--cameras",
            str(where / "caméras.npz"), "--out", str(out), "--quiet", *FAST]  # fmt: skip
    assert main(argv) == 0
    assert (out / "results.npz").exists()
    glb = tmp_path / "scène ✓.glb"
    assert main(["export", "--results", str(out / "results.npz"), "--format", "glb", "--out",
                 str(glb), "--quiet"]) == 0  # fmt: skip
    assert glb.stat().st_size > 10_000
