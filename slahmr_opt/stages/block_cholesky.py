"""Sparse Cholesky of the Gauss-Newton matrix assembled from dense per-cost-function blocks.

Theseus' ``CholmodSparseSolver`` hands the stacked Jacobian to CHOLMOD's ``cholesky_AAt``, which
forms ``J^T J`` with scalar sparse products: for the smooth stage (rows of 66 residuals over 138
columns per frame pair) that product is most of an LM iteration. Here each group of same-shaped
cost functions (consecutive in the linearization, as Theseus' vectorization produces them) is a
dense ``(G, rows, cols)`` view of the Jacobian values, ``J^T J`` and ``J^T r`` are batched matrix
products, and a scatter index computed once places them into the sparse matrix whose symbolic
analysis is also done once. The system solved is the same, ``(J^T J + lambda I) dx = -J^T r``.

``ReusableSparseLinearization`` skips re-linearizing after a rejected LM step (the variables did
not change), and the solver then reuses ``J^T J`` and only refactors with the new damping.
"""

import numpy as np
import scipy.sparse as sp
import theseus as th
import torch
from sksparse.cholmod import CholmodError, analyze
from torch import Tensor


class ReusableSparseLinearization(th.SparseLinearization):
    """``SparseLinearization`` that keeps its values when ``reuse_next`` is set (once), with the
    index arrays built by numpy (Theseus builds them as Python lists of every Jacobian entry)."""

    def __init__(self, objective: th.Objective, ordering=None, **kwargs):
        th.Linearization.__init__(self, objective, ordering)
        starts = self.var_start_cols
        block_pointers, row_block_starts, strides, col_blocks, row_ends = [], [], [], [], []
        entries = 0
        for cost in objective._get_jacobians_iter():
            first = [starts[self.ordering.index_of(v.name)] for v in cost.optim_vars]
            dofs = [v.dof() for v in cost.optim_vars]
            order = np.argsort(first, kind="stable")
            pointers = np.empty(len(first), dtype=int)
            pointers[order] = np.cumsum([0] + [dofs[i] for i in order])[:-1]
            cols = np.concatenate([np.arange(first[i], first[i] + dofs[i]) for i in order])
            rows = cost.dim()
            block_pointers.append(pointers)
            row_block_starts.append(entries)
            strides.append(len(cols))
            col_blocks.append(np.tile(cols, rows))
            row_ends.append(entries + len(cols) * np.arange(1, rows + 1))
            entries += len(cols) * rows
        self.cost_function_block_pointers = block_pointers
        self.cost_function_row_block_starts = np.array(row_block_starts, dtype=int)
        self.cost_function_stride = np.array(strides, dtype=int)
        self.A_row_ptr = np.concatenate([[0], *row_ends]).astype(int)
        self.A_col_ind = np.concatenate(col_blocks).astype(int)
        self.A_val = None
        self.b = None
        self._Atb = None
        self._AtA_diag = None
        self.detached_hessian = False
        self.reuse_next = False

    def _linearize_hessian_impl(self, _detach_hessian: bool = False):
        if self.reuse_next and self.A_val is not None:
            self.reuse_next = False
            return
        super()._linearize_hessian_impl(_detach_hessian=_detach_hessian)


class BlockHessianCholmodSolver(th.LinearSolver):
    """Damped Gauss-Newton solve with ``J^T J`` built from dense blocks (batch size 1, CPU).

    Args:
        objective: the Theseus objective (batch size 1).
        linearization_cls: ignored; always ``ReusableSparseLinearization``.
        damping: default scalar damping ``lambda``.
    """

    def __init__(self, objective: th.Objective, linearization_cls=None, linearization_kwargs=None,
                 damping: float = 0.0, **kwargs):  # fmt: skip
        super().__init__(objective, ReusableSparseLinearization, linearization_kwargs, **kwargs)
        if objective.batch_size != 1:
            raise ValueError(f"expected an objective of batch size 1, got {objective.batch_size}")
        self._damping = damping
        self._groups = _cost_groups(self.linearization)
        self._build_pattern()
        self._cached_A_val: Tensor | None = None

    def _build_pattern(self) -> None:
        """CSC pattern of ``J^T J`` (symbolic analysis once) and, per group, the data position
        of every entry of its dense blocks."""
        lin = self.linearization
        n = self.num_cols = lin.num_cols
        starts = np.asarray(lin.var_start_cols)
        dofs = np.diff(np.append(starts, n))
        nv = len(starts)
        col_var = np.repeat(np.arange(nv), dofs)
        col_local = np.arange(n) - starts[col_var]
        # Each element's variables, in its column order: (G, variables per element).
        group_vars = [
            col_var[g["cols"]][col_local[g["cols"]] == 0].reshape(len(g["cols"]), -1)
            for g in self._groups
        ]
        keys = np.unique(np.concatenate([_pair_keys(v, nv).ravel() for v in group_vars]))
        col_of_pair, row_of_pair = np.divmod(keys, nv)  # sorted by column var, then row var
        pairs_per_var = np.bincount(col_of_pair, minlength=nv)
        first_pair = np.concatenate([[0], np.cumsum(pairs_per_var)[:-1]])
        row_dofs = dofs[row_of_pair]
        cum = np.cumsum(row_dofs) - row_dofs
        pair_offset = cum - cum[first_pair[col_of_pair]]  # first row of the pair in its column
        col_count = np.bincount(col_of_pair, weights=row_dofs, minlength=nv).astype(np.int64)
        self.indptr = np.concatenate([[0], np.cumsum(col_count[col_var])])
        self.indices = np.concatenate([
            np.tile(np.concatenate([np.arange(starts[r], starts[r] + dofs[r])
                                    for r in row_of_pair[first_pair[v]: first_pair[v] + k]]),
                    dofs[v])
            for v, k in enumerate(pairs_per_var)
        ])  # fmt: skip
        for g, v in zip(self._groups, group_vars):
            cols = g["cols"]  # (G, s)
            k = np.cumsum(col_local[cols] == 0, axis=1) - 1  # element variable of each column
            off = pair_offset[np.searchsorted(keys, _pair_keys(v, nv))]  # (G, row var, col var)
            e = np.arange(len(cols))[:, None, None]
            pos = (self.indptr[cols][:, None, :] + off[e, k[:, :, None], k[:, None, :]]
                   + col_local[cols][:, :, None])  # fmt: skip
            g["pos"] = torch.as_tensor(pos.ravel())
            g["cols_t"] = torch.as_tensor(cols.ravel())
        pattern = sp.csc_matrix((np.ones(len(self.indices)), self.indices, self.indptr), (n, n))
        self._factor = analyze(pattern)

    def _normal_equations(self) -> tuple[Tensor, Tensor]:
        """``J^T J`` values (nnz,) and ``-J^T r`` (n,), float64."""
        lin = self.linearization
        if lin.A_val is self._cached_A_val:
            return self._H, self._g
        A, b = lin.A_val[0].detach().cpu().double(), lin.b[0].detach().cpu().double()
        H = A.new_zeros(len(self.indices))
        g_vec = A.new_zeros(self.num_cols)
        for grp in self._groups:
            num, rows, s = grp["count"], grp["rows"], grp["stride"]
            J = A[grp["a_start"] : grp["a_start"] + num * rows * s].view(num, rows, s)
            r = b[grp["b_start"] : grp["b_start"] + num * rows].view(num, rows, 1)
            Jt = J.transpose(1, 2)
            H.index_add_(0, grp["pos"], (Jt @ J).reshape(-1))
            g_vec.index_add_(0, grp["cols_t"], (Jt @ r).reshape(-1))
        self._cached_A_val, self._H, self._g = lin.A_val, H, g_vec
        return H, g_vec

    def solve(self, damping: float | None = None, **kwargs) -> Tensor:
        if damping is not None and not isinstance(damping, float):
            raise ValueError("BlockHessianCholmodSolver only supports scalar damping.")
        damping = damping or self._damping
        H, g_vec = self._normal_equations()
        n = self.num_cols
        matrix = sp.csc_matrix((H.numpy(), self.indices, self.indptr), shape=(n, n))
        try:
            self._factor.cholesky_inplace(matrix, beta=damping)
        except CholmodError as exc:  # Theseus turns RuntimeError into a failed status
            raise RuntimeError(f"CHOLMOD: {exc}") from exc
        x = torch.as_tensor(self._factor(g_vec.numpy()))
        A_val = self.linearization.A_val
        return x.to(device=A_val.device, dtype=A_val.dtype)[None]


def _pair_keys(variables: np.ndarray, nv: int) -> np.ndarray:
    """(G, V, V) keys ``col_var * nv + row_var`` of the variable pairs of each element."""
    return variables[:, None, :] * nv + variables[:, :, None]


def _cost_groups(lin: th.SparseLinearization) -> list[dict]:
    """Runs of consecutive cost functions with equal (rows, stride), as dense Jacobian views."""
    dims = [cf.dim() for cf in lin.objective._get_jacobians_iter()]
    starts = lin.cost_function_row_block_starts
    strides = lin.cost_function_stride
    groups: list[dict] = []
    b_start = 0
    for f, (rows, stride) in enumerate(zip(dims, strides)):
        last = groups[-1] if groups else None
        if last is not None and last["rows"] == rows and last["stride"] == stride:
            last["count"] += 1
        else:
            groups.append(dict(a_start=int(starts[f]), b_start=b_start, rows=rows,
                               stride=int(stride), count=1))  # fmt: skip
        b_start += rows
    col_ind = lin.A_col_ind
    for g in groups:
        block = g["rows"] * g["stride"]
        first = g["a_start"] + block * np.arange(g["count"])
        g["cols"] = col_ind[first[:, None] + np.arange(g["stride"])]  # (G, s)
    return groups
