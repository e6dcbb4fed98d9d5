"""Score bicubic, SRCNN and SRGAN on the full images of the configured splits (volumes:
tricubic, and the 3D rock metrics in --threads processes).

python scripts/evaluate.py --packs results/data/x4_unknown/packs
    --manifest results/data/x4_unknown/manifest.csv --srcnn phase1.pt --srgan phase2.pt
    --settings '{"splits": ["valid", "test"], "batch_size": 8, "clamp": true, "quantize": true}'
    --per-image per_image.csv --summary summary.csv --spectra spectra.csv
"""

from __future__ import annotations

import logging

from rocksr.device import DeviceError
from rocksr.eval.evaluate import evaluate, summarize
from rocksr.eval.texture import SpectrumSums
from rocksr.fileio import write_csv
from rocksr.infer.inference import load_generator
from rocksr.settings import EvaluationSettings
from rocksr.workflow import cli, job

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    ap = cli.parser(__doc__, "the evaluation settings (config.evaluation_settings)")
    job.arguments(ap)
    ap.add_argument("--packs", required=True)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--srcnn", required=True, help="phase-1 generator (save_model file)")
    ap.add_argument("--srgan", required=True, help="phase-2 generator (save_model file)")
    ap.add_argument("--per-image", required=True)
    ap.add_argument("--summary", required=True)
    ap.add_argument("--spectra", required=True,
                    help="mean radial power spectra per rock type, split and method")
    args = cli.parse(ap, argv)
    settings = cli.settings(args, EvaluationSettings, "evaluation")
    device = job.start(args, settings.device, "evaluation.device")
    generators = {"srcnn": load_generator(args.srcnn), "srgan": load_generator(args.srgan)}
    spectra = SpectrumSums()
    per_image = evaluate(args.packs, generators, settings, device, manifest=args.manifest,
                         spectra=spectra, workers=args.threads)
    summary = summarize(per_image)
    write_csv(per_image, args.per_image)
    write_csv(summary, args.summary)
    write_csv(spectra.table(), args.spectra)
    log.info("summary:\n%s", summary.to_string(index=False, float_format="%.4f"))


if __name__ == "__main__":
    cli.run(main, errors=(DeviceError,))
