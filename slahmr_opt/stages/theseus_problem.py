"""The one place where stacked parameter tensors meet Theseus variables and cost functions.

Packing: every per-frame variable of every person-frame inside a track is its own ``th.Vector``
(``root_orient``, ``trans``: 3; ``pose_body``: 63), ``betas`` is one vector per person,
``log_alpha`` and ``floor`` one each for the sequence. The objective has batch size 1: all people
share one world, one floor and one camera scale. Each term element becomes one cost function on
exactly the variables it touches, so the Gauss-Newton system is block-banded in time plus the
small per-person and global blocks, and Theseus' vectorization evaluates all elements of a term
in one batch. Terms with an analytic
Jacobian (``Term.jac``) become ``TermCost``s; the others ``th.AutoDiffCostFunction``s.
"""

import functools
import math

import theseus as th
import torch
from torch import Tensor
from torch.func import jacfwd, vmap

from slahmr_opt.costs.term import PER_FRAME, Term


class TheseusVariables:
    """Theseus vectors for the parameters of the person-frames in ``track_mask``."""

    def __init__(self, params: dict[str, Tensor], track_mask: Tensor):
        self.person, self.frame = torch.nonzero(track_mask, as_tuple=True)
        self._index = {(int(p), int(t)): i for i, (p, t) in enumerate(zip(self.person, self.frame))}
        self.per_frame = {
            var: [
                th.Vector(tensor=params[var][p, t][None].clone(), name=f"{var}_{p}_{t}")
                for p, t in self._index
            ]
            for var in PER_FRAME
        }
        self.betas = [
            th.Vector(tensor=b[None].clone(), name=f"betas_{p}")
            for p, b in enumerate(params["betas"])
        ]
        self.log_alpha = th.Vector(tensor=params["log_alpha"].clone(), name="log_alpha")
        floor = params.get("floor", params["log_alpha"].new_zeros(1, 3))
        self.floor = th.Vector(tensor=floor.clone(), name="floor")

    def get(self, var: str, person: int, frame: int) -> th.Vector:
        if var in PER_FRAME:
            return self.per_frame[var][self._index[(person, frame)]]
        if var == "betas":
            return self.betas[person]
        if var == "floor":
            return self.floor
        return self.log_alpha

    def unpack(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """A copy of ``params`` with the variables' current values written in (detached)."""
        out = {k: v.detach().clone() for k, v in params.items()}
        with torch.no_grad():
            for var, vectors in self.per_frame.items():
                out[var][self.person, self.frame] = torch.cat([v.tensor for v in vectors])
            out["betas"] = torch.cat([v.tensor for v in self.betas])
            out["log_alpha"] = self.log_alpha.tensor.clone()
            if "floor" in out:
                out["floor"] = self.floor.tensor.clone()
        return out


class ShapeAwareAutoDiffCost(th.AutoDiffCostFunction):
    """``AutoDiffCostFunction`` that takes forward-mode Jacobians when a cost has fewer optimized
    inputs than residuals (the root stage: 6 inputs per frame against 34-66 residuals), and
    Theseus' reverse mode otherwise: one pass per input instead of one per residual."""

    def _compute_autograd_jacobian_vmap(self, optim_tensors, aux_tensors, jac_fn):
        if sum(t.shape[-1] for t in optim_tensors) >= self.dim():
            return super()._compute_autograd_jacobian_vmap(optim_tensors, aux_tensors, jac_fn)
        batch = max(t.shape[0] for t in (*optim_tensors, *aux_tensors))
        optim = tuple(t.expand(batch, *t.shape[1:]) for t in optim_tensors)
        aux = tuple(t.expand(batch, *t.shape[1:]) for t in aux_tensors)
        return vmap(jacfwd(jac_fn, argnums=0))(optim, aux)

    def _copy_impl(self, new_name=None):
        return ShapeAwareAutoDiffCost(
            [v.copy() for v in self.optim_vars],
            self._err_fn,
            self._dim,
            aux_vars=[v.copy() for v in self.aux_vars],
            cost_weight=self.weight.copy(),
            name=new_name,
            autograd_mode=self._autograd_mode,
        )


class TermCost(th.CostFunction):
    """Cost function of term elements with the term's analytic Jacobian (``Term.jac``).

    Theseus' vectorization batches cost functions whose class name, variable shapes and weight
    class agree, so each term gets its own subclass (``_term_cost_class``): two terms with equal
    variable shapes must never be batched together.

    Args:
        term: the term (its ``fn``, ``jac`` and ``dim`` are used).
        optim_vars, optim_args: the optimized variables and their ``fn`` argument names.
        aux_vars, aux_args: fixed inputs and data, and their ``fn`` argument names.
        shapes: per-element shape of each data argument (Theseus stores them flat).
    """

    def __init__(
        self,
        term: Term,
        optim_vars: list[th.Variable],
        optim_args: list[str],
        aux_vars: list[th.Variable],
        aux_args: list[str],
        shapes: dict[str, tuple[int, ...]],
        cost_weight: th.CostWeight,
        name: str | None = None,
    ):
        super().__init__(cost_weight, name=name)
        self.term = term
        self.optim_args = list(optim_args)
        self.aux_args = list(aux_args)
        self.shapes = shapes
        self._wrt = frozenset(optim_args)
        self.register_vars(optim_vars, is_optim_vars=True)
        self.register_vars(aux_vars, is_optim_vars=False)

    def _inputs(self) -> dict[str, Tensor]:
        tensors = [v.tensor for v in (*self.optim_vars, *self.aux_vars)]
        batch = max(t.shape[0] for t in tensors)
        out = {}
        for arg, t in zip(self.optim_args + self.aux_args, tensors):
            t = t.expand(batch, *t.shape[1:])
            out[arg] = t.reshape(batch, *self.shapes[arg]) if arg in self.shapes else t
        return out

    def error(self) -> Tensor:
        return self.term.fn(**self._inputs())

    def jacobians(self) -> tuple[list[Tensor], Tensor]:
        err, jac = self.term.jac(self._wrt, **self._inputs())
        return [jac[arg] for arg in self.optim_args], err

    def dim(self) -> int:
        return self.term.dim

    def _copy_impl(self, new_name: str | None = None) -> "TermCost":
        return type(self)(
            self.term,
            [v.copy() for v in self.optim_vars],
            self.optim_args,
            [v.copy() for v in self.aux_vars],
            self.aux_args,
            self.shapes,
            self.weight.copy(),
            name=new_name,
        )


@functools.cache
def _term_cost_class(term_name: str) -> type[TermCost]:
    return type(f"TermCost_{term_name}", (TermCost,), {"__module__": __name__})


def _make_err_fn(term: Term, optim_args: list[str], aux_args: list[str], shapes: dict):
    def err_fn(optim_vars, aux_vars):
        kwargs = {arg: v.tensor for arg, v in zip(optim_args, optim_vars)}
        for arg, v in zip(aux_args, aux_vars):
            kwargs[arg] = v.tensor.reshape(-1, *shapes[arg]) if arg in shapes else v.tensor
        return term.fn(**kwargs)

    return err_fn


def term_cost_functions(
    term: Term, weight: float, variables: TheseusVariables, optimize: set[str]
) -> list[th.CostFunction]:
    """One cost function per element of ``term``; none if the term touches no optimized variable."""
    optim_inputs = [i for i in term.inputs if i.var in optimize]
    if not optim_inputs or term.num_elements == 0 or weight <= 0:
        return []
    fixed_inputs = [i for i in term.inputs if i.var not in optimize]
    shapes = {k: tuple(v.shape[1:]) for k, v in term.data.items()}
    optim_args = [i.arg for i in optim_inputs]
    aux_args = [i.arg for i in fixed_inputs] + list(term.data)
    cost_weight = th.ScaleCostWeight(
        torch.tensor(math.sqrt(weight), dtype=variables.log_alpha.dtype), name=f"w_{term.name}"
    )
    if term.jac is not None:
        cost_class = _term_cost_class(term.name)

        def make_cost(optim_vars, aux_vars, name):
            return cost_class(
                term, optim_vars, optim_args, aux_vars, aux_args, shapes, cost_weight, name
            )
    else:
        err_fn = _make_err_fn(term, optim_args, aux_args, shapes)

        def make_cost(optim_vars, aux_vars, name):
            return ShapeAwareAutoDiffCost(
                optim_vars, err_fn, term.dim, cost_weight=cost_weight, aux_vars=aux_vars, name=name
            )

    costs = []
    for m in range(term.num_elements):
        p, t = int(term.person[m]), int(term.frame[m])
        aux = [variables.get(i.var, p, t + i.offset) for i in fixed_inputs]
        aux += [
            th.Variable(value[m].reshape(1, -1), name=f"{term.name}_{m}_{key}")
            for key, value in term.data.items()
        ]
        optim_vars = [variables.get(i.var, p, t + i.offset) for i in optim_inputs]
        costs.append(make_cost(optim_vars, aux, f"{term.name}_{m}"))
    return costs


class StepControlledLM(th.LevenbergMarquardt):
    """Theseus LM with accept/reject step control and adaptive scalar damping.

    Theseus 0.2.3 only adapts damping with batched (tensor) damping, which the CHOLMOD solver does
    not accept. With batch size 1 a scalar suffices: a step that does not lower the error is
    rejected and the damping grows by ``damping_up``; an accepted step divides it by
    ``damping_down``. The CHOLMOD symbolic analysis is reused for every solve. A rejected step
    leaves the error unchanged, which Theseus' relative-decrease test would take for
    convergence: here only accepted steps (or the damping reaching its maximum) can converge.
    """

    def __init__(self, *args, damping_up: float = 10.0, damping_down: float = 5.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.damping_up = damping_up
        self.damping_down = damping_down
        self.num_rejected = 0

    def reset(self, damping: float = 1e-2, **kwargs) -> None:
        th.NonlinearLeastSquares.reset(self, **kwargs)
        self._damping = float(damping)
        self._last_rejected = False

    def _check_convergence(self, err: Tensor, last_err: Tensor) -> Tensor:
        if self._last_rejected and self._damping < self._MAX_DAMPING:
            return torch.zeros_like(err, dtype=torch.bool)
        return super()._check_convergence(err, last_err)

    def _complete_step(self, delta, new_err, previous_err, **kwargs):
        reject = ~(new_err < previous_err)  # also rejects NaN errors
        self._last_rejected = bool(reject.all())
        if self._last_rejected:
            self.num_rejected += 1
            # The variables stay where they were: the next linearization can be reused.
            linearization = self.linear_solver.linearization
            if hasattr(linearization, "reuse_next"):
                linearization.reuse_next = True
            self._damping = min(self._damping * self.damping_up, self._MAX_DAMPING)
        else:
            self._damping = max(self._damping / self.damping_down, self._MIN_DAMPING)
        return reject
