"""Export a trained generator as one self-describing model file (rule export_model): the
weights as safetensors, with a card of its architecture, scale, degradation, training data,
pixel convention and the project version, and its sha256 beside it
(rocksr/infer/modelfile.py). `rocksr predict --model` and predict.model read it.

python scripts/export.py --generator results/paper/phase2/generator.pt
    --out results/paper/export/paper_srgan.safetensors --settings @card.json
"""

from __future__ import annotations

import logging

from rocksr.infer.modelfile import export
from rocksr.workflow import cli

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    ap = cli.parser(__doc__, "the model card: name, phase, run, data (config.model_card)")
    ap.add_argument("--generator", required=True, help="a workflow generator.pt")
    ap.add_argument("--out", required=True, help="the .safetensors file to write")
    args = cli.parse(ap, argv)
    card = export(args.generator, args.out, cli.parse_settings(args.settings))
    log.info("wrote %s: %s x%d, sha256 %s", args.out, card["name"], card["scale"], card["sha256"])


if __name__ == "__main__":
    cli.run(main)
