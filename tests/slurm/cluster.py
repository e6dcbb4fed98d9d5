"""A throwaway single-node SLURM cluster on this machine, for tests/test_slurm.py.

Uses the SLURM and munge that the test set-up installed (tests/slurm/setup.sh, run by
`make test`); installs nothing itself. Everything lives in one temporary folder: its own
munge key and socket, slurm.conf and gres.conf, state and spool folders, logs, and free TCP
ports on 127.0.0.1, so it neither needs nor touches /etc/slurm, /etc/munge or a system
service. The daemons run in the foreground as children of the test process, so `stop()`
always knows what to end.

The node is a simulated small GPU node (8 CPUs, 64 GB, one `gpu` GRES backed by
/dev/null; `SlurmdParameters=config_overrides` lets slurmd advertise that on a 2-core box
with no GPU) so the slurm profile's own requests schedule unchanged. No cgroups
(proctrack/linuxproc, task/none) and no accounting database: job states come from
`squeue`, which keeps finished jobs for MinJobAge seconds.
"""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "sinfo", "scontrol", "scancel")
SETUP_STATUS = Path(__file__).resolve().parents[2] / "build" / "slurm-setup.txt"


class ClusterUnavailable(Exception):
    """The cluster could not be started here; the message says exactly why."""


def which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def missing_programs() -> list[str]:
    return [p for p in (*DAEMONS, *CLIENTS) if which(p) is None]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"({path}: {exc})"
    return "\n".join(text[-lines:]) or f"({path} is empty)"


class LocalCluster:
    def __init__(self, root: Path):
        self.root = root
        self.host = socket.gethostname().split(".")[0]
        self.conf = root / "etc" / "slurm.conf"
        self.logs = root / "log"
        self.shims = root / "bin"
        self.sbatch_log = root / "sbatch-calls.txt"
        self.munge_socket = root / "run" / "munge.sock"
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs_of: dict[str, list[Path]] = {}

    # -- environment for client commands and Snakemake ------------------------------------

    @property
    def env(self) -> dict[str, str]:
        """os.environ with this cluster's slurm.conf and the client shims first on PATH."""
        env = dict(os.environ)
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = f"{self.shims}:{env.get('PATH', '')}"
        for var in list(env):  # a test run inside a SLURM job must not leak into ours
            if var.startswith(("SLURM_JOB", "SLURM_STEP", "SBATCH_", "SRUN_")):
                env.pop(var)
        return env

    def client(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        proc = subprocess.run(args, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): "
                               f"{proc.stderr.strip()}")
        return proc.stdout

    def sbatch_calls(self) -> list[list[str]]:
        """The argument lists of every sbatch call made through the shim, in order."""
        if not self.sbatch_log.exists():
            return []
        return [shlex.split(line) for line in self.sbatch_log.read_text().splitlines() if line]

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still remembers (all states): id, state, name, comment."""
        out = self.client("squeue", "--states=all", "--noheader",
                          "--format=%i|%T|%j|%k|%b")
        keys = ("id", "state", "name", "comment", "gres")
        return [dict(zip(keys, line.split("|"))) for line in out.splitlines() if line]

    def show_job(self, job_id: str) -> dict[str, str]:
        out = self.client("scontrol", "show", "job", "--oneliner", job_id)
        return dict(item.split("=", 1) for item in out.split() if "=" in item)

    # -- start / stop ---------------------------------------------------------------------

    def _write_files(self) -> None:
        for sub in ("etc", "log", "state", "spool", "munge", "bin"):
            (self.root / sub).mkdir(parents=True)
        (self.root / "run").mkdir(mode=0o755)  # munged wants its socket folder world-x
        (self.root / "munge").chmod(0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(128))
        key.chmod(0o600)
        r = self.root
        self.conf.write_text(f"""\
# Written by tests/slurm/cluster.py: one node on loopback, no accounting, no cgroups.
ClusterName=rocksrtest
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/run/slurmctld.pid
SlurmdPidFile={r}/run/slurmd.pid
SlurmctldLogFile={self.logs}/slurmctld.log
SlurmdLogFile={self.logs}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=10
MinJobAge=600
GresTypes=gpu
NodeName={self.host} NodeAddr=127.0.0.1 CPUs=8 RealMemory=64000 Gres=gpu:1 State=UNKNOWN
PartitionName=test Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")
        (self.conf.parent / "gres.conf").write_text(
            f"NodeName={self.host} Name=gpu File=/dev/null\n")
        # Client shims. The slurm-jobstep plugin strips SLURM_* (SLURM_CONF too) from the
        # environment of the `srun` it runs inside each job; a real cluster's clients find
        # slurm.conf at its default path, ours is here. The sbatch shim also records the
        # arguments of every submission for the test to inspect.
        for name in CLIENTS:
            real = which(name)
            record = (f"printf '%q ' \"$@\" >> '{self.sbatch_log}'; echo >> '{self.sbatch_log}'\n"
                      if name == "sbatch" else "")
            shim = self.shims / name
            shim.write_text(f"#!/bin/bash\nexport SLURM_CONF='{self.conf}'\n{record}"
                            f"exec '{real}' \"$@\"\n")
            shim.chmod(0o755)

    def _spawn(self, name: str, args: list[str], log: Path) -> None:
        out = open(self.logs / f"{name}.stdout", "wb")
        self.procs[name] = subprocess.Popen(
            [which(name), *args], env=self.env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        self._logs_of[name] = [log, self.logs / f"{name}.stdout"]

    def _fail(self, what: str, name: str | None = None) -> ClusterUnavailable:
        lines = [what]
        for n in ([name] if name else self.procs):
            # the daemon's own log file, else what it printed (errors before the log opens)
            for path in self._logs_of.get(n, []):
                if path.exists() and path.stat().st_size:
                    lines.append(f"--- {path.name} (last lines) ---\n{_tail(path)}")
                    break
        return ClusterUnavailable("\n".join(lines))

    def _wait(self, what: str, ready, timeout: float, name: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for n, proc in self.procs.items():
                if proc.poll() is not None:
                    raise self._fail(f"{n} exited with code {proc.returncode} while "
                                     f"waiting for {what}", n)
            if ready():
                return
            time.sleep(0.2)
        raise self._fail(f"timed out after {timeout:.0f}s waiting for {what}", name)

    def start(self) -> LocalCluster:
        self._write_files()
        self._spawn("munged", ["--foreground", f"--socket={self.munge_socket}",
                               f"--key-file={self.root}/munge/munge.key",
                               f"--pid-file={self.root}/run/munged.pid",
                               f"--seed-file={self.root}/munge/munged.seed",
                               f"--log-file={self.logs}/munged.log"],
                    self.logs / "munged.log")
        self._wait("munged's socket", self.munge_socket.exists, 15, "munged")
        self._spawn("slurmctld", ["-D", "-f", str(self.conf)], self.logs / "slurmctld.log")
        self._wait("slurmctld to answer", lambda: self.client(
            "scontrol", "ping", check=False, timeout=10).find("UP") >= 0, 30, "slurmctld")
        self._spawn("slurmd", ["-D", "-f", str(self.conf), "-N", self.host],
                    self.logs / "slurmd.log")

        def idle() -> bool:
            state = self.client("sinfo", "--noheader", "--Node", "--format=%T",
                                check=False).strip()
            if "drain" in state or "inval" in state:
                node = self.client("scontrol", "show", "node", self.host, check=False)
                raise self._fail(f"node {self.host} is {state}: {node.strip()}")
            return state == "idle"

        self._wait(f"node {self.host} to be idle in sinfo", idle, 30)
        return self

    def stop(self) -> None:
        """Cancel what is left, stop the daemons (TERM, then KILL), remove the folder."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            self.client("scancel", "--user", getpass.getuser(), check=False, timeout=10)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                states = self.client("squeue", "--noheader", "--format=%T", check=False,
                                     timeout=10).split()
                if not set(states) & {"RUNNING", "PENDING", "COMPLETING", "CONFIGURING"}:
                    break
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self._kill_strays()
        shutil.rmtree(self.root, ignore_errors=True)

    def _kill_strays(self) -> None:
        """End any slurmstepd still running for this cluster (its spool folder is ours)."""
        for pid_dir in Path("/proc").iterdir():
            if not pid_dir.name.isdigit():
                continue
            try:
                cmd = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                environ = (pid_dir / "environ").read_bytes()
            except OSError:
                continue
            if "slurmstepd" in cmd and str(self.conf).encode() in environ:
                try:
                    os.kill(int(pid_dir.name), signal.SIGKILL)
                except OSError:
                    pass


def start_cluster() -> LocalCluster:
    """Start a cluster in a fresh folder under /tmp, or raise ClusterUnavailable(why)."""
    missing = missing_programs()
    if missing:
        setup = (SETUP_STATUS.read_text().strip() if SETUP_STATUS.exists()
                 else "the set-up (tests/slurm/setup.sh, run by `make test`) has not run")
        raise ClusterUnavailable(f"SLURM/munge programs missing: {', '.join(missing)}; "
                                 f"set-up says: {setup}")
    # Short path (munge's socket path must fit a sockaddr_un) with world-x folders.
    root = Path(tempfile.mkdtemp(prefix="rocksr-slurm-", dir="/tmp"))
    root.chmod(0o755)
    cluster = LocalCluster(root)
    try:
        return cluster.start()
    except OSError as exc:
        cluster.stop()
        raise ClusterUnavailable(f"cannot start the SLURM daemons: {exc}") from exc
    except BaseException:
        cluster.stop()
        raise
