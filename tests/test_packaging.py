"""The distribution installs one top-level package, `cityexchange`: the repo's `schema/`,
`services/` and `auth/` folders are its subpackages (linked from cityexchange/), so they cannot
collide with PyPI's `schema` or any other top-level name."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import cityexchange

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("schema", "services", "auth")
TOP_LEVEL_IMPORT = re.compile(rf"^\s*(?:from|import) (?:{'|'.join(LAYERS)})(?:\.|\s|$)", re.M)


def test_the_distribution_installs_only_the_cityexchange_package() -> None:
    top_level = importlib.metadata.distribution("cityexchange").read_text("top_level.txt")
    assert (top_level or "").split() == ["cityexchange"]


def test_the_layers_are_subpackages_of_cityexchange() -> None:
    for layer in LAYERS:
        linked = Path(cityexchange.__file__).parent / layer
        assert linked.resolve() == ROOT / layer, f"cityexchange/{layer} must lead to {layer}/"


def test_no_module_imports_a_layer_by_its_top_level_name() -> None:
    folders = [*LAYERS, "cityexchange", "tests", "bench"]
    sources = [p for folder in folders for p in (ROOT / folder).rglob("*.py")]
    offenders = [
        str(path.relative_to(ROOT))
        for path in sources
        if "node_modules" not in path.parts and TOP_LEVEL_IMPORT.search(path.read_text("utf-8"))
    ]
    assert sources
    assert offenders == [], "import these as cityexchange.<layer>: " + ", ".join(offenders)


def test_the_app_loads_no_top_level_layer_module(tmp_path: Path) -> None:
    probe = (
        "import sys, cityexchange.app, cityexchange.cli; "
        f"print([m for m in sys.modules if m.split('.')[0] in {LAYERS!r}])"
    )
    # From a directory outside the repo, as an installed service runs.
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
