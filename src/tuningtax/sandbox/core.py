"""Harness side of the sandbox: starts one sandboxed worker per parallel slot, feeds it programs over a
pipe, enforces a wall-clock watchdog on the worker itself and restarts it if it dies.
See the package docstring for guarantees and limits."""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from tuningtax.sandbox import worker

# Imported (it has no side effects) so that it is part of the execute command's code version.
WORKER = str(Path(worker.__file__).resolve())
BWRAP_WORKER = "/.tuningtax-sandbox/worker.py"  # fixed path in bwrap's own root: nothing can shadow it
BACKENDS = ("bwrap", "unshare", "none-unsafe")
AUTO_ORDER = ("bwrap", "unshare")  # never falls back to none-unsafe by itself
STATUSES = ("passed", "failed", "timeout", "oom", "killed", "no_marker", "error")
# Modules HumanEval/MBPP-style programs and tests import; loaded once per worker, shared by every fork.
DEFAULT_PRELOAD = (
    "math", "cmath", "re", "string", "collections", "itertools", "functools", "heapq", "bisect", "typing",
    "hashlib", "random", "statistics", "fractions", "decimal", "copy", "operator", "json", "datetime",
    "time", "array", "numbers", "textwrap", "unicodedata", "dataclasses", "enum", "tempfile", "io", "struct",
    "encodings.idna",  # socket host names need it
)
WORKER_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp",
              # Fixed hash seed: set iteration order, hence results, are identical across runs.
              "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
# What the worker (root inside bwrap) still needs: create/chown sample dirs, drop to the sandbox uid,
# kill and clean up after the program. Everything else (mount, ptrace, net admin, ...) is dropped.
WORKER_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_KILL", "CAP_DAC_OVERRIDE", "CAP_FOWNER")
STARTUP_TIMEOUT_S = 60.0
GRACE_S = 10.0  # beyond timeout_s before the harness declares a worker hung and kills it


class SandboxError(RuntimeError):
    """The sandbox itself cannot run (backend missing or not permitted), as opposed to a program failing."""


@dataclass(frozen=True)
class SandboxConfig:
    timeout_s: float = 10.0  # wall clock per program
    cpu_s: int | None = None  # RLIMIT_CPU per process; None: ceil(timeout_s)
    memory_mb: int = 2048  # RLIMIT_AS per process
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    backend: str = "auto"  # auto | bwrap | unshare | none-unsafe (tests only: no isolation)
    max_processes: int = 64  # RLIMIT_NPROC of the sandbox uid (only when the harness runs as root)
    max_output_bytes: int = 4096  # tail of stdout+stderr kept for `detail`; the rest is drained and dropped
    max_file_mb: int = 64  # RLIMIT_FSIZE
    tmp_mb: int = 256  # size of the private tmpfs /tmp (and /dev/shm) inside the sandbox
    run_as_uid: int | None = 65534  # uid/gid programs run as when the harness is root; None: stay root
    preload: tuple[str, ...] = DEFAULT_PRELOAD

    def __post_init__(self):
        if self.timeout_s <= 0 or self.workers < 1 or self.memory_mb < 16 or (self.cpu_s or 1) < 1:
            raise ValueError(f"invalid SandboxConfig: {self}")


@dataclass(frozen=True)
class ExecResult:
    status: str  # one of STATUSES
    passed: bool
    duration_s: float
    detail: str  # "" when passed; exception "Type: msg (line N)", signal, limit, or last output line


# ---------------------------------------------------------------- worker process
def _keep_paths() -> list[str]:
    """Interpreter, stdlib and venv, which must be visible (read-only) inside the sandbox."""
    exe_prefix = os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))
    paths = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, exe_prefix)}
    paths.add(sys.prefix)  # the venv by the path its pyvenv.cfg and shebangs use
    paths = sorted(p for p in paths if p != "/" and not p.startswith("/usr/"))
    return [p for p in paths if not any(p.startswith(o + "/") for o in paths if o != p)]


def _bwrap_args(config: SandboxConfig, root: bool) -> list[str]:
    args = ["--die-with-parent", "--new-session", "--as-pid-1", "--unshare-pid", "--unshare-net",
            "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not root:
        args.append("--unshare-user")
    args += ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):  # merged-/usr symlinks or real dirs
        path = "/" + name
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    keeps = _keep_paths()
    if hidden := [k for k in keeps if k == "/tmp" or k.startswith("/dev/")]:
        raise SandboxError(f"bwrap backend: {hidden} cannot be shown inside the sandbox; move the venv/interpreter")
    # A venv under /tmp (a checkout in /tmp) is bound on top of the private /tmp, so after it.
    early = [k for k in keeps if not k.startswith("/tmp/")]
    late = [k for k in keeps if k.startswith("/tmp/")]

    def bind(paths: list[str]) -> list[str]:
        # bwrap copies the host mode of parent dirs it creates (/root is 0700): make them traversable.
        out = []
        parents = sorted({str(p) for k in paths for p in Path(k).parents if str(p) not in ("/", "/tmp")})
        for parent in parents:
            if not any(parent == k or parent.startswith(k + "/") for k in paths):
                out += ["--perms", "0755", "--dir", parent]
        for path in paths:
            out += ["--ro-bind", path, path]
        return out

    args += bind(early)
    args += ["--ro-bind", WORKER, BWRAP_WORKER, "--proc", "/proc", "--dev", "/dev",
             "--size", str(config.tmp_mb << 20), "--tmpfs", "/tmp", *bind(late),
             "--size", str(config.tmp_mb << 20), "--tmpfs", "/dev/shm", "--chdir", "/tmp", "--clearenv"]
    for key, value in WORKER_ENV.items():
        args += ["--setenv", key, value]
    if root:
        args += ["--cap-drop", "ALL"]
        for cap in WORKER_CAPS:
            args += ["--cap-add", cap]
    return args


_isolation_seen: dict[str, dict] = {}  # backend -> what its last started worker reported


class _Worker:
    def __init__(self, backend: str, config: SandboxConfig):
        root = os.geteuid() == 0
        self.backend, self.config = backend, config
        self.scratch = None
        cfg = {
            "timeout_s": float(config.timeout_s), "cpu_s": int(config.cpu_s or math.ceil(config.timeout_s)),
            "memory_mb": config.memory_mb, "max_processes": config.max_processes,
            "max_output_bytes": config.max_output_bytes, "max_file_mb": config.max_file_mb,
            "tmp_mb": config.tmp_mb, "uid": config.run_as_uid if root else None,
            "preload": list(config.preload), "keep_paths": _keep_paths(),
            "host_pidns": os.stat("/proc/self/ns/pid").st_ino, "host_mntns": os.stat("/proc/self/ns/mnt").st_ino,
            "mounts": backend == "unshare",
        }
        python = [sys.executable, "-s", "-P", WORKER]
        if backend == "bwrap":
            if not (exe := shutil.which("bwrap")):
                raise SandboxError("bwrap not found: apt-get install -y --no-install-recommends bubblewrap")
            cmd = [exe, *_bwrap_args(config, root), "--", *python[:-1], BWRAP_WORKER]
            cfg |= {"sample_root": "/tmp", "clean_dirs": ["/tmp", "/dev/shm"]}
        elif backend == "unshare":
            if under_tmp := [k for k in cfg["keep_paths"] if k.startswith("/tmp/")]:
                # Its private /tmp would hide them; bwrap can bind them back on top, this backend cannot.
                raise SandboxError(f"unshare backend: {under_tmp} lie under /tmp, which the sandbox replaces; "
                                   "use bwrap (apt-get install bubblewrap) or a venv outside /tmp")
            if not (exe := shutil.which("unshare")):
                raise SandboxError("unshare (util-linux) not found")
            cmd = [exe, "--pid", "--fork", "--kill-child", "--mount-proc", "--net", "--ipc", "--uts",
                   *([] if root else ["--user", "--map-root-user"]), "--", *python]
            cfg |= {"sample_root": "/tmp", "clean_dirs": ["/tmp", "/dev/shm"]}
        elif backend == "none-unsafe":
            self.scratch = tempfile.mkdtemp(prefix="tuningtax-sandbox-")
            os.chmod(self.scratch, 0o711)  # the sandbox uid may enter its own sample dir, not list others
            cmd = python
            cfg |= {"sample_root": self.scratch, "clean_dirs": []}
        else:
            raise SandboxError(f"unknown sandbox backend {backend!r}; expected auto or one of {', '.join(BACKENDS)}")
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([*cmd, json.dumps(cfg)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, env=WORKER_ENV, start_new_session=True, cwd="/")
        try:
            ready = self._recv(time.monotonic() + STARTUP_TIMEOUT_S)
        except (EOFError, TimeoutError) as err:
            self.close()
            raise SandboxError(f"{backend} sandbox failed to start ({err}): {self._stderr_tail()}") from None
        self.isolation = ready.get("isolation", {})
        _isolation_seen[backend] = self.isolation

    def _stderr_tail(self) -> str:
        self.stderr.seek(0)
        text = self.stderr.read().decode("utf-8", "replace").strip()
        return text[-500:] or "no output"

    def _recv(self, deadline: float) -> dict:
        fd, buf, need = self.proc.stdout.fileno(), bytearray(), 4
        while len(buf) < need:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError("no reply in time")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise EOFError(f"worker exited with code {self.proc.wait()}")
            buf += chunk
            if need == 4 and len(buf) >= 4:
                need = 4 + struct.unpack(">I", buf[:4])[0]
        try:  # only the worker writes here (programs cannot reach the pipe), but never trust it blindly
            reply = json.loads(buf[4:need])
            if len(buf) != need or not isinstance(reply, dict):
                raise ValueError("trailing or non-object data")
        except ValueError as err:
            raise EOFError(f"protocol error: {err}") from None
        return reply

    def run(self, source: str) -> ExecResult:
        t0 = time.monotonic()
        try:
            data = json.dumps({"source": source}).encode()
            self.proc.stdin.write(struct.pack(">I", len(data)) + data)
            self.proc.stdin.flush()
            reply = self._recv(t0 + self.config.timeout_s + GRACE_S)
        except (BrokenPipeError, EOFError) as err:
            self.close()
            return ExecResult("error", False, time.monotonic() - t0, f"sandbox worker died ({err}); restarted")
        except TimeoutError:
            self.close()
            return ExecResult("error", False, time.monotonic() - t0, "sandbox worker hung; killed and restarted")
        status = reply.get("status")
        if reply.get("fatal"):  # the worker could not clean up and exits: start a fresh one next time
            self.close()
        if status not in STATUSES:
            self.close()
            return ExecResult("error", False, time.monotonic() - t0, f"sandbox worker protocol error: {reply!r}"[:300])
        return ExecResult(status, status == "passed", float(reply.get("duration_s", 0.0)), str(reply.get("detail", "")))

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # EOF: the worker kills its leftovers and exits
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            self.proc.kill()  # bwrap/unshare take their whole PID namespace down with them
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)


# ---------------------------------------------------------------- backends
_auto_choice: dict[str, str] = {}


def _start(config: SandboxConfig) -> _Worker:
    """Start a worker on the configured backend; ``auto`` takes the first that starts (and remembers it)."""
    if config.backend != "auto":
        return _Worker(config.backend, config)
    if "auto" in _auto_choice:
        return _Worker(_auto_choice["auto"], config)
    reasons = []
    for backend in AUTO_ORDER:
        try:
            worker = _Worker(backend, config)
        except SandboxError as err:
            reasons.append(str(err))
            continue
        _auto_choice["auto"] = backend
        return worker
    raise SandboxError("no sandbox backend works here: " + "; ".join(reasons))


def isolation_summary(backend: str) -> str:
    """What a worker of `backend` started by this process reported about its isolation (JSON)."""
    return json.dumps(_isolation_seen.get(backend, {}), sort_keys=True)


@functools.lru_cache(maxsize=None)
def backend_status(backend: str) -> tuple[bool, str]:
    """(usable, reason or isolation summary) for one backend; starts and stops one worker."""
    try:
        worker = _Worker(backend, SandboxConfig(workers=1, preload=()))
    except SandboxError as err:
        return False, str(err)
    worker.close()
    return True, json.dumps(worker.isolation)


def resolved_backend(config: SandboxConfig) -> str:
    return _auto_choice.get("auto", "?") if config.backend == "auto" else config.backend


# ---------------------------------------------------------------- public entry point
def run_programs(programs: list[str], config: SandboxConfig = SandboxConfig(),
                 progress: bool = False) -> list[ExecResult]:
    """Run each program in the sandbox; one ExecResult per program, in input order.
    Raises SandboxError only when no worker can be started at all."""
    programs = list(programs)
    if not programs:
        return []
    results: list[ExecResult | None] = [None] * len(programs)
    counter, lock, errors = itertools.count(), threading.Lock(), []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(programs), desc="sandbox", unit="prog", file=sys.stderr)
    first = _start(config)  # fails loudly here if the backend cannot run at all
    config = dataclasses.replace(config, backend=first.backend)

    def slot(worker: _Worker | None) -> None:
        # Workers are started by this thread (or, for the first, by the caller's thread, which outlives
        # it): bwrap --die-with-parent (PR_SET_PDEATHSIG) fires when the *spawning thread* exits.
        try:
            while (i := next(counter)) < len(programs):
                if worker is None:
                    try:
                        worker = _Worker(config.backend, config)
                    except SandboxError as err:
                        results[i] = ExecResult("error", False, 0.0, str(err)[:300])
                        continue
                results[i] = worker.run(programs[i])
                if not worker.alive:
                    worker.close()
                    worker = None
                if bar is not None:
                    with lock:
                        bar.update(1)
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(err)
        finally:
            if worker is not None:
                worker.close()

    n = max(1, min(config.workers, len(programs)))
    threads = [threading.Thread(target=slot, args=(first,), daemon=True)]
    threads += [threading.Thread(target=slot, args=(None,), daemon=True) for _ in range(n - 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if bar is not None:
        bar.close()
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]
