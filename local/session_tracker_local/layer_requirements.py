"""``layers/common/requirements.txt`` generated from the core package's metadata.

The root ``pyproject.toml`` is the one place the layer's dependencies are written: the
layer installs ``[project].dependencies`` plus the ``lambda`` extra (boto3 comes with the
Lambda runtime, so the ``aws`` extra is left out). ``make layer-requirements`` rewrites the
file; ``tests/unit/test_packaging.py`` fails when it is stale.

    python -m session_tracker_local.layer_requirements [--write]
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "layers" / "common" / "requirements.txt"
LAYER_EXTRAS = ("lambda",)

HEADER = (
    "# Installed into the Lambda layer by `sam build` (BuildMethod python3.12).\n"
    "# GENERATED from pyproject.toml ([project].dependencies + the `lambda` extra) by\n"
    "# `make layer-requirements`: edit pyproject.toml, not this file.\n"
)


def layer_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The requirement strings the layer installs, in the order pyproject.toml gives them."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    requirements: list[str] = list(project["dependencies"])
    for extra in LAYER_EXTRAS:
        requirements += project["optional-dependencies"][extra]
    return requirements


def render(pyproject: Path = ROOT / "pyproject.toml") -> str:
    return HEADER + "".join(f"{line}\n" for line in layer_requirements(pyproject))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if "--write" in args:
        REQUIREMENTS.write_text(text, encoding="utf-8")
        print(f"wrote {REQUIREMENTS.relative_to(ROOT)}")
        return 0
    if REQUIREMENTS.read_text(encoding="utf-8") != text:
        print(f"{REQUIREMENTS.relative_to(ROOT)} is stale: run `make layer-requirements`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
