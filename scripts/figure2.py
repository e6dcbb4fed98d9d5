"""Figure 2: per rock type, HR with the crop marked, crops of LR/HR/bicubic/SRCNN/SRGAN and
absolute difference maps.

python scripts/figure2.py --packs packs/ --srcnn phase1.pt
    --srgan phase2.pt --settings '{"ids": {"carbonate": 3601}, "box": {"x": 0.35, "y": 0.35,
    "size": 0.25}, "diff_range": {"carbonate": 0.3}, "dpi": 150}' --png f2.png --pdf f2.pdf
    [--html f2.html --caption report/figure2.rst]
"""

from __future__ import annotations

from rocksr.figures import figure2, save
from rocksr.infer.inference import load_generator
from rocksr.report import page_arguments, write_figure_page
from rocksr.settings import Figure2Settings
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.figure_parser(__doc__, "figures.figure2 + dpi (config.figure2_settings)")
    page_arguments(ap)
    ap.add_argument("--packs", required=True)
    ap.add_argument("--srcnn", required=True)
    ap.add_argument("--srgan", required=True)
    args = cli.parse(ap, argv)
    settings = cli.settings(args, Figure2Settings, "figures.figure2")
    generators = {"srcnn": load_generator(args.srcnn), "srgan": load_generator(args.srgan)}
    save(figure2(args.packs, generators, settings), args.png, args.pdf, settings.dpi)
    write_figure_page(args)


if __name__ == "__main__":
    cli.run(main)
