"""The workflow's predict step (rule super_resolve): the `rocksr predict` command itself
(rocksr/infer/command.py), which the rule gives the predict settings as --settings.

python scripts/predict.py sample.tif -o sr --model srcnn=results/paper/phase1/generator.pt
    --model srgan=results/paper/phase2/generator.pt --settings '{intensity: {window: percentile}}'
writes sr/{srcnn,srgan,bicubic}/sample.tif (a stack stays a stack) and sr/manifest.json;
3D models write a stack scale times as deep, beside tricubic.
"""

from __future__ import annotations

from rocksr.infer.command import ERRORS, main
from rocksr.workflow import cli

if __name__ == "__main__":
    cli.run(main, errors=ERRORS)
