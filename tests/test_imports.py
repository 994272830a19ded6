"""Import rules of ``../shared/DESIGN.md`` section 2, read from every module's own imports
(``scripts/import_graph.py``): no cycle between packages, no import against the layering, and
shipped priors that need nothing but torch, numpy and the standard library."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts/import_graph.py")
graph = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(graph)


def test_no_cycle_between_packages():
    assert graph.cycles(graph.graph()) == []


def test_no_import_against_the_design():
    assert [f"{a} -> {b}: {mods}" for a, b, mods in graph.breaks(graph.graph())] == []


def test_the_rules_catch_a_break(tmp_path):
    """A copy of the tree with one upward import (inputs -> solve) and a cycle is caught."""
    for top in ("slahmr_opt", "priors"):
        for path in (ROOT / top).rglob("*.py"):
            dest = tmp_path / path.relative_to(ROOT)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(path.read_text())
    extra = "\nfrom slahmr_opt.solve import solve  # noqa\n"
    (tmp_path / "slahmr_opt/inputs/tracks.py").write_text(
        (ROOT / "slahmr_opt/inputs/tracks.py").read_text() + extra
    )
    edges = graph.graph(tmp_path)
    assert any(a == "inputs" and b == "solve" for a, b, _ in graph.breaks(edges))
    assert any("inputs" in c and "solve" in c for c in graph.cycles(edges))


def test_shipped_priors_import_torch_and_numpy_only():
    """Every module of the shipped priors (what slahmr_opt loads at run time), each checked."""
    shipped = graph.shipped_priors()
    expected = {"motion_cvae.model", "pose_vae.model", "contacts"}
    assert {f"slahmr_priors.{name}" for name in expected} <= shipped
    known = graph.modules()
    allowed = set(sys.stdlib_module_names) | {"torch", "numpy", "__future__"}
    bad = {}
    for module in sorted(shipped):
        for name in graph._imported(known[module], module):
            if graph.module_of(name, known) in shipped or name.split(".")[0] in allowed:
                continue
            bad.setdefault(module, []).append(name)
    assert bad == {}
