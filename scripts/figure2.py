"""Figure 2: per rock type, HR with the crop marked, crops of LR/HR/bicubic/SRCNN/SRGAN and
absolute difference maps. Logs to stderr.

python scripts/figure2.py --packs packs/ --srcnn phase1.pt
    --srgan phase2.pt --settings '{"ids": {"carbonate": 3601}, "box": {"x": 0.35, "y": 0.35,
    "size": 0.25}, "diff_range": {"carbonate": 0.3}, "dpi": 150}' --png f2.png --pdf f2.pdf
"""

from __future__ import annotations

from rocksr import cli
from rocksr.config import parse_settings
from rocksr.evaluate import load_generator
from rocksr.figures import figure2, save


def main() -> None:
    ap = cli.figure_parser(__doc__, "figures.figure2 + dpi: JSON/YAML or @file")
    ap.add_argument("--packs", required=True)
    ap.add_argument("--srcnn", required=True)
    ap.add_argument("--srgan", required=True)
    args = ap.parse_args()
    cli.setup_logging()
    settings = parse_settings(args.settings)
    generators = {"srcnn": load_generator(args.srcnn), "srgan": load_generator(args.srgan)}
    save(figure2(args.packs, generators, settings), args.png, args.pdf, settings.get("dpi", 150))


if __name__ == "__main__":
    cli.run(main)
