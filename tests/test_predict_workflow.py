"""`snakemake predict` and `snakemake export` in a fresh copy of the workflow: a named model
trains nothing, a run without a trained model stops at once, a folder input is tracked by
its files (issue 22, finding 5)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tifffile
from PIL import Image

from evalkit import make_generator
from workflow import copy_workflow, planned_jobs, snakemake

pytestmark = pytest.mark.workflow


@pytest.fixture
def wd(tmp_path):
    return copy_workflow(tmp_path / "wf")


def predict_config(**keys) -> str:
    return "predict={" + ", ".join(f"{k}: {v}" for k, v in keys.items()) + "}"


def test_a_named_model_trains_nothing_and_a_changed_slice_reruns_predict(wd):
    make_generator(wd / "g.pt", 0)
    (wd / "slices").mkdir()
    for i in range(2):
        Image.fromarray(np.full((12, 12), 40 * i, np.uint8)).save(wd / "slices" / f"{i}.png")
    config = predict_config(input="slices", model="g.pt", tile=16, overlap=8, device="cpu")
    # ("--cores 2" again ends the helper's --configfile list, so "predict" reads as the target.)
    args = ("--cores", "2", "predict", "--config", config)
    assert {rule for rule, _ in planned_jobs(wd, *args)} == {"super_resolve", "predict"}
    snakemake(wd, *args)
    out = wd / "results" / "predict"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["failed"] == 0 and list(manifest["models"]) == ["g"]
    assert sorted(p.name for p in (out / "g" / "slices").iterdir()) == ["0.png", "1.png"]
    assert (wd / "results" / "logs" / "predict.log").stat().st_size > 0
    assert planned_jobs(wd, *args) == []
    Image.fromarray(np.full((12, 12), 99, np.uint8)).save(wd / "slices" / "1.png")
    os.utime(wd / "slices", (1, 1))  # the folder's own time unchanged: only the slice is newer
    assert {rule for rule, _ in planned_jobs(wd, *args)} == {"super_resolve", "predict"}


def test_without_a_model_a_run_that_was_never_trained_stops_at_once(wd):
    tifffile.imwrite(wd / "my.tif", np.zeros((12, 12), np.uint8))
    proc = snakemake(wd, "--cores", "2", "predict", "--config", predict_config(input="my.tif"),
                     "-n", check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "run(s) tiny have no trained model" in text
    assert "train: true" in text and "rule train_phase1" not in text
    # Asked to train, it plans the training first.
    jobs = planned_jobs(wd, "--cores", "2", "predict", "--config",
                        predict_config(input="my.tif", train="true"))
    assert {"train_phase1", "train_phase2", "super_resolve"} <= {rule for rule, _ in jobs}


def test_trained_generators_are_used_as_they_are(wd):
    """Even where training would rerun (here: the packs are missing, as after a code
    change), predict uses the run's generators as they are and plans no training."""
    for phase in (1, 2):
        make_generator(wd / "results" / "tiny" / f"phase{phase}" / "generator.pt", phase)
    tifffile.imwrite(wd / "my.tif", np.zeros((12, 12), np.uint8))
    jobs = planned_jobs(wd, "--cores", "2", "predict", "--config", predict_config(input="my.tif"))
    assert jobs == [("super_resolve", "where=tiny/"), ("predict", "")]
    export = {rule for rule, _ in planned_jobs(wd, "--cores", "2", "export")}
    assert {"export_model", "export"} <= export
