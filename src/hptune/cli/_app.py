"""The ``hptune`` command line: parse, call a public function, print.

Exit codes: 0 ok; 1 the work itself failed (e.g. no trial completed); 2 bad input (a spec,
a study name, an argument), with a one-line reason per problem on stderr; 130 interrupted.
Every command that prints results takes ``--json`` for scripts.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from hptune.cli._codes import INTERRUPTED
from hptune.exceptions import HptuneError
from hptune.spec import DEFAULT_STORAGE, SpecError

app = typer.Typer(
    name="hptune",
    help="Tune the training hyperparameters of PyTorch models from a YAML spec.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
#: C0 and C1 control characters (newline and tab excepted): in a study name, a config value
#: or an error message they would reach the terminal raw (an escape sequence can clear the
#: screen or rewrite lines).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """``text`` with each control character shown as its escape (``\\x1b``)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class SafeConsole(Console):
    """A console that prints every string as it is: no markup is parsed (a study named
    ``x[/]`` is text, not an error) and control characters are shown escaped. Styling is
    asked for with :func:`styled`, never with markup inside a string."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(markup=False, highlight=False, soft_wrap=True, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(clean(text), **kwargs)


def styled(*parts: str | tuple[str, str]) -> Text:
    """Text from plain strings and ``(string, style)`` pairs, every string cleaned."""
    return Text.assemble(
        *((clean(p[0]), p[1]) if isinstance(p, tuple) else clean(p) for p in parts)
    )


out = SafeConsole()
err = SafeConsole(stderr=True)

Storage = Annotated[str, typer.Option("--storage", help="Study database URL.")]
STORAGE_DEFAULT = DEFAULT_STORAGE
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _print_version(value: bool) -> None:
    if value:
        from hptune import __version__

        out.print(f"hptune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version",
            help="Print hptune's version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = None,
) -> None:
    """Tune the training hyperparameters of PyTorch models from a YAML spec."""


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
        code = app(args=argv, prog_name="hptune", standalone_mode=False)
    except Exit as exc:
        return exc.code
    except SpecError as exc:
        for line in exc.errors:
            err.print(f"error: {line}")
        return 2
    except HptuneError as exc:
        err.print(f"error: {str(exc).splitlines()[0]}")
        return 2
    except (KeyboardInterrupt, typer.Abort):
        code = INTERRUPTED
    except Exception as exc:
        usage = _usage_error(exc)
        if usage is None:
            raise
        return usage
    # Typer turns Ctrl-C into the exit code 130 and returns it (standalone_mode=False);
    # older Typer raised Abort instead. Commands themselves return None.
    if code == INTERRUPTED:
        err.print("interrupted: completed trials are kept; continue with `hptune resume`.")
        return INTERRUPTED
    return code if isinstance(code, int) else 0


def _usage_error(exc: Exception) -> int | None:
    """Show a command-line usage error (bad option, missing argument, ...) in one line and
    return its exit code; None for any other exception.

    Typer up to 0.2x raised click's exceptions, later releases raise those of the copy of
    click they carry (``typer._click``); both have ``show()`` and ``exit_code``.
    """
    bases = []
    for module in ("click.exceptions", "typer._click.exceptions"):
        try:
            bases.append(importlib.import_module(module).ClickException)
        except (ImportError, AttributeError):
            continue
    if bases and isinstance(exc, tuple(bases)):
        # One line, as every other error: click's own block (usage, "Try ...", a blank
        # line, the error) is four.
        ctx = getattr(exc, "ctx", None)
        where = getattr(ctx, "command_path", None) or "hptune"
        message = exc.format_message().strip().splitlines()  # type: ignore[attr-defined]
        err.print(f"error: {where}: {' '.join(message)} (`{where} -h` for help)")
        return int(exc.exit_code)  # type: ignore[attr-defined]
    if isinstance(exc, typer.Exit):
        return int(exc.exit_code)
    return None
