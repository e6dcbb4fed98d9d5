"""Provide the VGG19 weights of phase 2 before any training (rule `vgg_weights`).

imagenet: copied from the $TORCH_HOME cache, or downloaded from torchvision (with a timeout;
a cut transfer continues on the next run), and checked against the sha256 prefix in
torchvision's file name. A local path: copied. Writes <out> and <out>.sha256.
Example:
    python scripts/vgg_weights.py --source imagenet --out results/weights/vgg19-dcbb9e9d.pth
"""

from __future__ import annotations

from rocksr.nets.vgg import VGG_URL, VGGWeightsError
from rocksr.nets.vgg_files import provide
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.add_argument("--source", required=True,
                    help="training.phase2.vgg_weights: imagenet, or a local weights file")
    ap.add_argument("--out", required=True, help="where the copy goes (<out>.sha256 beside it)")
    ap.add_argument("--url", default=VGG_URL, help="where imagenet is downloaded from")
    ap.add_argument("--timeout", type=float, default=60,
                    help="seconds without data before the download gives up")
    args = cli.parse(ap, argv)
    provide(args.source, args.out, url=args.url, timeout=args.timeout)


if __name__ == "__main__":
    cli.run(main, errors=(VGGWeightsError,))
