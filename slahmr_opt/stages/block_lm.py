"""Levenberg-Marquardt on the terms directly, with the Gauss-Newton matrix kept block-banded.

The variables are, per person-frame, the optimized per-frame variables (``D`` numbers of
``root_orient`` 3, ``trans`` 3, ``pose_body`` 63), per person the shape (``betas``), and for the
sequence the optimized globals (``log_alpha`` 1, ``floor`` 3). Every term element reads a few
frames ``t + o`` of one person, that person's shape and the globals. So ``J^T J`` is, per person,
block-banded in time: the band ``K`` is the largest frame distance inside one element (2 for the
motion prior's frame triples). It also has an arrow of columns that couple each frame to its
person's shape and to the globals. People are coupled only through the globals.

One linearization walks each term's elements in chunks. For each chunk it takes the residuals
and Jacobians (the term's analytic ``jac``, or forward/reverse autodiff of ``fn``) and the
per-element ``J^T J`` and ``J^T r``. It adds them into the band blocks, the arrow and the small
shape/global blocks, then drops the chunk: nothing the size of ``J`` lives beyond one chunk.
The per-element products are taken in the Jacobians' dtype and summed in float64. A float32
system that is not positive definite at the current damping (seen in stage 3 of
``tests/stages/test_evidence_guard.py``) is linearized again with float64 products, and so is
every later one of the stage: rounding must not count as a rejected step.

One damped step ``(J^T J + lambda I) dx = -J^T r`` takes three parts:
- per person, a banded Cholesky of the frame block (LAPACK ``pbtrf`` via
  ``scipy.linalg.solveh_banded``), solved for the gradient and the arrow's columns together;
- the Schur complement on the shapes and globals, a dense system of ``P * B + 4`` unknowns at most;
- back-substitution.
Time and memory are linear in person-frames. The step equals the one of a sparse Cholesky of the
whole system (``stages.block_cholesky``; tests compare them).

The damping ``lambda`` multiplies the identity, or the diagonal of ``J^T J`` clipped to
``[MIN_DIAGONAL, MAX_DIAGONAL]`` (``scaled``: Marquardt's scaling, as Ceres clips it).

A step that does not lower the loss is rejected and the linearization is kept. A damped system
that is not positive definite to working precision counts as a rejected step. Three rejections in
a row count as one iteration. The damping follows one of two rules:
- ``nielsen``: after an accepted step it is multiplied by ``max(1/3, 1 - (2 rho - 1)^3)``, where
  ``rho`` is the ratio of the actual to the predicted decrease of the loss; after rejections in
  a row by 2, 4, 8, ... (Madsen, Nielsen and Tingleff, "Methods for non-linear least squares
  problems", 2004, section 3.2);
- ``multiplicative``: an accepted step divides it by ``damping_down``, a rejected one multiplies
  it by ``damping_up`` (``theseus_problem.StepControlledLM``'s rule).
The stage converges when an accepted step lowers the loss by less than ``min_rel_decrease`` of it,
or when the damping reaches its maximum.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch
from torch import Tensor
from torch.func import jacfwd, jacrev, vmap

from slahmr_opt.costs.term import GLOBAL, PER_FRAME, Term

logger = logging.getLogger(__name__)

#: Jacobian entries per chunk of term elements (32 MB in float64).
CHUNK_ENTRIES = 1 << 22
#: Damping bounds (Theseus' LM's).
MIN_DAMPING, MAX_DAMPING = 1e-7, 1e7
#: Rejected steps in a row that count as one iteration (Theseus' rule).
MAX_REJECTS = 3
#: Clip of the diagonal that scaled damping multiplies (Ceres' ``min/max_lm_diagonal``).
MIN_DIAGONAL, MAX_DIAGONAL = 1e-6, 1e32


class LinearSolveError(RuntimeError):
    """The damped system is not positive definite to working precision."""


@dataclass
class Layout:
    """Where each optimized variable lives in the block system.

    Attributes:
        frame_cols: per-frame variable -> columns inside a frame block of size ``D``.
        num_betas: shape columns per person (0 when shape is not optimized).
        global_cols: global variable -> columns among the ``G`` global columns.
        row: (P, T) block row of each person-frame in the track mask, -1 elsewhere.
        person, frame: (N,) person and frame of each block row (grouped by person, frames rising).
        starts: (P + 1,) first block row of each person.
        band: the largest frame distance inside one term element.
    """

    frame_cols: dict[str, slice]
    num_betas: int
    global_cols: dict[str, slice]
    row: Tensor
    person: Tensor
    frame: Tensor
    starts: list[int]
    band: int

    @property
    def D(self) -> int:
        return sum(s.stop - s.start for s in self.frame_cols.values())

    @property
    def G(self) -> int:
        return sum(s.stop - s.start for s in self.global_cols.values())


def _columns(names: list[str], params: dict[str, Tensor]) -> dict[str, slice]:
    """Consecutive columns of the variables ``names``, each its last axis in ``params`` wide."""
    out, start = {}, 0
    for name in names:
        size = params[name].shape[-1]
        out[name] = slice(start, start + size)
        start += size
    return out


def make_layout(
    track_mask: Tensor, optimize: set[str], params: dict[str, Tensor], terms: list[Term]
) -> Layout:
    """The layout of ``optimize``'s variables (their sizes from ``params``) for ``terms`` over
    ``track_mask`` (P, T)."""
    person, frame = torch.nonzero(track_mask, as_tuple=True)
    row = torch.full(track_mask.shape, -1, dtype=torch.long)
    row[person, frame] = torch.arange(len(person))
    counts = torch.bincount(person, minlength=track_mask.shape[0])
    band = 0
    for term in terms:
        offsets = [i.offset for i in term.inputs if i.var in PER_FRAME and i.var in optimize]
        if offsets:
            band = max(band, max(offsets) - min(offsets))
    return Layout(
        frame_cols=_columns([v for v in PER_FRAME if v in optimize], params),
        num_betas=params["betas"].shape[-1] if "betas" in optimize else 0,
        global_cols=_columns([v for v in GLOBAL if v in optimize], params),
        row=row,
        person=person,
        frame=frame,
        starts=[0, *torch.cumsum(counts, 0).tolist()],
        band=band,
    )


@dataclass
class NormalEquations:
    """``J^T J`` and ``J^T r`` in the layout's blocks (float64).

    Attributes:
        frames: (N, K + 1, D, D) ``frames[i, k]`` is the block of rows i and columns i - k.
        arrow: (N, D, B + G) coupling of frame row i with its person's shape and the globals.
        shape: (P, B, B + G) each person's shape rows (against its shape, then the globals).
        globals: (G, G).
        g_frames, g_shape, g_globals: (N, D), (P, B), (G,) parts of ``J^T r``.
        exact: every product was taken in float64 (``linearize``).
    """

    frames: Tensor
    arrow: Tensor
    shape: Tensor
    globals: Tensor
    g_frames: Tensor
    g_shape: Tensor
    g_globals: Tensor
    exact: bool = False


def term_jacobians(term: Term, args: list[str], kw: dict[str, Tensor]):
    """``(r (m, dim), {arg: (m, dim, n_arg)})`` of ``term`` at the gathered inputs ``kw``: the
    term's analytic Jacobian, else forward-mode autodiff of ``fn`` per element when it has fewer
    inputs than residuals, reverse mode otherwise."""
    if term.jac is not None:
        return term.jac(frozenset(args), **kw)
    optim = {a: kw[a] for a in args}
    aux = {k: v for k, v in kw.items() if k not in optim}

    def single(o: dict[str, Tensor], a: dict[str, Tensor]) -> Tensor:
        inputs = {k: v[None] for k, v in (*o.items(), *a.items())}
        return term.fn(**inputs)[0]

    transform = jacfwd if sum(v.shape[-1] for v in optim.values()) < term.dim else jacrev
    return term.fn(**kw), vmap(transform(single))(optim, aux)


def linearize(
    terms: list[tuple[Term, float]], params: dict[str, Tensor], layout: Layout,
    exact: bool = False,
) -> NormalEquations:
    """``J^T J`` and ``J^T r`` of ``sum_terms weight * ||r||^2`` at ``params``, summed in float64.

    Each chunk's products are taken in its Jacobian's dtype (float32 halves their time) unless
    ``exact``, which takes them in float64: float32 products of near-singular blocks can make
    the damped system indefinite at small damping (``levenberg_marquardt`` then relinearizes)."""
    N, K1, D, B, G = len(layout.person), layout.band + 1, layout.D, layout.num_betas, layout.G
    P = len(layout.starts) - 1
    f64 = dict(dtype=torch.float64)
    ne = NormalEquations(
        frames=torch.zeros(N * K1, D, D, **f64),
        arrow=torch.zeros(N, D, B + G, **f64),
        shape=torch.zeros(P, B, B + G, **f64),
        globals=torch.zeros(G, G, **f64),
        g_frames=torch.zeros(N, D, **f64),
        g_shape=torch.zeros(P, B, **f64),
        g_globals=torch.zeros(G, **f64),
        exact=True,
    )
    for term, weight in terms:
        _add_term(ne, term, weight, params, layout, exact)
    ne.frames = ne.frames.view(N, K1, D, D)
    return ne


def _add_term(ne: NormalEquations, term: Term, weight: float, params, layout: Layout,
              exact: bool) -> None:  # fmt: skip
    frame_in = [i for i in term.inputs if i.var in layout.frame_cols]
    shape_in = [i for i in term.inputs if i.var == "betas" and layout.num_betas]
    global_in = [i for i in term.inputs if i.var in layout.global_cols]
    args = [i.arg for i in (*frame_in, *shape_in, *global_in)]
    if not args or term.num_elements == 0:
        return
    D, B, G, K1 = layout.D, layout.num_betas, layout.G, layout.band + 1
    offsets = sorted({i.offset for i in frame_in})
    F = len(offsets)
    cols = F * D + B + G
    frame_block = [slice(a * D, (a + 1) * D) for a in range(F)]
    step = max(1, CHUNK_ENTRIES // (term.dim * cols))
    root_w = weight**0.5
    for start in range(0, term.num_elements, step):
        idx = torch.arange(start, min(start + step, term.num_elements))
        r, jac = term_jacobians(term, args, term.gather(params, idx))
        dtype = torch.float64 if exact else r.dtype
        ne.exact = ne.exact and dtype == torch.float64
        J = _chunk_matrix(jac, frame_in, shape_in, global_in, offsets, layout, dtype)
        J.mul_(root_w)
        Js = J[:, :, F * D :]  # the shape and global columns
        Jtr = (J.transpose(1, 2) @ (r.to(dtype) * root_w)[..., None])[..., 0].double()
        person, frame = term.person[idx], term.frame[idx]
        rows = [layout.row[person, frame + o] for o in offsets]
        for a in range(F):  # only the blocks on and below the diagonal, and the arrow
            if (rows[a] < 0).any():
                raise ValueError(f"term {term.name} reads a frame outside the track")
            Ja_t = J[:, :, frame_block[a]].transpose(1, 2)
            lower = (Ja_t @ J[:, :, : (a + 1) * D]).double()
            ne.g_frames.index_add_(0, rows[a], Jtr[:, frame_block[a]])
            ne.arrow.index_add_(0, rows[a], (Ja_t @ Js).double())
            for b in range(a + 1):
                k = offsets[a] - offsets[b]
                if not torch.equal(rows[a] - rows[b], torch.full_like(rows[a], k)):
                    raise ValueError(f"term {term.name} spans frames missing from its track")
                ne.frames.index_add_(0, rows[a] * K1 + k, lower[:, :, frame_block[b]])
        if B or G:
            small = (Js.transpose(1, 2) @ Js).double()
            ne.shape.index_add_(0, person, small[:, :B])
            ne.g_shape.index_add_(0, person, Jtr[:, F * D : F * D + B])
            ne.globals += small[:, B:, B:].sum(0)
            ne.g_globals += Jtr[:, F * D + B :].sum(0)


def _chunk_matrix(jac, frame_in, shape_in, global_in, offsets, layout, dtype) -> Tensor:
    """(m, dim, F * D + B + G) one chunk's Jacobian in the layout's columns (frame blocks in
    ``offsets`` order, then the shape, then the globals), built by one concatenation."""
    m, dim = next(iter(jac.values())).shape[:2]
    zeros = lambda n: torch.zeros(m, dim, n, dtype=dtype)  # noqa: E731

    def block(inputs: list, cols: dict[str, slice]) -> list[Tensor]:
        parts = []
        for var, c in cols.items():
            found = [jac[i.arg] for i in inputs if i.var == var]
            parts.append(sum(found[1:], found[0]).to(dtype) if found else zeros(c.stop - c.start))
        return parts

    parts = []
    for o in offsets:
        parts += block([i for i in frame_in if i.offset == o], layout.frame_cols)
    if layout.num_betas:
        parts += block(shape_in, {"betas": slice(0, layout.num_betas)})
    parts += block(global_in, layout.global_cols)
    return torch.cat(parts, -1)


def lower_band(blocks: np.ndarray, damping: float | np.ndarray) -> np.ndarray:
    """LAPACK lower band storage ``ab[i - j, j] = A[i, j]`` of the symmetric block-banded matrix
    with lower blocks ``blocks[i, k] = A_(i, i-k)`` (n, K + 1, D, D), plus ``damping`` (a scalar
    or (n * D,)) on the diagonal."""
    n, K1, D, _ = blocks.shape
    ab = np.zeros((K1 * D, n * D))
    view = ab.reshape(K1 * D, n, D)  # [band row, block column, column inside the block]
    c = np.arange(D)
    for k in range(K1):
        for r in range(D):
            d = k * D + r - c  # band row of (row r of block row i, column c of block column i-k)
            ok = d >= 0
            view[d[ok], : n - k, c[ok]] = blocks[k:, k, r][:, ok].T
    ab[0] += damping
    return ab


def damping_diagonal(ne: NormalEquations, layout: Layout, scaled: bool) -> np.ndarray:
    """(N * D + P * B + G,) what the damping multiplies, in ``solve_step``'s layout: ones, or
    (``scaled``) the diagonal of ``J^T J`` clipped to ``[MIN_DIAGONAL, MAX_DIAGONAL]``."""
    B = layout.num_betas
    diagonal = np.concatenate([
        np.diagonal(ne.frames[:, 0].numpy(), axis1=1, axis2=2).ravel(),
        np.diagonal(ne.shape[:, :, :B].numpy(), axis1=1, axis2=2).ravel(),
        np.diagonal(ne.globals.numpy()),
    ])  # fmt: skip
    return np.clip(diagonal, MIN_DIAGONAL, MAX_DIAGONAL) if scaled else np.ones_like(diagonal)


def solve_step(ne: NormalEquations, layout: Layout, damping: float | np.ndarray) -> Tensor:
    """The flat solution ``x`` of ``(J^T J + diag(damping)) x = J^T r``: ``(N * D + P * B + G,)``
    laid out as frames, then shapes, then globals (the LM step is ``-x``); ``damping`` is a
    scalar or a vector in that layout."""
    N, D, B, G = len(layout.person), layout.D, layout.num_betas, layout.G
    P = len(layout.starts) - 1
    damping = np.broadcast_to(np.asarray(damping, dtype=np.float64), (N * D + P * B + G,))
    damp_frames = damping[: N * D].reshape(N, D)
    frames, arrow = ne.frames.numpy(), ne.arrow.numpy()
    g_frames = ne.g_frames.numpy()
    small = P * B + G
    S = np.zeros((small, small))
    rhs = np.concatenate([ne.g_shape.numpy().ravel(), ne.g_globals.numpy()])
    solved = []  # per person: its frame rows' Cholesky factor, gradient and arrow columns
    for p in range(P):
        a, b = layout.starts[p], layout.starts[p + 1]
        cols = np.r_[p * B : (p + 1) * B, P * B : small]
        S[np.ix_(cols[:B], cols)] += ne.shape[p].numpy()
        if D == 0 or b == a:
            solved.append(None)
            continue
        C = arrow[a:b].reshape((b - a) * D, B + G)
        g_p = g_frames[a:b].ravel()
        try:
            L = scipy.linalg.cholesky_banded(
                lower_band(frames[a:b], damp_frames[a:b].ravel()), overwrite_ab=True, lower=True,
                check_finite=False,
            )  # fmt: skip
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise LinearSolveError(f"banded Cholesky of person {p}: {exc}") from exc
        # C^T A^-1 [g, C] = (L^-1 C)^T L^-1 [g, C]: one forward substitution (LAPACK tbtrs), half
        # the work of solving with A for the B + G + 1 columns.
        Y, _ = scipy.linalg.lapack.dtbtrs(L, np.concatenate([g_p[:, None], C], 1), uplo="L",
                                          overwrite_b=1)
        S[np.ix_(cols, cols)] -= Y[:, 1:].T @ Y[:, 1:]
        rhs[cols] -= Y[:, 1:].T @ Y[:, 0]
        solved.append((cols, L, g_p, C))
    S[P * B :, P * B :] += ne.globals.numpy()
    # The shape rows' global columns were added above; mirror them into the global rows.
    for p in range(P):
        S[P * B :, p * B : (p + 1) * B] += ne.shape[p, :, B:].numpy().T
    S[np.diag_indices(small)] += damping[N * D :]
    x_small = np.zeros(small)
    if small:
        try:
            x_small = scipy.linalg.solve(S, rhs, assume_a="pos", check_finite=False)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise LinearSolveError(f"shape and global block: {exc}") from exc
    x_frames = np.zeros((N, D))
    for p, item in enumerate(solved):
        if item is not None:
            cols, L, g_p, C = item
            a, b = layout.starts[p], layout.starts[p + 1]
            x_p = scipy.linalg.cho_solve_banded((L, True), g_p - C @ x_small[cols],
                                                check_finite=False)  # fmt: skip
            x_frames[a:b] = x_p.reshape(b - a, D)
    return torch.as_tensor(np.concatenate([x_frames.ravel(), x_small]))


def apply_step(params: dict[str, Tensor], x: Tensor, layout: Layout, scale: float = -1.0):
    """A copy of ``params`` moved by ``scale * x`` (``solve_step``'s layout)."""
    out = dict(params)
    N, D, B = len(layout.person), layout.D, layout.num_betas
    P = len(layout.starts) - 1
    x_frames = x[: N * D].view(N, D)
    for var, c in layout.frame_cols.items():
        out[var] = params[var].clone()
        out[var][layout.person, layout.frame] += scale * x_frames[:, c].to(params[var])
    if B:
        out["betas"] = params["betas"] + scale * x[N * D : N * D + P * B].view(P, B).to(
            params["betas"]
        )
    g = x[N * D + P * B :]
    for var, c in layout.global_cols.items():
        out[var] = params[var] + scale * g[c].view(params[var].shape).to(params[var])
    return out


@dataclass
class LMResult:
    """Outcome of ``levenberg_marquardt``."""

    params: dict[str, Tensor]
    iterations: int
    status: str  # converged, max_iterations or failed
    damping: float
    rejected: int
    message: str = ""


def levenberg_marquardt(
    terms: list[tuple[Term, float]],
    loss: Callable[[dict[str, Tensor]], float],
    params: dict[str, Tensor],
    layout: Layout,
    *,
    iterations: int,
    damping: float,
    damping_up: float,
    damping_down: float,
    min_rel_decrease: float,
    rule: str = "nielsen",
    scaled: bool = False,
    on_iteration: Callable[[int, dict[str, Tensor], float, int], None] | None = None,
) -> LMResult:
    """Minimise ``loss`` (the weighted sum of ``terms``) from ``params`` (module docstring);
    ``rule`` is ``nielsen`` or ``multiplicative``, ``scaled`` scales the damping by the diagonal.

    ``on_iteration(iteration, params, damping, rejected)`` is called after every iteration
    (1-based), the converging one included."""
    err = loss(params)
    ne: NormalEquations | None = None
    rejected = rejects_in_row = it = 0
    growth = 2.0  # the nielsen rule's factor after the next rejection
    status = "max_iterations"
    exact = False  # float64 products, from the first indefinite float32 system on
    while it < iterations:
        if ne is None:
            ne = linearize(terms, params, layout, exact)
            diagonal = damping_diagonal(ne, layout, scaled)
            gradient = np.concatenate([ne.g_frames.numpy().ravel(), ne.g_shape.numpy().ravel(),
                                       ne.g_globals.numpy()])  # fmt: skip
        try:
            x = solve_step(ne, layout, damping * diagonal)
            trial = apply_step(params, x, layout)
        except LinearSolveError as exc:
            if not ne.exact:  # rounding, not the problem: the same step from float64 products
                logger.info("float32 products made the damped system indefinite (%s): float64 "
                            "products from here on", exc)  # fmt: skip
                exact, ne = True, None
                continue
            if damping >= MAX_DAMPING:
                return LMResult(params, it, "failed", damping, rejected, str(exc))
            trial, new_err = None, float("nan")  # rejected: more damping
        else:
            new_err = loss(trial)
        if new_err < err:  # NaN is rejected
            converged = abs(err - new_err) <= min_rel_decrease * abs(err) or new_err < 1e-12
            if rule == "nielsen":
                # The model's decrease: |r|^2 - |r - J x|^2 = x^T g + x^T diag(lambda) x.
                xn = x.numpy()
                predicted = float(xn @ gradient + (damping * diagonal * xn) @ xn)
                rho = (err - new_err) / max(predicted, 1e-300)
                damping *= max(1 / 3, 1 - (2 * rho - 1) ** 3)
                growth = 2.0
            else:
                damping /= damping_down
            damping = max(damping, MIN_DAMPING)
            params, err, ne, rejects_in_row = trial, new_err, None, 0
        else:
            rejected += 1
            rejects_in_row += 1
            if rule == "nielsen":
                damping, growth = damping * growth, 2 * growth
            else:
                damping *= damping_up
            damping = min(damping, MAX_DAMPING)
            converged = damping >= MAX_DAMPING
            if rejects_in_row < MAX_REJECTS and not converged:
                continue
            rejects_in_row = 0
        it += 1
        if on_iteration is not None:
            on_iteration(it, params, damping, rejected)
        if converged:
            status = "converged"
            break
    return LMResult(params, it, status, damping, rejected)
