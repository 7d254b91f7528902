"""The rooms of the code base and the one import rule between them (docs/architecture.md, "Rooms").

Layers, top first; a module may import its own room and any room of a lower layer, never one above. Rooms of one
layer marked independent never import each other (the gateway and the Triton side); the recipes share a layer and
may. Every module of `service/` and `training/` lives in exactly one room: a new package has to be placed here.
Imports are read from the source (every `import`, lazy and TYPE_CHECKING ones included), nothing is executed.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("service", "training")


@dataclass(frozen=True)
class Layer:
    rooms: tuple[str, ...]
    independent: bool = False  # its rooms may not import one another


LAYERS = (
    Layer(("service.tools",)),
    Layer(("service.gateway", "service.triton"), independent=True),
    Layer(("training.export",)),
    Layer(("training.adalink", "training.data", "training.eval", "training.losses", "training.train")),
    Layer(("training.tipsv2",)),
    Layer(("training.contracts",)),
)


def room_of(module: str, layers: tuple[Layer, ...] = LAYERS) -> str | None:
    rooms = [room for layer in layers for room in layer.rooms if module == room or module.startswith(room + ".")]
    return max(rooms, key=len, default=None)


def allowed(source: str, target: str, layers: tuple[Layer, ...] = LAYERS) -> bool:
    if source == target:
        return True
    depth = {room: (i, layer) for i, layer in enumerate(layers) for room in layer.rooms}
    (source_depth, layer), (target_depth, _) = depth[source], depth[target]
    return target_depth > source_depth or (target_depth == source_depth and not layer.independent)


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, module) for every import of the project's packages in one file, relative imports resolved."""
    package = module_name(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from service.gateway import cache` imports a module too: name it, so that its room is found
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] in PACKAGES]


def violations(root: Path, layers: tuple[Layer, ...] = LAYERS) -> list[str]:
    problems = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            module = module_name(path, root)
            source = room_of(module, layers)
            where = path.relative_to(root)
            if source is None:
                if module not in PACKAGES:
                    problems.append(f"{where}: in no room; place its package in LAYERS (tests/unit/test_layers.py)")
                continue
            for line, name in imported_modules(path, root):
                target = room_of(name, layers)
                if target is None:
                    problems.append(f"{where}:{line} imports {name}, which is in no room")
                elif not allowed(source, target, layers):
                    problems.append(f"{where}:{line}: {source} may not import {name} ({target})")
    return problems


def test_imports_point_down() -> None:
    assert violations(ROOT) == []


def test_the_contracts_import_no_project_code_and_no_torch() -> None:
    """The contracts are copied into Triton's model folders as a package of their own: within it they may import
    one another only relatively, and nothing of torch (NVIDIA's container runs the numpy models without it)."""
    folder = ROOT / "training" / "contracts"
    code = "import sys; sys.modules['torch'] = None\n" + "".join(
        f"import training.contracts.{path.stem}\n" for path in folder.glob("[a-z]*.py")
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        absolute = [
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith(PACKAGES)
        ]
        absolute += [
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
            if alias.name.startswith(PACKAGES)
        ]
        assert absolute == [], f"{path.name} imports {absolute} absolutely; use relative imports"


def test_package_roots_import_nothing() -> None:
    for package in PACKAGES:
        assert imported_modules(ROOT / package / "__init__.py", ROOT) == []


# The rule itself, on small trees holding one violation each: each must be caught.


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name in ("service/__init__.py", "training/__init__.py", *files):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(tmp_path).parents:
            if str(parent) != ".":
                (tmp_path / parent / "__init__.py").touch()
        path.write_text(files.get(name, ""))
    return tmp_path


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"training/tipsv2/model.py": "from service.gateway import app\n"}, "training.tipsv2 may not import"),
        ({"training/export/pipeline.py": "import service.triton.repository\n"}, "training.export may not import"),
        ({"training/tipsv2/model.py": "from training.export import pipeline\n"}, "training.tipsv2 may not import"),
        ({"training/train/loop.py": "def f():\n    from training.export.x import y\n"}, "may not import"),
        ({"service/triton/repository.py": "from service.tools.local import stack\n"}, "service.triton may not"),
        ({"service/gateway/app.py": "from service.triton.repository import MANIFEST\n"}, "service.gateway may not"),
        ({"service/triton/models/fused.py": "from service.gateway import cache\n"}, "service.triton may not"),
        ({"service/gateway/api/routes.py": "from ...tools import cli\n"}, "service.gateway may not"),
        ({"service/newroom/thing.py": ""}, "in no room"),
    ],
)
def test_a_violation_is_caught(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    problems = violations(_tree(tmp_path, files))
    assert problems and all(expected in problem for problem in problems), problems


def test_downward_and_recipe_imports_pass(tmp_path: Path) -> None:
    files = {
        "service/tools/cli/main.py": "from service.gateway import app\nfrom service.triton import repository\n",
        "service/triton/build.py": "from training.export.pipeline import export_artifacts\n",
        "service/gateway/inputs.py": "from training.tipsv2.decoding import decode_image\n",
        "training/losses/koleo.py": "from training.train.distributed import all_gather\n",
        "training/train/loop.py": "from training.losses import koleo\nfrom . import build\n",
    }
    assert violations(_tree(tmp_path, files)) == []


def test_the_architecture_document_lists_these_rooms() -> None:
    """docs/architecture.md's table of rooms names the same rooms, top first, as LAYERS."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\| (\d) \| ([^|]+) \|", text, flags=re.MULTILINE)
    documented = [tuple(re.findall(r"`([\w./]+?)/?`", rooms)) for _, rooms in rows]
    expected = [tuple(room.replace(".", "/") for room in layer.rooms) for layer in LAYERS]
    assert documented == expected
