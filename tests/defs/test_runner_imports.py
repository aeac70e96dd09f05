"""Issue 12/17: the CLI's runner lives outside ``defs/`` and nothing there imports it or the ``Definitions`` back:
no cycle definitions <-> defs/jobs <-> defs/raw/sensors (function-level imports count too)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "orchestration"


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("orchestration")}


def test_defs_never_import_the_runner_or_the_definitions():
    offenders = {str(p.relative_to(PKG)): sorted(m for m in _imports(p)
                                                 if m in ("orchestration.runner", "orchestration.definitions")
                                                 or m.startswith(("orchestration.runner.", "orchestration.definitions.")))
                 for p in (PKG / "defs").rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_runner_is_a_plain_module_outside_defs():
    from orchestration import runner

    assert not (PKG / "defs" / "jobs.py").read_text().count("def run_range")
    assert callable(runner.run_range) and callable(runner.instance_for)
    # It resolves the Definitions when a run starts, not when imported.
    assert "orchestration.definitions" not in {m for m in _imports(PKG / "runner.py")
                                                if not _function_level(PKG / "runner.py", m)}


def _function_level(path: Path, module: str) -> bool:
    tree = ast.parse(path.read_text())
    top = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)} | {
        a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    return module not in top
