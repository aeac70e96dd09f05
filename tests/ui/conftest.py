"""Browser fixtures: Debian's chromium (installed with apt when missing) driven by Playwright's Python client.

Playwright's own downloaded browsers are never used (no `playwright install`): the browser comes from the system
package manager, so a CI image only needs apt and the package registries.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Enough for `apt-get update` plus chromium and its libraries on a slow mirror; a hung mirror must not hang CI.
APT_TIMEOUT_SECONDS = 900
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def ensure_chromium() -> Path:
    """The system chromium, installed with apt when missing; ``pytest.skip`` with the reason when it cannot be."""
    if CHROMIUM.exists():
        return CHROMIUM
    if shutil.which("apt-get") is None:
        pytest.skip(f"{CHROMIUM} missing and no apt-get to install Debian's chromium package")
    if os.geteuid() != 0:
        pytest.skip(f"{CHROMIUM} missing and installing it needs root (run `apt-get install -y chromium` as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.skip(f"`{' '.join(cmd)}` did not finish within {APT_TIMEOUT_SECONDS} s; chromium not installed")
        if proc.returncode != 0:
            pytest.skip(f"`{' '.join(cmd)}` failed (exit {proc.returncode}): {(proc.stderr or proc.stdout)[-500:]}")
    if not CHROMIUM.exists():
        pytest.skip(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return CHROMIUM


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    return ensure_chromium()


@pytest.fixture(scope="module")
def browser(chromium_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python client is not installed")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()
