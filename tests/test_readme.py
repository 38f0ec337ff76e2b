"""The README's commands are the ones that work: CI runs its set-up and test blocks
(.ci/run reads them), and this test runs its main job as written."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_block(marker: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\n```bash\n(.*?)```", text, re.S)
    assert match, f"README.md lacks the <!-- {marker} --> block"
    return [line for line in match.group(1).splitlines() if line.strip()]


def test_readme_blocks_install_with_the_torch_constraint():
    for marker in ("main", "setup"):
        assert any("-c constraints.txt" in line for line in readme_block(marker))
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text()
    assert readme_block("test") == ["python -m pytest -q"]


@pytest.mark.slow
def test_readme_main_job_ends_with_best_config_and_val_and_test_accuracy(tmp_path):
    (command,) = [line for line in readme_block("main") if line.startswith("hptune ")]
    argv = shlex.split(command)
    assert argv[:2] == ["hptune", "run"]
    spec = ROOT / argv[2]
    result = subprocess.run(
        [sys.executable, "-m", "hptune", "run", str(spec), *argv[3:]],
        cwd=tmp_path,  # the default storage sqlite:///hptune.db lands here
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    match = re.search(
        r"best trial #\d+: val_accuracy = ([\d.]+), test_accuracy = ([\d.]+)", result.stdout
    )
    assert match, result.stdout[-2000:]
    val, test = map(float, match.groups())
    assert val > 0.5 and test > 0.5  # chance is 0.1 on MNIST-1D's ten classes
    assert "optimizer:" in result.stdout and (tmp_path / "hptune.db").exists()
