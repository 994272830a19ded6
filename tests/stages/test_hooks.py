"""Steps between stages (``stages.hooks``): the stage config declares them, and what it declares
is what runs."""

import dataclasses

import pytest
import torch

from slahmr_opt.body import BodyConfig, load_body_model
from slahmr_opt.config import CONFIG_DIR, HOOKS, ConfigError, load_config
from slahmr_opt.solve import solve
from slahmr_opt.stages import hooks
from slahmr_opt.stages.hooks import declared_hooks

from .scene import make_scene


def test_every_config_hook_has_an_implementation():
    assert set(hooks.HOOKS) == set(HOOKS)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            "default",
            {"root": ([], ["camera_scale"]), "smooth": ([], ["camera_scale"]),
             "motion": (["floor"], [])},
        ),
        ("stages_1_2", {"root": ([], ["camera_scale"]), "smooth": ([], ["camera_scale"])}),
        ("slahmr_lbfgs", {"root": ([], ["camera_scale"]), "smooth": ([], ["camera_scale"])}),
        ("regressor_only", {}),
    ],
)  # fmt: skip
def test_shipped_configs_declare_what_the_solver_always_ran(config, expected):
    """Unset hook fields give the old rule: the floor before the stage that needs it, the
    camera scale after the stages of ``init.scale_after``."""
    assert (CONFIG_DIR / f"{config}.yaml").exists()
    cfg = load_config(config)
    assert {s.name: declared_hooks(cfg, s) for s in cfg.stages} == expected


def test_explicit_hooks_replace_the_rule():
    cfg = load_config(None, ["stages.motion.before=[]", "stages.root.after=[camera_scale,floor]",
                             "init.scale_after=[smooth]"])  # fmt: skip
    got = {s.name: declared_hooks(cfg, s) for s in cfg.stages}
    assert got == {"root": ([], ["camera_scale", "floor"]), "smooth": ([], ["camera_scale"]),
                   "motion": ([], [])}  # fmt: skip


@pytest.mark.parametrize(
    "override", ["stages.root.before=[gravity]", "stages.root.after=[floor,floor]"]
)
def test_unknown_or_repeated_hooks_fail_at_load(override):
    with pytest.raises(ConfigError, match="hook"):
        load_config(None, [override])


@pytest.fixture(scope="module")
def scene():
    return make_scene(num_people=1, num_frames=16, camera="orbit", seed=2)


def _spy(monkeypatch) -> list[str]:
    """Record the name of every hook that runs (and run it)."""
    calls = []
    for name, hook in list(hooks.HOOKS.items()):

        def run(ctx, params, _name=name, _run=hook.run):
            calls.append(_name)
            return _run(ctx, params)

        monkeypatch.setitem(hooks.HOOKS, name, dataclasses.replace(hook, run=run))
    return calls


@pytest.mark.parametrize(
    ("config", "overrides", "expected_calls", "scale_reports"),
    [
        ("stages_1_2", [], ["camera_scale", "camera_scale"], [True, True]),
        ("stages_1_2", ["stages.root.after=[]"], ["camera_scale"], [False, True]),
        (None, ["stages.motion.solver.iterations=1"], ["camera_scale", "camera_scale", "floor"],
         [True, True, False]),
    ],
)  # fmt: skip
def test_the_declared_hooks_are_what_runs(scene, monkeypatch, config, overrides, expected_calls,
                                          scale_reports):  # fmt: skip
    """A config without a floor stage runs no floor hook, the default runs it before its motion
    stage; the camera scale runs where declared and reports into that stage's summary."""
    calls = _spy(monkeypatch)
    body = load_body_model(BodyConfig(), dtype=torch.float64)
    cfg = load_config(config, ["num_threads=1", "init.scale=feet", "costs.pose_prior=l2",
                               "stages.root.solver.iterations=2",
                               "stages.smooth.solver.iterations=2", *overrides])  # fmt: skip
    result = solve(scene.obs, cfg, body_model=body, progress=False)
    assert calls == expected_calls
    assert [s.camera_scale is not None for s in result.stages] == scale_reports
