"""Run the configured stage list over observations; checkpoint each stage; return a ``Result``.

Per stage: resume from its checkpoint, or run its before-hooks, the stage (under the evidence
guard where it has one), its after-hooks, and save its checkpoint (``stages.hooks``,
``io.checkpoints``). After the last stage the result moves into the output frame
(``stages.floor_frame``).
"""

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from slahmr_opt.body import BodyModel, body_model_record, load_body_model
from slahmr_opt.config import Config, StageConfig, to_yaml
from slahmr_opt.costs.priors import load_pose_prior
from slahmr_opt.errors import SlahmrOptError
from slahmr_opt.history import IterRecord, LossHistory
from slahmr_opt.init.initial import initial_state
from slahmr_opt.io.checkpoints import StageCheckpoints
from slahmr_opt.stages.camera_scale import camera_scale_observable
from slahmr_opt.stages.evidence import run_guarded_stage
from slahmr_opt.stages.floor_frame import align_to_floor, output_frame, posed
from slahmr_opt.stages.hooks import HookContext, declared_hooks, resume_hooks, run_hooks
from slahmr_opt.stages.problem import body_from_params, build_problem, params_from_body
from slahmr_opt.stages.runner import run_stage
from slahmr_opt.types import Floor, Observations, Result, StageStatus, StageSummary

logger = logging.getLogger(__name__)


class SolveError(SlahmrOptError):
    """A stage failed (for example the loss became NaN)."""


def _cast_observations(obs: Observations, dtype: torch.dtype) -> Observations:
    cams = replace(
        obs.cameras,
        R_w2c=obs.cameras.R_w2c.to(dtype),
        t_w2c=obs.cameras.t_w2c.to(dtype),
        intrins=obs.cameras.intrins.to(dtype),
    )
    return replace(obs, kp2d=obs.kp2d.to(dtype), cameras=cams)


def _run_stage(stage: StageConfig, ctx: HookContext, params: dict, history: LossHistory,
               progress: bool) -> tuple[dict, StageSummary]:  # fmt: skip
    """One stage with its hooks: the new parameters and the stage's summary."""
    before, after = declared_hooks(ctx.cfg, stage)
    params, reports = run_hooks(before, ctx, params)
    people = None
    if stage.evidence_margin > 0 and stage.weights.get("motion_prior", 0) > 0:
        result, people = run_guarded_stage(stage, ctx.problem, params, history, progress)
    else:
        result = run_stage(stage, ctx.problem, params, history, progress=progress)
    if result.status == "failed":
        raise SolveError(f"stage {stage.name!r} failed: {result.message}")
    params, after_reports = run_hooks(after, ctx, result.params)
    reports.update(after_reports)
    summary = StageSummary(
        name=stage.name,
        solver=str(stage.solver.kind),  # a plain str: checkpoints load weights-only
        status=StageStatus(result.status),
        message=result.message,
        iterations=result.iterations,
        seconds=result.seconds,
        initial_loss=result.initial_loss,
        final_loss=result.final_loss,
        people=None if people is None else [
            {"track": ctx.obs.track_ids[r["person"]], **r} for r in people
        ],
        camera_scale=reports.get("camera_scale"),
    )  # fmt: skip
    return params, summary


def solve(
    obs: Observations,
    cfg: Config,
    body_model: BodyModel | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
    on_iteration: Callable[[LossHistory, IterRecord], None] | None = None,
) -> Result:
    """Fit every person of ``obs`` with the stages of ``cfg``.

    Args:
        obs: observations (tracks and cameras).
        cfg: resolved config.
        body_model: overrides ``cfg.body`` (tests pass small synthetic models).
        checkpoint_dir: where per-stage checkpoints are written; a rerun with the same inputs,
            config and code version resumes after the last finished stage.
        progress: show tqdm progress bars.
        on_iteration: called after every solver iteration with the history and its new record
            (``history.FollowJob(folder, stages)`` keeps a live ``history.csv`` and
            ``progress.json``).

    Returns:
        The ``Result``, in the output frame of ``floor.align_output`` (else the SLAM world).
    """
    dtype = getattr(torch, cfg.dtype)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    record = body_model_record(body_model) if body_model is not None else None
    body_model = (body_model or load_body_model(cfg.body)).to(dtype)
    record = record or body_model_record(body_model, cfg.body)
    obs_d = _cast_observations(obs, dtype)
    start = initial_state(obs_d, body_model, cfg.init, builtin_body=cfg.body.model_path is None)
    params = params_from_body(start.body, start.alpha, dtype)
    pose_prior = load_pose_prior(cfg.costs.pose_prior, cfg.costs.pose_prior_path)
    if pose_prior is not None:
        pose_prior = pose_prior.to(dtype)
    problem = build_problem(obs_d, body_model, cfg.costs, pose_prior, params["pose_body"], dtype)
    observable, why_not = camera_scale_observable(obs_d)
    ctx = HookContext(obs_d, body_model, cfg, problem, start.regression, observable, why_not)
    history = LossHistory(on_iteration)
    summaries = []
    checkpoints = StageCheckpoints(checkpoint_dir, obs, cfg)
    for index, stage in enumerate(cfg.stages):
        ckpt = checkpoints.load(index)
        if ckpt is not None:
            params = {k: v.to(dtype) for k, v in ckpt["params"].items()}
            history.records.extend(IterRecord(**r) for r in ckpt["history"])
            summaries.append(StageSummary.from_dict(ckpt["summary"]))
            resume_hooks(ctx, ckpt["summary"])
            continue
        params, summary = _run_stage(stage, ctx, params, history, progress)
        summaries.append(summary)
        records = [vars(r) for r in history.records if r.stage == stage.name]
        checkpoints.save(index, params, records, summary.to_dict())
    result = _result(obs, obs_d, body_model, params, cfg, history, summaries, observable)
    return replace(result, body_model=record)


def _result(obs: Observations, obs_d: Observations, body_model: BodyModel, params: dict,
            cfg: Config, history: LossHistory, summaries: list[StageSummary],
            observable: bool) -> Result:  # fmt: skip
    """The ``Result`` of the final parameters, moved into the output frame."""
    body, alpha = body_from_params(params)
    joints = posed(body_model, params).joints
    cameras = replace(obs.cameras, alpha=1.0 if obs.cameras.is_static else alpha)
    plane, G = output_frame(obs_d, body_model, params, cameras, cfg)
    with torch.no_grad():
        body, cameras, joints = align_to_floor(body, cameras, joints, G, body_model)
        statures = body_model.stature(body.betas.to(body_model.dtype)).float()
    logger.info("statures: %s", ", ".join(f"{obs.track_ids[i]} {h:.2f} m"
                                        for i, h in enumerate(statures.tolist())))  # fmt: skip
    return Result(
        body=body.to(torch.float32),
        cameras=cameras,
        track_mask=obs.track_mask,
        vis_mask=obs.vis_mask,
        track_ids=list(obs.track_ids),
        fps=obs.fps,
        history=history,
        stages=summaries,
        config_yaml=to_yaml(cfg),
        joints=joints.float(),
        frame_offset=obs.frame_offset,
        floor=Floor.from_plane(plane),
        world_transform=G.float(),
        statures=statures,
        scale_observed=observable,
    )
