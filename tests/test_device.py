"""rocksr.device: a GPU job never runs on the CPU by accident; concurrent jobs get their own GPU.

CUDA's failure modes are faked by replacing torch's answers (and the driver's version), so
these run on a machine without a GPU. Device claiming runs in real concurrent processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

from evalkit import as_json, tiny_config
from rocksr import device
from rocksr.device import DeviceError, pick_device
from rocksr.workflow import config as cfg
from test_train import settings as train_settings


@pytest.fixture
def fake_cuda(monkeypatch, tmp_path):
    """torch as on a CUDA 13.0 build: answers set per test (default: one working sm_90 GPU)."""
    state = {"available": True, "count": 1, "capability": (9, 0), "built": "13.0",
             "archs": ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"],
             "driver": (13, 0), "warning": None}

    def is_available():
        if state["warning"]:
            warnings.warn(state["warning"], stacklevel=2)
        return state["available"]

    monkeypatch.setattr(torch.version, "cuda", state["built"])
    monkeypatch.setattr(torch.cuda, "is_available", is_available)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: state["count"])
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i: state["capability"])
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: state["archs"])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: "Tesla V100-SXM2-32GB")
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: state.setdefault("set", i))
    monkeypatch.setattr(device, "driver_cuda_version", lambda: state["driver"])
    monkeypatch.setattr(device, "_claimed", {})
    monkeypatch.setenv(device.LOCK_DIR_ENV, str(tmp_path / "locks"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)

    def set_(**kw):
        state.update(kw)
        monkeypatch.setattr(torch.version, "cuda", state["built"])
    state["set_"] = set_
    return state


def test_working_cuda_is_used(fake_cuda):
    assert pick_device("auto", gpus=1) == torch.device("cuda", 0)
    assert fake_cuda["set"] == 0


@pytest.mark.parametrize("case, answers, reason", [
    ("cpu-only build", {"built": None, "available": False}, "is a CPU-only build"),
    ("old driver", {"available": False, "driver": (12, 4),
                    "warning": "The NVIDIA driver on your system is too old"},
     "driver supports CUDA up to 12.4, but torch .* is built for CUDA 13.0"),
    ("no driver", {"available": False, "driver": None}, "no NVIDIA driver"),
    ("no device", {"available": False, "warning": "CUDA driver initialization failed"},
     "torch sees no CUDA device: CUDA driver initialization failed"),
    ("zero devices", {"count": 0}, "torch sees no CUDA device"),
    ("V100 on a cu130 build", {"capability": (7, 0)},
     r"Tesla V100-SXM2-32GB is sm_70, but torch .* has kernels for sm_75, .* only"),
])
def test_a_gpu_job_fails_at_once_with_the_reason(fake_cuda, case, answers, reason):
    fake_cuda["set_"](**answers)
    with pytest.raises(DeviceError, match=reason) as err:
        pick_device("auto", gpus=1, key="evaluation.device")
    message = str(err.value)
    assert "the job holds 1 GPU(s)" in message
    assert "TORCH_CUDA=" in message and "evaluation.device: cpu" in message  # what to do
    # `cuda` asked for outside a GPU job fails just the same
    with pytest.raises(DeviceError, match=reason):
        pick_device("cuda")


def test_hidden_devices_are_named(fake_cuda, monkeypatch):
    fake_cuda["set_"](available=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(DeviceError, match="CUDA_VISIBLE_DEVICES='' hides every GPU"):
        pick_device("auto", gpus=1)


def test_binary_and_ptx_compatibility_count_as_supported(fake_cuda):
    fake_cuda["set_"](capability=(8, 9), archs=["sm_80", "sm_90"])  # sm_80 cubin runs on 8.9
    assert pick_device("cuda") == torch.device("cuda", 0)
    fake_cuda["set_"](capability=(12, 1), archs=["sm_90", "compute_120"])  # PTX for newer
    assert pick_device("cuda").type == "cuda"
    fake_cuda["set_"](capability=(8, 6), archs=["sm_90", "compute_90"])
    with pytest.raises(DeviceError, match="sm_86"):
        pick_device("cuda")


def test_cpu_asked_for_runs_on_the_cpu_even_in_a_gpu_job_without_a_word(fake_cuda, caplog):
    fake_cuda["set_"](available=False)
    assert pick_device("cpu", gpus=1) == torch.device("cpu")
    assert caplog.text == ""  # the user chose it: nothing is wrong


def test_auto_outside_a_gpu_job_falls_back_to_the_cpu_and_says_why(fake_cuda, caplog):
    fake_cuda["set_"](built=None, available=False)
    assert pick_device("auto", gpus=0) == torch.device("cpu")
    assert "CPU-only build" in caplog.text


def test_scheduler_assigned_gpu_is_used_without_claiming(fake_cuda, monkeypatch, tmp_path):
    fake_cuda["set_"](count=1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert pick_device("auto", gpus=1) == torch.device("cuda", 0)
    assert not (tmp_path / "locks").exists() or not list((tmp_path / "locks").iterdir())


# Claiming needs no torch: a stand-in module keeps each process's start-up short.
CLAIMER = textwrap.dedent("""
    import sys, types
    from pathlib import Path
    sys.modules["torch"] = types.ModuleType("torch")
    from rocksr.device import DeviceError, claim_gpu
    try:
        print(claim_gpu(int(sys.argv[1]), Path(sys.argv[2])), flush=True)
    except DeviceError as exc:
        print("error:", exc, flush=True)
        sys.exit(3)
    sys.stdin.read()  # hold the device until the test closes stdin (or kills us)
""")


def claimer(count: int, locks, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CLAIMER, str(count), str(locks)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def test_concurrent_processes_claim_different_gpus_and_release_them(tmp_path):
    env = {"CUDA_VISIBLE_DEVICES": "", "SLURM_JOB_ID": ""}
    holders = [claimer(3, tmp_path, env) for _ in range(3)]
    try:
        claimed = [int(p.stdout.readline()) for p in holders]
        assert sorted(claimed) == [0, 1, 2]
        # a fourth finds every device taken and says so
        extra = claimer(3, tmp_path, env)
        out = extra.communicate(timeout=60)[0]
        assert extra.returncode == 3 and "all 3 GPUs are in use" in out
        # a holder that crashes (SIGKILL) frees its device ...
        crashed = holders[1]
        crashed.kill()
        crashed.wait()
        again = claimer(3, tmp_path, env)
        holders.append(again)
        assert int(again.stdout.readline()) == claimed[1]
        # ... and one that exits normally too
        holders[0].stdin.close()
        holders[0].wait(timeout=60)
        last = claimer(3, tmp_path, env)
        holders.append(last)
        assert int(last.stdout.readline()) == claimed[0]
    finally:
        for p in holders:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_locks_follow_the_physical_device_under_a_user_mask(tmp_path):
    """With CUDA_VISIBLE_DEVICES set by the user (no scheduler), each process's index 0 may
    be another GPU: the lock is the device's own name, not the index."""
    env = {"SLURM_JOB_ID": ""}
    procs = [claimer(1, tmp_path, {**env, "CUDA_VISIBLE_DEVICES": "2"}),
             claimer(1, tmp_path, {**env, "CUDA_VISIBLE_DEVICES": "3"})]
    try:
        assert [int(p.stdout.readline()) for p in procs] == [0, 0]  # GPU 2 and GPU 3
        assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu-2.lock", "gpu-3.lock"]
        both = claimer(2, tmp_path, {**env, "CUDA_VISIBLE_DEVICES": "3,2"})
        assert both.communicate(timeout=60)[0].startswith("error: all 2 GPUs are in use")
    finally:
        for p in procs:
            p.kill()
            p.wait()


ROOT = Path(__file__).resolve().parents[1]
GPU_JOBS = {  # each GPU step's command line as its rule gives it, device left at auto
    "train": ["--packs", "packs",
              "--settings", json.dumps(train_settings(1, device="auto").to_dict()),
              "--checkpoints", "c", "--generator", "g.pt", "--metrics", "m.csv"],
    "evaluate": ["--packs", "packs", "--manifest", "m.csv", "--srcnn", "a.pt", "--srgan",
                 "b.pt", "--settings",
                 as_json(cfg.evaluation_settings(tiny_config(evaluation={"device": "auto"}))),
                 "--per-image", "p.csv",
                 "--summary", "s.csv", "--spectra", "sp.csv"],
    "predict": ["in", "-o", "out", "--model", "srcnn=a.pt", "--settings",
                as_json(cfg.predict_settings(tiny_config(predict={"device": "auto"})))],
}


@pytest.mark.skipif(device.cuda_problem() is None, reason="CUDA works on this machine")
@pytest.mark.parametrize("script", sorted(GPU_JOBS))
def test_gpu_steps_stop_at_once_on_this_machine_without_cuda(script, tmp_path):
    """For real (nothing faked): a step given --gpus 1 on a machine where CUDA is unusable
    exits 1 with one line naming the setting and the reason, before reading any input or
    writing anything but training's phase lock (taken first: a second job on the phase waits
    for the first before it claims a GPU). (A subprocess: scripts/train.py ends its process
    with os._exit.)"""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / f"{script}.py"),
                           *GPU_JOBS[script], "--gpus", "1"], cwd=tmp_path, text=True,
                          capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    stderr = proc.stderr
    assert proc.returncode == 1, stderr
    errors = [line for line in stderr.splitlines() if " ERROR " in line]
    key = {"train": "training.device", "evaluate": "evaluation.device"}.get(script,
                                                                          "predict.device")
    assert len(errors) == 1 and f"{key}: auto (the job holds 1 GPU(s)) but CUDA is unusable: " \
        f"{device.cuda_problem()}" in errors[0], stderr
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert written == (["c", "c/lock"] if script == "train" else [])
