"""The one entry point of the benchmarks: ``python -m bench <command> [options]``.

Commands (run from the repository root, venv active):

* ``search [--quick] [--replay | --lcbench] [--tasks ...] [--seeds N] [--methods ...]``:
  search efficiency of every method on every task (``bench.search.run``).
* ``replay-build --task T [--quick]``: (re)build the replay table of task T
  (``bench.search.table``).
* ``lcbench-best [--n-configs N] [--seed S]``: the best known value of each LCBench task,
  from a seeded random sample (``bench.lcbench.best_known``).
* ``trainer [...]``: trainer speed (``bench.trainer``).
* ``overhead [...]``: orchestration overhead (``bench.overhead``).
* ``gpu [--out DIR] [--quick]``: the GPU check (``bench.gpu``, ``bench/gpu_check.sh``):
  CUDA tests, trainers on the GPU, packing, the main job with fit_micro_batch and amp.
  Not part of ``all``.
* ``confirm [--seeds N] [--fresh K] [--quick]``: the main job with and without confirming
  its best configs, each choice judged on fresh seeds (``bench.confirm``). Not part of
  ``all``.
* ``all [--quick]``: every table in turn: search, trainer, overhead.

Each command's own options follow it, e.g. ``python -m bench search --help``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS = {
    "search": "bench.search.run",
    "replay-build": "bench.search.table",
    "lcbench-best": "bench.lcbench.best_known",
    "trainer": "bench.trainer",
    "overhead": "bench.overhead",
    "gpu": "bench.gpu",
    "confirm": "bench.confirm",
}


def _replay_build(argv: Sequence[str]) -> int:
    from bench.search.space import TABLE_LEVELS
    from bench.search.table import build_table

    parser = argparse.ArgumentParser(prog="python -m bench replay-build")
    parser.add_argument("--task", required=True, choices=sorted(TABLE_LEVELS))
    parser.add_argument("--quick", action="store_true", help="a smaller grid, half the epochs")
    parser.add_argument("--workers", type=int, default=2, help="training processes")
    args = parser.parse_args(argv)
    build_table(args.task, quick=args.quick, n_workers=args.workers)
    return 0


def _run(command: str, argv: Sequence[str]) -> int:
    if command == "replay-build":
        return _replay_build(argv)
    module = importlib.import_module(COMMANDS[command])
    return int(module.main(list(argv)) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    valid = [*COMMANDS, "all"]
    if argv[:1] in (["-h"], ["--help"]) or argv[:2] in (["all", "-h"], ["all", "--help"]):
        print(__doc__)
        return 0
    if not argv or argv[0] not in valid:
        print(__doc__, file=sys.stderr)
        given = repr(argv[0]) if argv else "nothing"
        print(
            f"error: the command must be one of {', '.join(valid)}; got {given}.", file=sys.stderr
        )
        return 2
    command, rest = argv[0], argv[1:]
    if command != "all":
        return _run(command, rest)
    unknown = [a for a in rest if a != "--quick"]
    if unknown:
        print(f"error: 'all' takes only --quick; got {' '.join(unknown)}.", file=sys.stderr)
        return 2
    quick = ["--quick"] if "--quick" in rest else []
    for name in ("search", "trainer", "overhead"):
        code = _run(name, quick if name != "overhead" else [])
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
