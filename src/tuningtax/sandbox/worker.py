"""Long-lived sandbox worker: forks one child per program. Standard library only, because it runs inside
the sandbox (bwrap / unshare) where only the interpreter and this file are guaranteed to be visible.

Started by ``tuningtax.sandbox.core`` as ``python -s -P worker.py CONFIG_JSON``. Where the backend gives
it a PID namespace it is that namespace's pid 1: orphans (``setsid()`` escapees included) reparent to
it, signals from inside the namespace cannot kill it, and ``kill(-1, SIGKILL)`` removes every other
process in the sandbox after each sample.

Protocol on the original fds 0/1 (saved, then pointed at /dev/null so stray prints cannot corrupt it):
frames of a 4-byte big-endian length + UTF-8 JSON. First frame from the worker: ``{"ready": true,
"isolation": {...}}``; then per request ``{"source": str}`` -> ``{"status", "detail", "duration_s"}``.

Child per sample: setsid, fds 0 = /dev/null, 1+2 = a capture pipe, 3 = the status pipe, every other fd
closed (the program must not reach the protocol pipes); chdir to a fresh directory, rlimits,
no_new_privs, drop to the sandbox uid, compile + exec the program in-process (no new interpreter).
Only if exec returns does the epilogue write the per-sample random marker to fd 3 and ``_exit(0)``.
"""

from __future__ import annotations

import builtins
import ctypes
import gc
import json
import os
import resource
import select
import shutil
import signal
import struct
import sys
import time

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 36, 38
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 4096, 8192, 16384, 1 << 18
MNT_DETACH = 2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine)
AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY, SYS_MOUNT_SETATTR = -100, 0x8000, 1, 442  # 442 on x86-64 and arm64
SETUP_FAILED = 121  # child exit code when the sandbox could not set the child up (not the program's fault)
_libc = ctypes.CDLL(None, use_errno=True)


def _ok(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _ns_inode(kind: str) -> int:
    return os.stat(f"/proc/self/ns/{kind}").st_ino


# ---------------------------------------------------------------- framing
def _read_exact(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _recv(fd: int):
    head = _read_exact(fd, 4)
    if head is None:
        return None
    body = _read_exact(fd, struct.unpack(">I", head)[0])
    return None if body is None else json.loads(body)


def _send(fd: int, obj) -> None:
    data = json.dumps(obj).encode()
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


# ---------------------------------------------------------------- file-system setup (unshare backend)
def _tmpfs(path: str, size_mb: int, mode: str = "1777") -> None:
    opts = f"mode={mode},size={size_mb}m".encode()
    _ok(_libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts), f"mount tmpfs on {path}")


def _bind(source: str, target: str) -> None:
    _ok(_libc.mount(source.encode(), target.encode(), None, MS_BIND | MS_REC, None), f"bind {source}")


def _setup_mounts(cfg: dict, info: dict) -> None:
    """A fresh root for the unshare backend, assembled the way bwrap assembles its own: an empty tmpfs with
    read-only binds of /usr, /etc, the /bin, /lib ... links or folders and the interpreter/venv, this
    namespace's /proc, a minimal /dev and private writable /tmp and /dev/shm. pivot_root moves into it and
    the host tree is detached, so the project, home folders, task files and the DVC cache are not there to
    be read. Any step that fails stops the worker: the backend is then unusable, never silently weaker."""
    if _ns_inode("mnt") == cfg["host_mntns"]:  # never touch the host's mount table
        raise SystemExit("sandbox worker: refusing to mount outside a private mount namespace")
    if SYS_PIVOT_ROOT is None:
        raise SystemExit(f"sandbox worker: pivot_root is not known on {os.uname().machine}; use bwrap")
    _ok(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
    new = "/tmp"  # this namespace's /tmp becomes the new root: a mount point, as pivot_root needs
    _tmpfs(new, 16, mode="0755")
    os.umask(0o022)
    for name in ("usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = "/" + name
        if os.path.islink(host):  # merged-/usr links
            os.symlink(os.readlink(host), new + host)
        elif os.path.isdir(host):
            os.mkdir(new + host)
            _bind(host, new + host)
    for keep in cfg["keep_paths"]:
        if not os.path.exists(new + keep):
            os.makedirs(new + keep)
            _bind(keep, new + keep)
    for name in ("proc", "dev", "tmp"):
        os.mkdir(f"{new}/{name}")
    _bind("/proc", new + "/proc")  # unshare --mount-proc made it this PID namespace's
    attr = (ctypes.c_uint64 * 4)(MOUNT_ATTR_RDONLY, 0, 0, 0)  # struct mount_attr
    _ok(_libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, new.encode(), AT_RECURSIVE, attr, ctypes.sizeof(attr)),
        "make the new root read-only (needs Linux >= 5.12; use bwrap on older kernels)")
    _tmpfs(new + "/dev", 1, mode="0755")
    for node in ("null", "zero", "full", "random", "urandom", "tty"):
        if os.path.exists("/dev/" + node):
            open(f"{new}/dev/{node}", "w").close()
            _bind("/dev/" + node, f"{new}/dev/{node}")
    for link, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{new}/dev/{link}")
    os.mkdir(new + "/dev/shm")
    _tmpfs(new + "/dev/shm", cfg["tmp_mb"])
    _tmpfs(new + "/tmp", cfg["tmp_mb"])
    os.chdir(new)
    _ok(_libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root into the new root")
    _ok(_libc.umount2(b".", MNT_DETACH), "detach the host tree")
    os.chdir("/")
    info["readonly_root"] = True
    info["fresh_root"] = sorted(os.listdir("/"))


# ---------------------------------------------------------------- one sample
def _describe(exc: BaseException) -> str:
    try:  # SyntaxError's str() repeats file and line: its bare msg is enough
        msg = str(exc.msg if isinstance(exc, SyntaxError) else exc)
    except BaseException:  # noqa: BLE001 - a hostile __str__ must not break the report
        msg = "<unprintable>"
    line, tb = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<program>":
            line = tb.tb_lineno
        tb = tb.tb_next
    text = type(exc).__name__ + (f": {msg}" if msg else "") + (f" (line {line})" if line else "")
    return text[:300]


def _child(source: str, marker: bytes, out_w: int, st_w: int, workdir: str, cfg: dict) -> None:
    write, _exit, getpid = os.write, os._exit, os.getpid  # the program may monkeypatch os
    os.setsid()
    os.dup2(out_w, 1)
    os.dup2(out_w, 2)
    os.dup2(st_w, 3)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.closerange(4, 1 << 20)  # protocol pipes, pidfds, ...: nothing of the worker stays reachable
    try:
        os.chdir(workdir)
        mb = 1 << 20
        resource.setrlimit(resource.RLIMIT_AS, (cfg["memory_mb"] * mb,) * 2)
        resource.setrlimit(resource.RLIMIT_CPU, (cfg["cpu_s"], cfg["cpu_s"] + 1))  # SIGXCPU, then SIGKILL
        resource.setrlimit(resource.RLIMIT_FSIZE, (cfg["max_file_mb"] * mb,) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if cfg["uid"] is not None:
            # RLIMIT_NPROC counts per real uid and is ignored for root: only meaningful after the drop.
            resource.setrlimit(resource.RLIMIT_NPROC, (cfg["max_processes"],) * 2)
        if not cfg["pid1"]:  # without a PID namespace, at least die with the worker
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        _ok(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")  # setuid binaries stay powerless
        if cfg["uid"] is not None:
            os.setgroups([])
            os.setresgid(cfg["uid"], cfg["uid"], cfg["uid"])
            os.setresuid(cfg["uid"], cfg["uid"], cfg["uid"])
        os.umask(0o077)
    except BaseException as exc:  # noqa: BLE001
        write(3, b"!setup\0" + _describe(exc).encode(errors="replace"))
        _exit(SETUP_FAILED)
    me = getpid()
    try:
        exec(compile(source, "<program>", "exec"), {"__name__": "__sandbox__", "__builtins__": builtins})
    except BaseException as exc:  # noqa: BLE001 - SystemExit too: sys.exit(0) must not pass
        if getpid() == me:
            kind = b"oom" if isinstance(exc, MemoryError) else b"failed"
            try:
                write(3, b"!" + kind + b"\0" + _describe(exc).encode(errors="replace"))
            except BaseException:  # noqa: BLE001 - e.g. no memory left to describe it: the kind still counts
                try:
                    write(3, b"!" + kind + b"\0")
                except BaseException:  # noqa: BLE001
                    pass
        _exit(1)
    if getpid() != me:  # a fork of the program that ran off the end: not the sample's verdict
        _exit(0)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass
    write(3, marker + b"\n")
    _exit(0)


def _drain(fd: int, buf: bytearray, cap: int) -> bool:
    """Read what is available (bounded, so a flood cannot stall us); keep only the last ``cap`` bytes.
    Returns False at EOF."""
    for _ in range(16):
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        buf += chunk
        if len(buf) > 2 * cap:
            del buf[:-cap]
    return True


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as fh:
                    ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(name))
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            found.append(child)
            stack.append(child)
    return found


def _kill_rest(cfg: dict) -> None:
    """Kill and reap every process left in the sandbox. With a PID namespace, kill(-1) from its pid 1
    reaches everything (setsid() escapees included); without one, walk our descendants (best effort:
    we are a subreaper, so orphans are ours). Repeat until nothing is left: forks may race the kill."""
    while True:
        if cfg["pid1"]:
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            for pid in _descendants(os.getpid()):
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            return
        time.sleep(0.001)


def _rmtree(path: str) -> None:
    def retry(func, failed, _exc):  # a program may chmod its dirs read-only (matters without root)
        try:
            os.chmod(os.path.dirname(failed), 0o700)
            func(failed)
        except OSError:
            pass

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, onerror=retry)
    elif os.path.lexists(path):
        os.unlink(path)


def _clean(cfg: dict, workdir: str) -> None:
    _rmtree(workdir)
    for d in cfg["clean_dirs"]:  # private /tmp etc.: nothing survives into the next sample
        for entry in os.scandir(d):
            # ...except the read-only interpreter/venv bound into it (a checkout under /tmp)
            if not any(k == entry.path or k.startswith(entry.path + "/") for k in cfg["keep_paths"]):
                _rmtree(entry.path)


def _last_line(tail: bytearray) -> str:
    lines = [ln for ln in bytes(tail).decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1].strip()[:200] if lines else ""


def run_one(source: str, cfg: dict) -> dict:
    marker = os.urandom(16).hex().encode()  # fresh per sample, never in the program's source or env
    # Same path every sample (it is wiped in between), so messages that quote it are reproducible.
    workdir = os.path.join(cfg["sample_root"], "work")
    os.mkdir(workdir, 0o700)
    if cfg["uid"] is not None:
        os.chown(workdir, cfg["uid"], cfg["uid"])
    out_r, out_w = os.pipe()
    st_r, st_w = os.pipe()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            _child(source, marker, out_w, st_w, workdir, cfg)
        finally:
            os._exit(SETUP_FAILED)
    os.close(out_w)
    os.close(st_w)
    pidfd = os.pidfd_open(pid)
    tail, status = bytearray(), bytearray()
    cap = cfg["max_output_bytes"]
    poller = select.poll()
    for fd in (out_r, st_r):
        os.set_blocking(fd, False)
        poller.register(fd, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    deadline, exited = t0 + cfg["timeout_s"], False
    while not exited:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for fd, _ in poller.poll(left * 1000 + 1):
            if fd == pidfd:
                exited = True
            elif not _drain(fd, tail if fd == out_r else status, cap if fd == out_r else 4096):
                poller.unregister(fd)
    duration = time.monotonic() - t0
    if not exited:
        os.kill(pid, signal.SIGKILL)
    _, wstatus, usage = os.wait4(pid, 0)
    _drain(out_r, tail, cap)
    _drain(st_r, status, 4096)
    _kill_rest(cfg)
    for fd in (out_r, st_r, pidfd):
        os.close(fd)
    _clean(cfg, workdir)
    verdict, detail = _classify(exited, os.waitstatus_to_exitcode(wstatus), usage, bytes(status), marker, tail, cfg)
    return {"status": verdict, "detail": detail, "duration_s": duration}


def _classify(exited, code, usage, status, marker, tail, cfg) -> tuple[str, str]:
    if not exited:
        return "timeout", f"wall time limit of {cfg['timeout_s']:g} s exceeded"
    if code < 0:
        sig = -code
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and usage.ru_utime + usage.ru_stime >= cfg["cpu_s"] - 0.05):
            return "timeout", f"CPU time limit of {cfg['cpu_s']} s exceeded"
        name = signal.Signals(sig).name if sig in signal.valid_signals() else f"signal {sig}"
        return "killed", " | ".join(filter(None, [f"killed by {name}", _last_line(tail)]))[:300]
    if code == 0 and status == marker + b"\n":
        return "passed", ""
    if status.startswith(b"!"):
        kind, _, msg = status[1:].partition(b"\0")
        verdict = {b"oom": "oom", b"setup": "error"}.get(kind, "failed")
        return verdict, msg.decode("utf-8", "replace")[:300]
    return "no_marker", " | ".join(filter(None, [f"exited with code {code} before the end of the program",
                                                 _last_line(tail)]))[:300]


# ---------------------------------------------------------------- main
def main() -> int:
    cfg = json.loads(sys.argv[1])
    rfd, wfd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    os.umask(0o022)
    # kill(-1) is only safe as pid 1 of a namespace that is not the harness's (else it hits the host).
    cfg["pid1"] = os.getpid() == 1 and _ns_inode("pid") != cfg["host_pidns"]
    info = {"pid_namespace": cfg["pid1"], "uid": os.getuid() if cfg["uid"] is None else cfg["uid"]}
    if cfg["mounts"]:
        _setup_mounts(cfg, info)
    for d in cfg["clean_dirs"]:
        os.chmod(d, 0o1777)
    # Every sample runs in the same (wiped) path: set HOME/TMPDIR once here, not per fork.
    os.environ.update(HOME=os.path.join(cfg["sample_root"], "work"), TMPDIR=os.path.join(cfg["sample_root"], "work"))
    if not cfg["pid1"]:  # orphans of the program reparent to us, so _kill_rest can find them
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    info["interfaces"] = sorted(name for _, name in __import__("socket").if_nameindex())
    for name in cfg["preload"]:  # imported once here, inherited by every fork
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a missing optional module only costs speed
            pass
    gc.collect()
    gc.freeze()  # keep the shared heap out of the children's GC: fewer copy-on-write page faults
    _send(wfd, {"ready": True, "isolation": info})
    while (request := _recv(rfd)) is not None:
        try:
            reply = run_one(request["source"], cfg)
        except Exception as exc:  # noqa: BLE001 - e.g. a directory the program made undeletable
            # Report it and exit: the harness starts a fresh worker (fresh tmpfs) for the next sample.
            _send(wfd, {"status": "error", "detail": f"sandbox worker: {exc!r}"[:300], "duration_s": 0.0,
                        "fatal": True})
            break
        _send(wfd, reply)
    _kill_rest(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
