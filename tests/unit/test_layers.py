"""The architecture holds: imports go down only (cli -> ops -> procfs -> _kernel ->
errors), ctypes/ioctl live only in _kernel, print only in cli, and no runtime
dependency outside the standard library."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "pidns"
LAYERS = ["cli", "ops", "procfs", "_kernel", "errors"]


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "pidns" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS else None


def modules() -> list[tuple[Path, str]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        out.append((path, ".".join(rel.parts).removesuffix(".__init__")))
    return out


def imports(path: Path, module: str) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level or None]
                if path.name == "__init__.py":
                    base = module.split(".")[: len(module.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append(name)
            found += [f"{name}.{a.name}" for a in node.names]
    return found


def upward(module: str, names: list[str]) -> list[str]:
    """The imports of ``module`` that go to a higher layer."""
    mine = layer_of(module)
    if mine is None:
        return []  # the facade (__init__, __main__) may import any layer
    rank = LAYERS.index(mine)
    return [n for n in names if (o := layer_of(n)) is not None and LAYERS.index(o) < rank]


@pytest.mark.parametrize(("path", "module"), modules(), ids=[m for _, m in modules()])
def test_imports_go_down_only(path: Path, module: str) -> None:
    assert upward(module, imports(path, module)) == []


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    fake = tmp_path / "x.py"
    fake.write_text("from pidns.cli import render\nfrom ..procfs import model\n")
    names = imports(fake, "pidns.ops.x")
    assert upward("pidns.ops.x", names) == ["pidns.cli", "pidns.cli.render"]
    assert upward("pidns._kernel.x", ["pidns.procfs.model", "pidns.errors"]) == [
        "pidns.procfs.model"]


@pytest.mark.parametrize(("path", "module"), modules(), ids=[m for _, m in modules()])
def test_confined_apis(path: Path, module: str) -> None:
    names = imports(path, module)
    if layer_of(module) != "_kernel":
        assert "ctypes" not in names, f"{module}: ctypes belongs in pidns._kernel"
        assert "fcntl.ioctl" not in names, f"{module}: ioctl belongs in pidns._kernel"
    if layer_of(module) != "cli" and module != "pidns.__main__":
        calls = [n for n in ast.walk(ast.parse(path.read_text()))
                 if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                 and n.func.id == "print"]
        assert not calls, f"{module}: print belongs in pidns.cli"


def test_standard_library_only() -> None:
    allowed = set(sys.stdlib_module_names) | {"pidns", "_native"}
    for path, module in modules():
        for name in imports(path, module):
            top = name.split(".")[0]
            if top and not top.startswith("pidns"):
                assert top in allowed, f"{module} imports {name}: not in the standard library"
