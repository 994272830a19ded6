"""The package import graph of ``slahmr_opt`` and ``priors/`` (imported as ``slahmr_priors``),
read from the code's own imports.

    python scripts/import_graph.py            # edges, cycles, rule breaks (text)
    python scripts/import_graph.py --json     # the same as JSON

A package is ``slahmr_opt.<name>`` (a sub-package or a top-level module such as ``solve``);
``priors`` splits in two: ``priors`` are the shipped priors, the ``priors`` modules that
``slahmr_opt`` imports and what they import in turn (models loaded at run time), and
``priors.training`` is everything else there (data preparation, training, scores). Every
``import`` / ``from ... import`` of every module counts, wherever it sits in the file (imports
inside functions included: they still tie the packages together). Reported:
- ``edges``: package -> package, with the importing modules;
- ``cycles``: strongly connected components of more than one package;
- ``breaks``: imports against ``../shared/DESIGN.md`` section 2: ``inputs``, ``io`` and
  ``eval`` depend on ``types``, ``body`` and ``geometry`` only (``errors``, ``config``,
  ``history`` (a field of ``Result``, standard library only) and ``files``, the file-safety
  package, allowed as the common base), ``costs`` not on ``stages``
  or ``solve``, nothing below ``cli`` on ``cli``, the shipped ``priors`` on no ``slahmr_opt``
  module (``tests/test_imports.py`` also checks they import only torch, numpy and the standard
  library), and ``priors.training`` on nothing that runs the solver on observations
  (``solve``, ``run``, ``cli``, ``experiments``).
"""

import argparse
import ast
import json
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Folder -> import name (``setup.py`` installs ``priors/`` as ``slahmr_priors``).
TOPS = {"slahmr_opt": "slahmr_opt", "priors": "slahmr_priors"}
BASE = {"errors", "config", "types", "history", "files", "__init__"}
ONLY = {
    "inputs": {"types", "body", "geometry"},
    "io": {"types", "body", "geometry"},
    "eval": {"types", "body", "geometry"},
}
NOT = {
    "costs": {"stages", "solve", "cli", "run"},
    "priors": set(),  # every slahmr_opt package: see ``breaks``
    "priors.training": {"solve", "run", "cli", "experiments"},
}


#: The packages of ``slahmr_opt``: its sub-packages and top-level modules.
PACKAGES = {p.stem for p in (ROOT / "slahmr_opt").iterdir()
            if p.suffix == ".py" or (p / "__init__.py").exists()}  # fmt: skip


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Module name -> file of every module of ``slahmr_opt`` and ``priors`` (packages by their
    ``__init__``)."""
    out = {}
    for top, name in TOPS.items():
        for path in sorted((root / top).rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            parts = list(rel.parts[:-1]) if rel.name == "__init__" else list(rel.parts)
            parts[0] = name
            out[".".join(parts)] = path
    return out


def module_of(name: str, known) -> str | None:
    """The longest prefix of the imported ``name`` that is a module in ``known``."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in known:
            return ".".join(parts[:n])
    return None


def _imported(path: Path, module: str) -> set[str]:
    """Absolute names ``path`` (the module ``module``) imports."""
    return imports_of(path, module if path.name != "__init__.py" else module + ".x")


def shipped_priors(root: Path = ROOT) -> set[str]:
    """``priors`` modules that ``slahmr_opt`` imports, with what they import in turn and the
    packages on their way (importing ``slahmr_priors.a.b`` runs its ``__init__`` and ``a``'s)."""
    known = modules(root)
    todo = []
    for module, path in known.items():
        if module.startswith("slahmr_opt"):
            todo += [m for n in _imported(path, module) if (m := module_of(n, known))]
    out = set()
    while todo:
        m = todo.pop()
        if not m.startswith("slahmr_priors") or m in out:
            continue
        out.add(m)
        parts = m.split(".")
        todo += [".".join(parts[:n]) for n in range(1, len(parts))]
        todo += [x for n in _imported(known[m], m) if (x := module_of(n, known))]
    return out


def package_of(module: str, shipped: set[str] = frozenset()) -> str | None:
    """``slahmr_opt.costs.term`` -> ``costs``; a ``priors`` module -> ``priors`` if shipped
    (``shipped_priors``), else ``priors.training``; ``slahmr_opt`` and names defined in its
    ``__init__`` (``slahmr_opt.__version__``) -> ``__init__``; others None."""
    parts = module.split(".")
    if parts[0] == "slahmr_priors":
        return "priors" if module in shipped else "priors.training"
    if parts[0] != "slahmr_opt":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in PACKAGES else "__init__"


def imports_of(path: Path, module: str) -> set[str]:
    """Absolute module names ``path`` imports (relative imports resolved against ``module``)."""
    out = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.add(name)
            out.update(f"{name}.{alias.name}" for alias in node.names)
    return out


def graph(root: Path = ROOT) -> dict[tuple[str, str], set[str]]:
    """(from package, to package) -> the importing modules."""
    edges = defaultdict(set)
    known, shipped = modules(root), shipped_priors(root)
    for module, path in known.items():
        src = package_of(module, shipped)
        for name in _imported(path, module):
            target = module_of(name, known) or name
            dst = package_of(target, shipped)
            if dst is not None and dst != src:
                edges[(src, dst)].add(module)
    return edges


def cycles(edges) -> list[list[str]]:
    """Strongly connected components with more than one package (Tarjan)."""
    nodes = sorted({n for e in edges for n in e})
    succ = defaultdict(list)
    for a, b in edges:
        succ[a].append(b)
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in nodes:
        if v not in index:
            visit(v)
    return sorted(out)


def breaks(edges) -> list[tuple[str, str, list[str]]]:
    """Edges against the rules of the module docstring, with the importing modules."""
    out = []
    for (a, b), mods in sorted(edges.items()):
        bad = (
            (a in ONLY and b not in ONLY[a] | BASE)
            or b in NOT.get(a, set())
            or (b == "cli" and a != "__init__")
            or (a == "priors")
        )
        if bad:
            out.append((a, b, sorted(mods)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    edges = graph()
    report = {
        "edges": {f"{a} -> {b}": len(m) for (a, b), m in sorted(edges.items())},
        "cycles": cycles(edges),
        "breaks": [{"edge": f"{a} -> {b}", "modules": m} for a, b, m in breaks(edges)],
    }
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"{len(edges)} package edges")
    for edge, n in report["edges"].items():
        print(f"  {edge} ({n} module{'s' if n > 1 else ''})")
    print(f"{len(report['cycles'])} cycle(s)")
    for comp in report["cycles"]:
        print("  {" + ", ".join(comp) + "}")
    print(f"{len(report['breaks'])} edge(s) against DESIGN.md section 2")
    for b in report["breaks"]:
        print(f"  {b['edge']}: {', '.join(b['modules'])}")


if __name__ == "__main__":
    main()
