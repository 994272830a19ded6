"""Per-stage checkpoints (``io.checkpoints``): keys, round trips, and files written before the
stage hooks became config fields."""

import hashlib
from dataclasses import replace

import pytest
import torch

from slahmr_opt import __version__
from slahmr_opt.config import CONFIG_DIR, load_config, to_yaml
from slahmr_opt.io.checkpoints import StageCheckpoints, observation_hash, stage_key
from slahmr_opt.types import Cameras, Observations


def _obs(seed: int = 0) -> Observations:
    g = torch.Generator().manual_seed(seed)
    P, T = 1, 5
    cams = Cameras(
        R_w2c=torch.eye(3).expand(T, 3, 3).clone(),
        t_w2c=torch.randn(T, 3, generator=g),
        intrins=torch.tensor([500.0, 500.0, 320.0, 240.0]).expand(T, 4).clone(),
        image_size=(640, 480),
    )
    return Observations(
        kp2d=torch.rand(P, T, 17, 3, generator=g),
        kp_format="coco17",
        track_mask=torch.ones(P, T, dtype=torch.bool),
        vis_mask=torch.ones(P, T, dtype=torch.bool),
        cameras=cams,
        fps=30.0,
        track_ids=["001"],
    )


def _row(name: str, **extra) -> dict:
    """A stage's summary row (``StageSummary.to_dict``)."""
    return {"name": name, "solver": "lm", "status": "converged", "message": "", "iterations": 2,
            "seconds": 0.1, "initial_loss": 2.0, "final_loss": 1.0, **extra}  # fmt: skip


def _key_before_hooks(obs_hash: str, cfg, index: int) -> str:
    """The key as written before ``StageConfig.before`` / ``after`` existed: the same text
    without those (unset) fields."""
    partial = replace(cfg, stages=cfg.stages[: index + 1])
    lines = [
        line
        for line in to_yaml(partial).splitlines(keepends=True)
        if line not in ("  before: null\n", "  after: null\n")
    ]
    text = f"{__version__}\n{obs_hash}\n{''.join(lines)}"
    return hashlib.sha1(text.encode()).hexdigest()


@pytest.mark.parametrize("config", ["default", "stages_1_2", "slahmr_lbfgs"])
def test_keys_of_configs_without_hook_fields_are_unchanged(config):
    assert (CONFIG_DIR / f"{config}.yaml").exists()
    cfg = load_config(config)
    obs_hash = observation_hash(_obs())
    for index in range(len(cfg.stages)):
        assert stage_key(obs_hash, cfg, index) == _key_before_hooks(obs_hash, cfg, index)


def test_a_checkpoint_written_before_the_hook_fields_still_loads(tmp_path):
    obs, cfg = _obs(), load_config("stages_1_2")
    ckpt = {
        "key": _key_before_hooks(observation_hash(obs), cfg, 1),
        "params": {"trans": torch.zeros(1, 5, 3)},
        "history": [],
        "summary": _row("smooth", camera_scale={"cue": "feet", "alpha": 0.5}),
    }
    torch.save(ckpt, tmp_path / "stage_01_smooth.pt")
    loaded = StageCheckpoints(tmp_path, obs, cfg).load(1)
    assert loaded is not None and loaded["summary"] == ckpt["summary"]


def test_keys_follow_inputs_settings_and_earlier_stages_only():
    cfg = load_config(None)
    h0, h1 = observation_hash(_obs(0)), observation_hash(_obs(1))
    assert h0 != h1 and h0 == observation_hash(_obs(0))
    assert stage_key(h0, cfg, 0) != stage_key(h1, cfg, 0)
    later = load_config(None, ["stages.motion.solver.iterations=3"])
    assert stage_key(h0, later, 1) == stage_key(h0, cfg, 1)
    assert stage_key(h0, later, 2) != stage_key(h0, cfg, 2)
    hooked = load_config(None, ["stages.root.after=[]"])
    assert stage_key(h0, hooked, 0) != stage_key(h0, cfg, 0)


def test_round_trip_and_foreign_files(tmp_path):
    obs, cfg = _obs(), load_config("stages_1_2")
    store = StageCheckpoints(tmp_path, obs, cfg)
    assert store.load(0) is None
    params = {"trans": torch.randn(1, 5, 3)}
    record = {"stage": "root", "iteration": 0, "total": 1.0, "terms": {}, "wall_time": 0.0}
    store.save(0, params, [record], _row("root"))
    assert (tmp_path / "stage_00_root.pt").exists()
    ckpt = store.load(0)
    torch.testing.assert_close(ckpt["params"]["trans"], params["trans"])
    assert ckpt["history"] == [record] and ckpt["summary"] == _row("root")
    assert StageCheckpoints(tmp_path, _obs(1), cfg).load(0) is None  # other inputs
    other = load_config("stages_1_2", ["stages.root.solver.iterations=3"])
    assert StageCheckpoints(tmp_path, obs, other).load(0) is None  # other settings
    nowhere = StageCheckpoints(None, obs, cfg)
    nowhere.save(0, params, [], {})
    assert nowhere.load(0) is None and nowhere.path(0, cfg.stages[0]) is None


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "nan", "no_summary"])
def test_a_damaged_checkpoint_is_recomputed_with_a_warning(tmp_path, caplog, damage):
    obs, cfg = _obs(), load_config("stages_1_2")
    store = StageCheckpoints(tmp_path, obs, cfg)
    store.save(0, {"trans": torch.randn(1, 5, 3)}, [], _row("root"))
    path = tmp_path / "stage_00_root.pt"
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00\x01 not a checkpoint" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "nan":
        store.save(0, {"trans": torch.full((1, 5, 3), float("nan"))}, [], _row("root"))
    else:
        store.save(0, {"trans": torch.zeros(1, 5, 3)}, [], None)
    with caplog.at_level("WARNING", logger="slahmr_opt.io.checkpoints"):
        assert store.load(0) is None
    assert "cannot be used" in caplog.text and "stage_00_root.pt" in caplog.text


def test_saving_leaves_no_temporary_file_and_replaces_whole(tmp_path):
    obs, cfg = _obs(), load_config("stages_1_2")
    store = StageCheckpoints(tmp_path, obs, cfg)
    for value in (1.0, 2.0):
        store.save(0, {"trans": torch.full((1, 5, 3), value)}, [], _row("root"))
    assert [p.name for p in tmp_path.iterdir()] == ["stage_00_root.pt"]
    assert float(store.load(0)["params"]["trans"][0, 0, 0]) == 2.0


def test_a_solve_resumes_past_a_truncated_checkpoint(tmp_path, caplog):
    """Kill-during-write, as a user meets it: the second stage's file is cut short; the rerun
    warns, recomputes that stage and gives the same result as the first run."""
    from stages.scene import make_scene

    from slahmr_opt.solve import solve

    obs = make_scene(num_frames=12).obs
    cfg = load_config("stages_1_2", ["num_threads=1", "dtype=float64",
                                     "stages.root.solver.iterations=2",
                                     "stages.smooth.solver.iterations=2"])  # fmt: skip
    first = solve(obs, cfg, checkpoint_dir=tmp_path, progress=False)
    path = tmp_path / "stage_01_smooth.pt"
    path.write_bytes(path.read_bytes()[:100])
    with caplog.at_level("INFO"):
        second = solve(obs, cfg, checkpoint_dir=tmp_path, progress=False)
    assert "resumed from" in caplog.text and "cannot be used" in caplog.text
    torch.testing.assert_close(second.body.trans, first.body.trans)
    torch.testing.assert_close(second.body.pose_body, first.body.pose_body)

