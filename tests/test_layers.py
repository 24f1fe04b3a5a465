"""The packages import one way: each imports only from the layers below it (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS: dict[str, int] = {
    "core": 0,
    "features": 1,
    "targeting": 2,
    "models": 3,
    "patron.settings": 4,
    "training": 5,
    "serving": 5,  # training and serving compose the layers below; neither imports the other
    "jobs": 6,
    "patron": 7,
}


def _layer(module: str) -> str | None:
    """The layer a dotted module name belongs to (the longest matching prefix in LAYERS)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in LAYERS:
            return name
    return None


def _imports(path: Path) -> set[str]:
    """Absolute module names a file imports anywhere (top level, inside functions, under TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _modules() -> list[tuple[str, Path]]:
    packages = {name.split(".")[0] for name in LAYERS}
    return [
        (".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"), path)
        for package in sorted(packages)
        for path in sorted((ROOT / package).rglob("*.py"))
    ]


def _violations() -> set[tuple[str, str]]:
    found = set()
    for module, path in _modules():
        own = _layer(module)
        assert own is not None
        for imported in _imports(path):
            target = _layer(imported)
            if target is None or target == own or imported.split(".")[0] == module.split(".")[0] == "patron":
                continue
            if LAYERS[target] >= LAYERS[own]:
                found.add((module, _module_of(imported)))
    return found


def test_every_package_is_placed_in_a_layer():
    assert len(_modules()) > 50
    assert all(_layer(module) for module, _ in _modules())


def test_no_package_imports_one_above_it_or_beside_it():
    unexpected = sorted(_violations())
    assert unexpected == [], "imports against the layer order of ARCHITECTURE.md: " + repr(unexpected)


def _module_of(imported: str) -> str:
    """The module file an imported name lives in: `training.tracking.configure` -> `training.tracking`."""
    parts = imported.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ROOT.joinpath(*parts[:end])
        if candidate.with_suffix(".py").exists() or (candidate / "__init__.py").exists():
            return ".".join(parts[:end])
    return imported


@pytest.mark.parametrize(("module", "imported"), [("features.rfm", "models.clv"), ("serving.batch", "training.fit")])
def test_a_breach_would_be_caught(module, imported, monkeypatch):
    """The check itself can fail: an upward or sideways import is reported."""
    real = _imports

    def with_breach(path: Path) -> set[str]:
        extra = {imported} if path == ROOT.joinpath(*module.split(".")).with_suffix(".py") else set()
        return real(path) | extra

    monkeypatch.setattr(f"{__name__}._imports", with_breach)
    assert (module, imported) in _violations()
