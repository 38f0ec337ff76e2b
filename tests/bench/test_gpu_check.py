"""bench/gpu_check.sh without a GPU: it must skip its GPU parts cleanly (exit 0, a note in
its output folder), so a machine without one can run it; and its pieces that need no GPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import gpu

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_check_skips_cleanly_without_a_gpu(tmp_path):
    # CUDA_VISIBLE_DEVICES="" hides any GPU, so this runs the no-GPU path everywhere.
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    env.pop("OUT", None)
    done = subprocess.run(
        [str(ROOT / "bench" / "gpu_check.sh"), str(tmp_path), "--quick"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "the GPU check is skipped" in done.stdout
    assert "the GPU check is skipped" in (tmp_path / "gpu.md").read_text()


def test_the_main_job_spec_is_the_examples_with_fit_and_amp(tmp_path):
    from hptune.spec import load_spec

    spec = load_spec(gpu.main_job_spec(tmp_path))
    assert (spec.training.fit_micro_batch, spec.training.amp, spec.workers) == (True, True, 2)
    assert spec.space == load_spec(ROOT / "examples" / "mnist1d.yaml").space


def test_the_packing_table_reads_per_gpu_rows():
    row = {
        "per_gpu": 2, "trials": 16, "complete": 16, "seconds": 30.0, "start_seconds": 6.0,
        "trials_per_min": 32.0, "trials_per_min_started": 40.0, "trial_seconds": 48.0,
        "best": 0.61,
    }  # fmt: skip
    lines = gpu.packing_table([row]).splitlines()
    assert lines[0].startswith("| trials per GPU | complete | seconds |")
    assert lines[2] == "| 2 | 16/16 | 30.0 | 6.0 | 32.0 | 40.0 | 48.0 | 0.610 |"


@pytest.mark.slow
def test_packing_runs_every_trial_in_full_on_the_cpu(tmp_path):
    # Everything of the packing measurement but the GPU: the study it builds, the
    # executor, the deterministic batch, the row (it first ran without a direction).
    row = gpu.pack(2, tmp_path, device="cpu")
    assert row["trials"] == row["complete"] == gpu.PACKED_TRIALS
    assert 0 < row["best"] <= 1
    assert "| 2 | 16/16 |" in gpu.packing_row(row)
