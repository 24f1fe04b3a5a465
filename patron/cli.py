"""Patron's command line: a thin Typer shell that wires settings to library calls."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Annotated

import typer

from patron.settings import Settings, get_settings

app = typer.Typer(
    name="patron",
    help="Customer value and churn service for online retailers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

MapOption = Annotated[
    list[str] | None,
    typer.Option("--map", help="Column mapping field=SourceColumn, repeatable (e.g. --map customer_id=CustomerID)."),
]
SepOption = Annotated[str | None, typer.Option("--sep", help="Field separator (e.g. '\\s+' for whitespace).")]
DateFormatOption = Annotated[str | None, typer.Option("--date-format", help="strftime format of timestamps, e.g. %Y%m%d.")]


def parse_mapping(pairs: list[str] | None, settings: Settings) -> dict[str, str]:
    """Merge `--map field=Column` options over the settings' column map."""
    mapping = dict(settings.column_map)
    for pair in pairs or []:
        key, sep, source = pair.partition("=")
        if not sep or not key.strip() or not source.strip():
            raise typer.BadParameter(f"--map {pair!r} is not of the form field=Column")
        mapping[key.strip()] = source.strip()
    return mapping


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected failures into one readable line and exit code 1, never a traceback."""
    from features.errors import PatronError

    try:
        yield
    except typer.Exit:
        raise
    except (PatronError, ValueError, FileNotFoundError, PermissionError, OSError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        raise typer.Exit(code=130) from None


def echo(text: str = "") -> None:
    """Print one line of command output."""
    typer.echo(text)


# --- commands: each parses options and calls one library function -----------------------------


def main() -> None:  # pragma: no cover - console entry point
    """Run the command line."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
