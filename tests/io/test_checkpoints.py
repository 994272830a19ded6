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
        "summary": {"name": "smooth", "camera_scale": {"cue": "feet", "alpha": 0.5}},
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
    store.save(0, params, [{"stage": "root"}], {"name": "root"})
    assert (tmp_path / "stage_00_root.pt").exists()
    ckpt = store.load(0)
    torch.testing.assert_close(ckpt["params"]["trans"], params["trans"])
    assert ckpt["history"] == [{"stage": "root"}] and ckpt["summary"] == {"name": "root"}
    assert StageCheckpoints(tmp_path, _obs(1), cfg).load(0) is None  # other inputs
    other = load_config("stages_1_2", ["stages.root.solver.iterations=3"])
    assert StageCheckpoints(tmp_path, obs, other).load(0) is None  # other settings
    nowhere = StageCheckpoints(None, obs, cfg)
    nowhere.save(0, params, [], {})
    assert nowhere.load(0) is None and nowhere.path(0, cfg.stages[0]) is None
