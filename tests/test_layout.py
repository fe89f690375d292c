"""The house's rules, read from the code itself: imports run one way (no circle, no
arrow back up), the engine names no kind, functions stay short and take few parameters,
and the installed distribution claims one import name."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "affelios_import"

# Lowest first: a module may import from its own layer or any below it, never above.
LAYERS: list[tuple[str, ...]] = [
    ("version", "errors", "outcome", "keys", "logs", "urls", "redact", "text", "schemas"),
    ("codes",),
    ("wire",),
    ("kinds",),
    ("config", "settings"),
    ("input",),
    ("plan",),
    ("send",),
    ("journal",),
    ("output",),
    ("prepare", "stopper", "pipeline"),
    ("importer",),
    ("",),  # the front door: affelios_import/__init__.py
    ("cli", "sandbox", "demo", "__main__"),
]


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in ((ROOT / "etl", PACKAGE), (ROOT / "schemas", f"{PACKAGE}.schemas")):
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project's modules `name` imports (type-only imports too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in MODULES else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {module for module in found if module in MODULES and module != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> int:
    first = module.removeprefix(PACKAGE).lstrip(".").split(".")[0]
    return next(i for i, names in enumerate(LAYERS) if first in names)


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        assert _layer(module) >= 0, module


def test_no_import_runs_back_up() -> None:
    upward = [
        f"{module} -> {imported}"
        for module, imported_ in GRAPH.items()
        for imported in imported_
        if _layer(imported) > _layer(module)
    ]
    assert upward == []


def test_no_import_circle() -> None:
    seen: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(module: str, path: list[str]) -> None:
        seen[module] = 1
        for imported in sorted(GRAPH[module]):
            assert seen.get(imported) != 1, " -> ".join([*path, module, imported])
            if imported not in seen:
                visit(imported, [*path, module])
        seen[module] = 2

    for module in sorted(GRAPH):
        if module not in seen:
            visit(module, [])


def test_the_engine_names_no_kind() -> None:
    """plan, submit and pipeline ask the kind; they hold no branch on which it is."""
    for module in ("plan", "send/submit", "pipeline"):
        text = (ROOT / "etl" / f"{module}.py").read_text(encoding="utf-8")
        named = re.findall(r"customer|transaction|at_most_once", text, flags=re.IGNORECASE)
        assert named == [], module


def test_functions_are_short_and_take_few_parameters() -> None:
    long, wide = [], []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            args = node.args
            params = [
                a.arg
                for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)
                if a.arg not in ("self", "cls")
            ]
            where = f"{name}.{node.name}"
            assert node.end_lineno is not None
            if node.end_lineno - node.lineno + 1 > 60:
                long.append(where)
            if len(params) > 5:
                wide.append(where)
    assert (long, wide) == ([], [])


def test_the_distribution_claims_one_import_name() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert {name.split(".")[0] for name in setuptools["packages"]} == {PACKAGE}
    assert setuptools["package-dir"] == {PACKAGE: "etl", f"{PACKAGE}.schemas": "schemas"}
    subpackages = {
        f"{PACKAGE}.{p.parent.relative_to(ROOT / 'etl').as_posix().replace('/', '.')}"
        for p in (ROOT / "etl").rglob("__init__.py")
        if p.parent != ROOT / "etl"
    }
    assert set(setuptools["packages"]) == {PACKAGE, f"{PACKAGE}.schemas", *subpackages}


def test_the_readme_names_every_module() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout") :].split("\n## ")[0]
    for module in MODULES:
        last = module.rpartition(".")[2]
        if module == PACKAGE or last in ("__init__",):
            continue
        assert any(f"`{last}{end}`" in layout for end in ("", "/", ".py")), module
