"""The one stage runner: executes any ``StageConfig`` with Levenberg-Marquardt (``lm``: on the
block-banded normal equations, ``stages.block_lm``; ``theseus``: the same steps through Theseus'
cost functions and a sparse Cholesky, the reference), torch L-BFGS or Adam.

All solvers minimise the same objective, ``sum_terms weight * sum ||r||^2`` over the same
pure residual functions (``slahmr_opt.costs``); only the variables named in ``stage.optimize``
change. Every iteration's per-term losses go to the ``LossHistory``.
"""

import logging
import time
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from slahmr_opt.config import DampingScale, StageConfig
from slahmr_opt.history import LossHistory
from slahmr_opt.stages.block_lm import levenberg_marquardt, make_layout
from slahmr_opt.stages.problem import Problem

logger = logging.getLogger(__name__)


@dataclass
class StageResult:
    """Outcome of one stage.

    Attributes:
        name: stage name.
        params: parameters after the stage (stacked tensors, see ``stages.problem``).
        status: ``converged``, ``max_iterations`` or ``failed``.
        message: human-readable detail.
        iterations: iterations performed.
        seconds: wall time.
        initial_loss, final_loss: total weighted loss before and after.
        damping: LM's final damping (None for the torch solvers).
    """

    name: str
    params: dict[str, Tensor]
    status: str
    message: str
    iterations: int
    seconds: float
    initial_loss: float
    final_loss: float
    damping: float | None = None


def _record(history, stage, problem, params, weights, iteration, parts=None, **info) -> float:
    """Add the loss of ``params`` (its ``(total, parts)`` if already computed) to the history."""
    if parts is None:
        with torch.no_grad():
            parts = problem.loss(params, weights)
    total, parts = parts
    history.add(stage, iteration, float(total), {k: float(v) for k, v in parts.items()}, **info)
    return float(total)


def active_weights(stage: StageConfig) -> dict[str, float]:
    """The stage's terms with a positive weight, and their weights."""
    return {k: float(v) for k, v in stage.weights.items() if v > 0}


def run_stage(
    stage: StageConfig,
    problem: Problem,
    params: dict[str, Tensor],
    history: LossHistory,
    progress: bool = True,
    first_iteration: int = 0,
) -> StageResult:
    """Run one stage from ``params`` (not modified) and return the new parameters.

    ``first_iteration`` > 0 continues a stage run in rounds (``stages.evidence``): the history
    numbers its iterations on from there and keeps the stage's clock."""
    optimize = problem.optimized_keys(stage.optimize)
    weights = active_weights(stage)
    start = time.perf_counter()
    if first_iteration == 0:
        history.start_stage()
        initial = _record(history, stage.name, problem, params, weights, 0)
    else:
        with torch.no_grad():
            initial = float(problem.loss(params, weights)[0])
    runner = {"lm": _run_lm, "theseus": _run_theseus}.get(stage.solver.kind, _run_torch)
    bar = tqdm(
        total=stage.solver.iterations, desc=f"stage {stage.name}", disable=not progress, leave=False
    )
    try:
        new_params, iters, status, message, damping = runner(
            stage, problem, params, optimize, weights, history, bar, first_iteration
        )
    finally:
        bar.close()
    final = history.final(stage.name).total
    seconds = time.perf_counter() - start
    logger.info(
        "stage %s (%s): %d iterations, %.1f s, loss %.4g -> %.4g (%s)",
        stage.name,
        stage.solver.kind,
        iters,
        seconds,
        initial,
        final,
        status,
    )
    return StageResult(
        stage.name, new_params, status, message, iters, seconds, initial, final, damping
    )


def _run_lm(stage, problem, params, optimize, weights, history, bar, first):
    terms = [
        (problem.terms[name], weight)
        for name, weight in weights.items()
        if any(i.var in optimize for i in problem.terms[name].inputs)
        and problem.terms[name].num_elements
    ]
    if not terms:
        return params, 0, "converged", "no term touches the optimized variables", None
    layout = make_layout(problem.track_mask, optimize, params, [t for t, _ in terms])

    last = {}  # the newest evaluated parameters and their loss: the history reuses it

    def loss(current):
        last["params"], last["loss"] = current, problem.loss(current, weights)
        return float(last["loss"][0])

    def on_iter(it, current, damping, rejected):
        known = last["loss"] if last.get("params") is current else None
        _record(history, stage.name, problem, current, weights, first + it, known,
                damping=damping, rejected=rejected)  # fmt: skip
        bar.update(1)

    solver = stage.solver
    with torch.no_grad():
        out = levenberg_marquardt(
            terms,
            loss,
            params,
            layout,
            iterations=solver.iterations,
            damping=solver.damping,
            damping_up=solver.damping_up,
            damping_down=solver.damping_down,
            min_rel_decrease=solver.min_rel_decrease,
            rule=solver.damping_rule,
            scaled=solver.damping_scale == DampingScale.diagonal,
            on_iteration=on_iter,
        )
    if out.status == "failed":
        return out.params, out.iterations, "failed", out.message, out.damping
    message = f"LM, final damping {out.damping:.2g}, {out.rejected} rejected steps"
    return out.params, out.iterations, out.status, message, out.damping


def _run_theseus(stage, problem, params, optimize, weights, history, bar, first):
    # Theseus and CHOLMOD (scikit-sparse) are needed by this reference path only.
    import theseus as th

    from slahmr_opt.stages.block_cholesky import BlockHessianCholmodSolver
    from slahmr_opt.stages.theseus_problem import (
        StepControlledLM,
        TheseusVariables,
        term_cost_functions,
    )

    variables = TheseusVariables(params, problem.track_mask)
    objective = th.Objective(dtype=params["trans"].dtype)
    for name, weight in weights.items():
        for cost in term_cost_functions(problem.terms[name], weight, variables, optimize):
            objective.add(cost)
    if not objective.cost_functions:
        return params, 0, "converged", "no term touches the optimized variables", None
    solver = stage.solver
    lm = StepControlledLM(
        objective,
        linear_solver_cls=BlockHessianCholmodSolver,
        vectorize=True,
        max_iterations=solver.iterations,
        rel_err_tolerance=solver.min_rel_decrease,
        abs_err_tolerance=1e-12,
        damping_up=solver.damping_up,
        damping_down=solver.damping_down,
    )

    def on_iter(optimizer, info, delta, it):
        _record(
            history,
            stage.name,
            problem,
            variables.unpack(params),
            weights,
            first + it + 1,
            damping=optimizer._damping,
            rejected=optimizer.num_rejected,
        )
        bar.update(1)

    with torch.no_grad():
        info = lm.optimize(damping=solver.damping, end_iter_callback=on_iter)
    new_params = variables.unpack(params)
    status = str(info.status[0]).split(".")[-1].lower()
    if status == "converged":  # Theseus stops before the callback of the converging step
        _record(
            history,
            stage.name,
            problem,
            new_params,
            weights,
            history.final(stage.name).iteration + 1,
            damping=lm._damping,
            rejected=lm.num_rejected,
        )
    iters = history.final(stage.name).iteration - first
    if status == "fail":
        return (
            new_params,
            iters,
            "failed",
            "the linear solver failed (system not positive definite)",
            lm._damping,
        )
    return new_params, iters, status, f"LM, final damping {lm._damping:.2g}", lm._damping


def _run_torch(stage, problem, params, optimize, weights, history, bar, first):
    solver = stage.solver
    work = {k: v.detach().clone() for k, v in params.items()}
    leaves = [work[k].requires_grad_(True) for k in sorted(optimize)]
    if solver.kind == "lbfgs":
        opt = torch.optim.LBFGS(
            leaves, lr=solver.lr or 1.0, max_iter=solver.lbfgs_inner, line_search_fn="strong_wolfe"
        )
    else:
        opt = torch.optim.Adam(leaves, lr=solver.lr or 0.01)
    evaluations = 0

    def closure():
        nonlocal evaluations
        evaluations += 1
        opt.zero_grad()
        total, _ = problem.loss(work, weights)
        total.backward()
        return total

    prev = history.final(stage.name).total
    status, message, it = "max_iterations", "", 0
    for it in range(1, solver.iterations + 1):
        opt.step(closure)
        current = _record(
            history, stage.name, problem, work, weights, first + it, evaluations=evaluations
        )
        bar.update(1)
        if not torch.isfinite(torch.tensor(current)):
            return params, it, "failed", "the loss became NaN or infinite", None
        if solver.kind == "lbfgs" and abs(prev - current) <= solver.min_rel_decrease * abs(prev):
            status, message = "converged", "relative decrease below threshold"
            break
        prev = current
    new_params = {k: v.detach() for k, v in work.items()}
    return (
        new_params, it, status, message or f"{solver.kind}, {evaluations} loss evaluations", None
    )
