"""The package's shape: no import circles, and a job graph built without torch or trimesh."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest
from test_workflow import ROOT, SNAKEMAKE

PACKAGE = ROOT / "steik"
CONFIGS = sorted(p.name for p in (ROOT / "config").glob("*.yaml"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """steik module -> the steik modules it imports anywhere in its file (also inside
    functions, where a circle would only be hidden, not gone)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [
                    f"{node.module}.{alias.name}"
                    if f"{node.module}.{alias.name}" in modules
                    else node.module
                    for alias in node.names
                ]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def test_no_import_circles():
    graph = import_graph()
    assert "steik.trainer" in graph and "steik.model" in graph["steik.trainer"]
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                circle = [*path[path.index(target) :], target]
                pytest.fail("import circle: " + " -> ".join(circle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


@pytest.mark.slow
@pytest.mark.parametrize("configfile", CONFIGS)
def test_dry_run_needs_neither_torch_nor_trimesh(tmp_path, configfile):
    """`snakemake -n` of every shipped config with torch and trimesh made unimportable: the
    Snakemake process validates the config and lists shapes with light modules only (a cluster's
    login node answers `snakemake -n` fast)."""
    stubs = tmp_path / "stubs"
    for name in ("torch", "trimesh", "manifold3d", "point_cloud_utils"):
        (stubs / name).mkdir(parents=True)
        (stubs / name / "__init__.py").write_text(
            f"raise ImportError('{name} must not be imported while the job graph is built')\n"
        )
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(
        [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(work), "-n",
         "--configfile", str(ROOT / "config" / configfile)],
        capture_output=True, text=True, timeout=300,
        # the stubs first; then this checkout, whatever checkout the venv's install points at
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{stubs}:{ROOT}", "HOME": str(work)},
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "must not be imported" not in output
    assert "Job stats:" in output
