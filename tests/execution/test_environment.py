"""A trial's environment (torch threads, seeded global generators) is set by run_job for
every executor and recorded, so a rerun of any trial meets the same environment."""

from __future__ import annotations

import torch

from hptune.execution import TrialJob
from hptune.execution._run import run_job
from tests.execution import objectives as obj


def _threads(config, trial):
    return float(torch.get_num_threads())


def test_run_job_sets_threads_and_seeds_and_records_them():
    before = torch.get_num_threads()
    try:
        out = run_job(TrialJob(0, {}, 7, _threads, threads=1), lambda s, v: False)
        assert out.value == 1.0
        assert out.runtime == {"threads": 1, "seed": 7, "deterministic": True}
        kept = run_job(TrialJob(1, {}, 7, _threads), lambda s, v: False)  # threads None
        assert kept.runtime["threads"] == 1 == kept.value  # the process's, recorded
    finally:
        torch.set_num_threads(before)


def test_an_objective_that_never_reads_its_seed_still_repeats():
    job = TrialJob(0, {"x": 1.0}, 123, obj.unseeded)
    first, again = (run_job(job, lambda s, v: False) for _ in range(2))
    torch.manual_seed(999)  # whatever state the process reached in between
    third = run_job(job, lambda s, v: False)
    other = run_job(TrialJob(0, {"x": 1.0}, 124, obj.unseeded), lambda s, v: False)
    assert first.value == again.value == third.value != other.value
