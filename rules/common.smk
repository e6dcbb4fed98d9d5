import json
import os
import shlex
import sys

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod
from snakemake.utils import min_version

min_version("9.0")

# Rules import the shared package from the workflow's own folder, wherever it runs
# (local venv, --sdm conda, cluster jobs).
sys.path.insert(0, workflow.basedir)
from rocksr.workflow import config as cfg
from rocksr.workflow import hooks
from rocksr.workflow.codedeps import code_files
from rocksr.imaging.images import input_name
from rocksr.settings import Settings

try:
    cfg.validate(config, "config (config.yaml + --configfile/--config overrides)")
except cfg.ConfigError as exc:
    raise WorkflowError(str(exc))

# $PYTHON, the interpreter of every rule: under --sdm conda the rule's env's own `python`;
# otherwise the one running Snakemake (and, on a cluster, each job's Snakemake), so that the
# venv need not be activated: a bare `python` could be a system one without torch.
PYTHON = (
    "python"
    if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
    else shlex.quote(sys.executable)
)
# (Braces doubled twice: once for this f-string, once for Snakemake's shell formatting.)
shell.prefix(
    f"export PYTHONPATH={shlex.quote(workflow.basedir)}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
    f"PYTHON={PYTHON}; "
)

# Extra sbatch arguments of the training rules (read by the SLURM executor plugin only):
# SIGTERM that many seconds before the time limit, so that the checkpoint is written in time.
TRAIN_SLURM_EXTRA = (
    f"--signal=TERM@{config['slurm']['signal_before_limit_s']}"
    if config["slurm"]["signal_before_limit_s"]
    else ""
)


# Retries only where they can succeed (training resumes, the download continues); a
# `kill` (or SIGINT) of Snakemake stops the running training jobs through their checkpoint.
onstart:
    hooks.retry_only_what_can_succeed(workflow.rules)
    hooks.forward_stop_signals_to_jobs()


RUNS = cfg.enabled_runs(config)
# The enabled runs' data products: folder name (e.g. x4_unknown) -> the split step's settings.
DATA = cfg.data_products(config)


wildcard_constraints:
    run=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    data="|".join(DATA) or "(?!)",
    name=r"[^/]+",
    dim="[23]",


def as_json(value):
    """A step's settings (a Settings dataclass or plain data) as JSON, keys sorted."""
    if isinstance(value, Settings):
        value = value.to_dict()
    return json.dumps(value, sort_keys=True)


def archive_path(dim=2):
    """The archive every data step reads (`dim` 3: DeepRockSR-3D.zip, of the dim-3 runs): a
    user's local copy, or the configured source."""
    local = config["dataset"]["archive" if dim == 2 else "archive_3d"]
    if local:
        return local
    if config["dataset"]["source"] == "synthetic":
        return f"results/synthetic/DeepRockSR-{dim}D.zip"
    return f"results/download/DeepRockSR-{dim}D.zip"


def portal_path_option(dim):
    """`--path P` of the archive in the portal's project; nothing where it is not known
    (dataset.portal.path_3d null): the download step then says where to get the file."""
    path = config["dataset"]["portal"]["path" if dim == 2 else "path_3d"]
    return shlex.join(["--path", path]) if path else ""


def data_dir(run):
    return f"results/data/{cfg.data_key(config, run)}"


# Each run's figures beside its summary: Figure 3 and the curves, and by dim Figure 2 and
# the texture figure (slices) or the orthogonal slices and the rock metrics (volumes).
FIGURES = {
    2: ["figure2", "figure3", "curves", "texture"],
    3: ["orthoslices", "figure3", "curves", "rock_metrics"],
}


def all_targets():
    return ["results/compare/summary.csv"] + [
        path
        for run in RUNS
        for path in [f"results/{run}/evaluation/summary.csv"]
        + [
            f"results/{run}/figures/{name}.png"
            for name in FIGURES[cfg.run_dim(config, run)]
        ]
    ]


def step_code(name):
    """The inputs `script` (the step's CLI, scripts/<name>.py) and `modules` (the rocksr/
    modules it imports, directly or not, computed from their import statements), so that
    editing either reruns the step. Relative to the working directory: a finished run stays
    current when its folder is moved.
    Use: `input: **step_code("name"), ...`."""
    script = os.path.relpath(f"{workflow.basedir}/scripts/{name}.py")
    modules = [os.path.relpath(path) for path in code_files(script, workflow.basedir)]
    return {"script": script, "modules": modules}


def predict_input(name=None):
    """predict.input, or a message when it is null; `name`: the output a job is asked for."""
    path = config["predict"]["input"]
    if not path:
        raise WorkflowError(
            "predict.input is null: nothing to super-resolve. Name an image, TIFF stack or "
            "folder, e.g. --config predict='{input: /data/sample.tif}'"
        )
    if name is not None and name != input_name(path):
        raise WorkflowError(
            f"results/.../predict/{name}: not the configured predict.input ({path})"
        )
    return path
