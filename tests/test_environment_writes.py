"""The packages write the process environment only where a library reads nothing else, and say so there."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sim", "teleop", "datasets", "policies", "launch")
METHODS = {"setdefault", "pop", "popitem", "update", "clear", "__setitem__", "__delitem__"}

# (file, function): why it must write the environment.
ALLOWED = {
    ("sim/gl.py", "choose_gl_backend"),  # MuJoCo and PyOpenGL read their GL backend from it at import
    ("teleop/display.py", "open_window"),  # SDL reads its framebuffer hint from it; pygame has no other way in
    ("teleop/display.py", "display_for_bench"),  # the benchmark's X display, restored on exit
    ("datasets/interop/video.py", "_open_quietly"),  # SVT-AV1's log level while its encoder opens, then restored
    ("launch/cmd_browse.py", "run"),  # the command: SDL's dummy driver for headless scripted corrections
    ("launch/cmd_sim.py", "_devices"),  # the command: no pygame banner in `protege sim list`
}


def _is_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def _changes_environ(node: ast.AST) -> bool:
    """Whether ``node`` changes ``os.environ``: item assignment or deletion, a mutating method, putenv, unsetenv."""
    targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [getattr(node, "target", None)]
    if any(isinstance(t, ast.Subscript) and _is_environ(t.value) for t in targets):
        return True
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return False
    return node.func.attr in METHODS and _is_environ(node.func.value) or node.func.attr in ("putenv", "unsetenv")


def writers(source: str) -> set[str]:
    """The functions of ``source`` (``<module>`` for top-level code) that change the environment."""
    names = set()

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        if _changes_environ(node):
            names.add(function)
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(source), "<module>")
    return names


def environment_writers() -> list[tuple[str, str]]:
    """(file, function) for every write of the environment in the packages."""
    return sorted((path.relative_to(ROOT).as_posix(), name) for package in PACKAGES
                  for path in sorted((ROOT / package).rglob("*.py")) for name in writers(path.read_text()))


def test_the_environment_is_written_only_where_it_must_be() -> None:
    # In a fresh interpreter: CPython 3.11 keeps one AST recursion counter for all threads, and a thread an earlier
    # test left running (Ray's) that parses code at the same moment makes ast.parse fail with a SystemError.
    scan = subprocess.run([sys.executable, __file__], capture_output=True, text=True, timeout=120, check=True)
    found = {tuple(pair) for pair in json.loads(scan.stdout)}
    assert ("sim/gl.py", "choose_gl_backend") in found, "the scan saw the packages"
    assert found <= ALLOWED


def test_the_check_sees_every_kind_of_write() -> None:
    source = ("import os\nos.environ['A'] = '1'\ndef f():\n    os.environ.setdefault('B', '1')\n"
              "def g():\n    del os.environ['C']\ndef h():\n    os.putenv('D', '1')\n"
              "def i():\n    os.environ.get('E')\n")
    assert writers(source) == {"<module>", "f", "g", "h"}


if __name__ == "__main__":
    print(json.dumps(environment_writers()))
