import json
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

# Rules import the shared package from the workflow's own folder, wherever it runs
# (local venv, --sdm conda, cluster jobs).
sys.path.insert(0, workflow.basedir)
from rocksr import config as cfg

try:
    cfg.validate(config, "config (config.yaml + --configfile/--config overrides)")
except cfg.ConfigError as exc:
    raise WorkflowError(str(exc))

# (Braces doubled twice: once for this f-string, once for Snakemake's shell formatting.)
shell.prefix(
    f"export PYTHONPATH='{workflow.basedir}'${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
)

RUNS = cfg.enabled_runs(config)
DATA_KEYS = cfg.data_keys(config)


wildcard_constraints:
    run=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    data=r"x[24]_(default|unknown)",


def as_json(value):
    return json.dumps(value, sort_keys=True)


def archive_path():
    """The archive every data step reads: a user's local copy, or the configured source."""
    if config["dataset"]["archive"]:
        return config["dataset"]["archive"]
    if config["dataset"]["source"] == "synthetic":
        return "results/synthetic/DeepRockSR-2D.zip"
    return "results/download/DeepRockSR-2D.zip"


def data_dir(run):
    return f"results/data/{cfg.data_key(config, run)}"


def all_targets():
    return ["results/compare/summary.csv"] + expand(
        [
            "results/{run}/evaluation/summary.csv",
            "results/{run}/figures/figure2.png",
            "results/{run}/figures/figure3.png",
            "results/{run}/figures/curves.png",
            "results/{run}/figures/texture.png",
        ],
        run=RUNS,
    )


def script_path(name):
    """A step's CLI, declared as an input so that editing it reruns the step."""
    return f"{workflow.basedir}/scripts/{name}.py"
