"""Progress bars that stay readable when stderr is a Snakemake log file."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress(iterable=None, **kwargs) -> tqdm:
    # On a terminal redraw often; in a log file write a line every 30 s, not hundreds.
    return tqdm(iterable, mininterval=0.1 if sys.stderr.isatty() else 30, **kwargs)
