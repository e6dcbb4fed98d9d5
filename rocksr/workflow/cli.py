"""Shared plumbing of the scripts/ CLIs: one parser, settings and logging pattern, and
one-line errors for bad input.

Every script reads the same way:

    def main(argv=None):
        ap = cli.parser(__doc__, "what --settings holds")   # or cli.figure_parser
        ap.add_argument(...)
        args = cli.parse(ap, argv)                          # logging starts here
        settings = cli.settings(args, StepSettings, "config.key")
        ...

    if __name__ == "__main__":
        cli.run(main)

The compute steps (train, evaluate, predict) add their shared arguments and device with
rocksr/workflow/job.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from rocksr.settings import ConfigError, Settings

# Errors that mean "bad input or configuration": reported as one line, exit status 1.
USER_ERRORS = (ValueError, TypeError, KeyError, OSError)

S = TypeVar("S", bound=Settings)


def setup_logging(log_file: str | None = None) -> None:
    """Log to stderr and, when given, to `log_file` (the rule's log:).

    The file is appended to: a resumed training job keeps the lines of the attempt that
    was killed before it.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, mode="a"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(message)s")


def run(main: Callable[[], None], errors: tuple[type[Exception], ...] = ()) -> None:
    """Call a script's main(); bad input (USER_ERRORS, or the script's own `errors`) is one
    logged line and exit status 1, not a traceback."""
    try:
        main()
    except (*USER_ERRORS, *errors) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        logging.getLogger().error("%s", message)
        sys.exit(1)


def parser(doc: str, settings: str | None = None) -> argparse.ArgumentParser:
    """Every script's parser: its module doc as the help text, `--log`, and `--settings`
    (JSON/YAML or @file) when the step takes settings; `settings` says what they are."""
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    if settings is not None:
        ap.add_argument("--settings", required=True, help=f"{settings}: JSON/YAML or @file")
    ap.add_argument("--log", help="also log to this file (the rule's log:)")
    return ap


def figure_parser(doc: str, settings: str = '{"dpi": N}') -> argparse.ArgumentParser:
    """A figure script's parser: parser()'s arguments, and the --png and --pdf outputs."""
    ap = parser(doc, settings)
    ap.add_argument("--png", required=True)
    ap.add_argument("--pdf", required=True)
    return ap


def parse(ap: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the arguments and start logging (stderr, and --log when given)."""
    args = ap.parse_args(argv)
    setup_logging(args.log)
    return args


def settings(args: argparse.Namespace, cls: type[S], where: str, *more: str) -> S:
    """--settings parsed into the step's dataclass, with the settings texts `more` (as
    --settings) merged over them; errors name the key under `where`."""
    data = parse_settings(args.settings)
    for text in more:
        data.update(parse_settings(text))
    return cls.from_dict(data, where)


def parse_settings(text: str) -> dict[str, Any]:
    """--settings given inline as JSON/YAML, or as @path to such a file."""
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read settings file {path}: {exc}") from None
    try:  # JSON first: YAML 1.1 reads JSON's "1e-05" (no dot) as a string, not a float
        value = json.loads(text)
    except json.JSONDecodeError:
        value = yaml.safe_load(text)
    if not isinstance(value, dict):
        raise ConfigError(f"settings must be a mapping, got: {text[:80]!r}")
    return value
