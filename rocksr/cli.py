"""Shared plumbing of the scripts/ CLIs: logging and one-line errors for bad input."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

# Errors that mean "bad input or configuration": reported as one line, exit status 1.
USER_ERRORS = (ValueError, TypeError, KeyError, OSError)


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


def figure_parser(doc: str, settings_help: str = '{"dpi": N}: JSON/YAML or @file'
                  ) -> argparse.ArgumentParser:
    """The arguments every figure script has: --settings, and the --png and --pdf outputs."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--settings", required=True, help=settings_help)
    parser.add_argument("--png", required=True)
    parser.add_argument("--pdf", required=True)
    return parser
