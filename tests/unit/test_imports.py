"""The design's layers, checked on every module's import statements:

    tools -> kraft, protocol        kraft -> protocol, storage
    storage -> protocol.records     protocol -> nothing of ours

no package imports one of its importers, no two modules of a package import each other, and
(house rule 1) the pure cores import neither trio nor socket nor file I/O.

The check reads each module's import statements with ``ast`` rather than looking at
``sys.modules``, because dependencies may pull those modules in themselves (crc32c imports
socket when it loads) and that is not the rule's concern: the rule is about our code
reaching for I/O and across layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"trio", "socket"}
# The pure cores also do no file I/O: neither these modules nor the ``open`` builtin.
FILE_IO = {"os", "pathlib", "shutil", "tempfile", "io"}
FILE_IO_PURE = ["kraft/metadata", "kraft/raft", "kraft/controller/control.py", "kraft/controller/cluster_control.py",
                "protocol"]
FILE_IO_EXEMPT = {
    "kraft/raft/disk_log.py": "the Raft log's disk side, mirrored from the core's Ready",
    "kraft/raft/driver.py": "the trio driver", "kraft/raft/net.py": "the trio transport",
    "protocol/client.py": "the trio client",
    "protocol/apis.py": "io.BytesIO as the codec's buffer, not a file",
    "protocol/consumer_protocol.py": "io.BytesIO as the codec's buffer, not a file",
}
OURS = {"kraft", "storage", "protocol", "tools", "tests", "benchmarks"}
# Which of our top-level packages each package may import (itself always).
ALLOWED = {"protocol": set(), "storage": {"protocol.records"}, "kraft": {"protocol", "storage"},
           "tools": {"kraft", "protocol"}}
# Packages and modules that must stay sans-I/O, and the files exempt from the rule (why).
PURE = ["protocol", "storage", "kraft/metadata", "kraft/raft", "kraft/controller/control.py",
        "kraft/controller/cluster_control.py"]
EXEMPT = {
    "protocol/client.py": "the trio client shared by tools and tests",
    "kraft/raft/driver.py": "the trio driver around the pure Raft core: timers, inbox, disk, network",
    "kraft/raft/net.py": "the trio TCP transport carrying the Raft RPCs between controllers",
}


def files_of(entries: list[str], exempt: dict[str, str]) -> list[Path]:
    """The Python files of ``entries`` (packages or modules), but the ``exempt`` ones."""
    files = []
    for entry in entries:
        path = REPO_ROOT / entry
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return [f for f in files if f.relative_to(REPO_ROOT).as_posix() not in exempt]


def pure_files() -> list[Path]:
    return files_of(PURE, EXEMPT)


def imported_top_level_names(path: Path) -> set[str]:
    """Every module an import statement in the file names, at any depth (functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            if node.args and isinstance(node.args[0], ast.Constant):
                names.add(str(node.args[0].value).split(".")[0])
    return names


def test_the_rule_covers_real_files():
    files = pure_files()
    assert len(files) >= 10, f"expected the pure packages to hold files, found {files}"
    for entry in [*PURE, *EXEMPT]:
        assert (REPO_ROOT / entry).exists(), f"{entry} is listed here but does not exist"


@pytest.mark.parametrize("path", pure_files(), ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_pure_module_imports_no_io(path):
    found = imported_top_level_names(path) & FORBIDDEN
    assert not found, f"{path.relative_to(REPO_ROOT)} imports {sorted(found)}; expected none of {sorted(FORBIDDEN)}"


def imported_modules(path: Path, root: Path = REPO_ROOT) -> set[str]:
    """Every absolute module an import statement names, relative ones resolved."""
    relative_to = path.relative_to(root).with_suffix("").parts
    package = relative_to[:-1] if relative_to[-1] != "__init__" else relative_to[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def layer_files() -> list[Path]:
    return [path for package in ALLOWED for path in sorted((REPO_ROOT / package).rglob("*.py"))]


@pytest.mark.parametrize("path", layer_files(), ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_imports_follow_the_layers(path):
    package = path.relative_to(REPO_ROOT).parts[0]
    allowed = ALLOWED[package]
    wrong = sorted(
        module for module in imported_modules(path)
        if module.split(".")[0] in OURS and module.split(".")[0] != package
        and not any(module == a or module.startswith(a + ".") for a in allowed)
        and not any(a.startswith(module + ".") for a in allowed))
    assert not wrong, (f"{path.relative_to(REPO_ROOT)} imports {wrong}; {package} may import only"
                       f" {sorted(allowed) or 'nothing of ours'}")


def test_no_two_modules_import_each_other():
    modules = {}
    for path in layer_files():
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = imported_modules(path)
    cycles = sorted({tuple(sorted((a, b))) for a, imports in modules.items() for b in imports
                     if b in modules and b != a and a in modules[b]
                     and not a.startswith(b + ".") and not b.startswith(a + ".")})
    assert not cycles, f"modules importing each other: {cycles}"


def file_io_files() -> list[Path]:
    return files_of(FILE_IO_PURE, FILE_IO_EXEMPT)


@pytest.mark.parametrize("path", file_io_files(), ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_pure_module_does_no_file_io(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    opens = [node.lineno for node in ast.walk(tree)
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open"]
    found = imported_top_level_names(path) & FILE_IO
    assert not found and not opens, (f"{path.relative_to(REPO_ROOT)} imports {sorted(found)} or calls open() at"
                                     f" lines {opens}; expected no file I/O in a pure core")


def test_the_layer_checker_resolves_relative_imports(tmp_path):
    package = tmp_path / "kraft" / "sub"
    package.mkdir(parents=True)
    (package / "mod.py").write_text("from ..config import X\nfrom . import sibling\nimport tools.common\n")
    assert imported_modules(package / "mod.py", tmp_path) >= {"kraft.config", "kraft.config.X", "kraft.sub.sibling",
                                                     "tools.common"}


def test_the_checker_sees_nested_and_from_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import trio.lowlevel\n\nfrom socket import socket\n")
    assert imported_top_level_names(sample) >= {"trio", "socket"}
