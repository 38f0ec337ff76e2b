"""The ``hptune`` command line: parse, call a public function, print.

Exit codes: 0 ok; 1 the work itself failed (e.g. no trial completed); 2 bad input (a spec,
a study name, an argument), with a one-line reason per problem on stderr; 130 interrupted.
Every command that prints results takes ``--json`` for scripts.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from hptune.exceptions import HptuneError
from hptune.spec import DEFAULT_STORAGE, SpecError

app = typer.Typer(
    name="hptune",
    help="Tune the training hyperparameters of PyTorch models from a YAML spec.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

Storage = Annotated[str, typer.Option("--storage", help="Study database URL.")]
STORAGE_DEFAULT = DEFAULT_STORAGE
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


class Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hptune`` script; returns the exit code."""
    import optuna

    # hptune draws its own progress; Optuna's per-trial INFO lines would interleave with it.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        app(args=argv, standalone_mode=False)
    except Exit as exc:
        return exc.code
    except SpecError as exc:
        for line in exc.errors:
            err.print(f"error: {line}", markup=False)
        return 2
    except HptuneError as exc:
        err.print(f"error: {str(exc).splitlines()[0]}", markup=False)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted: completed trials are kept; continue with `hptune resume`.")
        return 130
    except typer.Abort:
        return 130
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Exit):
            return exc.exit_code
        raise
    return 0
