"""Super-resolve your own images (PNG/TIFF, 8/16-bit, image, stack or folder) + bicubic.

python scripts/predict.py --input sample.tif --model srcnn=results/paper/phase1/generator.pt
    --model srgan=results/paper/phase2/generator.pt --out-dir my_sr/sample
    --settings '{tile: 256, overlap: 40, intensity: {window: full, percentiles: [0.5, 99.5]}}'
writes my_sr/sample/sample_{srcnn,srgan,bicubic}.tif (a stack stays a stack) and manifest.json.
"""

from __future__ import annotations

import argparse
import logging

from rocksr.device import DeviceError
from rocksr.infer.inference import load_generator
from rocksr.infer.predict import predict
from rocksr.settings import PredictSettings
from rocksr.workflow import cli, job

log = logging.getLogger(__name__)


def model_arg(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not (sep and name and path):
        raise argparse.ArgumentTypeError(f"expected name=path, got {text!r}")
    return name, path


def main(argv: list[str] | None = None) -> None:
    ap = cli.parser(__doc__, "tile, overlap and intensity (config.predict_settings)")
    job.arguments(ap, device=True)
    ap.add_argument("--input", required=True,
                    help="LR image, multi-page TIFF stack or folder of slices (PNG/TIFF)")
    ap.add_argument("--model", type=model_arg, action="append", required=True,
                    help="name=path of a generator (save_model file); repeatable")
    ap.add_argument("--out-dir", required=True, help="replaced only once every output is written")
    args = cli.parse(ap, argv)
    settings = cli.settings(args, PredictSettings, "predict")
    names = [name for name, _ in args.model]
    if len(set(names)) != len(names):
        raise ValueError(f"--model names must differ, got {', '.join(names)}")
    device = job.start(args, args.device, "evaluation.device")  # the rule passes that setting
    generators = {name: load_generator(path) for name, path in args.model}
    manifest = predict(args.input, generators, args.out_dir, settings, device)
    log.info("wrote %s to %s", ", ".join(manifest["outputs"].values()), args.out_dir)


if __name__ == "__main__":
    cli.run(main, errors=(MemoryError, DeviceError))
