"""The toolkit's public names, including the seed article's vocabulary, import from
``hptune.training``; ``import hptune`` stays light."""

import subprocess
import sys

import hptune.training as training

SEED_NAMES = [
    "create_optimizer",
    "create_lr_scheduler",
    "WarmupScheduler",
    "DynamicBatchSizer",
    "apply_weight_decay_by_layer",
    "train_with_gradient_accumulation",
]


def test_seed_vocabulary_and_all_exports_resolve():
    for name in SEED_NAMES:
        assert name in training.__all__
    for name in training.__all__:
        assert getattr(training, name) is not None


def test_import_hptune_does_not_load_heavy_optional_packages():
    code = (
        "import sys, hptune; "
        "print(sorted(m for m in ('ray', 'matplotlib', 'hptune.report', 'pandas') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
