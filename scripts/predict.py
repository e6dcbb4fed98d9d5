"""Super-resolve a folder of your own LR images with trained generators (+ bicubic).

python scripts/predict.py --input-dir my_lr/ --model srcnn=results/paper/phase1/generator.pt
    --model srgan=results/paper/phase2/generator.pt --out-dir my_sr/
writes my_sr/<stem>_srcnn.png, <stem>_srgan.png and <stem>_bicubic.png per input image.
"""

from __future__ import annotations

import argparse
import logging

import torch

from rocksr import cli
from rocksr.device import DeviceError, pick_device
from rocksr.evaluate import load_generator
from rocksr.predict import predict_folder


def model_arg(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not (sep and name and path):
        raise argparse.ArgumentTypeError(f"expected name=path, got {text!r}")
    return name, path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input-dir", required=True, help="folder of LR PNG/TIFF images")
    ap.add_argument("--model", type=model_arg, action="append", required=True,
                    help="name=path of a generator (save_model file); repeatable")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--gpus", type=int, default=0,
                    help="GPUs the job holds (the rule's gpu resource): then CUDA must work")
    ap.add_argument("--log")
    args = ap.parse_args()
    cli.setup_logging(args.log)
    torch.set_num_threads(args.threads)
    names = [name for name, _ in args.model]
    if len(set(names)) != len(names):
        raise ValueError(f"--model names must differ, got {', '.join(names)}")
    device = pick_device(args.device, args.gpus, key="evaluation.device")
    generators = {name: load_generator(path) for name, path in args.model}
    written = predict_folder(args.input_dir, generators, args.out_dir, device)
    logging.info("wrote %d images to %s", len(written), args.out_dir)


if __name__ == "__main__":
    cli.run(main, errors=(DeviceError,))
