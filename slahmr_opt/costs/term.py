"""A ``Term``: one energy term over many elements (person-frames, frame pairs, people).

Every term's value is ``weight * sum_m ||r_m||^2`` with ``r_m = fn(inputs of element m)``. The same
pure ``fn`` is evaluated on all elements at once (torch solvers, loss history) and per element by
Theseus, so both solvers minimise exactly the same objective. A term may also carry ``jac``, an
analytic Jacobian of ``fn`` that Theseus' Levenberg-Marquardt uses instead of autodiff; the torch
solvers always differentiate ``fn`` with autograd.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

#: Variables that have one value per person and frame; the others are per person (``betas``) or
#: global (``GLOBAL``).
PER_FRAME = ("root_orient", "trans", "pose_body")
#: Variables with one value for the whole sequence: the camera scale and the floor plane.
GLOBAL = ("log_alpha", "floor")


@dataclass(frozen=True)
class Input:
    """One argument of a residual function that is a solver variable.

    Attributes:
        arg: keyword argument name of ``Term.fn``.
        var: variable name: one of ``PER_FRAME``, ``betas`` or ``GLOBAL``.
        offset: for per-frame variables, the frame offset from the element's frame.
    """

    arg: str
    var: str
    offset: int = 0


@dataclass
class Term:
    """An energy term over M elements.

    Attributes:
        name: term name (config key and history column).
        fn: pure residual function ``fn(**inputs, **data) -> (M, dim)``.
        inputs: the solver variables ``fn`` reads.
        person: (M,) person index of each element.
        frame: (M,) base frame index of each element.
        data: per-element constants, each (M, ...), passed to ``fn`` by keyword.
        dim: residual size per element.
        jac: optional ``jac(wrt, **inputs, **data) -> (residual (M, dim), {arg: (M, dim, n_arg)})``
            returning ``fn``'s residual and its Jacobians with respect to the arguments in ``wrt``
            (a frozenset of ``Input.arg`` names); None: solvers use autodiff.
    """

    name: str
    fn: Callable[..., Tensor]
    inputs: tuple[Input, ...]
    person: Tensor
    frame: Tensor
    dim: int
    data: dict[str, Tensor] = field(default_factory=dict)
    jac: Callable[..., tuple[Tensor, dict[str, Tensor]]] | None = None

    @property
    def num_elements(self) -> int:
        return int(self.person.shape[0])

    def gather(self, params: dict[str, Tensor], idx: Tensor | None = None) -> dict[str, Tensor]:
        """Inputs of ``fn`` for elements ``idx`` (all if None) from stacked parameters.

        Args:
            params: ``root_orient (P,T,3)``, ``trans (P,T,3)``, ``pose_body (P,T,63)``,
                ``betas (P,B)``, ``log_alpha (1,1)``, ``floor (1,3)``.
        """
        person = self.person if idx is None else self.person[idx]
        frame = self.frame if idx is None else self.frame[idx]
        out = {}
        for inp in self.inputs:
            value = params[inp.var]
            if inp.var in PER_FRAME:
                out[inp.arg] = value[person, frame + inp.offset]
            elif inp.var == "betas":
                out[inp.arg] = value[person]
            else:
                out[inp.arg] = value.expand(person.shape[0], -1)
        for key, value in self.data.items():
            out[key] = value if idx is None else value[idx]
        return out

    def residual(self, params: dict[str, Tensor]) -> Tensor:
        """(M, dim) residuals of all elements."""
        return self.fn(**self.gather(params))

    def value(self, params: dict[str, Tensor], weight: float) -> Tensor:
        """Scalar ``weight * sum ||r||^2`` (0 for a term without elements)."""
        if self.num_elements == 0:
            return params["log_alpha"].new_zeros(())
        return weight * self.residual(params).square().sum()


def total_loss(
    terms: list[Term], params: dict[str, Tensor], weights: dict[str, float]
) -> tuple[Tensor, dict[str, Tensor]]:
    """Total weighted loss and its per-term parts for the terms with a positive weight."""
    parts = {t.name: t.value(params, weights[t.name]) for t in terms if weights.get(t.name, 0) > 0}
    total = torch.stack(list(parts.values())).sum() if parts else params["log_alpha"].new_zeros(())
    return total, parts
