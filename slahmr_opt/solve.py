"""Run the configured stage list over observations; checkpoint each stage; return a ``Result``."""

import hashlib
import logging
from dataclasses import replace
from pathlib import Path

import torch
from pytorch3d.transforms import axis_angle_to_matrix, matrix_to_axis_angle
from torch import Tensor

from slahmr_opt import __version__
from slahmr_opt.body import BodyModel, load_body_model
from slahmr_opt.body.keypoints import OP25_NAMES
from slahmr_opt.config import FLOOR_TERMS, Config, StageConfig, to_yaml
from slahmr_opt.costs.contacts import build_contact_terms
from slahmr_opt.costs.motion_prior import build_motion_prior_term, cvae_contacts
from slahmr_opt.costs.priors import set_scale_prior
from slahmr_opt.errors import InputError, SlahmrOptError
from slahmr_opt.history import IterRecord, LossHistory
from slahmr_opt.init.contact_scale import body_soles, contact_scale
from slahmr_opt.init.floor import (
    FloorError,
    FloorPlane,
    estimate_floor,
    floor_reference,
    gravity_transform,
    heuristic_contacts,
    plane_from_params,
)
from slahmr_opt.init.initial import initial_state
from slahmr_opt.init.regressor import Regression, regress
from slahmr_opt.init.scale import estimate_alpha, scale_observable
from slahmr_opt.stages.evidence import run_guarded_stage
from slahmr_opt.stages.problem import (
    Problem,
    body_from_params,
    build_problem,
    floor_estimated,
    params_from_body,
)
from slahmr_opt.stages.runner import run_stage
from slahmr_opt.types import BodyParams, Cameras, Observations, Result

logger = logging.getLogger(__name__)

#: ``op25`` keypoints on the feet (big and small toes, heels) used to estimate the floor.
FOOT_KEYPOINTS = tuple(
    OP25_NAMES.index(n) for n in ("LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel")
)


class SolveError(SlahmrOptError):
    """A stage failed (for example the loss became NaN)."""


def load_pose_prior(kind: str, path: str | None):
    """The pose prior module for the ``pose_prior`` term (None for plain L2)."""
    if kind == "l2":
        return None
    if kind == "gmm":
        from priors.pose_gmm.model import SHIPPED, PoseGMM

        file = Path(path) if path else SHIPPED
        if not file.exists():
            raise InputError(file, "pose prior file not found (costs.pose_prior_path)")
        return PoseGMM.load(file)
    if kind == "vae":
        from priors.pose_vae.model import SHIPPED, PoseVAE

        file = Path(path) if path else SHIPPED
        if not file.exists():
            raise InputError(file, "pose prior file not found (costs.pose_prior_path)")
        return PoseVAE.load(file)
    raise SlahmrOptError(f"unknown pose prior {kind!r} (known: gmm, vae, l2)")


def load_motion_prior(path: str | None):
    """The CVAE motion prior of the ``motion_prior`` term and the ``cvae`` contact source."""
    from priors.motion_cvae.model import SHIPPED, MotionCVAE

    file = Path(path) if path else SHIPPED
    if not file.exists():
        raise InputError(file, "motion prior file not found (costs.motion_prior_path)")
    return MotionCVAE.load(file)


def _observation_hash(obs: Observations) -> str:
    h = hashlib.sha1()
    for t in (obs.kp2d, obs.track_mask, obs.cameras.R_w2c, obs.cameras.t_w2c, obs.cameras.intrins):
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    if obs.points is not None:
        for t in (obs.points.points, obs.points.frames):
            if t is not None:
                h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _stage_key(obs_hash: str, cfg: Config, index: int) -> str:
    """Cache key of the state after stage ``index``: inputs, config up to it, code version."""
    partial = replace(cfg, stages=cfg.stages[: index + 1])
    text = f"{__version__}\n{obs_hash}\n{to_yaml(partial)}"
    return hashlib.sha1(text.encode()).hexdigest()


def _load_checkpoint(path: Path, key: str):
    if not path.exists():
        return None
    ckpt = torch.load(path, weights_only=True)
    if ckpt.get("key") != key:
        logger.info("checkpoint %s is for other inputs or settings; recomputing", path)
        return None
    return ckpt


def rescale_camera(
    obs: Observations, body_model: BodyModel, params: dict, cue: str
) -> tuple[dict, dict]:
    """Re-estimate the camera scale (``init.scale``: ``contact`` where the observations carry
    scene points that give a ground, else ``feet``), keeping every body where the cameras see
    it: ``trans`` moves by ``(alpha_old - alpha_new) R_w2c^T t_w2c``.

    Returns:
        The new parameters and a report (``cue`` that decided, ``alpha``; for ``contact`` also
        ``rel_std``, ``frames``, ``near_sole`` and ``ground_points``).
    """
    body, alpha = body_from_params(params)
    cams = obs.cameras

    def camera_frame(x_w: Tensor) -> Tensor:
        return torch.einsum("tij,pt...j->pt...i", cams.R_w2c, x_w) + (
            alpha * cams.t_w2c
        ).view(1, -1, *([1] * (x_w.dim() - 3)), 3)

    new_alpha, report = None, {"cue": "feet"}
    if cue == "contact" and obs.points is not None:
        soles_w, up = body_soles(body_model, body)
        est = contact_scale(camera_frame(soles_w), obs.vis_mask, cams.R_w2c, cams.t_w2c,
                            obs.points, up)  # fmt: skip
        if est is None:
            logger.info("camera scale: the scene points give no ground under the feet; "
                        "falling back to the foot-still search")  # fmt: skip
        else:
            logger.info("camera scale from the human-scene contact: alpha = %.4g (+- %.1f %%, "
                        "most of it the body's size; spread %.1f %% over %d person-frames, %d "
                        "with points near the sole, ground plane of %s points); the foot-still "
                        "search is not used", est.alpha, 100 * est.rel_std, 100 * est.log_std,
                        est.frames, est.local,
                        est.ground.inliers if est.ground else "no")  # fmt: skip
            new_alpha = est.alpha
            report = {"cue": "contact", "rel_std": est.rel_std, "frames": est.frames,
                      "near_sole": est.local,
                      "ground_points": est.ground.inliers if est.ground else 0}  # fmt: skip
    if new_alpha is None:
        with torch.no_grad():
            joints_w = body_model(
                body.betas[:, None].expand(*body.trans.shape[:2], -1), body.root_orient,
                body.pose_body, body.trans,
            ).joints  # fmt: skip
        new_alpha = estimate_alpha(camera_frame(joints_w), obs.vis_mask, cams.R_w2c,
                                   cams.t_w2c, alpha)  # fmt: skip
    shift = (alpha - new_alpha) * torch.einsum("tji,tj->ti", cams.R_w2c, cams.t_w2c)
    out = dict(params)
    out["trans"] = params["trans"] + shift[None].to(params["trans"])
    out["log_alpha"] = torch.full_like(params["log_alpha"], new_alpha).log()
    return out, {**report, "alpha": new_alpha}


def _set_scale_prior(problem: Problem, report: dict | None) -> None:
    """Centre the ``scale_prior`` term on a contact estimate (``rescale_camera``'s report)."""
    if report is not None and report.get("rel_std"):
        set_scale_prior(problem.terms["scale_prior"], report["alpha"], report["rel_std"])


def _posed(body_model: BodyModel, params: dict):
    body, _ = body_from_params(params)
    P, T = body.trans.shape[:2]
    with torch.no_grad():
        return body_model(
            body.betas[:, None].expand(P, T, -1), body.root_orient, body.pose_body, body.trans
        )


def floor_from_bodies(obs: Observations, body_model: BodyModel, params: dict) -> FloorPlane:
    """Floor plane fitted to the feet of the bodies in ``params`` (``init.floor``)."""
    out = _posed(body_model, params)
    feet = body_model.keypoints(out, "op25")[..., list(FOOT_KEYPOINTS), :]
    body_up = out.joints[..., 0, :] - feet.mean(-2)
    return estimate_floor(feet, body_up, obs.vis_mask, obs.fps)


def prepare_floor_terms(
    obs: Observations,
    body_model: BodyModel,
    params: dict,
    problem: Problem,
    cfg: Config,
    regression: Regression | None = None,
) -> dict:
    """Estimate the floor and the contact probabilities from the current bodies (once; they are
    kept in ``params``: ``floor_ref``, ``floor``, ``contacts``) and add the contact terms and,
    if a stage weights it, the motion prior (both work in the floor's frame). The ``regressor``
    contact source takes the contacts of ``regression`` (run here if None)."""
    add_prior = "motion_prior" not in problem.terms and any(
        s.weights.get("motion_prior", 0) > 0 for s in cfg.stages
    )
    cvae_contacts_needed = cfg.floor.contact_source == "cvae" and not floor_estimated(params)
    prior = None
    if add_prior or cvae_contacts_needed:
        prior = load_motion_prior(cfg.costs.motion_prior_path)
    if not floor_estimated(params):
        plane = floor_from_bodies(obs, body_model, params)
        joints = _posed(body_model, params).joints
        if cfg.floor.contact_source == "regressor":
            regression = regression or regress(obs, body_model, cfg.init.regressor_path)
            contacts = regression.contact.to(joints) * obs.track_mask[..., None]
        elif cfg.floor.contact_source == "cvae":
            contacts = cvae_contacts(
                joints, params["root_orient"], params["pose_body"], obs.track_mask,
                floor_reference(plane), prior, obs.fps,
            )  # fmt: skip
        else:
            contacts = heuristic_contacts(
                joints, obs.track_mask, plane, obs.fps, cfg.floor.speed_tolerance
            )
        logger.info("contacts (%s): %.0f%% of foot point-frames", cfg.floor.contact_source,
                    100 * float(contacts[obs.track_mask].mean()))  # fmt: skip
        dtype = params["trans"].dtype
        params = dict(params)
        params["floor_ref"] = floor_reference(plane).to(dtype)
        params["floor"] = torch.zeros(1, 3, dtype=dtype)
        params["contacts"] = contacts.to(dtype)
    if "contact_slide" not in problem.terms:
        problem.add_terms(build_contact_terms(
            obs.track_mask, body_model, params["contacts"], params["floor_ref"],
            params["trans"].dtype,
        ))  # fmt: skip
    if add_prior:
        problem.add_terms([build_motion_prior_term(
            obs.track_mask, body_model, prior, params["floor_ref"], obs.fps,
            params["trans"].dtype, cfg.costs.motion_prior_sigma,
        )])  # fmt: skip
    return params


def _uses_floor(stage: StageConfig) -> bool:
    return "floor" in stage.optimize or any(stage.weights.get(t, 0) > 0 for t in FLOOR_TERMS)


def align_to_floor(
    body: BodyParams, cameras: Cameras, joints: Tensor, G: Tensor, body_model: BodyModel
) -> tuple[BodyParams, Cameras, Tensor]:
    """Bodies, cameras and joints moved into the frame ``x' = R x + t`` of ``G`` (4, 4), e.g.
    the gravity-aligned one. SMPL rotates about the rest pelvis ``J0``, so
    ``trans' = R (trans + J0) + t - J0``; cameras: ``R_w2c' = R_w2c R^T`` and metric
    ``t' = alpha t_w2c - R_w2c' t`` (stored in SLAM units, divided by ``alpha``)."""
    R, t = G[:3, :3].double(), G[:3, 3].double()
    P, T = body.trans.shape[:2]
    zero = torch.zeros(P, 3, dtype=body_model.dtype)
    rest = body_model(
        body.betas.to(body_model.dtype), zero, torch.zeros(P, 21, 3, dtype=body_model.dtype), zero
    )
    j0 = rest.joints[:, 0].double()[:, None]  # (P, 1, 3)
    root = R @ axis_angle_to_matrix(body.root_orient.double())
    new_body = BodyParams(
        root_orient=matrix_to_axis_angle(root).to(body.root_orient.dtype),
        trans=((body.trans.double() + j0) @ R.T + t - j0).to(body.trans.dtype),
        pose_body=body.pose_body,
        betas=body.betas,
    )
    R_w2c = cameras.R_w2c.double() @ R.T
    shift = torch.einsum("tij,j->ti", R_w2c, t) / cameras.alpha
    new_cams = replace(
        cameras,
        R_w2c=R_w2c.to(cameras.R_w2c.dtype),
        t_w2c=(cameras.t_w2c.double() - shift).to(cameras.t_w2c.dtype),
    )
    return new_body, new_cams, (joints.double() @ R.T + t).to(joints.dtype)


def _cast_observations(obs: Observations, dtype: torch.dtype) -> Observations:
    cams = replace(
        obs.cameras,
        R_w2c=obs.cameras.R_w2c.to(dtype),
        t_w2c=obs.cameras.t_w2c.to(dtype),
        intrins=obs.cameras.intrins.to(dtype),
    )
    return replace(obs, kp2d=obs.kp2d.to(dtype), cameras=cams)


def solve(
    obs: Observations,
    cfg: Config,
    body_model: BodyModel | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
) -> Result:
    """Fit every person of ``obs`` with the stages of ``cfg``.

    Args:
        obs: observations (tracks and cameras).
        cfg: resolved config.
        body_model: overrides ``cfg.body`` (tests pass small synthetic models).
        checkpoint_dir: where per-stage checkpoints are written; a rerun with the same inputs,
            config and code version resumes after the last finished stage.
        progress: show tqdm progress bars.

    Returns:
        The ``Result``, world frame = SLAM world (first camera).
    """
    dtype = getattr(torch, cfg.dtype)
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    body_model = (body_model or load_body_model(cfg.body)).to(dtype)
    obs_d = _cast_observations(obs, dtype)
    start = initial_state(obs_d, body_model, cfg.init, builtin_body=cfg.body.model_path is None)
    params = params_from_body(start.body, start.alpha, dtype)
    pose_prior = load_pose_prior(cfg.costs.pose_prior, cfg.costs.pose_prior_path)
    if pose_prior is not None:
        pose_prior = pose_prior.to(dtype)
    problem = build_problem(obs_d, body_model, cfg.costs, pose_prior, params["pose_body"], dtype)
    observable, why_not = _scale_observable(obs_d)
    history = LossHistory()
    summaries = []
    obs_hash = _observation_hash(obs)
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir else None
    for index, stage in enumerate(cfg.stages):
        key = _stage_key(obs_hash, cfg, index)
        path = ckpt_dir / f"stage_{index:02d}_{stage.name}.pt" if ckpt_dir else None
        ckpt = _load_checkpoint(path, key) if path else None
        if ckpt is not None:
            logger.info("stage %s: resumed from %s", stage.name, path)
            params = {k: v.to(dtype) for k, v in ckpt["params"].items()}
            history.records.extend(IterRecord(**r) for r in ckpt["history"])
            summaries.append(ckpt["summary"])
            _set_scale_prior(problem, ckpt["summary"].get("camera_scale"))
            continue
        if _uses_floor(stage):
            params = prepare_floor_terms(obs_d, body_model, params, problem, cfg, start.regression)
        people = None
        if stage.evidence_margin > 0 and stage.weights.get("motion_prior", 0) > 0:
            result, people = run_guarded_stage(stage, problem, params, history, progress)
        else:
            result = run_stage(stage, problem, params, history, progress=progress)
        if result.status == "failed":
            raise SolveError(f"stage {stage.name!r} failed: {result.message}")
        params = result.params
        if (
            stage.name in cfg.init.scale_after
            and cfg.init.scale in ("contact", "feet")
            and not obs.cameras.is_static
        ):
            if observable:
                params, scale_report = rescale_camera(obs_d, body_model, params, cfg.init.scale)
                _set_scale_prior(problem, scale_report)
            else:
                scale_report = {"cue": "none", "reason": why_not}
        else:
            scale_report = None
        summary = {
            "name": stage.name,
            "solver": str(stage.solver.kind),  # a plain str: checkpoints load weights-only
            "status": result.status,
            "message": result.message,
            "iterations": result.iterations,
            "seconds": result.seconds,
            "initial_loss": result.initial_loss,
            "final_loss": result.final_loss,
        }
        if people is not None:
            summary["people"] = [{"track": obs.track_ids[r["person"]], **r} for r in people]
        if scale_report is not None:
            summary["camera_scale"] = scale_report
        summaries.append(summary)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            records = [vars(r) for r in history.records if r.stage == stage.name]
            torch.save({"key": key, "params": params, "history": records, "summary": summary}, path)
    body, alpha = body_from_params(params)
    joints = _posed(body_model, params).joints
    cameras = replace(obs.cameras, alpha=1.0 if obs.cameras.is_static else alpha)
    plane, G = _output_frame(obs_d, body_model, params, cameras, cfg)
    with torch.no_grad():
        body, cameras, joints = align_to_floor(body, cameras, joints, G, body_model)
        statures = body_model.stature(body.betas.to(dtype)).float()
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
        frame_offset=int(obs.sources.get("frame_offset", 0)),
        floor_plane=plane,
        world_transform=G.float(),
        statures=statures,
        scale_observed=observable,
    )


def _scale_observable(obs: Observations) -> tuple[bool, str]:
    """Whether the camera translates enough for its metric scale to mean anything, and why not
    (logged)."""
    if obs.cameras.is_static:
        return False, "static camera"
    points = None if obs.points is None else obs.points.points
    observable, why = scale_observable(obs.cameras.t_w2c, obs.cameras.R_w2c, points)
    if not observable:
        logger.info("camera scale: %s, so the scale cannot be observed and is not searched for; "
                    "the world trajectory comes from the bodies (their size, the floor) and "
                    "results.npz reports world_scale = NaN", why)  # fmt: skip
    return observable, why


def _output_frame(
    obs: Observations, body_model: BodyModel, params: dict, cameras: Cameras, cfg: Config
) -> tuple[Tensor, Tensor]:
    """The floor ``[n, d]`` (4,) in the solve world (NaN if none) and the transform (4, 4) of the
    output frame: gravity-aligned (``align_output``) or the identity."""
    identity = torch.eye(4, dtype=torch.float64)
    nan = torch.full((4,), float("nan"), dtype=torch.float32)
    if floor_estimated(params):
        plane = plane_from_params(params["floor"], params["floor_ref"])
    elif cfg.floor.align_output:
        try:
            plane = floor_from_bodies(obs, body_model, params)
        except FloorError as e:
            logger.warning("no floor (%s): the result stays in the SLAM world", e)
            return nan, identity
    else:
        return nan, identity
    floor = torch.cat([plane.normal.double(), torch.tensor([plane.offset])]).float()
    if not cfg.floor.align_output:
        return floor, identity
    R0, t0 = cameras.R_w2c[0].double(), cameras.t_w2c[0].double() * cameras.alpha
    G = gravity_transform(plane, forward=R0[2], origin=-R0.T @ t0)
    return floor, G
