"""Autodiff references for the analytic-Jacobian tests (the bodies are in ``conftest.py``)."""

import torch
from torch.func import jacrev, vmap

#: Tolerance of analytic against autodiff Jacobians (float64).
TOL = dict(rtol=1e-8, atol=1e-10)


def autodiff_jacobians(term, inputs, args):
    """Per-element Jacobians of ``term.fn`` by vmap(jacrev), keyed by argument."""
    fixed = {k: v for k, v in inputs.items() if k not in args}

    def f(x, c):
        return term.fn(**{k: v[None] for k, v in {**x, **c}.items()})[0]

    return vmap(jacrev(f))({a: inputs[a] for a in args}, fixed)


def check_term_jacobians(term, inputs, args, min_scale: float | None = None):
    """``term.jac`` against ``term.fn`` and autodiff for the arguments ``args``: same residual,
    exactly the asked-for blocks, shapes (M, dim, n) and values to ``TOL``; ``min_scale``: also
    require every expected block to hold an entry above it (no zeros-against-zeros pass)."""
    residual, jac = term.jac(frozenset(args), **inputs)
    torch.testing.assert_close(residual, term.fn(**inputs), **TOL)
    assert set(jac) == set(args), term.name
    expected = autodiff_jacobians(term, inputs, args)
    for arg in args:
        assert jac[arg].shape == (term.num_elements, term.dim, inputs[arg].shape[-1])
        if min_scale is not None:
            assert expected[arg].abs().max() > min_scale, f"{term.name}.{arg}: zeros vs zeros"
        torch.testing.assert_close(jac[arg], expected[arg], **TOL, msg=f"{term.name}.{arg}")
