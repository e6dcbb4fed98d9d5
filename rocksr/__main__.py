"""The `rocksr` command: `python -m rocksr`, or `rocksr` once the package is installed
(`pip install .`). One subcommand: `rocksr predict` (rocksr/infer/command.py)."""

from __future__ import annotations

import sys

from rocksr.infer import command
from rocksr.workflow import cli

COMMANDS = {"predict": command.main}
USAGE = ("usage: rocksr predict INPUT... -o OUT --model MODEL [options]\n"
         "       rocksr predict --help")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return
    if not argv or argv[0] not in COMMANDS:
        sys.exit(USAGE)
    cli.run(lambda: COMMANDS[argv[0]](argv[1:]), errors=command.ERRORS)


if __name__ == "__main__":
    main()
