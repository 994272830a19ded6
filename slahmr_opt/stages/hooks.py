"""Steps that run between stages, named by the stage config (``StageConfig.before`` / ``after``).

A hook takes the solver's parameters and returns new ones and a report (a dict, or None); a
report is kept in the stage's summary under the hook's name (``Result.stages``, checkpoints).
Hooks may also change the problem (add terms, centre a prior); ``Hook.resume`` redoes that from
the report when a stage is resumed from its checkpoint instead of run.

Hooks (``config.HOOKS``):

* ``floor``: estimate the floor and the foot contacts from the current bodies (once) and add the
  floor-frame terms (contacts, motion prior): ``stages.floor_frame.prepare_floor_terms``.
* ``camera_scale``: re-estimate the camera scale (``init.scale`` ``contact`` or ``feet``; a
  no-op for the other cues and for a static camera), keeping the bodies where the cameras see
  them, and centre the ``scale_prior`` term on it: ``stages.camera_scale.rescale_camera``.

Where a stage leaves ``before`` / ``after`` unset, ``declared_hooks`` derives them as the
solver always has: ``floor`` before a stage that optimizes the floor or weights a floor term,
``camera_scale`` after the stages of ``init.scale_after``.
"""

from collections.abc import Callable
from dataclasses import dataclass

from slahmr_opt.body import BodyModel
from slahmr_opt.config import FLOOR_TERMS, Config, StageConfig
from slahmr_opt.init.regressor import Regression
from slahmr_opt.stages.camera_scale import apply_scale_report, rescale_camera
from slahmr_opt.stages.floor_frame import prepare_floor_terms
from slahmr_opt.stages.problem import Problem
from slahmr_opt.types import Observations


@dataclass
class HookContext:
    """What hooks read besides the parameters.

    Attributes:
        obs: the observations, in the solve's dtype.
        body_model: the body model of the solve.
        cfg: the resolved config.
        problem: the energy terms of the solve (hooks may add terms).
        regression: the keypoint regressor's output if the initialization ran it, else None.
        scale_observable: whether the camera translation can give a metric scale.
        scale_unobservable_reason: why not (empty if it can).
    """

    obs: Observations
    body_model: BodyModel
    cfg: Config
    problem: Problem
    regression: Regression | None = None
    scale_observable: bool = True
    scale_unobservable_reason: str = ""


#: ``(context, params) -> (params, report or None)``.
HookFn = Callable[[HookContext, dict], tuple[dict, dict | None]]


@dataclass(frozen=True)
class Hook:
    """A step between stages: ``run`` it, or ``resume`` its effect on the problem from the
    report it wrote (None: it has none beyond the parameters)."""

    run: HookFn
    resume: Callable[[HookContext, dict], None] | None = None


def _floor(ctx: HookContext, params: dict) -> tuple[dict, dict | None]:
    params = prepare_floor_terms(
        ctx.obs, ctx.body_model, params, ctx.problem, ctx.cfg, ctx.regression
    )
    return params, None


def _camera_scale(ctx: HookContext, params: dict) -> tuple[dict, dict | None]:
    if ctx.cfg.init.scale not in ("contact", "feet") or ctx.obs.cameras.is_static:
        return params, None
    if not ctx.scale_observable:
        return params, {"cue": "none", "reason": ctx.scale_unobservable_reason}
    params, report = rescale_camera(ctx.obs, ctx.body_model, params, ctx.cfg.init.scale)
    apply_scale_report(ctx.problem, report)
    return params, report


def _resume_camera_scale(ctx: HookContext, report: dict) -> None:
    apply_scale_report(ctx.problem, report)


#: Every hook by name; the names are ``config.HOOKS``.
HOOKS: dict[str, Hook] = {
    "floor": Hook(_floor),
    "camera_scale": Hook(_camera_scale, _resume_camera_scale),
}


def uses_floor(stage: StageConfig) -> bool:
    """Whether the stage optimizes the floor or weights a term in the floor's frame."""
    return "floor" in stage.optimize or any(stage.weights.get(t, 0) > 0 for t in FLOOR_TERMS)


def declared_hooks(cfg: Config, stage: StageConfig) -> tuple[list[str], list[str]]:
    """The hook names run before and after ``stage``: its ``before`` / ``after``, or where one
    is None, the default (module docstring)."""
    before = stage.before
    if before is None:
        before = ["floor"] if uses_floor(stage) else []
    after = stage.after
    if after is None:
        after = ["camera_scale"] if stage.name in cfg.init.scale_after else []
    return list(before), list(after)


def run_hooks(names: list[str], ctx: HookContext, params: dict) -> tuple[dict, dict[str, dict]]:
    """Run the hooks ``names`` in order.

    Returns:
        The parameters after the last one and the reports by hook name (hooks that reported).
    """
    reports = {}
    for name in names:
        params, report = HOOKS[name].run(ctx, params)
        if report is not None:
            reports[name] = report
    return params, reports


def resume_hooks(ctx: HookContext, summary: dict) -> None:
    """Redo the problem changes of the hooks whose reports a resumed stage's summary holds."""
    for name, hook in HOOKS.items():
        if hook.resume is not None and summary.get(name) is not None:
            hook.resume(ctx, summary[name])
