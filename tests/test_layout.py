"""The package's import layering (DESIGN.md): imports flow downward, never in a circle, and the apps use only
the public API. Read from the source with ``ast``, so function-local imports count too."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "toolkit"
# lower rank = lower layer; a unit may import its own modules, lower ranks, and same-rank units (no circles)
RANKS = {
    "errors": 0, "_version": 0,
    "registry": 1, "config": 1, "cache": 1, "safe_io": 1,
    "backbones": 2, "medical": 2,
    "data": 3, "heads": 3,
    "viz": 4, "inference": 4,
    "tasks": 5,
    "engine": 6, "predict": 6, "export": 6, "explain": 6, "app_server": 6,
    "cli": 7, "__main__": 8, "__init__": 8,
}
APP_API = ("toolkit", "toolkit.predict", "toolkit.viz", "toolkit.medical", "toolkit.errors")


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every ``toolkit`` module ``path`` imports (``from toolkit import config`` -> toolkit.config)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.split(".")[0] == "toolkit"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "toolkit":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / f"{sub.replace('.', '/')}.py").is_file() or \
                    (PACKAGE.parent / sub.replace(".", "/")).is_dir()
                names.add(sub if is_module else node.module)
    return names


def unit(module: str) -> str:
    """``toolkit.tasks.detect`` -> ``tasks``; the package root -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        source = unit(".".join(rel.parts)) if rel.parts[-1] != "__init__" or len(rel.parts) > 2 else "__init__"
        graph.setdefault(source, set()).update(unit(m) for m in imported_modules(path))
    return graph


def test_every_unit_has_a_layer() -> None:
    assert set(unit_graph()) <= set(RANKS), f"add new top-level modules to RANKS: {set(unit_graph()) - set(RANKS)}"


def test_imports_flow_downward() -> None:
    upward = [f"{src} -> {dst}" for src, dsts in unit_graph().items() for dst in dsts
              if dst != src and RANKS[dst] > RANKS[src]]
    assert not upward, f"imports against the layering: {upward}"


def test_nothing_imports_the_package_root() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")
                 if p.name != "__main__.py" and "toolkit" in imported_modules(p)]
    assert not offenders, f"import from toolkit._version etc. instead of the package root: {offenders}"


def test_no_import_cycles_between_units() -> None:
    graph = {src: {d for d in dsts if d != src} for src, dsts in unit_graph().items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            assert state.get(nxt) != 1, f"import cycle: {' -> '.join(path + [node, nxt])}"
            if nxt not in state:
                visit(nxt, path + [node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def test_apps_use_only_the_public_api() -> None:
    used = {m for app in (ROOT / "apps").glob("*.py") for m in imported_modules(app)}
    private = sorted(m for m in used if not any(m == api or m.startswith(api + ".") and api != "toolkit"
                                                for api in APP_API))
    assert not private, f"apps reach past the public API: {private}"


def test_the_layout_check_catches_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from toolkit.engine.trainer import Trainer\n    from toolkit import config\n")
    assert imported_modules(bad) == {"toolkit.engine.trainer", "toolkit.config"}
    assert RANKS[unit("toolkit.engine.trainer")] > RANKS["heads"]
