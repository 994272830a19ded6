"""Config schema, YAML files and dotted overrides."""

import dataclasses
import re

import pytest

from slahmr_opt.config import (
    CONFIG_DIR,
    ContactSource,
    DType,
    GuessSource,
    PosePriorKind,
    ScaleCue,
    SolverKind,
    defaults_yaml,
    load_config,
    to_yaml,
)
from slahmr_opt.errors import ConfigError


def test_defaults_file_matches_schema():
    # Regenerate with: python -m slahmr_opt.config --regen
    assert (CONFIG_DIR / "default.yaml").read_text() == defaults_yaml()


def test_default_schedule():
    cfg = load_config()
    assert [s.name for s in cfg.stages] == ["root", "smooth", "motion"]
    assert cfg.stages[0].optimize == ["root_orient", "trans"]
    assert "floor" in cfg.stages[2].optimize and cfg.stages[2].weights["motion_prior"] > 0
    assert all(s.solver.kind == "lm" for s in cfg.stages)


def test_stages_1_2_is_the_default_without_stage_3():
    default = load_config()
    cfg = load_config("stages_1_2")
    expected = dataclasses.replace(default, stages=default.stages[:2])
    assert to_yaml(cfg) == to_yaml(expected)


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")))
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.stages or path.stem == "regressor_only"


def test_regressor_only_has_no_stages():
    cfg = load_config("regressor_only")
    assert cfg.stages == [] and cfg.init.guesses == "regressor" and cfg.init.scale == "regressor"


def test_override_stage_by_name_and_index():
    cfg = load_config(
        None,
        [
            "stages.smooth.solver.kind=lbfgs",
            "stages.0.solver.iterations=7",
            "stages.smooth.weights.joints_accel=3",
            "dtype=float64",
        ],
    )
    assert cfg.stages[1].solver.kind == "lbfgs"
    assert cfg.stages[0].solver.iterations == 7
    assert cfg.stages[1].weights["joints_accel"] == 3
    assert cfg.dtype == "float64"


def test_named_config_file():
    cfg = load_config("slahmr_lbfgs")
    assert [s.solver.kind for s in cfg.stages] == ["lbfgs", "lbfgs"]


@pytest.mark.parametrize(
    "override",
    [
        "stages.nosuch.solver.iterations=3",
        "solver.iterations=3",
        "stages.root.solver.kind=newton",
        "stages.root.weights.nosuch=1",
        "stages.root.optimize=[cameras]",
        "stages.root.weights.kp2d=-1",
        "dtype=float16",
        "costs.robust_sigma=abc",
        "noequals",
        "floor.contact_source=oracle",
        "floor.speed_tolerance=0",
    ],
)
def test_bad_overrides_raise_config_error(override):
    with pytest.raises(ConfigError):
        load_config(None, [override])


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "override",
    ["costs.motion_prior_sigma=nan", "costs.motion_prior_sigma=-1",
     "stages.motion.evidence_margin=-0.5", "stages.motion.evidence_round=0"],
)  # fmt: skip
def test_motion_stage_guard_settings_are_checked(override):
    with pytest.raises(ConfigError):
        load_config(None, [override])


def test_string_choices_are_enums_saved_as_plain_strings():
    cfg = load_config(None, ["stages.smooth.solver.kind=lbfgs", "init.scale=feet"])
    assert cfg.stages[1].solver.kind is SolverKind.lbfgs and cfg.init.scale is ScaleCue.feet
    assert cfg.stages[1].solver.kind == "lbfgs" and f"{cfg.init.scale}" == "feet"
    assert cfg.dtype is DType.float32 and cfg.floor.contact_source is ContactSource.heuristic
    assert cfg.costs.pose_prior is PosePriorKind.vae and cfg.init.guesses is GuessSource.auto
    text = to_yaml(cfg)
    assert "kind: lbfgs" in text and "scale: feet" in text and "!!" not in text


@pytest.mark.parametrize(
    "override, named",
    [
        ("stages.smooth.solver.kind=newton", "stages.smooth.solver.kind"),
        ("stages.1.solver.kind=newton", "stages.smooth.solver.kind"),
        ("costs.pose_prior=newton", "costs.pose_prior"),
        ("floor.contact_source=newton", "floor.contact_source"),
    ],
)
def test_bad_choice_names_the_key_and_the_choices(override, named):
    with pytest.raises(ConfigError) as exc:
        load_config(None, [override])
    assert named in str(exc.value) and "newton" in str(exc.value)
    enum = {"solver": SolverKind, "pose_prior": PosePriorKind, "contact_source": ContactSource}
    choices = next(e for k, e in enum.items() if k in named)
    assert all(c.value in str(exc.value) for c in choices)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("costs.robust_sigma=0", "costs.robust_sigma must be finite and > 0"),
        ("costs.robust_sigma=nan", "costs.robust_sigma must be finite and > 0"),
        ("stages.motion.weights.kp2d=nan", "weight of 'kp2d' must be finite and >= 0, got nan"),
        ("stages.smooth.weights.pose_prior=inf", "weight of 'pose_prior' must be finite"),
        ("stages.root.solver.damping=-1", "stages.root.solver.damping must be finite and > 0"),
        ("stages.root.solver.damping_up=0.5", "damping_up must be finite and > 1"),
        ("stages.motion.solver.min_rel_decrease=-1", "min_rel_decrease must be finite and >= 0"),
        ("stages.root.solver.lr=0", "stages.root.solver.lr must be null or > 0"),
    ],
)
def test_invalid_values_are_refused_naming_the_key(override, message):
    """A NaN weight used to drop its term silently (NaN > 0 is false); robust_sigma=0 and
    negative damping were accepted."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, [override])
