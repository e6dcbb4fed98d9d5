import json
import os
import re
import shlex
import sys

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod
from snakemake.utils import min_version

min_version("9.0")

# Rules import the shared package from the workflow's own folder, wherever it runs
# (local venv, --sdm conda, cluster jobs).
sys.path.insert(0, workflow.basedir)
from rocksr.data.download import DownloadError, check_recorded
from rocksr.workflow import config as cfg
from rocksr.workflow import hooks
from rocksr.workflow.codedeps import code_files
from rocksr.infer.batch import image_files
from rocksr.settings import Settings

try:
    cfg.validate(config, "config (config.yaml + --configfile/--config overrides)")
    # The VGG19 weights files the runs' phase 2 needs: name in results/weights/ -> source.
    VGG_WEIGHTS = cfg.vgg_weights_sources(config)
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
# `kill` (SIGTERM, SIGINT, SIGHUP) of Snakemake stops the running training jobs through their
# checkpoint. The checkpoints of the phases whose outputs are accepted go, at the start and
# at the end (on success: the Snakefile's `onsuccess:`, the one a workflow has).
onstart:
    hooks.retry_only_what_can_succeed(workflow.rules)
    hooks.forward_stop_signals_to_jobs()
    hooks.remove_accepted_checkpoints(workflow)


onerror:
    hooks.remove_accepted_checkpoints(workflow)


RUNS = cfg.enabled_runs(config)
# The enabled runs' data products: folder name (e.g. x4_unknown) -> the split step's settings.
DATA = cfg.data_products(config)


wildcard_constraints:
    run=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    data="|".join(DATA) or "(?!)",
    vggfile="|".join(map(re.escape, VGG_WEIGHTS)) or "(?!)",
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
    """`--path P` of the archive in the portal's project, as a list for :q; nothing where it
    is not known (dataset.portal.path_3d null): the download step then says where to get the
    file."""
    path = config["dataset"]["portal"]["path" if dim == 2 else "path_3d"]
    return ["--path", path] if path else []


# A download made before dataset.sha256 was set (or changed) is checked against it now.
try:
    if archive_path() == "results/download/DeepRockSR-2D.zip":
        check_recorded(archive_path(), config["dataset"]["sha256"])
except DownloadError as exc:
    raise WorkflowError(str(exc))


def untracked(value):
    """A `params` entry that Snakemake's params rerun trigger leaves out, for settings that
    change no result: Snakemake counts a param computed by a function of the job's `input`
    as derived from the inputs, which it tracks already. `value`: a constant, or a function
    of the wildcards."""
    return lambda wildcards, input: value(wildcards) if callable(value) else value


def data_dir(run):
    return f"results/data/{cfg.data_key(config, run)}"


# Each run's figures beside its summary: Figure 3 and the curves, and by dim Figure 2 and
# the texture figure (slices) or the orthogonal slices and the rock metrics (volumes).
FIGURES = {
    2: ["figure2", "figure3", "curves", "texture"],
    3: ["orthoslices", "figure3", "curves", "rock_metrics"],
}


def all_targets():
    # The comparison figure needs two runs: one run's results are a row of the table.
    compare = ["results/compare/compare.png"] if len(RUNS) > 1 else []
    return ["results/compare/summary.csv", *compare] + [
        path
        for run in RUNS
        for path in [
            f"results/{run}/evaluation/summary.csv",
            f"results/{run}/evaluation/summary.html",
        ]
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


# Each training phase's generator: its name in outputs and model files -> the phase.
METHOD_PHASES = {method: phase for phase, method in cfg.METHODS.items()}


def predict_inputs():
    """predict.input as a list, or a message when it is null."""
    value = config["predict"]["input"]
    if not value:
        raise WorkflowError(
            "predict.input is null: nothing to super-resolve. Name images, TIFF stacks, "
            'folders or globs, e.g. --config "predict={input: /data/sample.tif}"'
        )
    return [value] if isinstance(value, str) else value


def predict_image_files():
    """Every image file predict.input reads (folders by their files), so that editing any
    of them reruns predict."""
    return [str(path) for path in image_files(predict_inputs())]


def predict_models(where):
    """{name: path} of the models of the predict job writing into results/{where}predict/
    (name None: the file names itself). The paths are absolute, which no rule's output
    matches: a trained generator is used as it is, and predict never plans training (a
    relative results/{run}/phase1/generator.pt would be retrained whenever its code or
    settings changed), unless predict.train asks for it."""
    if not where:
        return {None: os.path.abspath(config["predict"]["model"])}
    files = {
        method: f"results/{where}phase{phase}/generator.pt"
        for method, phase in METHOD_PHASES.items()
    }
    if config["predict"]["train"]:
        return files
    return {method: os.path.abspath(path) for method, path in files.items()}


# The --model arguments of the predict job, as a list (each one shell-quoted by :q).
def predict_model_args(where):
    return [
        f"--model={path}" if name is None else f"--model={name}={path}"
        for name, path in predict_models(where).items()
    ]


def predict_targets():
    """The manifests `snakemake predict` asks for. Stops at once, saying what to do, when
    predict.input is null, the named model is missing, or (without predict.train) a run
    has no trained generators."""
    predict_inputs()
    model = config["predict"]["model"]
    if model:
        if not os.path.isfile(model):
            raise WorkflowError(f"predict.model: no such file {model}")
        return ["results/predict/manifest.json"]
    if not config["predict"]["train"]:
        untrained = [
            run
            for run in RUNS
            if not all(map(os.path.isfile, predict_models(f"{run}/").values()))
        ]
        if untrained:
            raise WorkflowError(
                f"predict: run(s) {', '.join(untrained)} have no trained model "
                "(results/<run>/phase1/ and phase2/generator.pt), and predict trains "
                "nothing unless asked. Train first (snakemake --cores 8 --resources "
                'gpu=1), add `train: true` to predict (--config "predict={input: ..., '
                'train: true}"), or name a trained generator with `model:` (e.g. an '
                "exported .safetensors)."
            )
    return [f"results/{run}/predict/manifest.json" for run in RUNS]


def caption_path(name):
    """A figure's caption (report/<name>.rst), shown under it on its report page: an input,
    so that editing it rewrites the page. Relative to the working directory, as step_code's.
    """
    return os.path.relpath(f"{workflow.basedir}/report/{name}.rst")
