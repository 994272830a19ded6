"""Start the fit from another method's bodies: ``obs = apply_initializer(obs, "wham:PATH")``.

The other method's people (``inputs.initializers``: WHAM, TRACE, GVHMR, TRAM, SLAHMR) replace the
tracker's per-frame SMPL guesses (``Observations.smpl_guess``) of the tracks they match;
``initialize_bodies`` then lifts them to the world with our cameras, as it does PHALP's.

* Frames: a person's ``frames`` are video frames; observation frame ``t`` is video frame
  ``obs.frame_offset + t`` (``load_observations`` crops to the tracked window).
* Camera: each method assumed its own intrinsics (WHAM and GVHMR: focal = image diagonal; TRACE:
  a 50 degree field of view; TRAM: its calibrated focal; SLAHMR: ours). A body is kept at the
  *pixel* where the method saw its pelvis, and its depth is scaled by the focal ratio
  ``f_ours / f_tool``, so it keeps its image size: ``Z' = Z f_o / f_t``, ``X' = (u - c_o) Z' / f_o``
  with ``u = f_t X / Z + c_t``. Orientations are kept as they are in the camera frame (the ray
  through the pelvis turns by a few degrees at most when the focal lengths differ).
* Pelvis, not ``transl``: the guess is ``transl_c = pelvis_c - pelvis0`` with ``pelvis0`` the rest
  pelvis of *our* body model at zero betas (see ``initializers.common``).
* Shape: the tool's betas are stored in the guess but ``initialize_bodies`` starts betas at zero
  (no tool's shape space is our body's).
* Matching: for each (our track, tool person) pair, the median pixel distance between the
  person's pelvis and the track's hip mid-point over the frames both have (at least
  ``MIN_COMMON_FRAMES``); Hungarian assignment (``scipy.optimize.linear_sum_assignment``);
  pairs farther than ``max_pixel_dist`` (default 5% of the image diagonal) are not matched.
  A matched track takes the person's guesses on the person's frames only (its other frames are
  interpolated by ``initialize_bodies``); unmatched tracks keep their own guesses.
"""

import logging
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from slahmr_opt.body import BodyConfig, BodyModel, load_body_model
from slahmr_opt.inputs.initializers import ToolPerson, parse_init_spec, read_initializer
from slahmr_opt.types import Observations, SMPLGuess

log = logging.getLogger(__name__)

HIP_KEYPOINTS = {"coco17": (11, 12), "op25": (9, 12)}
"""Left/right hip keypoints of each keypoint layout (their mid-point is compared to the pelvis)."""
MIN_COMMON_FRAMES = 5
"""A track and a person must share this many frames (with both hips detected) to be compared."""
MAX_PIXEL_FRACTION = 0.05
"""Default matching threshold, as a fraction of the image diagonal."""


@dataclass
class Match:
    """One track matched to one person of the other method.

    Attributes:
        track: index of our track.
        person: index of the tool's person.
        pixels: median pelvis-to-hip distance over the shared frames, pixels.
        frames: number of shared frames.
    """

    track: int
    person: int
    pixels: float
    frames: int


def pelvis_pixels(person: ToolPerson) -> np.ndarray:
    """(N, 2) pixel position of the person's pelvis in the tool's own camera."""
    fx, fy, cx, cy = person.intrins.T
    x, y, z = person.pelvis_c.T
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = np.stack([fx * x / z + cx, fy * y / z + cy], -1)
    uv[z <= 0] = np.nan
    return uv


def to_our_camera(person: ToolPerson, intrins: np.ndarray) -> np.ndarray:
    """(N, 3) pelvis in our camera: same pixel, depth scaled by ``f_ours / f_tool``.

    Args:
        person: the tool's person.
        intrins: (N, 4) our ``[fx, fy, cx, cy]`` at the person's frames.
    """
    uv = pelvis_pixels(person)
    depth = person.pelvis_c[:, 2] * intrins[:, 0] / person.intrins[:, 0]
    x = (uv[:, 0] - intrins[:, 2]) * depth / intrins[:, 0]
    y = (uv[:, 1] - intrins[:, 3]) * depth / intrins[:, 1]
    return np.stack([x, y, depth], -1)


def _in_window(person: ToolPerson, offset: int, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the person inside the observation window, and their observation frames."""
    t = person.frames - offset
    rows = np.nonzero((t >= 0) & (t < num_frames))[0]
    return rows, t[rows]


def match_people(
    obs: Observations, people: list[ToolPerson], offset: int, max_pixel_dist: float
) -> list[Match]:
    """Assign tool people to our tracks by pelvis-to-hip pixel distance (see module docstring)."""
    hips = list(HIP_KEYPOINTS[obs.kp_format])
    kp = obs.kp2d.double().numpy()
    have_hips = (kp[..., hips, 2] > 0).all(-1) & obs.vis_mask.numpy()
    hip_px = kp[..., hips, :2].mean(-2)
    P, Q = obs.num_people, len(people)
    cost = np.full((P, Q), np.inf)
    shared = np.zeros((P, Q), int)
    for q, person in enumerate(people):
        rows, t = _in_window(person, offset, obs.num_frames)
        uv = pelvis_pixels(person)[rows]
        for p in range(P):
            ok = have_hips[p, t] & np.isfinite(uv).all(-1)
            shared[p, q] = int(ok.sum())
            if shared[p, q] >= MIN_COMMON_FRAMES:
                cost[p, q] = float(np.median(np.linalg.norm(uv[ok] - hip_px[p, t[ok]], axis=-1)))
    finite = np.where(np.isfinite(cost), cost, 1e12)
    matches = []
    for p, q in zip(*linear_sum_assignment(finite), strict=True):
        if cost[p, q] <= max_pixel_dist:
            matches.append(Match(int(p), int(q), float(cost[p, q]), int(shared[p, q])))
    return matches


def _rest_pelvis(body: BodyModel | BodyConfig | None) -> np.ndarray:
    """(3,) pelvis of our body model at zero betas and zero pose."""
    model = body if isinstance(body, BodyModel) else load_body_model(body or BodyConfig())
    zeros = torch.zeros(1, 3, dtype=model.dtype)
    with torch.no_grad():
        out = model(torch.zeros(1, model.num_betas, dtype=model.dtype), zeros,
                    torch.zeros(1, 21, 3, dtype=model.dtype), zeros)  # fmt: skip
    return out.joints[0, 0].double().numpy()


def _empty_guess(P: int, T: int, num_betas: int) -> SMPLGuess:
    return SMPLGuess(
        global_orient_c=torch.zeros(P, T, 3),
        body_pose=torch.zeros(P, T, 21, 3),
        betas=torch.zeros(P, T, num_betas),
        transl_c=torch.zeros(P, T, 3),
        valid=torch.zeros(P, T, dtype=torch.bool),
    )


def _merged_guess(obs: Observations, num_betas: int, pelvis0: np.ndarray) -> SMPLGuess:
    """A copy of the observations' guess (or an empty one) with room for ``num_betas`` betas,
    its translations relative to our body's rest pelvis ``pelvis0`` (``rest_pelvis`` None)."""
    P, T = obs.num_people, obs.num_frames
    old = obs.smpl_guess
    if old is None:
        return _empty_guess(P, T, num_betas)
    nb = max(num_betas, old.betas.shape[-1])
    betas = torch.zeros(P, T, nb, dtype=old.betas.dtype)
    betas[..., : old.betas.shape[-1]] = old.betas
    transl = old.transl_c.clone()
    if old.rest_pelvis is not None:
        transl += old.rest_pelvis - torch.from_numpy(pelvis0).to(transl.dtype)
    return SMPLGuess(
        global_orient_c=old.global_orient_c.clone(),
        body_pose=old.body_pose.clone(),
        betas=betas,
        transl_c=transl,
        valid=old.valid.clone(),
    )


def apply_initializer(
    obs: Observations,
    spec: str,
    body: BodyModel | BodyConfig | None = None,
    max_pixel_dist: float | None = None,
) -> Observations:
    """``obs`` with the SMPL guesses of the tracks that ``spec``'s people match replaced.

    Args:
        obs: observations from ``load_observations``.
        spec: ``"KIND:PATH"``, KIND an ``inputs.initializers.INIT_KINDS`` key.
        body: the body model the fit will use (its rest pelvis places the guesses); None: the
            built-in default (``BodyConfig()``).
        max_pixel_dist: matching threshold in pixels (default 5% of the image diagonal).

    Returns:
        A copy of ``obs`` with a new ``smpl_guess`` and ``sources["init"] = spec``.

    Raises:
        InputError: a bad spec, or a missing or malformed file (names it).
    """
    kind, path = parse_init_spec(spec)
    offset = obs.frame_offset
    h, w = obs.cameras.image_size
    people = read_initializer(kind, path, (h, w), frame_offset=offset)
    if max_pixel_dist is None:
        max_pixel_dist = MAX_PIXEL_FRACTION * float(np.hypot(h, w))
    matches = match_people(obs, people, offset, max_pixel_dist)
    pelvis0 = _rest_pelvis(body)
    guess = _merged_guess(obs, max(p.betas.shape[1] for p in people), pelvis0)
    intrins = obs.cameras.intrins.double().numpy()
    for m in matches:
        person = people[m.person]
        rows, t = _in_window(person, offset, obs.num_frames)
        person = _rows(person, rows)
        _write_guess(guess, m.track, t, person, to_our_camera(person, intrins[t]) - pelvis0)
        track = obs.track_mask[m.track]
        log.info("--init %s: track %s <- %s person %s (%.1f px median over %d frames; guesses "
                 "on %d of its %d track frames)", kind, obs.track_ids[m.track], kind,
                 person.person_id, m.pixels, m.frames, int((guess.valid[m.track] & track).sum()),
                 int(track.sum()))  # fmt: skip
    _log_unmatched(obs, people, matches, f"--init {kind}", max_pixel_dist)
    return replace(obs, smpl_guess=guess, sources={**obs.sources, "init": f"{kind}:{path}"})


def _write_guess(
    guess: SMPLGuess, p: int, t: np.ndarray, person: ToolPerson, transl_c: np.ndarray
) -> None:
    """Replace track ``p``'s guesses by the person's (frames ``t``; the others become invalid)."""
    t = torch.from_numpy(t)
    guess.valid[p] = False
    guess.valid[p, t] = True
    guess.global_orient_c[p, t] = _tensor(person.global_orient_c, guess.global_orient_c)
    guess.body_pose[p, t] = _tensor(person.body_pose, guess.body_pose)
    guess.transl_c[p, t] = _tensor(transl_c, guess.transl_c)
    nb = min(person.betas.shape[1], guess.betas.shape[-1])
    guess.betas[p, t] = 0.0
    guess.betas[p, t, :nb] = _tensor(person.betas[:, :nb], guess.betas)


def _tensor(value: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(value)).to(like.dtype)


def _log_unmatched(
    obs: Observations, people: list[ToolPerson], matches: list[Match], what: str, max_px: float
) -> None:
    matched_tracks = {m.track for m in matches}
    matched_people = {m.person for m in matches}
    for p in range(obs.num_people):
        if p not in matched_tracks:
            log.warning("%s: no person matches track %s (within %.0f px); it keeps the tracker's "
                        "guesses", what, obs.track_ids[p], max_px)  # fmt: skip
    for q, person in enumerate(people):
        if q not in matched_people:
            log.info("%s: person %s matches no track; not used", what, person.person_id)


def _rows(person: ToolPerson, rows: np.ndarray) -> ToolPerson:
    """The person restricted to ``rows``."""
    return ToolPerson(
        person_id=person.person_id,
        frames=person.frames[rows],
        global_orient_c=person.global_orient_c[rows],
        body_pose=person.body_pose[rows],
        betas=person.betas[rows],
        pelvis_c=person.pelvis_c[rows],
        intrins=person.intrins[rows],
        model=person.model,
    )
