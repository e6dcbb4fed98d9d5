"""rocksr predict: super-resolve your own images with trained generators, without Snakemake.

  rocksr predict INPUT... -o OUT --model MODEL [--model NAME=MODEL ...] [options]

INPUT: PNG/TIFF images, multi-page TIFF stacks, folders of slices, folder trees or globs.
MODEL: an exported .safetensors (`snakemake export`) or a workflow generator.pt, named
after its card or its file, or NAME=MODEL. Writes OUT/<model>/<input's relative path> for
each model (and bicubic), keeping each input's format, dtype and voxel size (x and y
divided by the scale), and OUT/manifest.json. 3D models (all or none of them) upsample
stacks and folders of slices along z too (z divided as well), beside tricubic. Exit
status 1 when any input failed.

The options below are the predict and intensity settings of config.yaml, with its defaults;
--settings gives them as JSON/YAML (the workflow's rule passes them so), and an option on
the command line wins. This is also the workflow's predict step (scripts/predict.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import sys
import typing
from typing import Literal

from rocksr.device import DeviceError
from rocksr.infer.modelfile import open_model
from rocksr.infer.predict import predict
from rocksr.settings import NAME, ConfigError, PredictSettings, Settings
from rocksr.workflow import cli, job

log = logging.getLogger(__name__)

ERRORS = (MemoryError, DeviceError)  # one-line errors besides cli.USER_ERRORS


def model_arg(text: str) -> tuple[str | None, str]:
    """[NAME=]PATH"""
    name, sep, path = text.partition("=")
    return (name, path) if sep and name and path else (None, text)


def settings_options(ap: argparse.ArgumentParser, cls: type[Settings],
                     block: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """An option per key of `cls` (nested blocks too), with the key's doc and default as its
    help and no default of its own, so that only options given override --settings;
    returns each option's key path."""
    hints, paths = typing.get_type_hints(cls), []
    for field in dataclasses.fields(cls):
        hint, path = hints[field.name], (*block, field.name)
        if isinstance(hint, type) and issubclass(hint, Settings):
            paths += settings_options(ap, hint, path)
            continue
        default = (field.default if field.default is not dataclasses.MISSING
                   else field.default_factory())
        kwargs = {"dest": ".".join(path), "default": None,
                  "help": f"{field.metadata['doc']} (default: {default})"}
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif origin is Literal:
            kwargs["choices"] = args
        elif origin is tuple:
            kwargs.update(nargs=len(args), type=args[0], metavar=field.name[:-1].upper())
        else:
            kwargs["type"] = hint
        ap.add_argument("--" + field.name.replace("_", "-"), **kwargs)
        paths.append(path)
    return paths


def given_settings(args: argparse.Namespace, paths: list[tuple[str, ...]]) -> dict:
    """--settings, with the options given on the command line put over it."""
    data = cli.parse_settings(args.settings) if args.settings else {}
    for path in paths:
        value = getattr(args, ".".join(path))
        if value is not None:
            node = data
            for name in path[:-1]:
                node = node.setdefault(name, {})
            node[path[-1]] = list(value) if isinstance(value, list) else value
    return data


def load_models(specs: list[tuple[str | None, str]]) -> dict:
    """{name: (generator, card)}: each model's name is the one given, else its card's (an
    exported file's, or a generator.pt's file name); a name is a folder of the outputs, so
    it must be a plain one (letters, digits, _ . -)."""
    models = {}
    for name, path in specs:
        generator, card = open_model(path)
        name = name or card["name"]
        if not re.match(NAME, name):
            raise ConfigError(f"--model {path}: no usable name; give one as NAME={path} "
                              "(letters, digits, _ . -)")
        if name in models:
            raise ConfigError(f"--model: two models are named {name!r}; name them apart with "
                              "NAME=PATH")
        models[name] = (generator, card)
    return models


def main(argv: list[str] | None = None) -> None:
    ap = cli.parser(__doc__)
    ap.prog = "rocksr predict"
    ap.add_argument("inputs", nargs="+", metavar="INPUT",
                    help="images, TIFF stacks, folders of slices, folder trees or globs")
    ap.add_argument("-o", "--out", required=True,
                    help="output folder: OUT/<model>/<input path>, OUT/manifest.json")
    ap.add_argument("--model", type=model_arg, action="append", required=True,
                    help="[NAME=]PATH of an exported .safetensors or a generator.pt; repeatable")
    ap.add_argument("--settings", help="the settings below as JSON/YAML, or @file")
    job.arguments(ap)
    paths = settings_options(ap, PredictSettings)
    args = cli.parse(ap, argv)
    settings = PredictSettings.from_dict(given_settings(args, paths), "predict")
    device = job.start(args, settings.device, "predict.device")
    manifest = predict(args.inputs, load_models(args.model), args.out, settings, device)
    entries = manifest["inputs"]
    log.info("%d of %d input(s) super-resolved into %s (manifest.json)",
             len(entries) - manifest["failed"], len(entries), args.out)
    if manifest["failed"]:
        failed = [e["input"] for e in entries if e["status"] == "failed"]
        log.error("%d input(s) failed: %s", len(failed), ", ".join(failed))
        sys.exit(1)
