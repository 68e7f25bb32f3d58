"""Ray for //validator --executor ray and for the pipeline's RayExecutor: joining or starting
Ray (`connect_ray`), the cluster's CPUs, and `_RayBox`, a sandbox whose batches run as Ray tasks
(`_ray_batch`), each in a fresh sandbox on a Ray node, CPU only. Split from `revalidate`, which
re-exports every name here.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import threading

from validator import sandbox
from validator.verdicts import ValidatorError

class RayUnavailable(ValidatorError):
    """--executor ray cannot run: ray does not import, the cluster cannot be reached, or a GPU was
    asked of it (Ray tasks execute on CPUs only)."""


# Seconds to wait for a cluster's head to accept a TCP connection: ray.init itself waits minutes
# for an address where nothing answers (measured: 204 s with Ray 2.60) before it fails.
RAY_CONNECT_TIMEOUT_S = 5
# Unix sockets live under Ray's temporary directory (session_<date>_<pid>/sockets/plasma_store):
# a local instance's files go under the run's temporary directory only where the path stays
# below the 107-character socket limit, else under Ray's default ($TMPDIR/ray).
RAY_TEMP_DIR_MAX = 40
# What a Ray worker sees: no CUDA device. Ray tasks execute on CPUs only, so every node, with a
# GPU or not, gives the verdicts of a machine without one (the same bytes as a local CPU run).
RAY_WORKER_ENV = {"CUDA_VISIBLE_DEVICES": ""}


def _instance_token() -> None:
    """Ray (2.60) turns token authentication on for a local instance and, where no token is
    configured, writes a new one to ~/.ray/auth_token: a file outside the run, and an OSError
    where HOME cannot be written (read-only under Bazel's sandbox, or not a directory). Where no
    token is configured (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or that file), the instance gets a
    fresh one in this process's environment, which the processes ray.init starts inherit:
    authentication stays on and nothing is written to HOME."""
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return
    if os.environ.get("RAY_AUTH_MODE", "token").lower() != "token":
        return
    if os.path.isfile(os.path.join(os.path.expanduser("~"), ".ray", "auth_token")):
        return
    import secrets

    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)  # 256 bits, as Ray's own generator


def connect_ray(address: str | None, num_cpus: int | None = None, temp_dir: str | None = None) -> bool:
    """Connect this process to Ray. address None: start a local instance for this process alone
    (num_cpus CPUs, default all cores; its files under temp_dir/ray where short enough); "auto"
    (the cluster `ray start` made on this machine) or HOST:PORT (a cluster's head): join it. A
    process already connected (ray.init) uses that connection. Returns whether this call started
    an instance (the caller shuts it down). RayUnavailable, within seconds, when Ray cannot be
    imported or nothing answers at the address."""
    try:
        import ray
    except ImportError as e:
        raise RayUnavailable(f"--executor ray: ray does not import ({e}); install requirements_lock.txt") from None
    if ray.is_initialized():
        return False
    kw = {"include_dashboard": False, "log_to_driver": False, "logging_level": "error"}
    # ray.init puts in a SIGTERM handler of its own that ends the process at once (exit status 1,
    # no cleanup): the caller's handler (the generator's and the validator's clean stop) is put back
    main_thread = threading.current_thread() is threading.main_thread()
    on_term = signal.getsignal(signal.SIGTERM) if main_thread else None
    try:
        if address is None:
            ray_tmp = os.path.join(temp_dir, "ray") if temp_dir else None
            _instance_token()
            try:
                ray.init(address="local", num_cpus=num_cpus,
                         _temp_dir=ray_tmp if ray_tmp and len(ray_tmp) <= RAY_TEMP_DIR_MAX else None, **kw)
            except OSError as e:  # a directory or socket Ray cannot make
                raise RayUnavailable(f"--executor ray: a local Ray instance did not start: {e}") from None
            return True
        _probe_ray(address)
        try:
            ray.init(address=address, **kw)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise RayUnavailable(f"--ray-address {address}: {str(e).strip().splitlines()[0][:300]}") from None
        return False
    finally:
        if on_term is not None:
            signal.signal(signal.SIGTERM, on_term)


def _probe_ray(address: str) -> None:
    """Fail fast where no Ray head answers at `address` (auto: the one `ray start` recorded)."""
    from ray._private import services

    try:
        hostport = address.removeprefix("ray://") if address.startswith("ray://") else \
            services.canonicalize_bootstrap_address(address)
    except (ConnectionError, ValueError) as e:
        raise RayUnavailable(f"--ray-address {address}: {str(e).strip().splitlines()[0][:300]}") from None
    host, _, port = (hostport or "").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=RAY_CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as e:
        raise RayUnavailable(f"--ray-address {address}: no Ray cluster answers at {hostport} ({e})") from None


def ray_cpus() -> int:
    """CPUs of the Ray cluster this process is connected to."""
    import ray

    return int(ray.cluster_resources().get("CPU", 0))


def _ray_batch(specs, archs, gpu):
    """A Ray task: one batch in a fresh sandbox on this node, its Warp cache in a temporary
    directory of this task, removed with it (a Ray worker process outlives its tasks and is
    killed, not exited, when the run ends, so nothing may be left to its exit)."""
    run_dir = tempfile.mkdtemp(prefix="warp-ir-validate-")
    box = sandbox.Sandbox(gpu, run_dir, cpu_only=True)
    try:
        return box.check_batch(specs, archs)
    except KeyboardInterrupt:  # ray.cancel (the driver was stopped): kill the sandbox's child now
        box.abort()
        raise
    finally:
        box.close()
        shutil.rmtree(run_dir, ignore_errors=True)


class _RayBox:
    """A sandbox on the cluster: each batch goes to a Ray task (`_ray_batch`). Ray may retry a
    batch whose Ray worker died (the default max_retries): a kernel that kills its sandbox's child
    is already caught by the sandbox inside the task, so a lost Ray worker is the node's doing."""

    def __init__(self, gpu: bool | None):
        import ray

        self.gpu, self.ref, self.aborted = gpu, None, False
        self.remote = ray.remote(num_cpus=1)(_ray_batch).options(runtime_env={"env_vars": RAY_WORKER_ENV})

    def check_batch(self, specs, archs):
        import ray

        if self.aborted:
            raise sandbox.Aborted("stopped")
        self.ref = self.remote.remote(specs, archs, self.gpu)
        try:
            return ray.get(self.ref)
        except ray.exceptions.TaskCancelledError:
            raise sandbox.Aborted("stopped") from None

    def abort(self) -> None:
        import ray

        self.aborted = True
        if self.ref is not None:
            ray.cancel(self.ref)  # a KeyboardInterrupt in the task: its sandbox is stopped and removed

    def close(self) -> None:
        pass
