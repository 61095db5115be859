"""House rule 1: the pure cores import neither trio nor socket.

The check reads each module's import statements with ``ast`` rather than looking at
``sys.modules``, because dependencies may pull those modules in themselves (crc32c imports
socket when it loads) and that is not the rule's concern: the rule is about our code
reaching for I/O.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"trio", "socket"}
# Packages and modules that must stay sans-I/O, and the files exempt from the rule (why).
PURE = ["protocol", "storage", "kraft/metadata", "kraft/raft", "kraft/controller.py"]
EXEMPT = {
    "protocol/client.py": "the trio client shared by tools and tests",
    "kraft/raft/driver.py": "the trio driver around the pure Raft core: timers, inbox, disk, network",
    "kraft/raft/net.py": "the trio TCP transport carrying the Raft RPCs between controllers",
}


def pure_files() -> list[Path]:
    files = []
    for entry in PURE:
        path = REPO_ROOT / entry
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return [f for f in files if f.relative_to(REPO_ROOT).as_posix() not in EXEMPT]


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


def test_the_checker_sees_nested_and_from_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import trio.lowlevel\n\nfrom socket import socket\n")
    assert imported_top_level_names(sample) >= {"trio", "socket"}
