"""Figure 2: per rock type, HR with the crop marked, crops of LR/HR/bicubic/SRCNN/SRGAN and
absolute difference maps.

python scripts/figure2.py --packs packs/ --srcnn phase1.pt
    --srgan phase2.pt --settings '{"ids": {"carbonate": 3601}, "box": {"x": 0.35, "y": 0.35,
    "size": 0.25}, "diff_range": {"carbonate": 0.3}, "dpi": 150}' --png f2.png --pdf f2.pdf
    [--html f2.html --caption report/figure2.rst]
"""

from __future__ import annotations

from rocksr.figures import figure2
from rocksr.report import figure_from_models
from rocksr.settings import Figure2Settings
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    figure_from_models(__doc__, argv, figure2, Figure2Settings, "figures.figure2",
                       "figures.figure2 + dpi (config.figure2_settings)")


if __name__ == "__main__":
    cli.run(main)
