"""Orthogonal slices (3D runs): per rock type, one volume cut through its centre in the xy, xz
and yz planes: LR, tricubic, SRCNN, SRGAN and HR, and absolute difference maps.

python scripts/orthoslices.py --packs packs/ --srcnn phase1.pt --srgan phase2.pt
    --settings '{"ids": {"carbonate": 901}, "diff_range": {"carbonate": 100}, "dpi": 150}'
    --png orthoslices.png --pdf orthoslices.pdf
    [--html orthoslices.html --caption report/orthoslices.rst]
"""

from __future__ import annotations

from rocksr.figures import orthoslices
from rocksr.report import figure_from_models, model_arguments
from rocksr.settings import OrthosliceSettings
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.figure_parser(__doc__, "figures.orthoslices + dpi (config.orthoslice_settings)")
    model_arguments(ap)
    args = cli.parse(ap, argv)
    settings = cli.settings(args, OrthosliceSettings, "figures.orthoslices")
    figure_from_models(args, orthoslices, settings)


if __name__ == "__main__":
    cli.run(main)
