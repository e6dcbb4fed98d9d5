"""Figure 2: per rock type, HR with the crop marked, crops of LR/HR/bicubic/SRCNN/SRGAN and
absolute difference maps.

python scripts/figure2.py --packs packs/ --srcnn phase1.pt
    --srgan phase2.pt --settings '{"ids": {"carbonate": 3601}, "box": {"x": 0.35, "y": 0.35,
    "size": 0.25}, "diff_range": {"carbonate": 0.3}, "dpi": 150}' --png f2.png --pdf f2.pdf
    [--html f2.html --caption report/figure2.rst]
"""

from __future__ import annotations

from rocksr.figures import figure2
from rocksr.report import figure_from_models, model_arguments
from rocksr.settings import Figure2Settings
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.figure_parser(__doc__, "figures.figure2 + dpi (config.figure2_settings)")
    model_arguments(ap)
    args = cli.parse(ap, argv)
    settings = cli.settings(args, Figure2Settings, "figures.figure2")
    figure_from_models(args, figure2, settings)


if __name__ == "__main__":
    cli.run(main)
