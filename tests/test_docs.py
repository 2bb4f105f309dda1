"""Every code block of README.md runs, against the simulator, as a user would run it.

Python blocks run as scripts in a fresh interpreter, shell blocks with bash, each in its
own directory, with every provider's base URL pointed at a loopback simulator and dummy
keys set (the same code then reaches a real provider with real keys). A block that must not
run is marked with ``<!-- docs-test: skip (reason) -->`` on the line before it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CI_SCRIPT = ROOT / ".ci" / "run"
INSTALL_DEMO = ("python3 -m venv .venv && . .venv/bin/activate && pip install -e . && "
                "yait-aichain demo")
INSTALL_TEST = ('python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]" && '
                "pytest")
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"<!--\s*docs-test:(.*?)-->", re.DOTALL)
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((?P<reason>[^)]*\S[^)]*)\)\s*-->")
KINDS = {"python": "python", "bash": "shell", "shell": "shell", "sh": "shell", "text": None}
MAX_SKIPS = 2  # skipping is for what cannot run here (installs); keep it rare
PAGES = {
    "/fr": "<html><head><title>Lorem</title></head><body><main><p>Lorem ipsum dolor.</p>"
           "</main></body></html>",
    "/de": "<html><head><title>Ipsum</title></head><body><main><p>Sit amet, consectetur."
           "</p></main></body></html>",
}


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int
    skip: str | None  # the reason, when marked to skip

    @property
    def kind(self) -> str | None:
        return KINDS.get(self.lang, "unknown")


def _blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        skip = SKIP.fullmatch(before)
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(match.group(1).strip(), match.group(2), line,
                           skip.group("reason").strip() if skip else None))
    return found


BLOCKS = _blocks()
RUNNABLE = [b for b in BLOCKS if b.kind in ("python", "shell") and b.skip is None]


# -- the contract at the top of the README ---------------------------------------------


def test_readme_starts_with_a_title_and_the_two_commands():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ")
    head = lines[:60]
    assert INSTALL_DEMO in head and INSTALL_TEST in head
    assert head.index(INSTALL_TEST) == head.index(INSTALL_DEMO) + 1
    assert any("pytest" in line for line in head)


def test_ci_runs_the_readme_test_command_verbatim():
    assert INSTALL_TEST in CI_SCRIPT.read_text(encoding="utf-8").splitlines()


def test_every_block_is_known_and_skips_are_rare_and_explained():
    assert {b.lang for b in BLOCKS} <= set(KINDS), "a fence with a language we do not run"
    text = README.read_text(encoding="utf-8")
    for marker in MARKER.finditer(text):
        if "`" in text[text.rfind("\n", 0, marker.start()) + 1: marker.start()]:
            continue  # the README describing the marker in running text
        assert SKIP.fullmatch(marker.group(0)), f"a docs-test marker without a reason: {marker[0]}"
    skipped = [b for b in BLOCKS if b.skip is not None]
    assert len(skipped) <= MAX_SKIPS and all(b.kind in ("python", "shell") for b in skipped)
    assert sum(b.kind == "python" for b in RUNNABLE) >= 10
    assert any(b.kind == "shell" for b in RUNNABLE)


# -- running the blocks ------------------------------------------------------------------


@pytest.fixture
def pages():
    from ._pageserver import PageServer

    with PageServer() as server:
        for path, body in PAGES.items():
            server.add_page(path, body)
        yield server


@pytest.fixture
def block_env(sim_env, pages, tmp_path):
    """The environment a block runs in: simulator URLs and keys, a local page server,
    and ``yait-aichain``/``python`` on PATH even when the package is not installed."""
    shims = tmp_path / "bin"
    shims.mkdir()
    commands = {"python": "", "python3": ""}
    if shutil.which("yait-aichain") is None:
        commands["yait-aichain"] = "-m yait_aichain"
    for name, args in commands.items():
        shim = shims / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" {args} "$@"\n')
        shim.chmod(0o755)
    env = dict(os.environ)
    env.update(
        PATH=f"{shims}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}",
        AICHAIN_ALLOW_PRIVATE_URLS="1",  # the page server is on 127.0.0.1
        PAGES=" ".join(pages.url(path) for path in PAGES),
    )
    return env


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"{b.kind}-line{b.line}" for b in RUNNABLE])
def test_readme_block_runs(block, block_env, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    if block.kind == "python":
        script = work / "example.py"
        script.write_text(block.code, encoding="utf-8")
        cmd = [sys.executable, str(script)]
    else:
        cmd = ["bash", "-e", "-o", "pipefail", "-c", block.code]
    proc = subprocess.run(cmd, cwd=work, env=block_env, check=False, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, (
        f"README.md line {block.line} ({block.lang}) exited {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-3000:]}"
    )
    assert "Traceback" not in proc.stderr
