"""Which device a step runs on: never the CPU by accident, and one GPU per job.

`pick_device(name, gpus)` is called by training, evaluation and prediction before any work.
`name` is the configured device (auto | cpu | cuda); `gpus` is the number of GPUs the job
holds (the rule's `gpu` resource, passed as `--gpus`; 0 outside Snakemake).

- `cpu` always runs on the CPU (the demo and the tests ask for it explicitly), without a
  word: it was asked for, even in a job that holds a GPU.
- `cuda`, or `auto` in a job that holds a GPU, needs a usable CUDA device: otherwise it
  raises DeviceError with the reason found (CPU-only torch, no driver, a driver older than
  torch's CUDA, no device visible, a GPU architecture the build has no kernels for) and
  what to do. A paper-length schedule on the CPU would take weeks, so it never falls back.
- `auto` outside a GPU job uses CUDA when it works and the CPU otherwise (logged once, with
  the reason: the CPU was not asked for).

Several GPU jobs on one machine (`--resources gpu=N`) each get their own device: where a
scheduler set CUDA_VISIBLE_DEVICES for the job (SLURM does), its first device; otherwise
the first device no other process holds, claimed with an flock on a lock file per device.
The kernel drops the lock when the process ends, however it ends (exit, crash, SIGKILL).
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import re
import tempfile
import warnings
from pathlib import Path

import torch

log = logging.getLogger(__name__)

# Folder of the per-device lock files shared by every process on this machine.
LOCK_DIR_ENV = "ROCKSR_GPU_LOCK_DIR"
ADVICE = ("Pick the torch build for this machine (docs/cluster.md, 'CUDA build': "
          "`make ... TORCH_CUDA=cu126` or another variant), check the GPU with `nvidia-smi`, "
          "or run on the CPU on purpose with `{key}: cpu`.")

_claimed: dict[str, int] = {}  # {"index": i, "fd": lock fd}: held open until the process ends


class DeviceError(RuntimeError):
    """CUDA was required (the job holds a GPU, or `cuda` was asked for) but is unusable."""


def driver_cuda_version() -> tuple[int, int] | None:
    """The CUDA version the installed NVIDIA driver supports (what `nvidia-smi` shows), or
    None when there is no driver library to load."""
    try:
        libcuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    version = ctypes.c_int()
    if libcuda.cuDriverGetVersion(ctypes.byref(version)) != 0:
        return None
    return version.value // 1000, version.value % 1000 // 10


def _version(text: str) -> tuple[int, int]:
    major, minor = (text.split(".") + ["0"])[:2]
    return int(major), int(minor)


def cuda_problem() -> str | None:
    """Why CUDA cannot be used in this process, or None when it can."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = torch.cuda.is_available()
    if available and torch.cuda.device_count() > 0:
        return None
    built = torch.version.cuda
    if built is None:
        return f"torch {torch.__version__} is a CPU-only build"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
    driver = driver_cuda_version()
    if driver is None:
        return ("no NVIDIA driver: libcuda.so.1 cannot be loaded (no GPU on this node, or "
                "the driver is not installed)")
    if driver[0] < _version(built)[0]:
        return (f"the NVIDIA driver supports CUDA up to {driver[0]}.{driver[1]}, but torch "
                f"{torch.__version__} is built for CUDA {built}")
    said = "; ".join(str(w.message).strip() for w in caught)
    return ("torch sees no CUDA device" + (f": {said}" if said else "")
            + f" (driver: CUDA {driver[0]}.{driver[1]}, torch built for CUDA {built})")


def _arch(name: str) -> tuple[str, int, int] | None:
    """('sm' | 'compute', major, minor) of an arch-list entry such as sm_86, sm_120, compute_90a."""
    match = re.fullmatch(r"(sm|compute)_(\d+)(\d)[a-z]?", name)
    return (match[1], int(match[2]), int(match[3])) if match else None


def arch_problem(index: int) -> str | None:
    """Why this torch build has no kernels for GPU `index`, or None when it has. A cubin
    runs on its own major version from its minor on; PTX (compute_XY) is compiled for any
    newer GPU."""
    major, minor = torch.cuda.get_device_capability(index)
    archs = [a for a in map(_arch, torch.cuda.get_arch_list()) if a]
    if any((kind == "sm" and a_major == major and a_minor <= minor)
           or (kind == "compute" and (a_major, a_minor) <= (major, minor))
           for kind, a_major, a_minor in archs):
        return None
    built = ", ".join(torch.cuda.get_arch_list()) or "none"
    return (f"{torch.cuda.get_device_name(index)} is sm_{major}{minor}, but torch "
            f"{torch.__version__} has kernels for {built} only")


def lock_dir() -> Path:
    path = Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "rocksr-gpu-locks")
    path.mkdir(parents=True, exist_ok=True)
    return path


def claim_gpu(count: int, locks: Path | None = None) -> int:
    """Index (among the visible devices) of the GPU this process uses.

    A scheduler that assigns GPUs per job (SLURM_JOB_ID with CUDA_VISIBLE_DEVICES) has made
    the job's own GPU device 0. Otherwise the first of the `count` visible devices whose
    lock file no other process holds; the lock is named after the device as the machine
    knows it (CUDA_VISIBLE_DEVICES entry, else its index), so differently restricted
    processes still agree.
    """
    if _claimed:  # one device per process, however often asked
        return _claimed["index"]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible and os.environ.get("SLURM_JOB_ID"):
        return 0
    names = ([v.strip() for v in visible.split(",")][:count] if visible
             else [str(i) for i in range(count)])
    locks = locks or lock_dir()
    for index, name in enumerate(names):
        path = locks / f"gpu-{name}.lock"
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for people looking: who holds it
        _claimed.update(index=index, fd=fd)
        log.info("claimed GPU %d (%s)", index, path)
        return index
    raise DeviceError(f"all {len(names)} GPUs are in use by other jobs (lock files in "
                      f"{locks}); run at most that many GPU jobs at once "
                      f"(--resources gpu=N with N <= {len(names)})")


def pick_device(name: str, gpus: int = 0, key: str = "training.device") -> torch.device:
    """The device to run on (see the module doc); `key` names the setting in messages."""
    if name == "cpu":
        return torch.device("cpu")
    problem = cuda_problem()
    index = None
    if problem is None:
        index = claim_gpu(torch.cuda.device_count())
        problem = arch_problem(index)
    if problem is None:
        torch.cuda.set_device(index)  # so that default-device CUDA calls (RNG state) use it
        return torch.device("cuda", index)
    if name == "cuda" or gpus:
        why = "cuda asked for" if name == "cuda" else f"the job holds {gpus} GPU(s)"
        raise DeviceError(f"{key}: {name} ({why}) but CUDA is unusable: {problem}. "
                          + ADVICE.format(key=key))
    log.warning("%s: auto: CUDA is unusable (%s); running on the CPU", key, problem)
    return torch.device("cpu")
