"""Start the model server: ``python path/to/serving ARGS`` (or ``python -m ...serving``).

Run as a folder, Python puts the folder itself first on ``sys.path`` and runs this file as a
top-level script, so the package's relative imports would fail and its module names (``app``,
``metrics``...) would shadow the project's own. The bootstrap takes the folder off the path and
loads it as the package ``shipyard_serving`` instead: nothing from ``shipyard`` is imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

PACKAGE = "shipyard_serving"


def bootstrap() -> None:
    here = Path(__file__).resolve().parent
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != here]
    spec = importlib.util.spec_from_file_location(
        PACKAGE, here / "__init__.py", submodule_search_locations=[str(here)]
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load the model server package from {here}")
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    spec.loader.exec_module(package)
    importlib.import_module(f"{PACKAGE}.server").main()


if __name__ == "__main__":
    if __package__:
        importlib.import_module(f"{__package__}.server").main()
    else:
        bootstrap()
