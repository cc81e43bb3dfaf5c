"""Every grocer module a stage's command imports is one of the stage's dvc.yaml deps.

A stage that imports a module it does not depend on is not re-run when that module
changes: its outputs are silently stale. The import closure is read from the source
(AST, every `import` anywhere in a module, lazy ones included), from the stage module
that `grocer <command>` runs (grocer.cli.COMMANDS); a module is covered by a dep that is
its file or a folder above it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from support.params import REPO
from grocer.cli import COMMANDS

SRC = REPO / "src"

# Modules a stage imports that change none of its outputs, so no stage depends on them
# (nor on a package __init__ that holds only a docstring):
NOT_DEPS = {
    "grocer/cli.py": "the dispatcher: parses the command line, loads params, calls the stage's run()",
    "grocer/errors.py": "the error class the CLI prints as one line",
    "grocer/interrupt.py": "how a command ends on Ctrl+C or SIGTERM: it computes and writes nothing",
    "grocer/params.py": "validates params.yaml; the values a stage reads are its `params:`, tracked key by key",
    "grocer/runtime.py": "machine-local settings (device, threads, workers, inference batch): speed, not results",
}


def module_file(name: str) -> Path | None:
    """The source file of module `name` under src/, or None when it is not grocer's."""
    base = SRC / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_names(file: Path) -> set[str]:
    """Dotted names of every module `file` imports (a `from a import b` yields a.b and a)."""
    package = ".".join(file.relative_to(SRC).with_suffix("").parts)
    if file.name == "__init__.py":
        package = package.removesuffix(".__init__")
    else:
        package = package.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {n for n in names if n == "grocer" or n.startswith("grocer.")}


def import_closure(module: str) -> set[str]:
    """Source files (relative to src/) of `module`, everything it imports inside grocer, and
    the packages' __init__ files on the way (importing a.b.c runs a/__init__ and a/b/__init__).
    What a NOT_DEPS module imports serves it alone (params.py validates pair names with
    grocer.pairs), so the walk does not go through them."""
    todo, seen = [module], set()
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            file = module_file(".".join(parts[:depth]))
            if file is None or file in seen:
                continue
            seen.add(file)
            if str(file.relative_to(SRC)) not in NOT_DEPS:
                todo.extend(imported_names(file))
    return {str(f.relative_to(SRC)) for f in seen}


def stage_commands() -> dict[str, tuple[str, list[str]]]:
    """stage name -> (the grocer command it runs, its deps)."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    found = {}
    for name, stage in stages.items():
        program, command = stage["cmd"].split()[:2]
        assert program == "grocer", f"{name}: {stage['cmd']}"
        found[name] = (command, stage.get("deps", []))
    return found


def has_code(file: str) -> bool:
    """False for a package __init__ that holds only its docstring (it computes nothing)."""
    body = ast.parse((SRC / file).read_text()).body
    return bool(body[1:] if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                else body)


def covered(file: str, deps: list[str]) -> bool:
    path = Path("src") / file
    return any(Path(dep) == path or Path(dep) in path.parents for dep in deps)


@pytest.mark.parametrize("stage", list(stage_commands()))
def test_stage_depends_on_every_module_it_imports(stage):
    command, deps = stage_commands()[stage]
    closure = import_closure(COMMANDS[command].module) | import_closure("grocer.cli")
    missing = sorted(f for f in closure if f not in NOT_DEPS and has_code(f) and not covered(f, deps))
    assert missing == [], f"stage {stage} (grocer {command}) imports modules it does not depend on: {missing}"


@pytest.mark.parametrize("stage", list(stage_commands()))
def test_stage_depends_on_no_module_it_does_not_import(stage):
    """A source dep the command never imports re-runs the stage for nothing."""
    command, deps = stage_commands()[stage]
    closure = import_closure(COMMANDS[command].module)
    extra = [dep for dep in deps if dep.startswith("src/") and not any(covered(f, [dep]) for f in closure)]
    assert extra == [], f"stage {stage} depends on source it never imports: {extra}"


def test_the_closure_follows_imports_inside_functions_and_packages():
    closure = import_closure("grocer.stages.train")
    assert {"grocer/stages/train.py", "grocer/stages/__init__.py", "grocer/__init__.py",
            "grocer/training/loop.py", "grocer/training/__init__.py", "grocer/imagecache.py"} <= closure
    assert "grocer/review/server.py" not in closure
    # cli.py imports the stage modules lazily (importlib), so its closure holds none of them
    assert not any(f.startswith("grocer/stages/") for f in import_closure("grocer.cli"))
