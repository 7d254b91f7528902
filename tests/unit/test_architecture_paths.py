"""The three paths of docs/architecture.md ("Three paths") match the code.

Each path lists the modules it passes, in order. For every path: each listed module exists; each (but the first)
is reached from a module listed before it, by the project's imports (read from the source, lazy ones included, as
`test_layers.py` reads them) or, inside Triton, by the repository generator copying it into a model folder; and
every listed module outside the Triton model folder imports. A renamed, moved or no longer used module fails here
until the document says what the code does.
"""

from __future__ import annotations

import ast
import importlib
import re
import tempfile
from functools import cache
from pathlib import Path

import pytest

from tests.unit.service.triton import repo_fixtures
from tests.unit.test_layers import ROOT, imported_modules

DOC = ROOT / "docs" / "architecture.md"
MODELS = Path("service/triton/models")  # the Python-backend model sources: listed in the paths by file name alone
CONTRACTS = Path("training/contracts")
# The package the generator copies the contracts as, inside a model folder (`from tipsv2_contracts import ...`).
CONTRACTS_ALIAS = "tipsv2_contracts"


def paths() -> dict[str, list[Path]]:
    """{path title: the modules it lists, in order}, read from the document's "Three paths" section."""
    section = DOC.read_text().split("## Three paths", 1)[1]
    found = {}
    for block in section.split("\n### ")[1:]:
        title, _, body = block.partition("\n")
        modules = []
        for name in re.findall(r"`([\w/]+\.py)`", body):
            path = Path(name) if "/" in name else MODELS / name
            if path not in modules:
                modules.append(path)
        found[title.strip()] = modules
    return found


PATHS = paths()


def resolve(dotted: str) -> Path | None:
    """The file of `dotted` (a module, or a name imported from one), None outside the project."""
    parts = dotted.split(".")
    while parts:
        for candidate in (Path(*parts).with_suffix(".py"), Path(*parts, "__init__.py")):
            if (ROOT / candidate).is_file():
                return candidate
        parts.pop()
    return None


def model_folder_imports(path: Path) -> set[Path]:
    """What a model source imports by the names it has inside a model folder: its siblings, and the contracts."""
    found = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            head, _, rest = name.partition(".")
            if head == CONTRACTS_ALIAS and rest:
                found.add(CONTRACTS / f"{rest.split('.')[0]}.py")
            elif (ROOT / MODELS / f"{head}.py").is_file():
                found.add(MODELS / f"{head}.py")
    return found


def named_modules(path: Path) -> list[str]:
    """Modules a file names as strings, to import them by name (the CLI's subcommands: `importlib.import_module`)."""
    strings = [n.value for n in ast.walk(ast.parse((ROOT / path).read_text())) if isinstance(n, ast.Constant)]
    dotted = [s for s in strings if isinstance(s, str) and re.fullmatch(r"(service|training)(\.\w+)+", s)]
    return [name for name in dotted if (ROOT / Path(*name.split("."))).with_suffix(".py").is_file()]


@cache
def imports(path: Path) -> frozenset[Path]:
    """The project's modules that `path` imports directly (none for a file that is not there)."""
    if not (ROOT / path).is_file():
        return frozenset()
    direct = {resolve(name) for _, name in imported_modules(ROOT / path, ROOT)}
    direct |= {resolve(name) for name in named_modules(path)}
    if path.parent == MODELS:
        direct |= model_folder_imports(path)
    direct.discard(None)
    direct.discard(path)
    return frozenset(p for p in direct if p is not None)


def reachable(start: Path) -> set[Path]:
    """Every module `start` imports, directly or through others."""
    seen: set[Path] = set()
    todo = [start]
    while todo:
        for target in imports(todo.pop()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


@cache
def copied_into_model_folders() -> frozenset[Path]:
    """The model sources the repository generator copies into the models' version folders, in every shape it
    writes (the numpy and torch ensembles, the fused models)."""
    with tempfile.TemporaryDirectory() as tmp:
        names = set()
        for options in ({}, {"runtime": "torch"}, {"flavour": "onnx", "runtime": "torch"}):
            out = repo_fixtures.repository(Path(tmp), **options)
            names |= {p.name for p in out.glob("*/1/*.py") if p.name != "model.py"}
            names |= {model_source(config) for config in out.glob("*/config.pbtxt")} - {None}
    return frozenset(MODELS / name for name in names)


def model_source(config: Path) -> str | None:
    """The source a model's `model.py` was copied from: the model sources' file with the same bytes."""
    model = config.parent / "1" / "model.py"
    if not model.is_file():
        return None
    return next(p.name for p in (ROOT / MODELS).glob("*.py") if p.read_bytes() == model.read_bytes())


def test_the_document_lists_three_paths() -> None:
    assert len(PATHS) == 3, list(PATHS)
    assert all(len(modules) >= 5 for modules in PATHS.values()), PATHS


@pytest.mark.parametrize("title", list(PATHS))
def test_every_listed_module_exists(title: str) -> None:
    missing = [str(p) for p in PATHS[title] if not (ROOT / p).is_file()]
    assert missing == [], f"{title}: listed but not in the tree"


@pytest.mark.parametrize("title", list(PATHS))
def test_every_listed_module_is_reached_from_the_modules_before_it(title: str) -> None:
    modules = PATHS[title]
    copied = copied_into_model_folders()
    before: set[Path] = set()
    stray = []
    for index, module in enumerate(modules):
        if index and module not in before and module not in copied:
            stray.append(f"{module} (not imported by {', '.join(map(str, modules[:index]))})")
        before |= {module} | reachable(module)
    assert stray == [], f"{title}: off the path"


@pytest.mark.parametrize("title", list(PATHS))
def test_every_listed_module_outside_the_model_folders_imports(title: str) -> None:
    for module in PATHS[title]:
        if module.parent != MODELS:  # those import Triton's `triton_python_backend_utils`: the real server runs them
            importlib.import_module(".".join(module.with_suffix("").parts))
