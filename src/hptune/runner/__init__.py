"""Run a study from a spec: the glue between the YAML spec, the task, the recipe and the
study. The CLI is a thin layer over these functions; Python users may call them too.

A study run from a spec stores the spec in its user attributes (``hptune.spec``), so
``resume``, ``rerun`` and ``lr-find`` need nothing but the study's name and storage.

The trial budget (``budget.trials``) counts across runs and machines: a run starts only the
trials still missing. Trials that ended as ``interrupted`` (Ctrl-C) or were reaped after
their driver died do not count: resuming runs them again.
"""

from hptune.runner._base import (
    OUTPUT_DIR,
    SPEC_ATTR,
    make_objective,
    spec_from_dict,
    spec_to_dict,
    stored_spec,
)
from hptune.runner._check import check_spec
from hptune.runner._final import TrainedModel, check_train_best, load_trained, train_best
from hptune.runner._lr_auto import LR_AUTO_ATTR, lr_priors
from hptune.runner._meaning import MEANING, check_same_meaning
from hptune.runner._objective import TaskObjective
from hptune.runner._rerun import RerunResult, check_rerun, rerun
from hptune.runner._study import (
    STEP_UNIT_ATTR,
    lr_test_due,
    metric_name,
    open_study,
    optimize,
    prepare,
    prepare_resume,
    representative_config,
    resume,
    run,
)

__all__ = [
    "LR_AUTO_ATTR",
    "MEANING",
    "OUTPUT_DIR",
    "SPEC_ATTR",
    "STEP_UNIT_ATTR",
    "RerunResult",
    "TaskObjective",
    "TrainedModel",
    "check_rerun",
    "check_same_meaning",
    "check_spec",
    "check_train_best",
    "load_trained",
    "lr_priors",
    "lr_test_due",
    "make_objective",
    "metric_name",
    "open_study",
    "optimize",
    "prepare",
    "prepare_resume",
    "representative_config",
    "rerun",
    "resume",
    "run",
    "spec_from_dict",
    "spec_to_dict",
    "stored_spec",
    "train_best",
]
