"""Guarantees of tuningtax.sandbox, each checked by running hostile programs. Backends that cannot run
here are skipped with the reason (e.g. bwrap not installed)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tuningtax.cli import main as cli_main
from tuningtax.sandbox import STATUSES, SandboxConfig, backend_status, run_programs

REPO = Path(__file__).resolve().parents[2]
ISOLATING = ("bwrap", "unshare")
ALL = (*ISOLATING, "none-unsafe")


def _need(backend: str) -> str:
    ok, why = backend_status(backend)
    if not ok:
        pytest.skip(f"{backend} sandbox unavailable here: {why}")
    return backend


@pytest.fixture(params=ISOLATING)
def isolating(request) -> str:
    return _need(request.param)


@pytest.fixture(params=ALL)
def any_backend(request) -> str:
    return _need(request.param)


def run(programs, backend, **kw):
    kw.setdefault("workers", 1)
    kw.setdefault("timeout_s", 5)
    return run_programs([textwrap.dedent(p) for p in programs], SandboxConfig(backend=backend, **kw))


def _comm_alive(token: str) -> bool:
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and Path(f"/proc/{pid}/comm").read_text().strip() == token:
                return True
        except OSError:
            pass
    return False


# ---------------------------------------------------------------- scoring and the marker
def test_results_in_input_order_with_statuses(any_backend):
    programs = [f"assert {i} % 3 != 0, 'no {i}'" for i in range(12)]
    programs += ["def f(:\n    pass", "raise ValueError('boom')", "x = 1\nundefined_name"]
    results = run(programs, any_backend, workers=2)
    assert [r.passed for r in results[:12]] == [i % 3 != 0 for i in range(12)]
    assert all(r.detail == f"AssertionError: no {i} (line 1)" for i, r in enumerate(results[:12]) if i % 3 == 0)
    syntax, value, name = results[12:]
    assert syntax.status == "failed" and syntax.detail.startswith("SyntaxError")
    assert (value.status, value.detail) == ("failed", "ValueError: boom (line 1)")
    assert name.status == "failed" and "NameError" in name.detail and "(line 2)" in name.detail
    assert all(r.status in STATUSES and r.duration_s >= 0 for r in results)


def test_early_exit_or_fake_marker_cannot_pass(any_backend):
    fakes = [
        "import sys\nsys.exit(0)",
        "import os\nos._exit(0)",
        "raise SystemExit",
        "exit(0)",
        "import os\nos.close(3)",  # no channel left for the epilogue
        # a plausible marker on stdout and on fd 3, then a clean exit
        "import os\nprint(os.urandom(16).hex())\nos.write(3, os.urandom(16).hex().encode() + b'\\n')\nos._exit(0)",
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
        "import os\nif os.fork():\n    os._exit(0)\nassert False",  # the fork that reaches the end fails
        # a forged "passed" reply on every fd, in case the harness protocol pipe were reachable
        "import json, os, struct\nf = json.dumps({'status': 'passed', 'detail': '', 'duration_s': 0.0}).encode()\n"
        "for fd in range(256):\n    try:\n        os.write(fd, struct.pack('>I', len(f)) + f)\n"
        "    except OSError:\n        pass\nos._exit(0)",
    ]
    results = run([*fakes, "pass"], any_backend)
    assert [r.passed for r in results] == [False] * len(fakes) + [True]
    statuses = [r.status for r in results]
    assert statuses[:5] == ["failed", "no_marker", "failed", "failed", "no_marker"]
    assert statuses[5] == statuses[7] == statuses[8] == "no_marker"  # [7]: the fork that ran on is no verdict
    assert statuses[6] == "killed" and "SIGKILL" in results[6].detail


# ---------------------------------------------------------------- limits
def test_wall_timeout_and_leftovers_kill_the_whole_tree(any_backend):
    """A setsid() double-forked daemon must die on timeout and after a normal end alike."""
    tokens = [f"tt{secrets.token_hex(6)}" for _ in range(2)]
    spawn = """
        import ctypes, os, time
        if os.fork() == 0:
            os.setsid()  # own session and process group: a process-group kill would miss it
            if os.fork() == 0:
                ctypes.CDLL(None).prctl(15, b"{token}", 0, 0, 0)  # PR_SET_NAME: visible in /proc/PID/comm
                while True:
                    time.sleep(1)
            os._exit(0)
        time.sleep({sleep})
    """
    # The third program runs next in the same worker: the daemons must be gone already, not merely
    # when the sandbox is torn down at the end of the run.
    survivors = f"""
        import os
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                assert open(f"/proc/{{pid}}/comm").read().strip() not in {tokens}, "survivor"
            except OSError:
                pass
    """
    programs = [spawn.format(token=tokens[0], sleep=0.8), survivors,
                spawn.format(token=tokens[1], sleep=60), survivors]
    seen, stop = set(), threading.Event()

    def watch():
        while not stop.is_set():
            seen.update(t for t in tokens if _comm_alive(t))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        start = time.monotonic()
        finished, clean1, timed_out, clean2 = run(programs, any_backend, timeout_s=1.5)
        elapsed = time.monotonic() - start
    finally:
        stop.set()
        watcher.join()
    assert seen == set(tokens), "the daemons never started: the test proves nothing"
    assert finished.status == "passed", finished
    assert clean1.passed and clean2.passed, (clean1, clean2)
    assert timed_out.status == "timeout" and "wall time" in timed_out.detail
    assert 1.4 < timed_out.duration_s < 3 and elapsed < 8
    assert not any(_comm_alive(t) for t in tokens), "a setsid() descendant survived the sandbox"


def test_cpu_limit(any_backend):
    (res,) = run(["while True:\n    pass"], any_backend, timeout_s=10, cpu_s=1)
    assert res.status == "timeout" and "CPU time" in res.detail and res.duration_s < 4


def test_memory_limit(any_backend):
    small, big = run(["b = bytearray(32 << 20)", "b = bytearray(512 << 20)"], any_backend, memory_mb=256)
    assert small.passed, small
    assert big.status == "oom" and "MemoryError" in big.detail


def test_process_limit_bounds_fork_bombs(isolating):
    if os.geteuid() != 0:
        pytest.skip("RLIMIT_NPROC is only set when the harness is root (programs run as uid 65534)")
    program = """
        import os, time
        n = 0
        try:
            while n < 300:
                if os.fork() == 0:
                    time.sleep(30)
                    os._exit(0)
                n += 1
        except OSError:
            pass
        assert n < 40, n
    """
    (res,) = run([program], isolating, max_processes=24)
    assert res.passed, res


# ---------------------------------------------------------------- isolation
def test_no_network(isolating):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    program = f"""
        import socket
        for addr in [("127.0.0.1", {port}), ("1.1.1.1", 53), ("8.8.8.8", 443)]:
            try:
                socket.create_connection(addr, timeout=1).close()
            except OSError:
                continue
            raise AssertionError(f"connected to {{addr}}")
        assert [name for _, name in socket.if_nameindex()] == ["lo"]
    """
    try:
        res = run([program], isolating)[0]
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing reached the host
        control = run([program], "none-unsafe")[0]
    finally:
        listener.close()
    assert res.passed, res
    # Control: without namespaces the same program reaches the host listener, so the check bites.
    assert not control.passed and "connected to ('127.0.0.1'" in control.detail


def test_no_writes_or_deletes_outside_the_sandbox_dir(isolating):
    # Outside /tmp (which the unshare backend replaces), world-writable, so only the sandbox protects it.
    (REPO / ".pytest_cache").mkdir(exist_ok=True)
    host = Path(tempfile.mkdtemp(prefix="sandbox-fs-", dir=REPO / ".pytest_cache"))
    try:
        host.chmod(0o777)
        for name in ("keep.txt", "victim.txt"):
            (host / name).write_text("original")
            (host / name).chmod(0o666)
        program = f"""
            import os
            p = {str(host)!r}
            for attempt in (lambda: open(p + "/keep.txt", "w").write("changed"),
                            lambda: os.unlink(p + "/victim.txt"),
                            lambda: open(p + "/new.txt", "w").write("new")):
                try:
                    attempt()
                except OSError:
                    pass
            with open("mine.txt", "w") as fh:  # its own directory is writable
                fh.write("ok")
        """
        (res,) = run([program], isolating)
        assert res.passed, res
        assert sorted(p.name for p in host.iterdir()) == ["keep.txt", "victim.txt"]
        assert {p.read_text() for p in host.iterdir()} == {"original"}
        # Control: without the sandbox's mounts the same program does damage, so the check bites.
        assert run([program], "none-unsafe")[0].passed
        assert (host / "keep.txt").read_text() == "changed" and not (host / "victim.txt").exists()
    finally:
        shutil.rmtree(host, ignore_errors=True)


def test_no_view_of_the_project_the_home_folder_or_the_environment(isolating, monkeypatch):
    """Planted answer keys in the project tree and the home folder, and a secret in the harness's
    environment: under every isolating backend the program sees none of them."""
    (REPO / ".pytest_cache").mkdir(exist_ok=True)
    in_project = Path(tempfile.mkdtemp(prefix="planted-", dir=REPO / ".pytest_cache")) / "answers.jsonl"
    in_home = Path(tempfile.mkdtemp(prefix=".tuningtax-planted-", dir=Path.home())) / "answers.jsonl"
    monkeypatch.setenv("TUNINGTAX_PLANTED_SECRET", "hunter2")
    try:
        for planted in (in_project, in_home):
            planted.write_text('{"canonical_solution": "return 42"}\n')
            planted.chmod(0o644)
            for parent in (planted.parent, *planted.parent.parents):  # readable by the sandbox uid too
                if parent in (REPO, Path.home()) or parent == parent.parent:
                    break
                parent.chmod(parent.stat().st_mode | 0o755)
        program = f"""
            import os
            seen = [p for p in ({str(in_project)!r}, {str(in_home)!r}, {str(REPO / "pyproject.toml")!r},
                                {str(REPO / "data")!r}, {str(REPO / ".dvc")!r}) if os.path.exists(p)]
            assert not seen, seen
            assert "TUNINGTAX_PLANTED_SECRET" not in os.environ and "hunter2" not in str(os.environ)
            assert not os.path.exists("/var")
        """
        (res,) = run([program], isolating)
        assert res.passed, res
        # Control: without a sandbox the same program sees the planted files, so the check bites.
        control = run([program], "none-unsafe")[0]
        assert not control.passed and "answers.jsonl" in control.detail
    finally:
        shutil.rmtree(in_project.parent, ignore_errors=True)
        shutil.rmtree(in_home.parent, ignore_errors=True)


def test_each_sample_gets_a_fresh_dir_and_nothing_survives(any_backend):
    private_tmp = any_backend in ISOLATING  # none-unsafe shares the host's /tmp: do not litter it
    litter = f"""
        import os, tempfile
        open("litter.txt", "w").write("x")
        open(os.path.join(tempfile.gettempdir(), "litter2.txt"), "w").write("x")
        if {private_tmp}:
            open("/tmp/litter3.txt", "w").write("x")
            if os.access("/dev/shm", os.W_OK):
                open("/dev/shm/litter4", "w").write("x")
    """
    check = """
        import os
        assert os.listdir(".") == [], os.listdir(".")
        assert not os.path.exists("/tmp/litter3.txt") and not os.path.exists("/dev/shm/litter4")
    """
    before = set(Path(tempfile.gettempdir()).glob("tuningtax-sandbox-*"))
    results = run([litter, check, litter, check], any_backend)
    assert [r.passed for r in results] == [True] * 4, results
    assert set(Path(tempfile.gettempdir()).glob("tuningtax-sandbox-*")) == before  # scratch removed


# ---------------------------------------------------------------- the harness survives anything
def test_harness_survives_hostile_programs(isolating):
    hostile = [
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
        "import os, signal\nos.kill(1, signal.SIGKILL)",
        "import os, signal\nos.kill(-1, signal.SIGKILL)",  # only safe because the sandbox has a PID namespace
        "import os\nos.closerange(0, 65536)",
        "import os\nwhile True:\n    os.fork()",
        "import sys\nsys.stdout.write('x' * 30_000_000)\nsys.stderr.write('\\0\\xff' * 10_000_000)",
        "import os\nfor fd in range(64):\n    try:\n        os.write(fd, b'\\0\\0\\0\\x05{}\\n' * 1000)\n"
        "    except OSError:\n        pass",
    ]
    programs = [p for h in hostile for p in (h, "pass")]
    results = run(programs, isolating, workers=2, timeout_s=2, max_processes=32)
    assert len(results) == len(programs)
    assert all(r.status in STATUSES for r in results)
    assert all(r.passed for r in results[1::2]), results
    assert results[0].status == "failed" and "PermissionError" in results[0].detail  # worker is root
    assert results[12].status == "no_marker"  # garbage on every fd reached nothing of the harness


def test_dead_worker_is_reported_and_restarted():
    """Without namespaces and uid drop, a program can kill its worker: that sample is an error, the
    worker restarts and every later sample still gets its result."""
    _need("none-unsafe")
    kill = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"
    results = run([kill, "pass", kill, "assert False", "pass"], "none-unsafe", run_as_uid=None)
    assert [r.status for r in results] == ["error", "passed", "error", "failed", "passed"]
    assert "worker died" in results[0].detail


def test_unknown_backend_is_a_clear_error():
    from tuningtax.sandbox import SandboxError

    with pytest.raises(SandboxError, match="unknown sandbox backend"):
        run(["pass"], "docker")


# ---------------------------------------------------------------- CLI
TASK = {"task_id": "T/{n}", "benchmark": "humaneval-single-line", "mode": "flow", "prompt": "def add{n}(a, b):\n",
        "suffix": "", "canonical_solution": "    return a + b\n", "test": "def check(f):\n    assert f(1, 2) == 3\n",
        "entry_point": "add{n}", "instruction": "", "source_id": "toy/{n}"}


def _write(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def toy(tmp_path):
    tasks = _write(tmp_path / "tasks.jsonl", [{k: v.format(n=n) for k, v in TASK.items()} for n in (1, 0)])
    completions = [
        {"task_id": "T/0", "sample": 1, "completion": "    return a - b\n", "extra": "ignored"},
        {"task_id": "T/1", "sample": 0, "completion": "    return a + b\n"},
        {"task_id": "T/0", "sample": 0, "completion": "    return a + b\n"},
    ]
    return tasks, completions


def test_cli_execute_sorted_results_and_separate_timings(tmp_path, toy):
    tasks, completions = toy
    comp = _write(tmp_path / "c.jsonl", completions)
    outs = []
    for k in range(2):
        out, timings = tmp_path / f"r{k}.jsonl", tmp_path / f"t{k}.jsonl"
        assert cli_main(["execute", "--tasks", str(tasks), "--completions", str(comp), "--out", str(out),
                         "--workers", "2", "--timeout", "5", "--timings", str(timings)]) == 0
        outs.append(out.read_bytes())
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert [(r["task_id"], r["sample"], r["passed"]) for r in rows] == [
            ("T/1", 0, True), ("T/0", 0, True), ("T/0", 1, False)]  # task-file order, then sample
        assert list(rows[0]) == ["task_id", "sample", "status", "passed", "sandbox", "detail"]
        assert rows[0]["sandbox"] in ("bwrap", "unshare")  # the backend auto chose, recorded on every row
        assert rows[2]["status"] == "failed" and rows[2]["detail"].startswith("AssertionError")
        times = [json.loads(line) for line in timings.read_text().splitlines()]
        assert [(t["task_id"], t["sample"]) for t in times] == [("T/1", 0), ("T/0", 0), ("T/0", 1)]
        assert all(isinstance(t["duration_s"], float) for t in times)
    assert outs[0] == outs[1]  # no timings in the tracked file: byte-identical across runs
    out = tmp_path / "with-durations.jsonl"
    assert cli_main(["execute", "--tasks", str(tasks), "--completions", str(comp), "--out", str(out)]) == 0
    assert all("duration_s" in json.loads(line) for line in out.read_text().splitlines())


@pytest.mark.parametrize("bad, message", [
    ({"task_id": "T/9", "sample": 0, "completion": ""}, r"c\.jsonl:3: task_id 'T/9' is not in .*tasks\.jsonl"),
    ({"task_id": "T/1", "sample": 0, "completion": ""}, r"c\.jsonl:3: duplicate \(task_id, sample\) = \('T/1', 0\)"),
    ({"task_id": "T/1", "sample": "0", "completion": ""}, r"c\.jsonl:3: sample must be an integer"),
])
def test_cli_rejects_bad_completions_without_writing(tmp_path, toy, capsys, bad, message):
    tasks, completions = toy
    comp = _write(tmp_path / "c.jsonl", [completions[1], completions[0], bad])
    out = tmp_path / "r.jsonl"
    out.write_text("previous\n")
    code = cli_main(["execute", "--tasks", str(tasks), "--completions", str(comp), "--out", str(out)])
    assert code == 2
    assert re.search(message, capsys.readouterr().err)
    assert out.read_text() == "previous\n"  # nothing overwritten on error


def test_kill_9_during_execution_leaves_nothing_and_the_rerun_is_identical(tmp_path):
    """SIGKILL midway: no results file appears under its final name (they are written once, renamed into
    place), and a rerun writes exactly what an uninterrupted run writes."""
    import signal
    import subprocess
    import sys

    tasks = _write(tmp_path / "tasks.jsonl", [{k: (v.format(n=n) if isinstance(v, str) else v)
                                              for k, v in TASK.items()} for n in range(12)])
    completions = _write(tmp_path / "c.jsonl", [{"task_id": f"T/{n}", "sample": 0,
                                                 "completion": "    import time; time.sleep(0.3)\n    return a + b\n"}
                                                for n in range(12)])
    command = [sys.executable, "-m", "tuningtax", "execute", "--tasks", str(tasks), "--completions", str(completions),
               "--workers", "1", "--timeout", "5"]
    killed = tmp_path / "killed.jsonl"
    proc = subprocess.Popen([*command, "--out", str(killed), "--timings", str(tmp_path / "t1.jsonl")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(2.0)  # workers started, a few of the 12 sleeping programs done: midway
    assert proc.poll() is None, "the run finished before it could be killed; slow the programs down"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not killed.exists()
    rerun = subprocess.run([*command, "--out", str(killed), "--timings", str(tmp_path / "t2.jsonl")],
                           capture_output=True, text=True)
    clean = subprocess.run([*command, "--out", str(tmp_path / "clean.jsonl"), "--timings", str(tmp_path / "t3.jsonl")],
                           capture_output=True, text=True)
    assert rerun.returncode == 0 and clean.returncode == 0, rerun.stderr + clean.stderr
    assert killed.read_bytes() == (tmp_path / "clean.jsonl").read_bytes()
    assert all(json.loads(line)["passed"] for line in killed.read_text().splitlines())


def test_auto_refuses_with_the_install_hint_when_no_backend_can_isolate(monkeypatch):
    """Where bubblewrap is absent and unshare cannot set up its root, auto runs nothing (it never falls back
    to none-unsafe) and says how to install bubblewrap."""
    from tuningtax.sandbox import SandboxError, core

    monkeypatch.setattr(core, "_auto_choice", {})
    monkeypatch.setattr(core.shutil, "which", lambda name: None)
    with pytest.raises(SandboxError) as err:
        run(["pass"], "auto")
    assert "no sandbox backend works here" in str(err.value)
    assert "apt-get install -y --no-install-recommends bubblewrap" in str(err.value)
