"""The shape of the code, as docs/architecture.md draws it: every arrow points down.

    mocker_common  <-  mocker_fetch, mocker_bundle, mocker_runc, mocker_net  <-  mocker_engine

A command package imports only mocker_common and its own modules (so each can
be read, swapped and installed alone, as runc is apart from containerd); the
engine sits above them and may import them; mocker_common imports nothing of
ours. And no two modules import each other, even through a chain: a circle
makes a reader hold both files in mind at once. Imports inside functions count
too (they are how the lean start-up paths defer a module, not a way around
the rule). Pure source reading: no root, no imports executed.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ("mocker_fetch", "mocker_bundle", "mocker_runc", "mocker_net")
PACKAGES = ("mocker_common", *COMMANDS, "mocker_engine")
# package -> the other packages of ours it may import
ALLOWED = {
    "mocker_common": set(),
    **{command: {"mocker_common"} for command in COMMANDS},
    "mocker_engine": {"mocker_common", *COMMANDS},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """The modules of ours that path imports (absolute names), anywhere in the file."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from . import x` imports the module x when there is one
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph = {}
    for name, path in files.items():
        targets = set()
        for imported in _imports(path):
            # `from pkg import name` names a module or an attribute: keep what is a module
            while imported and imported not in files:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


GRAPH = _graph()


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_what_is_below_it(package):
    wrong = sorted(f"{module} imports {target}"
                   for module, targets in GRAPH.items() if module.split(".")[0] == package
                   for target in targets
                   if target.split(".")[0] not in ALLOWED[package] | {package})
    assert not wrong, f"{package} may import only {sorted(ALLOWED[package])}:\n" + "\n".join(wrong)


def test_no_module_imports_itself_through_a_circle():
    circles = []
    for start in sorted(GRAPH):
        # depth-first from start; a path back to start is a circle
        stack = [(start, (start,))]
        seen = set()
        while stack:
            node, path = stack.pop()
            for target in GRAPH[node]:
                if target == start:
                    circles.append(" -> ".join(path + (start,)))
                elif target not in seen and target > start:   # each circle once, from its least module
                    seen.add(target)
                    stack.append((target, path + (target,)))
    assert not circles, "modules that import each other:\n" + "\n".join(circles)


def test_the_engine_is_its_own_package_and_the_commands_do_not_hold_it():
    assert (ROOT / "mocker_engine" / "__main__.py").exists()
    assert not any((ROOT / command / "engine").exists() for command in COMMANDS)
