"""The gateway image does not carry torch: importing and building the app must not import it."""

from __future__ import annotations

import subprocess
import sys


def test_gateway_imports_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
        "import service.gateway.app, service.gateway.main  # noqa\n"
        "from service.gateway.inference.triton import TritonBackend  # noqa\n"
        "print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"TIPS_TOKENIZER_PATH": "/nonexistent"}
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
