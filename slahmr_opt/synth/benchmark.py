"""Build a synthetic benchmark from motion capture: fitted bodies filmed by synthetic cameras.

Each sequence folder holds what a user would give the solver (``tracks.npz``, ``cameras.npz``)
plus the truth (``gt.npz``) and ``meta.json``; ``index.json`` in the benchmark folder lists them.

``gt.npz`` keys (P people, T frames, y-up ground-truth world, metres):

============  ==============  =================================================
key           shape           meaning
============  ==============  =================================================
joints        (P, T, 24, 3)   true world joints
feet          (P, T, 4, 3)    true toe and heel points (``keypoint_vertices[5, 7, 8, 10]``)
valid         (P, T)          frames with ground truth (all)
track_ids     (P,)            track names, as in ``tracks.npz``
alpha         ()              true metres per SLAM translation unit (1 for static cameras)
trans         (P, T, 3)       body translation
root_orient   (P, T, 3)       root orientation, axis-angle
pose_body     (P, T, 63)      body pose, axis-angle
betas         (P, B)          shape
cam_R, cam_t  (T, 3, 3), (T, 3)  true metric world-to-camera extrinsics
============  ==============  =================================================

Everything is a function of the seed: a sequence's random stream is seeded with the benchmark
seed and its name, so the same seed gives the same arrays.
"""

import json
import logging
import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from slahmr_opt.body import BodyConfig, BodyModel, load_body_model
from slahmr_opt.errors import ConfigError, InputError
from slahmr_opt.files.checks import write_atomic
from slahmr_opt.files.outputs import check_claimable, claimed_output
from slahmr_opt.geometry.rotations import rotmat_to_rotvec, rotvec_to_rotmat
from slahmr_opt.inputs.cameras import write_cameras_npz
from slahmr_opt.inputs.points import write_points_npz
from slahmr_opt.inputs.track_data import tracks_from_observations
from slahmr_opt.inputs.tracks import write_tracks_npz
from slahmr_opt.mocap.bvh import BvhMotion
from slahmr_opt.mocap.fit import BodyFit, fit_sequences
from slahmr_opt.mocap.rigs import BANDAI, detect_rig
from slahmr_opt.mocap.sources import list_motions  # noqa: F401  (re-exported)
from slahmr_opt.mocap.targets import (
    check_handedness,
    joint_rotations,
    relative_terms,
    smpl_targets,
)
from slahmr_opt.synth import observe as synth
from slahmr_opt.synth.guesses import COCO_FACE, GUESS_PRESETS, guess_quality
from slahmr_opt.synth.occlusions import OcclusionSettings, add_occlusions, hide_keypoints
from slahmr_opt.synth.points import slam_points
from slahmr_priors import augment

logger = logging.getLogger(__name__)

CAMERA_KINDS = ("static", "pan", "tracking", "orbit")
VARIANTS = ("original", "reversed", "mirrored")
"""Motion variants ``bench make --variants`` films (``motion_variant``); the name of a sequence
of a transformed motion ends in ``~reversed`` or ``~mirrored``."""
CAMERA_ALIASES = {"handheld": "orbit"}
"""``handheld``: a camera circling the person with hand-held shake (synth's ``orbit``)."""
FEET = [5, 7, 8, 10]
"""Toe and heel points among ``keypoint_vertices`` (left toe, left heel, right toe, right heel)."""
SPACING = 1.5
"""Metres between people placed side by side in one scene."""


def fit_motions(body: BodyModel, motions: list[BvhMotion], max_frames: int) -> list[BodyFit]:
    """Fit the body to the first ``max_frames`` frames of each motion (one L-BFGS batch per
    rig: each rig has its own correspondence, ``mocap.rigs``)."""
    rigs = [detect_rig(m.skeleton, str(m.source)) for m in motions]
    fits: list[BodyFit | None] = [None] * len(motions)
    keys = [(r.table, r.directions) for r in rigs]
    for key in dict.fromkeys(keys):
        which = [i for i, k in enumerate(keys) if k == key]
        targets, rots, weights = [], [], None
        for i in which:
            rig = rigs[i]
            x, weights = smpl_targets(motions[i], rig.table, rig.to_world)
            if rig is not BANDAI:
                check_handedness(x[:max_frames], str(motions[i].source))
            targets.append(x[:max_frames])
            rots.append(joint_rotations(motions[i], rig.rotations, rig.to_world)[:max_frames])
        rig = rigs[which[0]]
        terms = relative_terms(rig.table, rig.directions, rig.rotations)
        for i, fit in zip(which, fit_sequences(body, targets, weights, terms=terms,
                                               joint_rotations=rots), strict=True):  # fmt: skip
            fits[i] = fit
    return fits


def motion_variant(fit: BodyFit, variant: str, body: BodyModel) -> BodyFit:
    """``fit`` as one of ``VARIANTS``: ``original``, ``reversed`` (played backwards: a walk
    becomes a walk backwards), ``mirrored`` (left and right swapped through the body's
    sagittal plane, ``slahmr_priors.augment``). The pelvis moves with the mirror: ``trans + J_0``
    is mirrored."""
    if variant == "original":
        return fit
    if variant == "reversed":
        flip = {k: getattr(fit, k)[::-1].copy() for k in ("root_orient", "trans", "pose_body",
                                                          "joints", "joint_error_mm",
                                                          "residual_mm")}  # fmt: skip
        return replace(fit, **flip)
    if variant != "mirrored":
        raise ValueError(f"unknown motion variant {variant!r} (expected one of {VARIANTS})")
    f64 = {k: torch.from_numpy(np.asarray(getattr(fit, k), dtype=np.float64))
           for k in ("root_orient", "trans", "pose_body", "betas")}  # fmt: skip
    with torch.no_grad():
        rest = body.rest_pose(f64["betas"].to(body.dtype), return_vertices=False)
    j0 = rest.joints[0].double()
    mirror = augment.MIRROR.to(torch.float64)
    root = rotmat_to_rotvec(augment.mirror_rotation(rotvec_to_rotmat(f64["root_orient"])))
    return replace(
        fit,
        root_orient=root.numpy(),
        trans=((f64["trans"] + j0) * mirror - j0).numpy(),
        pose_body=augment.mirror_pose(f64["pose_body"]).numpy(),
        joints=augment.mirror_joints(torch.from_numpy(fit.joints)).numpy(),
    )


def place_side_by_side(fits: list[BodyFit], spacing: float = SPACING) -> dict[str, np.ndarray]:
    """Stack people into one scene: each motion starts at ``x = p * spacing``, ``z = 0``.

    Returns:
        float64 ``root_orient`` (P, T, 3), ``trans`` (P, T, 3), ``pose_body`` (P, T, 21, 3),
        ``betas`` (P, B), cropped to the shortest motion; one person is left where it is.
    """
    T = min(len(f.trans) for f in fits)
    trans = np.stack([f.trans[:T] for f in fits])
    if len(fits) > 1:
        start = trans[:, :1].copy()
        start[..., 1] = 0.0
        lateral = np.zeros_like(start)
        lateral[:, 0, 0] = spacing * (np.arange(len(fits)) - 0.5 * (len(fits) - 1))
        trans = trans - start + lateral
    return {
        "root_orient": np.stack([f.root_orient[:T] for f in fits]),
        "trans": trans,
        "pose_body": np.stack([f.pose_body[:T] for f in fits]),
        "betas": np.stack([f.betas for f in fits]),
    }


def write_sequence(
    dest: Path,
    body: BodyModel,
    scene: synth.SynthScene,
    bodies: dict[str, np.ndarray],
    settings: synth.SynthSettings,
    meta: dict,
    points_rng: np.random.Generator,
) -> Path:
    """Write ``tracks.npz``, ``cameras.npz``, ``points.npz`` (a SLAM-like map of a scene around
    the people, ``synth_points``), ``gt.npz`` and ``meta.json`` into ``dest``.

    Args:
        bodies: the true bodies (``place_side_by_side`` keys), float64.
        points_rng: the map's random stream.
    """
    obs = scene.obs
    dest.mkdir(parents=True, exist_ok=True)
    tracks = tracks_from_observations(obs)
    write_tracks_npz(dest / "tracks.npz", tracks, overwrite=True)
    write_cameras_npz(dest / "cameras.npz", obs.cameras, overwrite=True)
    P, T = bodies["trans"].shape[:2]
    f64 = {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in bodies.items()}
    with torch.no_grad():
        out = body.to(torch.float64)(
            f64["betas"][:, None].expand(-1, T, -1),
            f64["root_orient"],
            f64["pose_body"],
            f64["trans"],
            return_vertices=True,
        )
    cams = obs.cameras
    points = slam_points(
        scene.R_true, scene.t_true, cams.R_w2c.double().numpy(), cams.t_w2c.double().numpy(),
        1.0 if cams.is_static else settings.alpha_true, cams.intrins.double().numpy(),
        cams.image_size, bodies["trans"].reshape(-1, 3).mean(0),
        float(np.percentile(out.vertices[..., 1].amin(-1).numpy(), 5)), points_rng,
    )  # fmt: skip
    write_points_npz(dest / "points.npz", points, overwrite=True)
    np.savez(
        dest / "gt.npz",
        joints=scene.joints.numpy(),
        feet=out.keypoint_vertices[..., FEET, :].float().numpy(),
        valid=np.ones((P, T), bool),
        track_ids=np.array(obs.track_ids),
        alpha=np.array(1.0 if settings.camera == "static" else settings.alpha_true),
        trans=bodies["trans"],
        root_orient=bodies["root_orient"],
        pose_body=bodies["pose_body"].reshape(P, T, 63),
        betas=bodies["betas"],
        cam_R=scene.R_true.astype(np.float32),
        cam_t=scene.t_true.astype(np.float32),
    )
    (dest / "meta.json").write_text(json.dumps(meta, indent=2))
    return dest


def sequence_rng(seed: int, name: str) -> np.random.Generator:
    """The random stream of one sequence: a function of the seed and the name only."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _camera_kinds(cameras: Sequence[str]) -> list[str]:
    kinds = []
    for c in cameras:
        c = CAMERA_ALIASES.get(c, c)
        if c not in CAMERA_KINDS:
            raise ConfigError(f"unknown camera kind {c!r} (expected {CAMERA_KINDS} or handheld)")
        kinds.append(c)
    return kinds


def _select(motions: list, contains: Sequence[str], per_pattern: int | None, rng) -> list:
    """The motions whose source names contain one of ``contains`` (all if empty), at most
    ``per_pattern`` per string, drawn at random (a motion counts for the first string it
    matches)."""
    if not contains:
        return motions
    if per_pattern is None:
        return [m for m in motions if any(c in str(m.source) for c in contains)]
    chosen: list[int] = []
    for c in contains:
        matches = [i for i, m in enumerate(motions) if c in str(m.source) and i not in chosen]
        chosen += [matches[k] for k in sorted(rng.permutation(len(matches))[:per_pattern])]
    return [motions[i] for i in chosen]


def make_benchmark(
    mocap_paths: Sequence[str | Path] | str | Path,
    out_dir: str | Path,
    seed: int = 0,
    cameras: Sequence[str] = CAMERA_KINDS,
    people: int = 1,
    max_frames: int = 300,
    max_sequences: int | None = None,
    allow_train: bool = False,
    contains: Sequence[str] = (),
    per_pattern: int | None = None,
    occlusions: OcclusionSettings | None = None,
    body: BodyModel | None = None,
    guesses: str = "realistic",
    no_face: bool = False,
    variants: Sequence[str] = ("original",),
    one_camera: bool = False,
    overwrite: bool = False,
) -> Path:
    """Build a benchmark: every chosen motion group filmed by every camera kind.

    Args:
        mocap_paths: BVH files, folders of them or ``.tar.xz`` archives (evaluation split).
        out_dir: benchmark folder; one sub-folder per sequence, plus ``index.json``.
        seed: everything random derives from it.
        cameras: camera kinds (``static``, ``pan``, ``tracking``, ``orbit`` / ``handheld``).
        people: motions per scene, placed side by side under one camera.
        max_frames: frames kept from the start of each motion, after resampling to
            ``mocap.sources.MOTION_FPS`` (120 fps CMU files keep every 4th frame).
        max_sequences: most motion groups (each filmed by every camera); None: all.
        allow_train: accept training-split files.
        contains: keep motions whose file name contains one of these strings (all if empty).
        per_pattern: keep at most this many motions per ``contains`` string (a benchmark
            stratified by action); None: no limit.
        occlusions: occlusion settings (defaults if None).
        body: body model (the built-in default if None).
        guesses: quality of the per-frame SMPL guesses, a key of
            ``slahmr_opt.synth.guesses.GUESS_PRESETS`` (``realistic``, ``near-true``, ``none``).
            The guesses have their own random stream: every kind sees the same keypoints and
            cameras for the same seed.
        no_face: no face keypoints (detectors that give none, people seen from behind).
        variants: ``VARIANTS`` of every chosen motion group to film (``motion_variant``):
            ``reversed`` and ``mirrored`` make motions the priors' training data lacks.
        one_camera: film motion group ``g``'s ``k``-th variant with camera kind
            ``cameras[(g + 2 k) % len(cameras)]`` only (a set that covers every camera kind at
            a quarter of the cost) instead of with every kind.
        overwrite: replace an existing ``index.json`` (else refused before any work); the
            folder is held (``files.outputs.claimed_output``) while it is written.

    Returns:
        The path of ``index.json``, written last (atomically): a folder with one is complete.

    Raises:
        ConfigError: a setting out of range. InputError: a mocap file (named) is unusable.
        OutputError: ``out_dir`` is not writable, in use, or has an ``index.json``.
    """
    if isinstance(mocap_paths, (str, Path)):
        mocap_paths = [mocap_paths]
    check_selection(people=people, max_frames=max_frames, max_sequences=max_sequences,
                    per_pattern=per_pattern)  # fmt: skip
    kinds = _camera_kinds(cameras)
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or not variants:
        raise ConfigError(f"unknown motion variants {unknown} (expected some of {VARIANTS})")
    if guesses not in GUESS_PRESETS:
        raise ConfigError(f"unknown guess kind {guesses!r} (expected one of {list(GUESS_PRESETS)})")
    out = Path(out_dir)
    check_claimable(out, overwrite, "index.json")
    motions = list_motions(mocap_paths, allow_train)
    motions = _select(motions, contains, per_pattern, np.random.default_rng(seed))
    pick = np.random.default_rng(seed).permutation(len(motions))
    n_groups = len(motions) // people
    if max_sequences is not None:
        n_groups = min(n_groups, max_sequences)
    if n_groups == 0:
        raise InputError(", ".join(map(str, mocap_paths)),
                         f"{len(motions)} usable motions, {people} needed per scene")  # fmt: skip
    chosen = [motions[i] for i in pick[: n_groups * people]]
    groups = [chosen[g * people : (g + 1) * people] for g in range(n_groups)]
    for group in groups:
        if len({m.fps for m in group}) > 1:
            raise InputError(", ".join(str(m.source) for m in group),
                             "motions of one scene have different frame rates")  # fmt: skip
    with claimed_output(out, overwrite, "index.json"):
        return _film(out, groups, kinds, seed, people, max_frames, occlusions, body, guesses,
                     no_face, variants, one_camera)  # fmt: skip


def check_selection(**values: int | None) -> None:
    """``people``, ``max_frames``, ``max_sequences`` and ``per_pattern`` in range (ConfigError
    naming the flag otherwise)."""
    least = {"people": 1, "max_frames": 2, "max_sequences": 1, "per_pattern": 1}
    for key, value in values.items():
        if value is not None and value < least[key]:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(f"{flag} must be at least {least[key]}, got {value}")


def _film(out, groups, kinds, seed, people, max_frames, occlusions, body, guesses, no_face,
          variants, one_camera) -> Path:  # fmt: skip
    """Fit and film the motion groups into ``out`` (``make_benchmark``'s work)."""
    chosen = [m for g in groups for m in g]
    n_groups = len(groups)
    body = body or load_body_model(BodyConfig(), dtype=torch.float64)
    logger.info("fitting the body to %d motions", len(chosen))
    fits = fit_motions(body, chosen, max_frames)
    occ = occlusions or OcclusionSettings()
    entries = []
    variants = list(dict.fromkeys(variants))
    jobs = [
        (g, v, kind)
        for g in range(n_groups)
        for k, v in enumerate(variants)
        for kind in kinds
        if not one_camera or kind == kinds[(g + 2 * k) % len(kinds)]
    ]
    for g, variant, kind in tqdm(jobs, desc="benchmark sequences", unit="seq"):
        group = groups[g]
        stem = "+".join(Path(str(m.source)).stem for m in group)
        name = f"{g:03d}_{kind}_{stem}" + ("" if variant == "original" else f"~{variant}")
        rng = sequence_rng(seed, name)
        group_fits = [motion_variant(f, variant, body) for f in fits[g * people : (g + 1) * people]]
        bodies = place_side_by_side(group_fits)
        settings = synth.SynthSettings(camera=kind, guesses=GUESS_PRESETS[guesses])
        f64 = {k: torch.from_numpy(v) for k, v in bodies.items()}
        scene = synth.observe_bodies(
            body, *(f64[k] for k in ("root_orient", "trans", "pose_body", "betas")),
            settings, rng, fps=float(group[0].fps), guess_rng=sequence_rng(seed, name + "/guess"),
        )  # fmt: skip
        obs = add_occlusions(scene.obs, rng, occ)
        if no_face:
            obs = hide_keypoints(obs, COCO_FACE)
        if obs.smpl_guess is not None:  # occluded frames lose their guesses too
            few = (obs.kp2d[..., 2] > 0).sum(-1) < settings.guesses.min_keypoints
            guess = replace(obs.smpl_guess, valid=obs.smpl_guess.valid & ~few)
            obs = replace(obs, smpl_guess=guess)
        scene = replace(scene, obs=obs)
        T = bodies["trans"].shape[1]
        meta = {
            "name": name,
            "sources": [str(m.source) for m in group],
            "frames": [0, T],
            "fit_residual_mm": [float(f.residual_mm[:T].mean()) for f in group_fits],
            "seed": seed,
            "camera": kind,
            "variant": variant,
            "static": kind == "static",
            "people": people,
            "alpha_true": settings.alpha_true,
            "detected_frames": int(scene.obs.vis_mask.sum()),
            "guesses": guesses,
            "no_face": no_face,
            "fps": float(group[0].fps),
        }
        if obs.smpl_guess is not None:
            meta["guess_quality"] = guess_quality(
                body, obs.smpl_guess, scene.joints, scene.R_true, scene.t_true,
                f64["root_orient"], obs.vis_mask,
            )  # fmt: skip
        write_sequence(out / name, body, scene, bodies, settings, meta,
                       sequence_rng(seed, name + "/points"))  # fmt: skip
        entries.append({k: meta[k] for k in ("name", "camera", "variant", "people", "sources",
                                             "seed", "fps")}
                       | {"frames": T, "static": kind == "static"})  # fmt: skip
    index = {"seed": seed, "max_frames": max_frames, "cameras": kinds, "people": people,
             "variants": variants, "guesses": guesses, "no_face": no_face,
             "sequences": entries}  # fmt: skip
    return write_index(out, index)


def write_index(out: Path, index: dict) -> Path:
    """Write a benchmark's ``index.json`` atomically (``bench make``, ``bench make --video``)."""
    path = out / "index.json"
    write_atomic(path, lambda f: f.write(json.dumps(index, indent=2).encode()))
    logger.info("wrote %d sequences to %s", len(index["sequences"]), out)
    return path
