"""``results.npz`` as data: ``Result`` -> ``write_result`` -> ``read_result`` -> the same
``Result``; a file written by an earlier main still reads, and writes back bit for bit; exports
and renders from a ``Result`` in memory equal those from the file it was written to.

``data/main_36f2ef3/`` holds a fit of the bundled example written by main at commit 36f2ef3
(before ``read_result`` returned a ``Result``), made with

    slahmr-opt fit --tracks slahmr_opt/data/example/tracks.npz \
        --cameras slahmr_opt/data/example/cameras.npz --points slahmr_opt/data/example/points.npz \
        --out OUT stages.root.solver.iterations=2 stages.smooth.solver.iterations=2 \
        stages.motion.solver.iterations=2

and its ``results.npz``, ``config.yaml``, ``stages.json`` and ``history.csv`` copied here.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from slahmr_opt.errors import InputError
from slahmr_opt.geometry.rotations import rotvec_to_rotmat
from slahmr_opt.history import LossHistory
from slahmr_opt.io.bodies import result_body_model
from slahmr_opt.io.export.bvh import export_bvh
from slahmr_opt.io.export.camera_path import export_tum
from slahmr_opt.io.export.glb import build_glb
from slahmr_opt.io.export.meshes import export_meshes
from slahmr_opt.io.results import read_result, result_arrays, write_result
from slahmr_opt.types import BodyParams, Cameras, Floor, Result, StageStatus, StageSummary

GOLDEN = Path(__file__).resolve().parent / "data" / "main_36f2ef3"
P, T = 2, 6


def make_result(
    floor: bool = True, observed: bool = True, static: bool = False, config_yaml: str = ""
) -> Result:
    """A solver-like result: float32 bodies, float64 cameras in SLAM units with ``alpha``, a
    track with gaps, two stages and their loss history."""
    g = torch.Generator().manual_seed(3)

    def randn(*shape, scale=1.0, dtype=torch.float32):
        return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype)

    mask = torch.ones(P, T, dtype=torch.bool)
    mask[1, :2] = False
    vis = mask.clone()
    vis[0, 3] = False
    world = torch.eye(4)
    if floor:
        world[:3, :3] = rotvec_to_rotmat(torch.tensor([2.9, 0.1, 0.05]))
        world[:3, 3] = torch.tensor([0.1, 1.2, 0.0])
    history = LossHistory()
    history.add("root", 0, 10.5, {"kp2d": 9.25, "pose_prior": 1.25})
    history.add("root", 1, 5.125, {"kp2d": 4.0, "pose_prior": 1.125}, damping=0.01, rejected=0)
    history.add("motion", 0, 5.0, {"kp2d": 4.0, "motion_prior": 1.0})
    stages = [
        StageSummary("root", "lm", StageStatus.MAX_ITERATIONS, "LM, final damping 0.01", 1,
                     0.25, 10.5, 5.125, camera_scale={"cue": "contact", "alpha": 0.37}),
        StageSummary("motion", "lbfgs", StageStatus.CONVERGED, "relative decrease", 0, 0.5, 5.0,
                     5.0, people=[{"track": "7", "person": 0, "reset": False}]),
    ]  # fmt: skip
    return Result(
        body=BodyParams(
            root_orient=randn(P, T, 3, scale=0.3),
            trans=randn(P, T, 3),
            pose_body=randn(P, T, 21, 3, scale=0.2),
            betas=randn(P, 10),
        ),
        cameras=Cameras(
            R_w2c=rotvec_to_rotmat(randn(T, 3, scale=0.2, dtype=torch.float64)),
            t_w2c=randn(T, 3, dtype=torch.float64),
            intrins=torch.tensor([[500.3, 501.7, 320.1, 239.9]], dtype=torch.float64).repeat(T, 1),
            image_size=(480, 640),
            is_static=static,
            alpha=1.0 if static else 0.3712345678,
        ),
        track_mask=mask,
        vis_mask=vis,
        track_ids=["7", "b/2"],
        fps=24.0,
        history=history,
        stages=stages,
        config_yaml=config_yaml or "body:\n  num_betas: 10\n",
        joints=randn(P, T, 24, 3),
        frame_offset=7,
        floor=Floor(torch.tensor([0.01, -0.99995, 0.0]), 1.2) if floor else None,
        world_transform=world,
        statures=torch.tensor([1.7, 1.62]),
        scale_observed=observed and not static,
    )


def assert_same_result(a: Result, b: Result) -> None:
    """Equal as ``results.npz`` (every array bit for bit, NaN equal) and in every companion."""
    arrays_a, arrays_b = result_arrays(a), result_arrays(b)
    assert arrays_a.keys() == arrays_b.keys()
    for key, value in arrays_a.items():
        assert value.dtype == arrays_b[key].dtype, key
        np.testing.assert_array_equal(value, arrays_b[key], err_msg=key)
    assert a.stages == b.stages
    assert a.history.rows() == b.history.rows()
    assert a.config_yaml == b.config_yaml
    assert (a.track_ids, a.fps, a.frame_offset) == (b.track_ids, b.fps, b.frame_offset)
    assert (a.scale_observed, a.gravity_aligned) == (b.scale_observed, b.gravity_aligned)
    assert (a.floor is None) == (b.floor is None)
    if a.floor is not None:
        assert torch.equal(a.floor.as_plane(), b.floor.as_plane())


@pytest.mark.parametrize(
    ("floor", "observed", "static"),
    [(True, True, False), (False, True, False), (True, False, False), (False, False, True)],
)
def test_round_trip(tmp_path, floor, observed, static):
    result = make_result(floor, observed, static)
    path = write_result(result, tmp_path / "fit")
    back = read_result(path)
    assert_same_result(result, back)
    assert back.frame_offset == 7 and back.track_ids == ["7", "b/2"]
    assert [s.status for s in back.stages] == [StageStatus.MAX_ITERATIONS, StageStatus.CONVERGED]
    assert back.cameras.is_static == static and (back.floor is None) == (not floor)
    metric = result.cameras.alpha * result.cameras.t_w2c
    torch.testing.assert_close(back.cameras.alpha * back.cameras.t_w2c, metric, rtol=1e-6, atol=0)
    # and once more: a result read back writes the same file again
    assert_same_result(back, read_result(write_result(back, tmp_path / "again")))


def test_stage_rows_keep_the_json_layout(tmp_path):
    write_result(make_result(), tmp_path)
    rows = json.loads((tmp_path / "stages.json").read_text())
    assert list(rows[0]) == ["name", "solver", "status", "message", "iterations", "seconds",
                             "initial_loss", "final_loss", "camera_scale"]  # fmt: skip
    assert rows[0]["status"] == "max_iterations" and "people" not in rows[0]
    assert rows[1]["people"] == [{"track": "7", "person": 0, "reset": False}]


def test_file_of_an_earlier_main_reads_and_writes_back_identically(tmp_path):
    result = read_result(GOLDEN / "results.npz")
    assert result.num_people == 1 and result.num_frames == 150 and result.frame_offset == 0
    assert [s.name for s in result.stages] == ["root", "smooth", "motion"]
    assert all(s.status is StageStatus.MAX_ITERATIONS for s in result.stages)
    assert result.stages[0].camera_scale["cue"] == "contact" and result.stages[2].people
    assert len(result.history) == 9 and result.config_yaml.startswith("body:")
    assert result.floor is not None and result.gravity_aligned and result.scale_observed
    with np.load(GOLDEN / "results.npz") as f:
        stored = {k: f[k] for k in f.files}
    arrays = result_arrays(result)
    assert arrays.keys() == stored.keys()
    for key, value in stored.items():
        assert arrays[key].dtype == value.dtype and arrays[key].shape == value.shape, key
        np.testing.assert_array_equal(arrays[key], value, err_msg=key)
    write_result(result, tmp_path)
    for name in ("stages.json", "config.yaml"):
        assert (tmp_path / name).read_text() == (GOLDEN / name).read_text(), name


def test_missing_companions_and_keys(tmp_path):
    """A bare file (SLAHMR-like: one intrinsics row, no image size, masks or ids) reads with
    the documented defaults."""
    np.savez(
        tmp_path / "results.npz",
        trans=np.zeros((1, 3, 3), np.float32),
        root_orient=np.zeros((1, 3, 3), np.float32),
        pose_body=np.zeros((1, 3, 63), np.float32),
        betas=np.zeros((1, 10), np.float32),
        intrins=np.array([500.0, 500.0, 320.0, 240.0], np.float32),
    )
    result = read_result(tmp_path / "results.npz")
    assert result.cameras.image_size == (480, 640) and result.cameras.intrins.shape == (3, 4)
    assert result.track_mask.all() and result.track_ids == ["0"] and result.fps == 30.0
    assert result.stages == [] and len(result.history) == 0 and result.config_yaml == ""
    assert result.floor is None and not result.gravity_aligned and not result.scale_observed
    assert result.joints is None and result.statures is None


def test_bad_files_name_the_file(tmp_path):
    np.savez(tmp_path / "results.npz", trans=np.zeros((1, 3, 3)))
    with pytest.raises(InputError, match="missing keys"):
        read_result(tmp_path / "results.npz")
    np.savez(
        tmp_path / "results.npz",
        trans=np.zeros((1, 3, 3)),
        root_orient=np.zeros((1, 4, 3)),
        pose_body=np.zeros((1, 3, 63)),
        betas=np.zeros((1, 10)),
    )
    with pytest.raises(InputError, match="root_orient"):
        read_result(tmp_path / "results.npz")
    write_result(make_result(), tmp_path / "fit")
    (tmp_path / "fit" / "stages.json").write_text('[{"name": "root"}]')
    with pytest.raises(InputError, match="stages.json"):
        read_result(tmp_path / "fit" / "results.npz")


def _exports(result: Result, model, out: Path) -> dict[str, bytes]:
    """Every export of ``result`` into ``out``, as ``{file name: bytes}``."""
    files = {"scene.glb": build_glb(result, model)}
    paths = [
        *export_bvh(result, model, out / "bvh"),
        export_tum(result, out / "camera.tum"),
        *export_meshes(result, model, out / "meshes", "ply", frames=slice(1, 5, 2)),
    ]
    files |= {str(p.relative_to(out)): p.read_bytes() for p in paths}
    return files


@pytest.mark.parametrize("floor", [True, False])
def test_exports_from_memory_equal_exports_from_the_file(tmp_path, synthetic_body_path, floor):
    """``slahmr-opt run`` exports the solver's ``Result``; ``slahmr-opt export`` the file it
    wrote: the files must be the same, byte for byte."""
    config = f"body:\n  model_path: {synthetic_body_path}\n  model_type: smpl\n  num_betas: 10\n"
    result = make_result(floor=floor, config_yaml=config)
    model = result_body_model(result)
    from_memory = _exports(result, model, tmp_path / "memory")
    back = read_result(write_result(result, tmp_path / "fit"))
    from_file = _exports(back, result_body_model(back), tmp_path / "file")
    assert from_memory.keys() == from_file.keys() and len(from_memory) == 1 + 2 + 1 + 3
    for name, data in from_memory.items():
        assert data == from_file[name], name


@pytest.mark.skipif(importlib.util.find_spec("pyrender") is None,
                    reason="the renderer (pyrender) is not installed")
def test_render_from_memory_equals_render_from_the_file(tmp_path, synthetic_body_path):
    from slahmr_opt.render.render import RenderOptions, render_result

    config = f"body:\n  model_path: {synthetic_body_path}\n  model_type: smpl\n  num_betas: 10\n"
    result = make_result(config_yaml=config)
    back = read_result(write_result(result, tmp_path / "fit"))
    options = RenderOptions(width=128, frames=slice(2, 4), progress=False)
    model = result_body_model(result)
    render_result(result, model, tmp_path / "memory.mp4", options=options)
    render_result(back, result_body_model(back), tmp_path / "file.mp4", options=options)
    assert (tmp_path / "memory.mp4").read_bytes() == (tmp_path / "file.mp4").read_bytes()


@pytest.mark.parametrize("key", ["trans", "pose_body", "betas", "cam_t"])
def test_nan_in_a_results_file_is_refused_naming_the_key(tmp_path, key):
    """NaN in results.npz used to be exported to GLB and TUM as NaN."""
    with np.load(GOLDEN / "results.npz") as f:
        arrays = {k: f[k] for k in f.files}
    arrays[key] = arrays[key].copy()
    arrays[key].reshape(-1)[0] = np.nan
    np.savez(tmp_path / "results.npz", **arrays)
    with pytest.raises(InputError, match=f"'{key}' has 1 NaN/inf values"):
        read_result(tmp_path / "results.npz")
