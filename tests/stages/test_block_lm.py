"""The block-banded Levenberg-Marquardt (``stages.block_lm``): its damped Gauss-Newton step equals
the sparse Cholesky step of the Theseus path (``stages.block_cholesky``) on problems with every kind
of variable and term (band 2 from the motion prior and acceleration, shapes, the camera scale, the
floor, tracks of different lengths, analytic and autodiff Jacobians), and its loop rejects steps
that do not lower the loss instead of stopping there."""

import dataclasses

import pytest
import torch

th = pytest.importorskip("theseus", reason="the theseus extra is not installed")

from slahmr_opt.costs.contacts import build_contact_terms  # noqa: E402
from slahmr_opt.costs.motion_prior import build_motion_prior_term  # noqa: E402
from slahmr_opt.costs.term import Input, Term  # noqa: E402
from slahmr_opt.history import LossHistory  # noqa: E402
from slahmr_opt.init.floor import FloorPlane, floor_reference  # noqa: E402
from slahmr_opt.stages.block_cholesky import BlockHessianCholmodSolver  # noqa: E402
from slahmr_opt.stages.block_lm import (  # noqa: E402
    MIN_DIAGONAL,
    apply_step,
    damping_diagonal,
    levenberg_marquardt,
    linearize,
    make_layout,
    solve_step,
)
from slahmr_opt.stages.runner import run_stage  # noqa: E402
from slahmr_opt.stages.theseus_problem import TheseusVariables, term_cost_functions  # noqa: E402
from slahmr_priors.motion_cvae import MotionCVAE  # noqa: E402

from .test_stages import DT, WEIGHTS, setup  # noqa: E402, F401 (the module fixture)

FULL = {"root_orient", "trans", "pose_body", "betas", "log_alpha", "floor"}


@pytest.fixture(scope="module")
def problem_3(setup):  # noqa: F811
    """The stage tests' two people (one track cut short) with the motion prior and the contact
    and floor terms added: every variable kind, band 2."""
    _, body, problem, params, _ = setup
    mask = problem.track_mask.clone()
    mask[1, 9:] = False
    normal = torch.nn.functional.normalize(torch.tensor([0.1, 1.0, -0.2], dtype=DT), dim=0)
    ref = floor_reference(FloorPlane(normal, -0.9))
    gen = torch.Generator().manual_seed(1)
    contacts = torch.rand(*mask.shape, 4, generator=gen, dtype=DT)
    terms = {name: dataclasses.replace(t) for name, t in problem.terms.items()}
    prior = MotionCVAE.load()
    terms["motion_prior"] = build_motion_prior_term(mask, body, prior, ref, 30.0, DT, sigma=10.0)
    for t in build_contact_terms(mask, body, contacts, ref, DT):
        terms[t.name] = t
    keep = mask[terms["kp2d"].person, terms["kp2d"].frame]
    for name in ("kp2d", "pose_prior", "init_pose"):  # per-frame terms: only frames in the track
        t = terms[name]
        terms[name] = dataclasses.replace(
            t, person=t.person[keep], frame=t.frame[keep],
            data={k: v[keep] for k, v in t.data.items()},
        )  # fmt: skip
    for name in ("joints_smooth", "joints_accel"):
        t = terms[name]
        inside = mask[t.person, t.frame + (2 if name == "joints_accel" else 1)]
        terms[name] = dataclasses.replace(
            t, person=t.person[inside], frame=t.frame[inside],
            data={k: v[inside] for k, v in t.data.items()},
        )  # fmt: skip
    weights = {**WEIGHTS, "motion_prior": 0.01, "contact_slide": 100.0, "contact_floor": 10.0,
               "floor_penetration": 100.0}  # fmt: skip
    gen = torch.Generator().manual_seed(2)
    params = {k: v + 0.01 * torch.randn(v.shape, dtype=DT, generator=gen)
              for k, v in params.items()}  # fmt: skip
    params["floor"] = torch.tensor([[0.02, -0.01, 0.03]], dtype=DT)
    return terms, weights, mask, params


def _theseus_step(terms, weights, mask, params, optimize, damping):
    """The Theseus path's step, written into a copy of ``params``."""
    variables = TheseusVariables(params, mask)
    objective = th.Objective(dtype=DT)
    for name, w in weights.items():
        for cost in term_cost_functions(terms[name], w, variables, optimize):
            objective.add(cost)
    th.Vectorize(objective)
    solver = BlockHessianCholmodSolver(objective)
    solver.linearization.linearize()
    delta = solver.solve(damping)
    objective.retract_vars_sequence(delta, solver.linearization.ordering)
    return variables.unpack(params)


@pytest.mark.parametrize(
    "optimize",
    [
        {"root_orient", "trans"},
        {"root_orient", "trans", "pose_body", "betas"},
        FULL,
    ],
    ids=["root", "body", "all"],
)
@pytest.mark.parametrize("jacobians", ["analytic", "autodiff"])
def test_step_equals_the_sparse_cholesky_step(problem_3, optimize, jacobians):
    terms, weights, mask, params = problem_3
    if jacobians == "autodiff":
        terms = {k: dataclasses.replace(t, jac=None) for k, t in terms.items()}
    active = [(terms[n], w) for n, w in weights.items()]
    layout = make_layout(mask, optimize, params, [t for t, _ in active])
    assert layout.band == 2
    ne = linearize(active, params, layout)
    for damping in (1e-4, 1e-2, 10.0):
        mine = apply_step(params, solve_step(ne, layout, damping), layout)
        theirs = _theseus_step(terms, weights, mask, params, optimize, damping)
        for key in FULL:
            step_mine, step_theirs = mine[key] - params[key], theirs[key] - params[key]
            if key not in optimize:
                assert torch.equal(step_mine, torch.zeros_like(step_mine))
            scale = step_theirs.abs().max().clamp_min(1e-12)
            assert (step_mine - step_theirs).abs().max() <= 1e-6 * scale, key


def _dense(ne, layout):
    """``J^T J`` and ``J^T r`` of the normal equations as a dense matrix and vector, in
    ``solve_step``'s layout."""
    N, K1, D, _ = ne.frames.shape
    B, G, P = layout.num_betas, layout.G, len(layout.starts) - 1
    n = N * D + P * B + G
    A = torch.zeros(n, n, dtype=torch.float64)

    def put(rows: slice, cols: slice, block) -> None:  # a block and its mirror
        A[rows, cols] = block
        A[cols, rows] = block.T

    globals_ = slice(N * D + P * B, n)
    for i in range(N):
        p = int(layout.person[i])
        frame = slice(i * D, (i + 1) * D)
        for k in range(K1):
            if i - k >= layout.starts[p]:
                put(frame, slice((i - k) * D, (i - k + 1) * D), ne.frames[i, k])
        put(frame, slice(N * D + p * B, N * D + (p + 1) * B), ne.arrow[i, :, :B])
        put(frame, globals_, ne.arrow[i, :, B:])
    for p in range(P):
        shape = slice(N * D + p * B, N * D + (p + 1) * B)
        put(shape, shape, ne.shape[p, :, :B])
        put(shape, globals_, ne.shape[p, :, B:])
    A[globals_, globals_] = ne.globals
    g = torch.cat([ne.g_frames.flatten(), ne.g_shape.flatten(), ne.g_globals])
    return A, g


@pytest.mark.parametrize("scaled", [False, True], ids=["identity", "diagonal"])
def test_step_equals_the_dense_solve(problem_3, scaled):
    """``solve_step`` with a damping vector, the identity's or Marquardt's clipped diagonal,
    equals a dense solve of ``(J^T J + diag(lambda)) x = J^T r``. One column is made one that no
    residual reads (its row and column of ``J^T J`` zeroed), so the clip matters."""
    terms, weights, mask, params = problem_3
    active = [(terms[n], w) for n, w in weights.items()]
    layout = make_layout(mask, FULL, params, [t for t, _ in active])
    ne = linearize(active, params, layout)
    assert ne.exact  # float64 terms: float64 products without asking
    j = 7  # a pose_body column of the first person's first frame (block row 0)
    ne.frames[0, 0, j], ne.frames[0, 0, :, j] = 0.0, 0.0
    ne.frames[1, 1, :, j], ne.frames[2, 2, :, j], ne.arrow[0, j], ne.g_frames[0, j] = 0, 0, 0, 0
    A, g = _dense(ne, layout)
    assert torch.equal(A[j], torch.zeros_like(A[j]))
    diagonal = damping_diagonal(ne, layout, scaled)
    if scaled:
        assert diagonal[j] == MIN_DIAGONAL
        used = torch.diagonal(A) > 0
        torch.testing.assert_close(torch.as_tensor(diagonal)[used], torch.diagonal(A)[used])
    for damping in (1e-4, 1e-2, 10.0):
        lam = torch.as_tensor(damping * diagonal)
        expected = torch.linalg.solve(A + torch.diag(lam), g)
        mine = solve_step(ne, layout, damping * diagonal)
        assert (mine - expected).abs().max() <= 1e-6 * expected.abs().max()


def test_step_is_linear_in_person_frames(problem_3):
    """Nothing outside the tracks moves; the frame blocks beyond a track's end stay empty."""
    terms, weights, mask, params = problem_3
    active = [(terms[n], w) for n, w in weights.items()]
    layout = make_layout(mask, FULL, params, [t for t, _ in active])
    ne = linearize(active, params, layout)
    assert ne.frames.shape == (int(mask.sum()), 3, 69, 69)
    out = apply_step(params, solve_step(ne, layout, 1e-2), layout)
    assert torch.equal(out["trans"][~mask], params["trans"][~mask])
    assert not torch.equal(out["trans"][mask], params["trans"][mask])


def test_a_term_across_a_gap_in_a_track_is_refused(problem_3):
    terms, _, mask, params = problem_3
    gap = mask.clone()
    gap[0, 5] = False
    layout = make_layout(gap, {"trans"}, params, [terms["joints_smooth"]])
    with pytest.raises(ValueError, match="outside the track"):
        linearize([(terms["joints_smooth"], 1.0)], params, layout)


def _scalar_problem(fn, x0: float):
    """A one-residual term ``fn(x)`` of the single global variable ``log_alpha`` from ``x0``:
    the term, the parameters and their layout."""
    term = Term(
        name="r",
        fn=fn,
        inputs=(Input("x", "log_alpha"),),
        person=torch.zeros(1, dtype=torch.long),
        frame=torch.zeros(1, dtype=torch.long),
        dim=1,
    )
    params = {
        "log_alpha": torch.tensor([[x0]], dtype=DT),
        "betas": torch.zeros(1, 10, dtype=DT),
        "trans": torch.zeros(1, 1, 3, dtype=DT),
    }
    layout = make_layout(torch.ones(1, 1, dtype=torch.bool), {"log_alpha"}, params, [term])
    return term, params, layout


@pytest.mark.parametrize("rule", ["nielsen", "multiplicative"])
@pytest.mark.parametrize("scaled", [False, True], ids=["identity", "diagonal"])
def test_lm_does_not_stop_at_a_rejected_step(rule, scaled):
    """``r(x) = 10 (x^2 - 1)`` from x = 0.1 with almost no damping: the first Gauss-Newton step
    overshoots to x = 5 and is rejected; the damping grows until steps are accepted, and x
    reaches the root instead of stopping where the rejected step left it (both damping rules,
    with and without scaling)."""
    term, params, layout = _scalar_problem(lambda x: 10.0 * (x**2 - 1.0), 0.1)
    calls = []
    out = levenberg_marquardt(
        [(term, 1.0)],
        lambda p: float(term.value(p, 1.0)),
        params,
        layout,
        iterations=50,
        damping=1e-7,
        damping_up=10.0,
        damping_down=5.0,
        min_rel_decrease=1e-8,
        rule=rule,
        scaled=scaled,
        on_iteration=lambda it, *_: calls.append(it),
    )
    assert out.rejected >= 1 and out.status == "converged"
    assert float(out.params["log_alpha"]) == pytest.approx(1.0, abs=1e-6)
    assert calls == list(range(1, out.iterations + 1))


@pytest.mark.parametrize("scaled", [False, True], ids=["identity", "diagonal"])
def test_nielsen_gain_ratio_is_one_on_a_linear_problem(scaled):
    """``r(x) = 3 x - 6``: the quadratic model is exact, so the gain ratio is 1 and every accepted
    step multiplies the damping by exactly 1/3 (a wrong predicted decrease would not)."""
    term, params, layout = _scalar_problem(lambda x: 3.0 * x - 6.0, 0.5)
    dampings = []
    out = levenberg_marquardt(
        [(term, 1.0)], lambda p: float(term.value(p, 1.0)), params, layout, iterations=3,
        damping=30.0, damping_up=10.0, damping_down=5.0, min_rel_decrease=0.0, rule="nielsen",
        scaled=scaled, on_iteration=lambda it, p, damping, rejected: dampings.append(damping),
    )  # fmt: skip
    assert out.rejected == 0
    assert dampings == pytest.approx([10.0, 10.0 / 3, 10.0 / 9], rel=1e-9)
    x = float(out.params["log_alpha"])
    assert 0.5 < x < 2.0  # damped steps toward the root, not past it


def test_a_stage_follows_the_theseus_path(setup):  # noqa: F811
    """Whole LM stages: the block LM and the Theseus reference take the same iterations and end
    at the same loss and bodies."""
    _, _, problem, params, cfg = setup
    smooth = cfg.stages[1]
    out = {}
    for kind in ("lm", "theseus"):  # the Theseus path's rule
        solver = dataclasses.replace(smooth.solver, kind=kind, iterations=6,
                                     damping_rule="multiplicative", damping_scale="identity")
        stage = dataclasses.replace(smooth, solver=solver)
        out[kind] = run_stage(stage, problem, params, LossHistory(), progress=False)
    assert out["lm"].iterations == out["theseus"].iterations
    assert out["lm"].final_loss < 0.5 * out["lm"].initial_loss
    assert out["lm"].final_loss == pytest.approx(out["theseus"].final_loss, rel=1e-8)
    for key in ("root_orient", "trans", "pose_body", "betas"):
        torch.testing.assert_close(out["lm"].params[key], out["theseus"].params[key],
                                   rtol=1e-6, atol=1e-8)  # fmt: skip


def _float32_problem():
    """A nonlinear float32 term over two frames' poses, one frame's translation, the shape and
    the camera scale of two people (tracks of 12 and 8 frames): band 1, an arrow, a global."""
    gen = torch.Generator().manual_seed(3)
    A = torch.randn(40, 63 + 63 + 3 + 10 + 1, generator=gen) / 6
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[1, 8:] = False
    person, frame = torch.nonzero(mask[:, 1:] & mask[:, :-1], as_tuple=True)

    def fn(p0, p1, t0, b, a):
        return 10 * torch.tanh(torch.cat([p0, p1, t0, b, a], -1) @ A.T) - 1

    term = Term(name="f32", fn=fn, person=person, frame=frame, dim=40, inputs=(
        Input("p0", "pose_body"), Input("p1", "pose_body", 1), Input("t0", "trans"),
        Input("b", "betas"), Input("a", "log_alpha")))  # fmt: skip
    params = {
        "pose_body": 0.3 * torch.randn(2, 12, 63, generator=gen),
        "trans": torch.randn(2, 12, 3, generator=gen),
        "root_orient": torch.zeros(2, 12, 3),
        "betas": torch.randn(2, 10, generator=gen),
        "log_alpha": torch.zeros(1, 1),
    }
    optimize = {"pose_body", "trans", "betas", "log_alpha"}
    return term, params, make_layout(mask, optimize, params, [term])


def test_float32_products_match_float64_products():
    """A float32 term's ``J^T J`` is multiplied in float32 and summed in float64 (``exact``
    multiplies in float64): the two agree to float32 rounding, and so do their steps (at damping
    1: the toy system has more unknowns than residuals)."""
    term, params, layout = _float32_problem()
    fast, exact = (linearize([(term, 0.5)], params, layout, exact=e) for e in (False, True))
    assert not fast.exact and exact.exact and fast.frames.dtype == torch.float64
    for key in ("frames", "arrow", "shape", "globals", "g_frames", "g_shape", "g_globals"):
        a, b = getattr(fast, key), getattr(exact, key)
        assert (a - b).abs().max() <= 1e-5 * b.abs().max(), key
    assert not torch.equal(fast.frames, exact.frames)  # the products were float32
    steps = [solve_step(ne, layout, 1.0) for ne in (fast, exact)]
    assert (steps[0] - steps[1]).norm() <= 1e-4 * steps[1].norm()


def test_an_indefinite_float32_system_is_solved_again_in_float64(monkeypatch):
    """When the float32 products make the damped system indefinite (forced here), the stage
    relinearizes with float64 products and keeps them: the same iterations and result as a
    run in float64 throughout, no rejected step counted for the rounding."""
    import slahmr_opt.stages.block_lm as block_lm

    term, params, layout = _float32_problem()
    real_solve, real_linearize = block_lm.solve_step, block_lm.linearize
    modes = []

    def flaky_solve(ne, layout, damping):
        if not ne.exact:
            raise block_lm.LinearSolveError("forced: indefinite in float32")
        return real_solve(ne, layout, damping)

    def run(linearize):
        modes.clear()

        def counted(terms, params, layout, exact=False):
            ne = linearize(terms, params, layout, exact)
            modes.append(ne.exact)
            return ne

        monkeypatch.setattr(block_lm, "linearize", counted)
        return levenberg_marquardt(
            [(term, 0.5)], lambda p: float(term.value(p, 0.5)), params, layout, iterations=8,
            damping=1e-2, damping_up=10.0, damping_down=5.0, min_rel_decrease=1e-6,
        )  # fmt: skip

    monkeypatch.setattr(block_lm, "solve_step", flaky_solve)
    fallback = run(real_linearize)
    fallback_modes = list(modes)
    always = run(lambda terms, params, layout, exact: real_linearize(terms, params, layout, True))
    assert fallback_modes[0] is False and all(fallback_modes[1:]) and len(fallback_modes) > 2
    assert (fallback.iterations, fallback.rejected) == (always.iterations, always.rejected)
    assert fallback.iterations >= 2
    for key in ("pose_body", "trans", "betas", "log_alpha"):
        torch.testing.assert_close(fallback.params[key], always.params[key], rtol=0, atol=0)
