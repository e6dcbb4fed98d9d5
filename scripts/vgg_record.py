"""Write a run's VGG record (rule `vgg_record`): the VGG19 term its phase 2 computes.

The provided weights file and its sha256 (from <weights>.sha256), what the weights were
trained on, the input scale and layer, and whether that is the authors' exact VGG term.
Phase 2 loads the file only if it still has that sha256. Example:
    python scripts/vgg_record.py --settings @phase2.json \\
        --weights results/weights/vgg19-dcbb9e9d.pth --out results/paper/vgg_weights.yaml
"""

from __future__ import annotations

from rocksr.fileio import read_sha256
from rocksr.nets.vgg import VGGWeightsError
from rocksr.nets.vgg_files import make_record, write_record
from rocksr.settings import VggSettings
from rocksr.workflow import cli


def main(argv: list[str] | None = None) -> None:
    ap = cli.parser(__doc__, "the run's training.phase2 vgg_* keys (config.vgg_settings)")
    ap.add_argument("--weights", help="the provided weights file (none for random weights)")
    ap.add_argument("--out", required=True, help="the record (YAML)")
    args = cli.parse(ap, argv)
    s = cli.settings(args, VggSettings, "training.phase2")
    source = s.vgg_weights if s.vgg_term else "none"  # a 3D run with vgg_3d: none
    if (args.weights is None) != (source in ("random", "none")):
        raise ValueError(f"vgg_weights {source} "
                         f"{'needs' if args.weights is None else 'takes no'} --weights")
    digest = read_sha256(args.weights) if args.weights else None
    write_record(args.out, make_record(source, s.vgg_weights_origin, s.vgg_input, s.vgg_layer,
                                       args.weights, digest))


if __name__ == "__main__":
    cli.run(main, errors=(VGGWeightsError,))
