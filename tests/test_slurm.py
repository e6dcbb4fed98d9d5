"""The workflow on a real SLURM cluster (one node on this machine) through profiles/slurm.

The cluster (tests/slurm/cluster.py) uses Debian's slurmctld/slurmd/munge that `make test`
installs beforehand (tests/slurm/setup.sh); where they are missing or cannot start, every
test here is skipped with the exact reason. Checks: every non-local job went through sbatch
and ran to COMPLETED in SLURM, the GPU rules carried the GPU request, the per-rule runtime
and memory of the profile reached sbatch, and the results are the files, and the numbers,
of a local run of the same config. Then a training job signalled like at a time limit is
resubmitted by the profile's `retries` and resumes from its checkpoint; a training job with
a short time limit gets SLURM's early SIGTERM (slurm.signal_before_limit_s), checkpoints and
is resumed by the retry; and a job that fails twice completes (the profile's 3 retries hold
under the workflow profile profiles/default).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent / "slurm"))
from cluster import ClusterUnavailable, start_cluster  # noqa: E402
from test_preemption import assert_same_training, assert_same_weights, longer_phase1  # noqa: E402
from workflow import ROOT, SNAKEMAKE, copy_workflow, planned_jobs, snakemake  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

PROFILE = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
GPU_RULES = {rule for rule, res in PROFILE["set-resources"].items() if res.get("gpu")}
LOCAL_RULES = set(re.search(r"^localrules:\s*\n((?:\s+\w+,?\n?)+)",
                            (ROOT / "Snakefile").read_text(), re.M).group(1)
                  .replace(",", " ").split())
# Test-cluster settings on top of the unchanged profile: no accounting database here, so
# job states come from squeue; poll soon after submission; keep every job's SLURM log.
SLURM_ARGS = ["--profile", "profiles/slurm", "--slurm-status-command", "squeue",
              "--slurm-init-seconds-before-status-checks", "2",
              "--slurm-keep-successful-logs", "--latency-wait", "5"]
RUN_TIMEOUT = 300


@pytest.fixture(scope="module")
def cluster(request):
    try:
        c = start_cluster()
    except ClusterUnavailable as exc:
        # The summary line of a skip is cut to the terminal's width: the whole reason
        # (with the daemon's log tail) goes to the test output as well.
        plugins = request.config.pluginmanager
        reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin(
            "capturemanager")
        reason = f"no local SLURM cluster: {exc}"
        if reporter is not None and capture is not None and "\n" in reason:
            with capture.global_and_fixture_disabled():
                reporter.write_line(f"\n{request.node.nodeid}: {reason}")
            reason = reason.splitlines()[0] + " (the daemon's log tail is printed above)"
        pytest.skip(reason)
    try:
        yield c
    finally:
        c.stop()


def slurm_snakemake(cluster, wd: Path, *args: str, out: str = "snakemake-slurm.out"
                    ) -> subprocess.Popen:
    """Start Snakemake on the cluster in the background (its own process group), its
    output going to `wd/out`."""
    with open(wd / out, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "snakemake", *SLURM_ARGS, *args], cwd=wd, env=cluster.env,
            stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    proc.out = wd / out
    return proc


def finish(proc: subprocess.Popen, timeout: float = RUN_TIMEOUT) -> str:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)  # Snakemake cancels its SLURM jobs on SIGINT
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = proc.out.read_text()
    assert proc.returncode == 0, f"snakemake on SLURM failed ({proc.returncode}):\n{text[-8000:]}"
    return text


def rule_of(comment: str) -> str:
    """The rule name in the plugin's job comment `rule_<name>[_wildcards_<values>]`."""
    return re.fullmatch(r"rule_(.+?)(?:_wildcards_.*)?", comment).group(1)


def option(args: list[str], name: str) -> str | None:
    """Value of `--name value` / `--name=value` / `-n value` in an sbatch argument list."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def result_files(wd: Path) -> set[str]:
    return {str(p.relative_to(wd / "results")) for p in (wd / "results").rglob("*")
            if p.is_file()}


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The tiny workflow on SLURM and, meanwhile (Snakemake mostly waits on SLURM there),
    locally in another copy: the reference for the SLURM run."""
    local = copy_workflow(tmp_path_factory.mktemp("local"))
    planned = planned_jobs(local)
    wd = copy_workflow(tmp_path_factory.mktemp("slurm"))
    start = time.monotonic()
    proc = slurm_snakemake(cluster, wd, "--configfile", "tests/tiny.yaml", "--retries", "0")
    try:
        # `--cores all`, as Snakemake runs inside each SLURM job: same threads per step.
        local_log = snakemake(local, "--cores", "all", "--printshellcmds").stderr
    finally:
        log = finish(proc)
    return SimpleNamespace(local=local, planned=planned, wd=wd, log=log, local_log=local_log,
                           seconds=time.monotonic() - start)


def test_every_cluster_job_went_through_sbatch_and_completed(cluster, runs):
    planned, wd, log = runs.planned, runs.wd, runs.log
    calls = cluster.sbatch_calls()
    submitted = Counter(rule_of(option(c, "--comment")) for c in calls)
    expected = Counter(rule for rule, _ in planned if rule not in LOCAL_RULES)
    assert submitted == expected, f"sbatch calls {submitted} != non-local jobs {expected}"
    assert expected.keys() >= {"split", "train_phase1", "train_phase2", "evaluate"}
    # ... and each of them ran in SLURM to the end (squeue remembers finished jobs).
    done = Counter(rule_of(j["comment"]) for j in cluster.jobs() if j["state"] == "COMPLETED")
    assert done == expected, f"jobs COMPLETED in SLURM {done} != {expected}"
    # The light rules ran inside Snakemake itself, never submitted.
    ran_locally = set(re.findall(r"^localrule (\w+):", log, re.M))
    assert ran_locally == {r for r, _ in planned if r in LOCAL_RULES} | {"all"}
    # Each job's SLURM log says where it ran; the plugin keeps them with the flag above.
    for rule in expected:
        logs = list((wd / ".snakemake" / "slurm_logs" / f"rule_{rule}").rglob("*.log"))
        assert logs, f"no SLURM log for rule {rule}"
        assert all(f"(Rule: {rule})" in p.read_text() for p in logs), rule
    print(f"SLURM run of the tiny workflow: {runs.seconds:.0f} s, "
          f"{sum(expected.values())} jobs submitted")


def test_gpu_rules_request_a_gpu_and_cpu_rules_do_not(cluster, runs):
    jobs = {j["comment"]: j for j in cluster.jobs()}
    for args in cluster.sbatch_calls():
        comment = option(args, "--comment")
        rule = rule_of(comment)
        gpu_args = [a for a in args if a.startswith(("--gpus", "--gres", "-G"))]
        wanted = PROFILE["set-resources"].get(rule, {})
        if rule in GPU_RULES:
            assert gpu_args == ["--gpus=1"], (rule, args)
            assert cluster.show_job(jobs[comment]["id"]).get("TresPerJob") == "gres:gpu:1"
        else:
            assert gpu_args == [], (rule, args)
        # runtime (minutes) and memory (MB) of the profile, per rule or the defaults
        runtime = wanted.get("runtime", PROFILE["default-resources"]["runtime"])
        mem = wanted.get("mem_mb", PROFILE["default-resources"]["mem_mb"])
        assert option(args, "-t") == str(runtime), (rule, args)
        assert option(args, "--mem") == str(mem), (rule, args)
    assert GPU_RULES >= {"train_phase1", "train_phase2", "evaluate"}


def test_slurm_run_makes_the_files_and_numbers_of_the_local_run(runs):
    local, wd = runs.local, runs.wd
    assert result_files(wd) == result_files(local)
    # CPU training with the same seed and thread count is deterministic: same numbers.
    # (Different thread counts could change float sums, so check that first.)
    slurm_cmds = "".join(p.read_text() for p in (wd / ".snakemake" / "slurm_logs").rglob("*.log"))
    for script in ("train", "evaluate"):
        pattern = rf"scripts/{script}\.py .*--threads (\d+)"
        threads = (set(re.findall(pattern, slurm_cmds)), set(re.findall(pattern, runs.local_log)))
        assert threads[0] and threads[0] == threads[1], f"{script} threads SLURM/local: {threads}"
    for rel in ["tiny/evaluation/summary.csv", "tiny/evaluation/per_image.csv",
                "tiny/phase1/metrics.csv", "tiny/phase2/metrics.csv"]:
        pd.testing.assert_frame_equal(pd.read_csv(wd / "results" / rel),
                                      pd.read_csv(local / "results" / rel),
                                      check_exact=True, obj=rel)
    for rel in ["phase1/generator.pt", "phase2/generator.pt", "phase2/discriminator.pt"]:
        assert_same_weights(wd / "results" / "tiny" / rel, local / "results" / "tiny" / rel)


def test_training_job_signalled_like_at_a_time_limit_resumes(cluster, runs, tmp_path):
    """`scancel --signal=TERM` to a running train_phase1 job (SIGTERM is what SLURM sends at
    the time limit) makes it save a checkpoint and fail; the profile's `retries` resubmit it,
    it resumes there and ends exactly like an uninterrupted local run."""
    wd = runs.wd
    overlay = longer_phase1(wd)
    target = "results/tiny/phase1/generator.pt"
    before = len(cluster.sbatch_calls())
    proc = slurm_snakemake(cluster, wd, target, "--configfile", "tests/tiny.yaml", overlay,
                           out="snakemake-slurm-preempted.out")
    # Meanwhile the uninterrupted reference, locally, in a copy of the finished local run.
    reference = tmp_path / "reference"
    shutil.copytree(runs.local, reference, symlinks=True)
    longer_phase1(reference)
    local = subprocess.Popen(
        [*SNAKEMAKE, target, "--cores", "all", "--resources", "gpu=1",
         "--configfile", "tests/tiny.yaml", overlay], cwd=reference,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL, start_new_session=True)

    checkpoint = wd / "results" / "tiny" / "checkpoints" / "phase1" / "checkpoint.pt"
    job = None
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            running = [j for j in cluster.jobs() if j["state"] == "RUNNING"
                       and rule_of(j["comment"]) == "train_phase1"]
            if running and checkpoint.exists():
                job = running[0]["id"]
                cluster.client("scancel", "--signal=TERM", job)
                break
            time.sleep(0.1)
        log = finish(proc)
        local_log = local.communicate(timeout=RUN_TIMEOUT)[0]
    finally:
        if local.poll() is None:
            os.killpg(local.pid, signal.SIGKILL)
            local.wait()
    assert local.returncode == 0, f"the local reference run failed:\n{local_log[-4000:]}"
    assert job, f"train_phase1 never ran with a checkpoint on disk:\n{log[-4000:]}"
    calls = [rule_of(option(c, "--comment")) for c in cluster.sbatch_calls()[before:]]
    assert calls == ["train_phase1", "train_phase1"], calls  # attempt 1 cut, attempt 2
    states = {j["id"]: j["state"] for j in cluster.jobs()}
    assert states[job] == "FAILED", states
    retry = max((j for j in cluster.jobs() if rule_of(j["comment"]) == "train_phase1"),
                key=lambda j: int(j["id"]))
    assert retry["state"] == "COMPLETED"
    job_logs = {p.stem: p.read_text() for p in
                (wd / ".snakemake" / "slurm_logs" / "rule_train_phase1").rglob("*.log")}
    assert "SIGTERM: checkpoint saved" in job_logs[job]
    assert re.search(r"resumed from .* at iteration [1-9]", job_logs[retry["id"]])
    assert_same_training(wd, reference, overlay)


def test_training_job_gets_the_early_signal_before_its_time_limit(cluster, runs):
    """With a 2-minute limit and slurm.signal_before_limit_s: 30, sbatch gets
    --signal=TERM@30 and SLURM sends SIGTERM to the training job before the limit: it saves
    a checkpoint and fails; the retry resumes from it. (slurmctld looks at time limits every
    30 s and sends the signal at the first look within N + 30 s of the limit: here 60-90 s
    after the start, after the job's start-up even on a loaded machine, and 30 s before the
    limit.) Phase 1 is too long to finish in time; once the retry has resumed, Snakemake is
    stopped."""
    wd = runs.wd
    tiny = yaml.safe_load((wd / "tests" / "tiny.yaml").read_text())
    phase1 = tiny["runs"]["tiny"]["training"]["phase1"]
    overlay = {"slurm": {"signal_before_limit_s": 30}, "runs": {"tiny": {"training": {
        "checkpoint_every": 1000, "phase1": {**phase1, "epochs": 1000, "iters_per_epoch": 1000}}}}}
    (wd / "time-limit.yaml").write_text(yaml.safe_dump(overlay))
    shutil.rmtree(wd / "results" / "tiny" / "checkpoints" / "phase1", ignore_errors=True)
    before = len(cluster.sbatch_calls())
    last_job = max((int(j["id"]) for j in cluster.jobs()), default=0)
    proc = slurm_snakemake(cluster, wd, "results/tiny/phase1/generator.pt", "--configfile",
                           "tests/tiny.yaml", "time-limit.yaml",
                           "--set-resources", "train_phase1:runtime=2",
                           out="snakemake-slurm-time-limit.out")
    job_logs = wd / ".snakemake" / "slurm_logs" / "rule_train_phase1"

    def log_of(job_id: str) -> str:
        return "".join(p.read_text() for p in job_logs.rglob(f"{job_id}.log"))

    def resumed_job() -> str | None:
        for job in cluster.jobs():
            if (int(job["id"]) > last_job and rule_of(job["comment"]) == "train_phase1"
                    and re.search(r"resumed from .* at iteration [1-9]", log_of(job["id"]))):
                return job["id"]
        return None

    try:
        deadline = time.monotonic() + 300
        resumed = None
        while time.monotonic() < deadline and proc.poll() is None and not resumed:
            time.sleep(1)
            resumed = resumed_job()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Snakemake cancels its SLURM jobs
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    log = proc.out.read_text()
    calls = [c for c in cluster.sbatch_calls()[before:]
             if rule_of(option(c, "--comment")) == "train_phase1"]
    assert len(calls) >= 2, f"no retry was submitted:\n{log[-4000:]}"
    assert "--signal=TERM@30" in calls[0] and option(calls[0], "-t") == "2", calls[0]
    first = min((j for j in cluster.jobs() if rule_of(j["comment"]) == "train_phase1"
                 and int(j["id"]) > last_job), key=lambda j: int(j["id"]))
    # FAILED: it exited by itself, before the limit (a job killed at the limit is TIMEOUT)
    assert first["state"] == "FAILED", first
    assert "SIGTERM: checkpoint saved" in log_of(first["id"]), log_of(first["id"])[-4000:]
    assert resumed and int(resumed) > int(first["id"]), (
        f"no retry resumed from the checkpoint:\n{log[-4000:]}")


FLAKY = """\
rule flaky:
    output:
        "done.txt",
    log:
        "flaky.log",
    shell:
        "echo attempt >> attempts; test $(wc -l < attempts) -ge 3; touch {output}"
"""


def test_profile_retries_hold_under_the_workflow_profile(cluster, tmp_path):
    """A job that fails twice, then succeeds, completes under `--profile profiles/slurm`
    with the workflow's own profiles/default beside it (Snakemake loads both; the
    latter's keys win), so the SLURM profile's `retries: 3` is in force."""
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    (tmp_path / "Snakefile").write_text(FLAKY)
    before = len(cluster.sbatch_calls())
    finish(slurm_snakemake(cluster, tmp_path))
    assert (tmp_path / "attempts").read_text().count("attempt") == 3
    calls = [rule_of(option(c, "--comment")) for c in cluster.sbatch_calls()[before:]]
    assert calls == ["flaky"] * 3, calls
