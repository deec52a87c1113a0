"""The core imports without ape or torch: every module of ``fedchain`` but its ape adapter (``fedchain.ape``) and its
face (``fedchain.cli``) imports in an interpreter where importing ape or torch fails, and the privacy accountant
works there. (The import rules themselves are import-linter contracts in pyproject.toml, run by `make test`.)"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import fedchain
from tests.support.cli import REPO

BLOCKED = ("ape", "ape_foundry", "ape_solidity", "torch", "opacus")


def core_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(fedchain.__path__, "fedchain.")]
    return sorted(n for n in names if not n.startswith(("fedchain.ape", "fedchain.cli")))


def test_every_core_module_imports_without_ape_or_torch() -> None:
    modules = core_modules()
    assert {"fedchain.protocol", "fedchain.chainview", "fedchain.web3chain", "fedchain.store.kubo"} <= set(modules)
    code = "\n".join([
        "import sys",
        *[f"sys.modules[{name!r}] = None  # any import of it raises ImportError" for name in BLOCKED],
        *[f"import {name}" for name in modules],
        "from fedchain.privacy import central_epsilon",
        "assert 0 < central_epsilon(1.0, 3, 1e-5) < 100",
        "print('ok', len(sys.modules))",
    ])
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")


def test_the_blocking_works() -> None:
    """The check above can fail: the ape adapter does not import in the same interpreter."""
    code = "import sys\nsys.modules['ape'] = None\nimport fedchain.ape.chain"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "import of ape halted" in done.stderr
