"""Typed configuration schema, YAML overrides and dotted command-line overrides.

The dataclasses below are the source of truth (field docstrings are the documentation).
``configs/*.yaml`` files only override them; unknown keys and wrong types fail loudly, because the
schema is merged in OmegaConf's struct mode. Stages are a named list and can be addressed by
name on the command line: ``stages.smooth.solver.iterations=20``.

A closed set of strings is a ``StrEnum`` whose member names are their values: YAML files and
dotted overrides give the plain string, saved YAML holds the plain string, and a field compares
equal to its string (``cfg.init.scale == "contact"``).
"""

import math
import re
import sys
from dataclasses import dataclass, field
from importlib import resources, util
from pathlib import Path
from typing import Any

import yaml
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from slahmr_opt.body import BodyConfig
from slahmr_opt.errors import ConfigError

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # Python 3.10
    from backports.strenum import StrEnum

#: Every variable a stage may optimize. All others are held fixed during that stage.
VARIABLES = ("root_orient", "trans", "pose_body", "betas", "alpha", "floor")
#: Terms on the floor and foot contacts (``costs.contacts``); they exist once the floor is
#: estimated (before the first stage that weights one of them or optimizes ``floor``).
CONTACT_TERMS = ("contact_slide", "contact_floor", "floor_penetration")
#: Terms that need the floor's frame: the contact terms and the learned motion prior.
FLOOR_TERMS = (*CONTACT_TERMS, "motion_prior")
#: Every energy term a stage may weight (``slahmr_opt.costs``).
TERMS = (
    "kp2d", "joints_smooth", "joints_accel", "pose_prior", "shape_prior", "init_pose",
    "scale_prior", *FLOOR_TERMS,
)  # fmt: skip
#: Steps between stages a stage may name in ``before`` / ``after`` (``slahmr_opt.stages.hooks``).
HOOKS = ("floor", "camera_scale")


class SolverKind(StrEnum):
    """Optimizer of a stage (``SolverConfig.kind``)."""

    lm = "lm"
    theseus = "theseus"
    lbfgs = "lbfgs"
    adam = "adam"


class DampingRule(StrEnum):
    """How LM's damping follows each step (``SolverConfig.damping_rule``)."""

    nielsen = "nielsen"
    multiplicative = "multiplicative"


class DampingScale(StrEnum):
    """What LM's damping is added to (``SolverConfig.damping_scale``)."""

    identity = "identity"
    diagonal = "diagonal"


class PosePriorKind(StrEnum):
    """Pose prior model (``CostConfig.pose_prior``)."""

    gmm = "gmm"
    vae = "vae"
    l2 = "l2"


class GuessSource(StrEnum):
    """Where the per-frame 3D body guesses come from (``InitConfig.guesses``)."""

    auto = "auto"
    regressor = "regressor"
    blend = "blend"
    tracker = "tracker"


class ScaleCue(StrEnum):
    """How the camera scale is estimated (``InitConfig.scale``)."""

    contact = "contact"
    feet = "feet"
    regressor = "regressor"
    fixed = "fixed"


class ContactSource(StrEnum):
    """Where foot contact probabilities come from (``FloorConfig.contact_source``)."""

    heuristic = "heuristic"
    cvae = "cvae"
    regressor = "regressor"


class DType(StrEnum):
    """Floating point type of the solve (``Config.dtype``; a ``torch`` attribute name)."""

    float32 = "float32"
    float64 = "float64"


_MISSING_KEY = object()


def _config_dir() -> Path:
    """The shipped configs: the installed ``slahmr_opt.configs`` (``setup.py`` maps the
    repository's ``configs/`` there), or ``configs/`` beside the package in a source tree that
    was not installed."""
    try:
        return Path(str(resources.files("slahmr_opt.configs")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "configs"


CONFIG_DIR = _config_dir()


@dataclass
class SolverConfig:
    kind: SolverKind = SolverKind.lm
    """Optimizer: ``lm`` (Levenberg-Marquardt on block-banded normal equations,
    ``stages.block_lm``), ``theseus`` (the same steps through Theseus cost functions and a sparse
    CHOLMOD factorization: the reference), ``lbfgs`` or ``adam`` (torch optimizers over the same
    residuals, SLAHMR's way)."""
    iterations: int = 30
    """Outer iterations (LM steps, L-BFGS ``step`` calls, or Adam steps)."""
    damping: float = 1.0e-2
    """LM: initial damping (``damping * I`` or ``damping * diag`` is added to the Gauss-Newton
    system, ``damping_scale``)."""
    damping_rule: DampingRule = DampingRule.nielsen
    """LM: ``nielsen`` moves the damping by the gain ratio ``rho`` of the actual to the predicted
    decrease: times ``max(1/3, 1 - (2 rho - 1)^3)`` after an accepted step, times 2, 4, 8, ...
    after rejections in a row (Madsen, Nielsen and Tingleff 2004). ``multiplicative`` multiplies
    it by ``damping_up`` after a rejected step and divides it by ``damping_down`` after an
    accepted one (Theseus' rule, the only one of ``kind: theseus``)."""
    damping_scale: DampingScale = DampingScale.identity
    """LM: ``identity`` adds ``damping * I``; ``diagonal`` adds ``damping`` times the diagonal of
    ``J^T J``, each entry clipped to [1e-6, 1e32] (Marquardt's scaling, Ceres' clip), so that
    the steps do not depend on the variables' units. ``kind: theseus`` supports ``identity``."""
    damping_up: float = 10.0
    """LM, ``multiplicative`` rule: factor applied to the damping after a rejected step."""
    damping_down: float = 5.0
    """LM, ``multiplicative`` rule: divisor applied to the damping after an accepted step."""
    min_rel_decrease: float = 1.0e-5
    """Stop when an accepted step lowers the total loss by less than this fraction."""
    lr: float | None = None
    """L-BFGS / Adam learning rate; None: 1.0 for L-BFGS (SLAHMR), 0.01 for Adam."""
    lbfgs_inner: int = 20
    """L-BFGS inner iterations per outer step (SLAHMR: 20, strong Wolfe line search)."""


@dataclass
class StageConfig:
    name: str = MISSING
    """Stage name (used for checkpoints, history and overrides)."""
    optimize: list[str] = field(default_factory=list)
    """Variables this stage changes; one of ``VARIABLES`` each."""
    weights: dict[str, float] = field(default_factory=dict)
    """Loss weight per term (SLAHMR's units: each term is a weighted sum of squares)."""
    solver: SolverConfig = field(default_factory=SolverConfig)
    evidence_margin: float = 0.0
    """Stages with the motion prior: the largest allowed rise of each person's RMS 2D keypoint
    residual over its value at the stage's start, as a fraction (0.5: 50 %). The stage runs in
    rounds of ``evidence_round`` iterations; after each, a person above the margin gets its
    prior weight quartered, and one still above it at the end gets its start back
    (``stages.evidence``). 0: no guard."""
    evidence_round: int = 5
    """Iterations per round of the evidence guard."""
    prior_window_cap: float = 0.0
    """Stages with the evidence guard: after each round, a motion-prior window whose unweighted
    squared residual exceeds this (held-out real motion: median 48, 99th percentile 560) gets
    its weight lowered to ``cap / |r|^2`` for the next round (``stages.evidence``). 0: off."""
    before: list[str] | None = None
    """Steps run before this stage, in order, from ``HOOKS``: ``floor`` (estimate the floor and
    the foot contacts from the current bodies, once, and add the contact terms and the motion
    prior). None: ``[floor]`` if the stage optimizes ``floor`` or weights a term of
    ``FLOOR_TERMS``, else none (``stages.hooks.declared_hooks``)."""
    after: list[str] | None = None
    """Steps run after this stage, in order, from ``HOOKS``: ``camera_scale`` (re-estimate the
    camera scale, ``init.scale``). None: ``[camera_scale]`` if the stage is named in
    ``init.scale_after``, else none."""


def _root_stage() -> StageConfig:
    return StageConfig(
        name="root",
        optimize=["root_orient", "trans"],
        weights={"kp2d": 1.0e-3, "joints_smooth": 1.0},
        solver=SolverConfig(iterations=30, damping_scale=DampingScale.diagonal),
    )


def _smooth_stage() -> StageConfig:
    # Unlike SLAHMR, alpha is not optimized here: 2D reprojection is blind to it and the
    # smoothness terms pull it towards zero (a person who moves with the camera is smoothest).
    # It comes from the foot-contact search after the root stage (``init.scale``).
    return StageConfig(
        name="smooth",
        optimize=["root_orient", "trans", "pose_body", "betas"],
        weights={
            "kp2d": 1.0e-3,
            "joints_smooth": 10.0,
            "pose_prior": 1.0e-4,
            "shape_prior": 0.05,
            "init_pose": 1.0,
        },
        # Scaled damping: the stage's slow tail (steps rejected at small damping, then a crawl)
        # took 22 iterations, 28.5 s at 1,000 frames with 1e-5 relative decrease; it now takes
        # 12, 12.7 s (README, "Speed"). Stage 3 is faster unscaled (8 against 11 iterations to
        # the same loss), so it keeps the default.
        solver=SolverConfig(iterations=30, damping_scale=DampingScale.diagonal),
    )


def _motion_stage() -> StageConfig:
    # Stage 3: the stage-2 terms, the learned motion prior over every frame triple, and feet
    # that stay still in contact, rest on the shared floor and never go below it; the floor is
    # refined with the bodies. betas stay free: with them fixed the prior bends the poses to
    # fit the wrong bone lengths (development benchmark: WA-MPJPE100 worse by 40-90%).
    return StageConfig(
        name="motion",
        optimize=["root_orient", "trans", "pose_body", "betas", "floor"],
        weights={
            **_smooth_stage().weights,
            "motion_prior": 1.0e-2,
            # 1000 (was 100): foot sliding 5.7 -> 4.2 mm, RTE 15.3 -> 13.3 % on the issue-13
            # subset (keypoints only; near-true and realistic alike), W-MPJPE100 +1-2 %.
            "contact_slide": 1000.0,
            "contact_floor": 10.0,
            "floor_penetration": 100.0,
        },
        # Stops on relative decrease (1 %: 5-8 iterations on the development subset, about 2x
        # the time of stages 1-2); the iteration count is only a cap. The evidence guard keeps
        # each person's RMS 2D residual within 50 % of stage 2's (``stages.evidence``).
        solver=SolverConfig(iterations=30, min_rel_decrease=1.0e-2),
        evidence_margin=0.5,
        # The held-out 99th percentile: acts only where the evidence holds a motion outside the
        # prior's data (realistic guesses: WA-MPJPE100 55.4 -> 50.7 mm, RTE 21.0 -> 16.5 %,
        # W-MPJPE100 +2 %).
        prior_window_cap=560.0,
    )


@dataclass
class DataConfig:
    min_conf: float = 0.4
    """Keypoints with lower detection confidence are ignored (SLAHMR's MIN_KEYP_CONF)."""
    track_ids: str = "all"
    """Tracks to fit: ``all``, ``longest-N`` or a comma-separated list of track ids."""
    min_track_len: int = 20
    """With ``all``: tracks with fewer detected frames are dropped."""
    shot: int = 0
    """PHALP pickles only: the shot to fit (0 = first), SLAHMR's ``shot_idx``. A frame's shot is
    the cumulative sum of PHALP's shot-change flags in frame order; frames keep their video index,
    so the camera file must be indexed by video frame too."""
    fps: float | None = None
    """Frame rate, if the track file does not carry one."""
    image_size: list[int] | None = None
    """``[height, width]`` in pixels, if the camera file does not carry it."""
    intrinsics: list[float] | None = None
    """``[fx, fy, cx, cy]`` overriding the camera file's intrinsics."""


@dataclass
class CostConfig:
    robust_sigma: float = 100.0
    """Geman-McClure scale of the 2D reprojection residual, pixels (SLAHMR: 100)."""
    pose_prior: PosePriorKind = PosePriorKind.vae
    """Pose prior model: ``vae`` (variational autoencoder fitted to real motion, VPoser's idea),
    ``gmm`` (Gaussian mixture fitted to the same poses) or ``l2``."""
    pose_prior_path: str | None = None
    """Pose prior weights; None uses the shipped file."""
    motion_prior_path: str | None = None
    """Weights of the CVAE motion prior (``motion_prior`` term); None uses the shipped file."""
    motion_prior_sigma: float = 0.0
    """Geman-McClure scale of the motion prior's residual norm per frame triple: a transition
    costs at most ``sigma^2`` (in the prior's squared-residual units; held-out real motion
    scores a median of 48 and a 99th percentile of 560, a walk played backwards 35,000), so the
    prior cannot drag motion it has never seen towards motion it knows; 0: plain squares."""
    smooth_joints: int = 22
    """Number of leading SMPL joints in the smoothness terms (22 = body without hands)."""


@dataclass
class InitConfig:
    alpha: float = 1.0
    """Initial metric scale of the SLAM camera translation (and the fallback of ``scale``)."""
    scale: ScaleCue = ScaleCue.contact
    """Camera scale: ``contact`` (the soles of the bodies on the ground of the scene points,
    ``init.contact_scale``; ``feet`` where the input has no points or they give no ground),
    ``feet`` (1D search that keeps planted feet still), both run after the stages
    ``scale_after``; ``regressor`` (the keypoint regressor's velocity cue, before the first
    stage, kept) or ``fixed`` (``alpha``). Where the regressor runs anyway, its cue is also the
    starting scale of ``contact`` and ``feet``; ``alpha`` where it has none (a camera that
    barely translates)."""
    scale_after: list[str] = field(default_factory=lambda: ["root", "smooth"])
    """Stages after which the ``contact`` or ``feet`` scale estimate runs (again); bodies stay
    where the cameras see them. After ``smooth`` the feet are accurate enough to cut the feet
    search's scale error by a third."""
    guesses: GuessSource = GuessSource.auto
    """Where the per-frame 3D body guesses come from: ``auto`` (the tracker's; tracks without
    any get the built-in keypoint regressor's), ``regressor`` (the regressor's for every track,
    replacing the tracker's), ``blend`` (the tracker's, but the regressor's orientation and pose
    where the tracker's body faces the other way or has no guess) or ``tracker`` (the tracker's
    only; tracks without any start from their 2D torso size, facing the camera)."""
    regressor_path: str | None = None
    """Weights of the keypoint regressor (``priors/regressor``); None uses the shipped file."""
    fuse_trajectory: bool = True
    """Where the regressor's guesses are used, start each track on the least-squares fusion of
    its per-frame positions (precise across the camera ray, noisy along it) and the regressor's
    world velocities."""


@dataclass
class FloorConfig:
    contact_source: ContactSource = ContactSource.heuristic
    """Where foot contact probabilities come from, computed from the bodies before the first
    stage that uses the floor: ``heuristic`` (height above the estimated floor and speed,
    ``init.floor``), ``cvae`` (the motion prior's contact head, ``costs.motion_prior``) or
    ``regressor`` (the keypoint regressor's contact head, from the 2D keypoints)."""
    speed_tolerance: float = 4.0
    """``heuristic``: factor on the motion data's contact speed threshold (fitted bodies jitter
    more than motion capture)."""
    align_output: bool = True
    """Give the result in the gravity-aligned frame (y up along the floor normal, floor at
    y = 0); the floor is estimated from the final bodies if no stage used it."""


@dataclass
class FrontEndConfig:
    """The video front end of ``slahmr-opt run`` (people's keypoints and tracks, the camera).

    Its output is cached in ``DIR/frontend/`` and reused while these, the video,
    ``data.min_track_len`` and ``data.intrinsics`` (given: the front end's intrinsics too) stay
    the same."""

    static: bool = False
    """Skip camera estimation: the camera does not move (else detected automatically)."""
    max_people: int = 4
    """Most people tracked at once."""


@dataclass
class Config:
    body: BodyConfig = field(default_factory=BodyConfig)
    data: DataConfig = field(default_factory=DataConfig)
    costs: CostConfig = field(default_factory=CostConfig)
    init: InitConfig = field(default_factory=InitConfig)
    floor: FloorConfig = field(default_factory=FloorConfig)
    frontend: FrontEndConfig = field(default_factory=FrontEndConfig)
    stages: list[StageConfig] = field(
        default_factory=lambda: [_root_stage(), _smooth_stage(), _motion_stage()]
    )
    dtype: DType = DType.float32
    """Floating point type of the solve: ``float32`` or ``float64``."""
    num_threads: int = 0
    """torch intra-op threads; 0 keeps torch's default."""


def _resolve_stage_names(cfg: Any, dotlist: list[str]) -> list[str]:
    """Rewrite ``stages.<name>.x=v`` into ``stages.<index>.x=v``."""
    names = [s.name for s in cfg.stages]
    out = []
    for item in dotlist:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        parts = key.split(".")
        if len(parts) > 2 and parts[0] == "stages" and not parts[1].isdigit():
            if parts[1] not in names:
                raise ConfigError(f"override {item!r}: no stage named {parts[1]!r} in {names}")
            parts[1] = str(names.index(parts[1]))
        out.append(".".join(parts) + "=" + value)
    return out


def _stage_key_by_name(schema: Any, key: str) -> str:
    """``stages[1].solver.kind`` or ``stages.1.solver.kind`` -> ``stages.smooth.solver.kind``
    (an OmegaConf error's key, as the user writes it)."""
    match = re.match(r"stages(?:\[(\d+)\]|\.(\d+))(.*)", key)
    if not match:
        return key
    index = int(match.group(1) or match.group(2))
    try:
        name = schema.stages[index].name
    except (IndexError, OmegaConfBaseException):
        return key
    return f"stages.{name}{match.group(3)}"


def _config_message(schema: Any, e: Exception, source: str) -> str:
    """One line for an OmegaConf (or type) error: the file, the key and the problem; a value
    outside a choice ``StrEnum`` lists the choices."""
    key = _stage_key_by_name(schema, getattr(e, "full_key", None) or "")
    problem = str(e).splitlines()[0]
    choice = re.fullmatch(r"Invalid value (.*), expected one of \[(.*)\]", problem)
    if key and choice:
        allowed = tuple(c.strip() for c in choice.group(2).split(","))
        return f"{source}{key} must be one of {allowed}, got {choice.group(1)}"
    return f"invalid config: {source}{key + ': ' if key else ''}{problem}"


def _require(ok: bool, key: str, rule: str, value) -> None:
    """Raise ``ConfigError`` naming ``key``, the rule and the value unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key} must be {rule}, got {value!r}")


def _finite(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _validate_solver(s: SolverConfig, where: str) -> None:
    """Solver settings: finite, with damping that grows on rejection and shrinks on success."""
    _require(_finite(s.damping) and s.damping > 0, f"{where}.damping", "finite and > 0", s.damping)
    for key in ("damping_up", "damping_down"):
        value = getattr(s, key)
        _require(_finite(value) and value > 1, f"{where}.{key}", "finite and > 1", value)
    _require(_finite(s.min_rel_decrease) and s.min_rel_decrease >= 0,
             f"{where}.min_rel_decrease", "finite and >= 0", s.min_rel_decrease)  # fmt: skip
    _require(s.lr is None or (_finite(s.lr) and s.lr > 0), f"{where}.lr", "null or > 0", s.lr)
    _require(s.lbfgs_inner >= 1, f"{where}.lbfgs_inner", ">= 1", s.lbfgs_inner)
    if s.kind == SolverKind.theseus:
        _require(s.damping_rule == DampingRule.multiplicative
                 and s.damping_scale == DampingScale.identity, f"{where}.damping_rule and "
                 "damping_scale", "multiplicative and identity with kind theseus (Theseus' step "
                 "control)", f"{s.damping_rule}, {s.damping_scale}")  # fmt: skip
        missing = [m for m in ("theseus", "sksparse") if util.find_spec(m) is None]
        _require(not missing, f"{where}.kind",
                 "lm, lbfgs or adam here: theseus needs theseus-ai and scikit-sparse "
                 f"(missing: {', '.join(missing)}; pip install 'slahmr-opt[theseus]', which "
                 "builds against SuiteSparse: apt-get install libsuitesparse-dev)",
                 s.kind)  # fmt: skip


def _validate(cfg: Config) -> None:
    _require(_finite(cfg.costs.robust_sigma) and cfg.costs.robust_sigma > 0,
             "costs.robust_sigma", "finite and > 0 (pixels)", cfg.costs.robust_sigma)  # fmt: skip
    if cfg.data.shot < 0:
        raise ConfigError(f"data.shot must be >= 0, got {cfg.data.shot}")
    sigma = cfg.costs.motion_prior_sigma
    if not sigma >= 0:
        raise ConfigError(f"costs.motion_prior_sigma must be >= 0, got {sigma}")
    if cfg.frontend.max_people < 1:
        raise ConfigError(f"frontend.max_people must be >= 1, got {cfg.frontend.max_people}")
    if cfg.floor.speed_tolerance <= 0:
        raise ConfigError(f"floor.speed_tolerance must be > 0, got {cfg.floor.speed_tolerance}")
    for stage in cfg.stages:
        for var in stage.optimize:
            if var not in VARIABLES:
                raise ConfigError(
                    f"stage {stage.name!r}: unknown variable {var!r}; known {VARIABLES}"
                )
        if not stage.optimize:
            raise ConfigError(f"stage {stage.name!r} optimizes nothing")
        for term, w in stage.weights.items():
            if term not in TERMS:
                raise ConfigError(f"stage {stage.name!r}: unknown term {term!r}; known {TERMS}")
            if not _finite(w) or w < 0:
                raise ConfigError(f"stage {stage.name!r}: weight of {term!r} must be finite and "
                                  f">= 0, got {w}")  # fmt: skip
        if stage.solver.iterations < 0:
            raise ConfigError(f"stage {stage.name!r}: iterations must be >= 0")
        _validate_solver(stage.solver, f"stages.{stage.name}.solver")
        if not stage.prior_window_cap >= 0:
            raise ConfigError(f"stage {stage.name!r}: prior_window_cap must be >= 0, got "
                              f"{stage.prior_window_cap}")  # fmt: skip
        hooks = (stage.before or []) + (stage.after or [])
        for hook in hooks:
            if hook not in HOOKS:
                raise ConfigError(f"stage {stage.name!r}: unknown hook {hook!r}; known {HOOKS}")
        if len(set(hooks)) != len(hooks):
            raise ConfigError(f"stage {stage.name!r}: a hook is named twice in {hooks}")
        if not stage.evidence_margin >= 0 or stage.evidence_round < 1:
            raise ConfigError(f"stage {stage.name!r}: evidence_margin must be >= 0 and "
                              f"evidence_round >= 1, got {stage.evidence_margin}, "
                              f"{stage.evidence_round}")  # fmt: skip
    if len({s.name for s in cfg.stages}) != len(cfg.stages):
        raise ConfigError("stage names must be unique")


def _yaml_problem(e: yaml.YAMLError) -> str:
    """A YAML parser error in one line: ``line L, column C: problem``."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + " ".join(str(problem).split())


def _load_yaml(path: Path) -> Any:
    """A YAML config file as an OmegaConf mapping.

    Raises:
        ConfigError: the file cannot be read, is not valid YAML (names the line) or does not
            hold a mapping of keys at its top level.
    """
    try:
        cfg = OmegaConf.load(path)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(e)}") from None
    except (OSError, UnicodeDecodeError) as e:
        if isinstance(e, OSError) and e.errno is None:  # OmegaConf: a scalar at the top level
            raise ConfigError(f"{path}: {NOT_A_MAPPING}, not a single value") from None
        problem = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ConfigError(f"{path}: cannot read the config file ({problem})") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path}: {NOT_A_MAPPING}, not a list")
    return cfg


NOT_A_MAPPING = "a config file holds a mapping of keys (key: value) at its top level"


def _key_line(path: Path, key: str) -> int | None:
    """The line (1-based) of dotted ``key`` in the YAML file ``path``, or None if not found."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    line = None
    for part in key.split("."):
        if not isinstance(node, yaml.MappingNode):
            return line
        match = [(k, v) for k, v in node.value if getattr(k, "value", None) == part]
        if not match:
            return line
        line, node = match[0][0].start_mark.line + 1, match[0][1]
    return line


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Build the resolved config: schema defaults <- YAML file <- dotted overrides.

    Args:
        path: a YAML file of overrides (a bare name like ``stages_1_2`` is looked up in the
            shipped ``configs/`` folder), or None for the defaults.
        overrides: ``key=value`` strings, e.g. ``stages.smooth.solver.kind=lbfgs``.

    Returns:
        The validated config as a ``Config`` object.
    """
    schema = OmegaConf.structured(Config)
    source = ""  # the YAML file being merged, for the error message
    yaml_file: Path | None = None
    try:
        if path is not None:
            p = Path(path)
            if not p.exists() and (CONFIG_DIR / f"{p}.yaml").exists():
                p = CONFIG_DIR / f"{p}.yaml"
            if not p.exists():
                raise ConfigError(f"{path}: config file not found")
            source = f"{p}: "
            yaml_file = p
            file_cfg = _load_yaml(p)
            if "defaults_from" in file_cfg:
                name = file_cfg.pop("defaults_from")
                base_path = CONFIG_DIR / f"{name}.yaml"
                if not base_path.is_file():
                    known = sorted(c.stem for c in CONFIG_DIR.glob("*.yaml"))
                    raise ConfigError(
                        f"{p}: defaults_from: no shipped config {name!r} (known: {known})"
                    )
                file_cfg = OmegaConf.merge(_load_yaml(base_path), file_cfg)
            schema = OmegaConf.merge(schema, file_cfg)
            source, yaml_file = "", None
        for item in _resolve_stage_names(schema, overrides or []):
            key, _, value = item.partition("=")
            missing = OmegaConf.select(schema, key, default=_MISSING_KEY) is _MISSING_KEY
            if missing and not key.rpartition(".")[0].endswith(".weights"):
                raise ConfigError(f"override {item!r}: unknown key {key!r}")
            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError as e:
                raise ConfigError(f"override {item!r}: the value is not valid YAML "
                                  f"({_yaml_problem(e)})") from None  # fmt: skip
            OmegaConf.update(schema, key, parsed, merge=True)
    except (OmegaConfBaseException, TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        key = getattr(e, "full_key", None)
        line = _key_line(yaml_file, key) if yaml_file is not None and key else None
        if line is not None:
            source = f"{yaml_file}: line {line}: "
        raise ConfigError(_config_message(schema, e, source)) from None
    cfg: Config = OmegaConf.to_object(schema)  # type: ignore[assignment]
    _validate(cfg)
    return cfg


def to_yaml(cfg: Config) -> str:
    """The resolved config as YAML text (saved next to every result)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


DEFAULTS_HEADER = (
    "# The resolved defaults of slahmr_opt.config.Config (generated: python -m slahmr_opt.config"
    " --regen).\n# Every other YAML here holds only overrides of these.\n"
)


def defaults_yaml() -> str:
    """Text of ``configs/default.yaml``: the schema defaults."""
    return DEFAULTS_HEADER + to_yaml(Config())


if __name__ == "__main__":
    import sys

    if "--regen" in sys.argv:
        (CONFIG_DIR / "default.yaml").write_text(defaults_yaml())
    else:
        sys.stdout.write(defaults_yaml())
