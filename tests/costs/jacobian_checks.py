"""Autodiff references for the analytic-Jacobian tests (the bodies are in ``conftest.py``)."""

from torch.func import jacrev, vmap

#: Tolerance of analytic against autodiff Jacobians (float64).
TOL = dict(rtol=1e-8, atol=1e-10)


def autodiff_jacobians(term, inputs, args):
    """Per-element Jacobians of ``term.fn`` by vmap(jacrev), keyed by argument."""
    fixed = {k: v for k, v in inputs.items() if k not in args}

    def f(x, c):
        return term.fn(**{k: v[None] for k, v in {**x, **c}.items()})[0]

    return vmap(jacrev(f))({a: inputs[a] for a in args}, fixed)
