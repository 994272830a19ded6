"""The reference solver path (``solver.kind=theseus``: Theseus objects, CHOLMOD) against the
stacked loss and against Theseus' own sparse solver. Needs the ``theseus`` extra
(``pip install 'slahmr-opt[theseus]'``); skipped where it is not installed."""

import dataclasses  # noqa: F401

import pytest
import torch

th = pytest.importorskip("theseus", reason="the theseus extra is not installed")

from slahmr_opt.stages.block_cholesky import BlockHessianCholmodSolver  # noqa: E402
from slahmr_opt.stages.theseus_problem import (  # noqa: E402
    StepControlledLM,
    TheseusVariables,
    term_cost_functions,
)

from .test_stages import ALL, DT, WEIGHTS, setup  # noqa: E402, F401 (the module fixture)


def _objective(problem, params, optimize):
    """Theseus' objective of every weighted term over the ``optimize`` variables."""
    variables = TheseusVariables(params, problem.track_mask)
    objective = th.Objective(dtype=DT)
    for name, w in WEIGHTS.items():
        for cost in term_cost_functions(problem.terms[name], w, variables, optimize):
            objective.add(cost)
    return objective


def test_theseus_objective_equals_stacked_loss(setup):  # noqa: F811
    _, _, problem, params, _ = setup
    params = {k: v + 0.01 * torch.randn_like(v) for k, v in params.items()}
    objective = _objective(problem, params, ALL)
    total, _ = problem.loss(params, WEIGHTS)
    # Theseus' error metric is half the sum of squared weighted residuals.
    torch.testing.assert_close(2 * objective.error_metric()[0], total)


def test_pack_unpack_round_trip(setup):  # noqa: F811
    _, _, problem, params, _ = setup
    out = TheseusVariables(params, problem.track_mask).unpack(params)
    for k in params:
        torch.testing.assert_close(out[k], params[k], rtol=0, atol=0)


@pytest.mark.parametrize("optimize", [{"root_orient", "trans"}, ALL])
def test_jacobians_match_finite_differences(setup, optimize):  # noqa: F811
    """Forward-mode (few inputs) and reverse-mode (many) Jacobians against central differences."""
    _, _, problem, params, _ = setup
    variables = TheseusVariables(params, problem.track_mask)
    for name in ("kp2d", "joints_smooth"):
        cost = term_cost_functions(problem.terms[name], 1.0, variables, optimize)[3]
        jacobians, _ = cost.jacobians()
        for var, jac in zip(cost.optim_vars, jacobians):
            base = var.tensor.clone()
            numeric = torch.zeros_like(jac)
            for k in range(base.shape[1]):
                for sign in (1.0, -1.0):
                    shifted = base.clone()
                    shifted[0, k] += sign * 1e-6
                    var.update(shifted)
                    numeric[0, :, k] += sign * cost.error()[0] / 2e-6
            var.update(base)
            torch.testing.assert_close(jac, numeric, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("optimize", [{"root_orient", "trans"}, ALL])
def test_block_hessian_solver_matches_cholmod_aat(setup, optimize):  # noqa: F811
    """Same damped Gauss-Newton step as Theseus' CHOLMOD solver; J^T J equals the dense one."""
    import numpy as np
    import scipy.sparse as sp

    _, _, problem, params, _ = setup
    params = {k: v + 0.01 * torch.randn_like(v) for k, v in params.items()}
    objective = _objective(problem, params, optimize)
    th.Vectorize(objective)
    block = BlockHessianCholmodSolver(objective)
    reference = th.CholmodSparseSolver(objective)
    block.linearization.linearize()
    reference.linearization.linearize()
    lin, ref = block.linearization, reference.linearization
    for key in ("A_row_ptr", "A_col_ind", "cost_function_row_block_starts", "cost_function_stride"):
        np.testing.assert_array_equal(getattr(lin, key), getattr(ref, key))
    for mine, theirs in zip(lin.cost_function_block_pointers, ref.cost_function_block_pointers):
        np.testing.assert_array_equal(mine, theirs)
    torch.testing.assert_close(lin.A_val, ref.A_val, rtol=0, atol=0)
    A = sp.csr_matrix((lin.A_val[0].numpy(), lin.A_col_ind, lin.A_row_ptr)).toarray()
    A = torch.as_tensor(A)
    H, g = block._normal_equations()
    dense = sp.csc_matrix((H.numpy(), block.indices, block.indptr)).toarray()
    dense = torch.as_tensor(dense)
    torch.testing.assert_close(dense, A.T @ A)
    torch.testing.assert_close(g, A.T @ lin.b[0])
    for damping in (1e-3, 0.1, 10.0):
        torch.testing.assert_close(block.solve(damping), reference.solve(damping))
    # After a rejected step the linearization and J^T J are reused, not recomputed.
    A_val = lin.A_val
    lin.reuse_next = True
    lin.linearize()
    assert lin.A_val is A_val and block._normal_equations()[0] is H
    lin.linearize()
    assert lin.A_val is not A_val


def test_lm_does_not_stop_at_a_rejected_step():
    """``r(x) = 10 (x^2 - 1)`` from x = 0.1 with almost no damping: the first Gauss-Newton step
    overshoots to x = 5 and is rejected. Theseus' relative-decrease test would call the unchanged
    error converged (the step control before this fix stopped there, at x = 0.1); the damping
    grows instead until steps are accepted, and x reaches the root."""
    dt = torch.float64
    x = th.Vector(tensor=torch.tensor([[0.1]], dtype=dt), name="x")
    weight = th.ScaleCostWeight(torch.tensor(1.0, dtype=dt))
    objective = th.Objective(dtype=dt)

    def residual(optim_vars, aux_vars):
        return 10.0 * (optim_vars[0].tensor ** 2 - 1.0)

    objective.add(th.AutoDiffCostFunction([x], residual, 1, name="r", cost_weight=weight))
    lm = StepControlledLM(
        objective, linear_solver_cls=BlockHessianCholmodSolver, vectorize=True,
        max_iterations=50, rel_err_tolerance=1e-8, abs_err_tolerance=1e-12,
    )  # fmt: skip
    with torch.no_grad():
        lm.optimize(damping=1e-7)
    assert lm.num_rejected >= 1
    assert float(x.tensor) == pytest.approx(1.0, abs=1e-6)
