"""The evidence guard of a motion-prior stage: the prior may smooth a person's motion, never
trade that person's 2D evidence away.

A learned motion prior is biased towards the motions it was trained on; on a motion it has not
seen (a walk backwards, a kick) it can pull the body away from what the camera saw. The guard
runs the stage in rounds (``StageConfig.evidence_round`` iterations) and measures, per person,
the root-mean-square 2D keypoint residual (of the ``kp2d`` term) against its value at the
stage's start. A person whose RMS rose by more than ``StageConfig.evidence_margin`` gets its
prior weight quartered (the motion term's per-window ``scale`` halves) before the next round; a
person still above the margin when the stage ends gets its start back (its per-frame variables
and shape; the shared floor stays). Rounds stop when the solver converges with nobody above the
margin and the window cap (below) has settled, or the stage's iterations are spent.

The motion prior's own uncertainty, per window (``StageConfig.prior_window_cap``): after each
round, a window whose unweighted squared prior residual ``|r|^2`` exceeds the cap (the prior's
held-out real motion scores a median of 48 and a 99th percentile of 560) has its weight lowered to
``cap / |r|^2`` for the next round, so a transition the prior calls improbable even after the
prior has smoothed it costs at most the cap: iteratively reweighted least squares of a bounded
cost. The first round runs at full weight, because stage 2's jittery bodies start far outside the
prior's data (a kernel applied from the start never pulls them in). The capped weights have
settled when no window's factor moved by more than ``CAP_SETTLED`` in a round, or when the round
lowered the loss by less than the stage's ``min_rel_decrease``: the reweighting no longer moves
the solution (on long clips a few of a thousand windows keep moving a little, round after round).

The per-person report (``person_report``) says whether the prior or the evidence dominated.
"""

import logging
from dataclasses import replace

import torch
from torch import Tensor

from slahmr_opt.config import StageConfig
from slahmr_opt.costs.term import PER_FRAME, Term
from slahmr_opt.history import LossHistory
from slahmr_opt.stages.problem import Problem
from slahmr_opt.stages.runner import StageResult, active_weights, run_stage

logger = logging.getLogger(__name__)

#: Factor of the prior's residual scale per violation (the weight falls by its square).
SCALE_STEP = 0.5
#: The window cap has settled when no window's factor moved by more than this in a round (or the
#: round barely changed the loss); until then the stage goes on (a converged round under the old
#: weights is not the end).
CAP_SETTLED = 0.05


def person_energy(term: Term, params: dict[str, Tensor], num_people: int) -> Tensor:
    """(P,) unweighted ``sum ||r||^2`` of ``term``'s elements per person."""
    out = params["trans"].new_zeros(num_people)
    if term.num_elements == 0:
        return out
    with torch.no_grad():
        per_element = term.residual(params).square().flatten(1).sum(1)
    return out.index_add(0, term.person, per_element.to(out))


def window_cap_factors(term: Term, params: dict[str, Tensor], cap: float) -> Tensor:
    """(N, 1) residual factor of each window of the motion term: ``sqrt(cap / |r|^2)`` where the
    window's unweighted squared residual ``|r|^2`` exceeds ``cap``, else 1 (module docstring)."""
    with torch.no_grad():
        scaled = term.residual(params).square().flatten(1).sum(1, keepdim=True)
    squared = scaled / term.data["scale"].square()
    return (cap / squared.clamp_min(cap)).sqrt()


def _restore(params: dict[str, Tensor], start: dict[str, Tensor], people: list[int]) -> dict:
    out = dict(params)
    for var in (*PER_FRAME, "betas"):
        out[var] = params[var].clone()
        out[var][people] = start[var][people]
    return out


def run_guarded_stage(
    stage: StageConfig,
    problem: Problem,
    params: dict[str, Tensor],
    history: LossHistory,
    progress: bool = True,
) -> tuple[StageResult, list[dict]]:
    """Run a motion-prior stage under the evidence guard (module docstring).

    Returns:
        The stage's result over all rounds and ``person_report``'s rows.
    """
    prior, kp2d = problem.terms["motion_prior"], problem.terms["kp2d"]
    P = params["trans"].shape[0]
    margin = stage.evidence_margin
    prior.data["scale"] = torch.ones_like(prior.data["scale"])
    start_energy = person_energy(kp2d, params, P)
    start_params = params
    solver = stage.solver
    done, rounds, lowered = 0, 0, torch.zeros(P, dtype=torch.long)
    capped = torch.zeros(P, dtype=torch.long)
    factors = torch.ones_like(prior.data["scale"])
    total_seconds, result = 0.0, None
    while done < solver.iterations:
        n = min(stage.evidence_round, solver.iterations - done)
        damping = result.damping if result is not None and result.damping else solver.damping
        sub = replace(stage, solver=replace(solver, iterations=n, damping=damping))
        step = run_stage(sub, problem, params, history, progress, first_iteration=done)
        if step.status == "failed":
            return replace(step, iterations=done + step.iterations), []
        initial = result.initial_loss if result is not None else step.initial_loss
        total_seconds += step.seconds
        done += max(step.iterations, 1)
        rounds += 1
        params = step.params
        result = replace(step, iterations=done, seconds=total_seconds, initial_loss=initial)
        over = person_energy(kp2d, params, P) > (1 + margin) ** 2 * start_energy
        previous = factors
        if stage.prior_window_cap > 0:
            factors = window_cap_factors(prior, params, stage.prior_window_cap)
            capped = torch.zeros_like(capped).index_add_(0, prior.person,
                                                         (factors[:, 0] < 1).long())  # fmt: skip
        if bool(over.any()):
            lowered += over.long()
            logger.info("stage %s, round %d: the 2D evidence of %d person(s) rose above the "
                        "%.0f %% margin; their prior weight is lowered", stage.name, rounds,
                        int(over.sum()), 100 * margin)  # fmt: skip
        guard = SCALE_STEP ** lowered.to(factors.dtype)  # (P,) the guard's residual factor
        prior.data["scale"] = guard[prior.person, None] * factors
        moving = int(((factors - previous).abs() >= CAP_SETTLED).sum())
        decrease = (step.initial_loss - step.final_loss) / max(abs(step.initial_loss), 1e-12)
        settled = moving == 0 or decrease < solver.min_rel_decrease
        logger.debug("stage %s, round %d (%s): %d window(s) capped, %d still moving",
                     stage.name, rounds, step.status, int((factors < 1).sum()), moving)  # fmt: skip
        if not bool(over.any()) and settled and step.status == "converged":
            break
    end_energy = person_energy(kp2d, params, P)
    reset = torch.nonzero(end_energy > (1 + margin) ** 2 * start_energy)[:, 0].tolist()
    if reset:
        logger.info("stage %s: person(s) %s keep their start (2D evidence still above the "
                    "margin)", stage.name, reset)  # fmt: skip
        params = _restore(params, start_params, reset)
        with torch.no_grad():
            final = float(problem.loss(params, active_weights(stage))[0])
        result = replace(result, params=params, final_loss=final)
    report = person_report(problem, start_params, params, start_energy, lowered, reset, capped)
    for row in report:
        logger.info("stage %s, person %d: RMS 2D residual x%.2f of the start, prior weight x%.3g%s"
                    ", %d window(s) capped (%s dominated)", stage.name, row["person"],
                    row["kp2d_rms_ratio"], row["prior_weight_factor"],
                    ", reset" if row["reset"] else "", row["windows_capped"],
                    row["dominated"])  # fmt: skip
    return result, report


def person_report(
    problem: Problem,
    start: dict[str, Tensor],
    end: dict[str, Tensor],
    start_energy: Tensor,
    lowered: Tensor,
    reset: list[int],
    capped: Tensor,
) -> list[dict]:
    """Per person (index into the tracks): 2D energy at the start and the end (and the ratio of
    their square roots, the RMS residuals the margin bounds), the prior's final weight factor
    from the guard (``SCALE_STEP^2`` per violation in ``lowered``, P), the prior's energy at the
    end, the number of windows whose weight the cap lowered in the last round (``capped``, P),
    and ``dominated``: ``prior`` if the guard had to lower the prior's weight or reset the
    person, else ``evidence``."""
    P = start["trans"].shape[0]
    prior, kp2d = problem.terms["motion_prior"], problem.terms["kp2d"]
    end_energy = person_energy(kp2d, end, P)
    prior_energy = person_energy(prior, end, P)
    rows = []
    for p in range(P):
        rows.append({
            "person": p,
            "kp2d_start": float(start_energy[p]),
            "kp2d_end": float(end_energy[p]),
            "kp2d_rms_ratio": float((end_energy[p] / start_energy[p].clamp_min(1e-12)).sqrt()),
            "prior_weight_factor": SCALE_STEP ** (2 * int(lowered[p])),
            "prior_energy": float(prior_energy[p]),
            "reset": p in reset,
            "windows_capped": int(capped[p]),
            "dominated": "prior" if (int(lowered[p]) > 0 or p in reset) else "evidence",
        })  # fmt: skip
    return rows
