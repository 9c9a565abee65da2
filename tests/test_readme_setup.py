"""The README's set-up line runs apt-get update first, through sudo where there is one and directly as root."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def setup_line() -> str:
    section = README.read_text().split("## Set up, run, test", 1)[1]
    return re.search(r"```bash\n(.+?)\n```", section, re.S).group(1)


@pytest.mark.parametrize("with_sudo", [True, False], ids=["user with sudo", "root without sudo"])
def test_setup_line_updates_then_installs(tmp_path: Path, with_sudo: bool) -> None:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for tool in ["apt-get", "pip", *(["sudo"] if with_sudo else [])]:
        stub = bin_dir / tool
        stub.write_text(f'#!/bin/bash\necho "{tool} $*" >> {log}\n')
        stub.chmod(0o755)
    line = setup_line()
    assert line.count("\n") == 0
    subprocess.run(["/bin/bash", "-c", line], env={"PATH": str(bin_dir)}, check=True)
    sudo = "sudo " if with_sudo else ""  # the sudo stub logs the command it was given, and runs nothing
    assert log.read_text().splitlines() == [
        f"{sudo}apt-get update",
        f"{sudo}apt-get install -y libegl1 libgl1 libosmesa6",
        "pip install torch==2.13.0 -e .[test]",
    ]
