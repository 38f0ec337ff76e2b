import pytest

import hptune
from hptune.exceptions import HptuneError
from hptune.trial import Trial, TrialPruned, is_finite


def test_report_raises_pruned_when_reporter_says_so():
    seen = []

    def reporter(step, value):
        seen.append((step, value))
        return step >= 2

    trial = Trial(3, {"lr": 0.1}, seed=7, reporter=reporter)
    trial.report(0, 1.0)
    trial.report(1, 0.5)
    with pytest.raises(TrialPruned, match="trial 3 pruned at step 2"):
        trial.report(2, 0.25)
    assert seen == [(0, 1.0), (1, 0.5), (2, 0.25)]
    assert trial.last_step == 2


@pytest.mark.parametrize("step", [-1, 1.5, True, "3"])
def test_report_rejects_bad_steps(step):
    with pytest.raises(HptuneError, match="step must be an int >= 0"):
        Trial(0, {}, 0).report(step, 1.0)


def test_is_finite():
    assert is_finite(1.0) and is_finite(3)
    assert not any(is_finite(v) for v in (float("nan"), float("inf"), -float("inf"), None, "x"))


def test_version():
    assert isinstance(hptune.__version__, str)
