"""Running the installed ``cua`` executable in a subprocess, as a script would: shared by the CLI
tests (tests/test_cli.py) and the desktop end-to-end tests (tests/test_desktop_e2e.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CUA = REPO / ".venv" / "bin" / "cua"
if not CUA.exists():  # an install outside the repo's venv: the cua next to this Python
    CUA = Path(sys.executable).parent / "cua"


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any model or VM credentials, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "AZURE_OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_"))
           and k != "CUA_VM_API_KEY"}
    env.update(extra)
    return env


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        """The one JSON object on stdout (anything else there is a contract violation)."""
        assert self.stdout.count("\n") == 1 and self.stdout.endswith("\n"), f"stdout: {self.stdout!r}"
        data = json.loads(self.stdout)
        assert isinstance(data, dict)
        return data


def start_cua(args: list[str], env: dict[str, str], cwd: Path, **popen: Any) -> subprocess.Popen[str]:
    """``cua *args`` in ``cwd`` with exactly ``env`` (see ``clean_env``), no stdin, output piped."""
    return subprocess.Popen([str(CUA), *args], env=env, cwd=cwd, text=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def finish(proc: subprocess.Popen[str], timeout: float = 90) -> Finished:
    """Wait for ``cua`` to exit; one that is still running after ``timeout`` s is killed and fails."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"cua did not finish in {timeout} s; stderr:\n{err}") from None
    return Finished(proc.returncode, out, err)
