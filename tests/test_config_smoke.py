"""Every shipped config, and every variant of every shipped ablation grid, fits a small scene.

Each fit runs two iterations a stage on one synthetic walker (24 frames, moving camera): this
checks that the config loads, that every stage it lists runs and records its history, and that
the result is whole; accuracy is tested elsewhere (``tests/stages``).
"""

import math

import pytest
import torch
from stages.scene import make_scene

from slahmr_opt.config import CONFIG_DIR, load_config, to_yaml
from slahmr_opt.experiments.ablate import load_grid
from slahmr_opt.solve import solve
from slahmr_opt.types import StageStatus

ITERATIONS = 2
NUM_FRAMES = 24


def _fit_configs() -> list:
    """``(config, overrides)`` of each shipped config and of each grid variant that resolves to
    a config not seen before (``priors.yaml``'s ``default`` is ``default.yaml``), with ids."""
    params, seen = [], set()
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        seen.add(to_yaml(load_config(path)))
        params.append(pytest.param(str(path), (), id=path.stem))
    for grid in sorted((CONFIG_DIR / "ablations").glob("*.yaml")):
        for variant in load_grid(grid):
            if variant.config_yaml not in seen:
                seen.add(variant.config_yaml)
                params.append(pytest.param(variant.config, variant.overrides,
                                           id=f"{grid.stem}-{variant.name}"))  # fmt: skip
    return params


FIT_CONFIGS = _fit_configs()


@pytest.fixture(scope="module")
def scene():
    return make_scene(num_people=1, num_frames=NUM_FRAMES, camera="orbit", seed=1)


def test_every_shipped_config_is_smoke_run():
    ids = {p.id for p in FIT_CONFIGS}
    shipped = {p.stem for p in CONFIG_DIR.glob("*.yaml")}
    assert {"default", "stages_1_2", "slahmr_lbfgs", "regressor_only"} <= shipped <= ids
    assert {"priors-no_motion_prior", "solvers-adam"} <= ids
    assert "priors-default" not in ids  # the same config as default.yaml: run once


@pytest.mark.parametrize(("config", "overrides"), FIT_CONFIGS)
def test_shipped_config_fits_in_two_iterations(scene, config, overrides):
    names = [s.name for s in load_config(config, list(overrides)).stages]
    fast = [f"stages.{name}.solver.iterations={ITERATIONS}" for name in names]
    cfg = load_config(config, [*overrides, *fast])
    result = solve(scene.obs, cfg, progress=False)

    P, T = 1, NUM_FRAMES
    assert result.joints.shape == (P, T, 24, 3)
    assert result.body.trans.shape == (P, T, 3)
    assert result.body.pose_body.shape == (P, T, 21, 3)
    for name, value in {"joints": result.joints, **vars(result.body)}.items():
        assert torch.isfinite(value).all(), name
    assert math.isfinite(float(result.cameras.alpha)) and float(result.cameras.alpha) > 0
    assert result.statures.shape == (P,) and bool(((result.statures > 1.0)
                                                   & (result.statures < 2.5)).all())  # fmt: skip

    # every stage ran, in order, each recording its start and at most ITERATIONS steps
    assert [s.name for s in result.stages] == names
    recorded = [r.stage for r in result.history.records]
    assert list(dict.fromkeys(recorded)) == names
    for stage in result.stages:
        rows = [r for r in result.history.records if r.stage == stage.name]
        assert 2 <= len(rows) <= ITERATIONS + 1 + 2, stage  # guarded stages log their rounds too
        assert all(math.isfinite(r.total) for r in rows), stage
        assert math.isfinite(stage.final_loss) and stage.status != StageStatus.FAILED, stage
    if names:
        first = [r.total for r in result.history.records if r.stage == names[0]]
        assert first[-1] < first[0]
        assert result.stages[0].final_loss < result.stages[0].initial_loss
    else:  # the regressor's answer alone: nothing is optimized
        assert len(result.history) == 0
    assert all(f"iterations: {ITERATIONS}" in s for s in result.config_yaml.split("- name:")[1:])
