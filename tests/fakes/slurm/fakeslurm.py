#!/usr/bin/env python3
"""Fake SLURM client commands for testing snakemake-executor-plugin-slurm (2.8)
without a cluster (tests/integration/test_remote.py).  One file; sbatch/squeue/sacct/... are symlinks to it and
it dispatches on the name it was called by.

Env vars:
  FAKE_SLURM_LOG      file that every call is appended to (default $FAKE_SLURM_STATE/calls.log)
  FAKE_SLURM_STATE    state dir (required); jobs/<id>.{json,sh,pid,rc}
  FAKE_SLURM_ACCOUNTS comma list that sacctmgr/sshare report (default fakeacct,gpuacct)
  FAKE_SLURM_PARTITIONS comma list for sinfo, default marked with * (default cpu*,gpu)
  FAKE_SLURM_PENDING_SECONDS  jobs stay PENDING this long before starting (default 0)
  FAKE_SLURM_SBATCH_FAIL      if set, sbatch fails with this message (exit 1)
  FAKE_SLURM_LONGPOLL  if >0, sacct/squeue status queries wait up to this many
                       seconds for some queried job to finish (speeds up tests,
                       because the plugin backs off +10 s per idle poll)

Only stdlib is used so it runs with any python3.
"""
import fcntl
import getpass
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime

STATE = os.environ["FAKE_SLURM_STATE"]
JOBS = os.path.join(STATE, "jobs")
LOG = os.environ.get("FAKE_SLURM_LOG", os.path.join(STATE, "calls.log"))
ACCOUNTS = [a for a in os.environ.get("FAKE_SLURM_ACCOUNTS", "fakeacct,gpuacct").split(",") if a]
PARTITIONS = [p for p in os.environ.get("FAKE_SLURM_PARTITIONS", "cpu*,gpu").split(",") if p]
CLUSTER = "fakecluster"
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"}


def log_call(cmd, args, extra=None):
    os.makedirs(os.path.dirname(os.path.abspath(LOG)), exist_ok=True)
    rec = {
        "t": datetime.now().isoformat(timespec="milliseconds"),
        "cmd": cmd,
        "argv": args,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
    if extra:
        rec.update(extra)
    with open(LOG, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps(rec) + "\n")


def split_opts(args, with_value, stop_at_positional=True):
    """Return (opts, positional_rest). opts: list of (name, value)."""
    opts, i = [], 0
    while i < len(args):
        a = args[i]
        if a == "--":
            return opts, args[i + 1:]
        if a.startswith("--") and "=" in a:
            k, v = a.split("=", 1)
            opts.append((k, v))
        elif a in with_value:
            opts.append((a, args[i + 1] if i + 1 < len(args) else ""))
            i += 1
        elif a.startswith("-") and len(a) > 2 and not a.startswith("--") and a[:2] in with_value:
            opts.append((a[:2], a[2:]))  # -n1, -c4 ...
        elif a.startswith("-") and a != "-":
            opts.append((a, True))
        else:
            if stop_at_positional:
                return opts, args[i:]
        i += 1
    return opts, []


def opt(opts, *names, default=None):
    val = default
    for k, v in opts:
        if k in names:
            val = v
    return val


# ---------------------------------------------------------------- job state
def next_jobid():
    os.makedirs(JOBS, exist_ok=True)
    path = os.path.join(STATE, "next_jobid")
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        txt = f.read().strip()
        jid = int(txt) if txt else 1000
        f.seek(0)
        f.truncate()
        f.write(str(jid + 1))
    return jid


def job_keys():
    if not os.path.isdir(JOBS):
        return []
    keys = [n[:-5] for n in os.listdir(JOBS) if n.endswith(".json")]
    return sorted(keys, key=lambda k: [int(x) for x in k.split("_")])


def load(key):
    with open(os.path.join(JOBS, key + ".json")) as f:
        return json.load(f)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # zombie?
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def state_of(key):
    base = os.path.join(JOBS, key)
    if os.path.exists(base + ".cancelled"):
        return "CANCELLED", 0
    if os.path.exists(base + ".rc"):
        rc = int(open(base + ".rc").read().strip() or 1)
        return ("COMPLETED" if rc == 0 else "TIMEOUT" if rc == 124 else "FAILED"), rc
    if os.path.exists(base + ".pid"):
        txt = open(base + ".pid").read().strip()
        if txt and pid_alive(int(txt)):
            return "RUNNING", 0
        if txt:
            time.sleep(0.2)  # rc may be written just now
            if os.path.exists(base + ".rc"):
                return state_of(key)
            return "FAILED", 1
    return "PENDING", 0


def fmt_elapsed(sec):
    sec = int(max(sec, 0))
    return f"{sec // 3600:02d}:{sec % 3600 // 60:02d}:{sec % 60:02d}"


def field(key, meta, name):
    st, rc = state_of(key)
    n = name.lower()
    end = meta.get("end") or time.time()
    rcfile = os.path.join(JOBS, key + ".rc")
    if os.path.exists(rcfile):
        end = os.path.getmtime(rcfile)
    return {
        "jobidraw": key, "jobid": key, "state": st,
        "jobname": meta["name"], "comment": meta.get("comment", ""),
        "account": meta.get("account") or "", "partition": meta.get("partition") or "",
        "elapsed": fmt_elapsed(end - meta["submit"]), "totalcpu": "00:00:01",
        "exitcode": f"{rc}:0", "reason": "None" if rc == 0 else f"NonZeroExitCode({rc})",
        "nodelist": "fakenode01", "nnodes": "1", "ncpus": str(meta.get("cpus", 1)),
        "maxrss": "1024K", "reqmem": f"{meta.get('mem') or 0}M", "user": meta.get("user", ""),
        "timelimit": meta.get("time") or "UNLIMITED",
    }.get(n, "")


def matching(names=None, ids=None):
    out = []
    for k in job_keys():
        m = load(k)
        if names and m["name"] not in names:
            continue
        if ids and not (k in ids or k.split("_")[0] in ids):
            continue
        out.append((k, m))
    return out


def longpoll(names, ids):
    """Wait (bounded) until some non-final queried job is final."""
    wait = float(os.environ.get("FAKE_SLURM_LONGPOLL", "0") or 0)
    if wait <= 0:
        return
    deadline = time.time() + wait
    jobs = matching(names, ids)
    active = [k for k, _ in jobs if state_of(k)[0] not in FINAL]
    while active and time.time() < deadline:
        if any(state_of(k)[0] in FINAL for k in active):
            return
        time.sleep(0.2)


# ---------------------------------------------------------------- commands
SBATCH_VAL = {"-J", "--job-name", "-o", "--output", "-e", "--error", "--comment",
              "-A", "--account", "-p", "--partition", "-t", "--time", "-C",
              "--constraint", "--mem", "--mem-per-cpu", "-D", "--chdir",
              "--clusters", "-M", "-n", "--ntasks", "-c", "--cpus-per-task",
              "-N", "--nodes", "--gres", "--gpus", "-G", "--qos", "-q", "--array",
              "-a", "--wrap", "--exclude", "-x", "--reservation", "--export",
              "--ntasks-per-gpu", "--cpus-per-gpu", "--ntasks-per-node"}


def sbatch(args):
    stdin_script = None
    opts, rest = split_opts(args, SBATCH_VAL)
    wrap = opt(opts, "--wrap")
    if wrap is None:
        path = rest[0] if rest else "/dev/stdin"
        if path in ("/dev/stdin", "-"):
            stdin_script = sys.stdin.read()
            script = stdin_script
        else:
            script = open(path).read()
        script_args = rest[1:]
    else:
        script = "#!/bin/sh\n" + wrap + "\n"
        script_args = []
    log_call("sbatch", args, {"stdin": stdin_script} if stdin_script else None)
    if os.environ.get("FAKE_SLURM_SBATCH_FAIL"):
        print("sbatch: error: " + os.environ["FAKE_SLURM_SBATCH_FAIL"], file=sys.stderr)
        return 1
    jid = next_jobid()
    name = opt(opts, "-J", "--job-name", default=os.path.basename(rest[0]) if rest else "wrap")
    workdir = opt(opts, "-D", "--chdir", default=os.getcwd())
    out_pat = opt(opts, "-o", "--output", default="slurm-%j.out")
    err_pat = opt(opts, "-e", "--error")
    cluster = opt(opts, "--clusters", "-M")
    array = opt(opts, "--array", "-a")
    tasks = [None]
    if array:
        tasks = []
        for part in array.split("%")[0].split(","):
            if "-" in part:
                rng, _, step = part.partition(":")
                a, b = rng.split("-")
                tasks += list(range(int(a), int(b) + 1, int(step or 1)))
            else:
                tasks.append(int(part))
    os.makedirs(JOBS, exist_ok=True)
    script_path = os.path.join(JOBS, f"{jid}.sh")
    with open(script_path, "w") as f:
        f.write(script)
    gpus = opt(opts, "--gpus", "-G")
    gres = opt(opts, "--gres")
    for task in tasks:
        key = str(jid) if task is None else f"{jid}_{task}"

        def subst(p):
            p = p.replace("%j", str(jid)).replace("%x", name).replace("%u", getpass.getuser())
            p = p.replace("%A", str(jid)).replace("%a", str(task) if task is not None else "4294967294")
            return p if os.path.isabs(p) else os.path.join(workdir, p)

        meta = {
            "id": jid, "key": key, "name": name, "comment": opt(opts, "--comment", default=""),
            "account": opt(opts, "-A", "--account"), "partition": opt(opts, "-p", "--partition",
                                                                      default=PARTITIONS[0].strip("*")),
            "time": opt(opts, "-t", "--time"), "mem": opt(opts, "--mem", "--mem-per-cpu"),
            "cpus": opt(opts, "-c", "--cpus-per-task", "--cpus-per-gpu", default="1"),
            "gpus": gpus, "gres": gres, "workdir": workdir, "output": subst(out_pat),
            "submit": time.time(), "user": getpass.getuser(), "argv": args,
        }
        with open(os.path.join(JOBS, key + ".json"), "w") as f:
            json.dump(meta, f, indent=1)
        env = dict(os.environ)
        env.update({
            "SLURM_JOB_ID": str(jid), "SLURM_JOBID": str(jid), "SLURM_JOB_NAME": name,
            "SLURM_SUBMIT_DIR": os.getcwd(), "SLURM_CLUSTER_NAME": cluster or CLUSTER,
            "SLURM_JOB_PARTITION": meta["partition"], "SLURM_NTASKS": str(opt(opts, "-n", "--ntasks", default="1")),
            "SLURM_CPUS_PER_TASK": str(meta["cpus"]), "SLURM_JOB_NUM_NODES": "1",
            "SLURM_NODELIST": "fakenode01", "SLURMD_NODENAME": "fakenode01",
            "FAKE_SLURM_KEY": key,
        })
        if meta["account"]:
            env["SLURM_JOB_ACCOUNT"] = meta["account"]
        if gpus:
            env["SLURM_GPUS"] = str(gpus)
        if task is not None:
            env.update({"SLURM_ARRAY_JOB_ID": str(jid), "SLURM_ARRAY_TASK_ID": str(task),
                        "SLURM_ARRAY_TASK_MIN": str(min(tasks)), "SLURM_ARRAY_TASK_MAX": str(max(tasks)),
                        "SLURM_ARRAY_TASK_COUNT": str(len(tasks))})
        outp = meta["output"]
        os.makedirs(os.path.dirname(outp), exist_ok=True)
        base = os.path.join(JOBS, key)
        pending = float(os.environ.get("FAKE_SLURM_PENDING_SECONDS", "0") or 0)
        runner = (
            f'sleep {pending}; echo $$ > {shlex.quote(base + ".pid")}; '
            f'cd {shlex.quote(workdir)} && /bin/sh {shlex.quote(script_path)} "$@"; '
            f'echo $? > {shlex.quote(base + ".rc.tmp")}; mv {shlex.quote(base + ".rc.tmp")} {shlex.quote(base + ".rc")}'
        )
        stdout = open(outp, "a")
        stderr = open(subst(err_pat), "a") if err_pat else subprocess.STDOUT
        # detached: own session, no inherited pipes (else the caller's
        # communicate() would block until the job ends)
        p = subprocess.Popen(["/bin/sh", "-c", runner, "fakejob"] + script_args,
                             stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                             env=env, start_new_session=True, close_fds=True)
        with open(base + ".pgid", "w") as f:
            f.write(str(p.pid))
    if opt(opts, "--parsable"):
        print(f"{jid};{cluster}" if cluster else jid)
    else:
        print(f"Submitted batch job {jid}" + (f" on cluster {cluster}" if cluster else ""))
    return 0


def sacct(args):
    log_call("sacct", args)
    opts, _ = split_opts(args, {"--format", "-o", "--name", "-j", "--jobs", "-u", "--user",
                                "-nu", "--starttime", "-S", "--endtime", "-E", "--clusters",
                                "-M", "--state", "-s"}, stop_at_positional=False)
    noheader = any(k in ("-n", "--noheader", "-nu") for k, _ in opts)
    parsable = any(k in ("--parsable2", "-P", "--parsable", "-p") for k, _ in opts)
    fmt = opt(opts, "--format", "-o", default="JobID,JobName,Partition,Account,AllocCPUS,State,ExitCode")
    names = opt(opts, "--name")
    names = names.split(",") if names else None
    ids = opt(opts, "-j", "--jobs")
    steps = None
    if ids:
        ids = ids.split(",")
        steps = [i.split(".", 1)[1] for i in ids if "." in i]
        ids = [i.split(".")[0] for i in ids]
    fields = [f.split("%")[0] for f in fmt.split(",")]
    widths = [int(f.split("%")[1].lstrip("-")) if "%" in f else 20 for f in fmt.split(",")]
    longpoll(names, ids)
    rows = []
    if "-nu" in dict(opts) or ("-u" in dict(opts) and not names and not ids):
        # account guessing: `sacct -nu USER -o Account%256` (plugin passes a literal '| tail -1')
        rows = [[ACCOUNTS[0] if f.lower() == "account" else "" for f in fields]]
    else:
        for k, m in matching(names, ids):
            if steps is not None and steps:
                # job step query (failure reasons): only step 0 "exists"
                if steps[0] != "0" or state_of(k)[0] == "COMPLETED":
                    continue
            rows.append([field(k, m, f) for f in fields])
    if not noheader:
        rows.insert(0, fields)
    for r in rows:
        if parsable:
            print("|".join(r) + ("|" if "--parsable" in dict(opts) else ""))
        else:
            print(" ".join(str(v)[:w].ljust(w) for v, w in zip(r, widths)))
    return 0


def squeue(args):
    log_call("squeue", args)
    opts, _ = split_opts(args, {"--format", "-o", "--name", "-n", "-j", "--jobs", "-u", "--user",
                                "--states", "-t", "-M", "--clusters", "-O"}, stop_at_positional=False)
    fmt = opt(opts, "--format", "-o", default="%.18i %.9P %.8j %.8u %.2t %.10M %.6D %R")
    names = opt(opts, "--name", "-n")
    names = names.split(",") if names else None
    ids = opt(opts, "-j", "--jobs")
    ids = ids.split(",") if ids else None
    states = (opt(opts, "--states", "-t") or "").upper()
    longpoll(names, ids)
    import re
    codes = {"i": "jobidraw", "A": "jobidraw", "T": "state", "j": "jobname", "P": "partition",
             "u": "user", "M": "elapsed", "a": "account", "k": "comment", "R": "nodelist"}
    short = {"RUNNING": "R", "PENDING": "PD", "COMPLETED": "CD", "FAILED": "F", "CANCELLED": "CA",
             "TIMEOUT": "TO"}

    def render(k, m):
        def rep(mt):
            c = mt.group(2)
            if c == "t":
                return short.get(state_of(k)[0], "?")
            if c == "D":
                return "1"
            return field(k, m, codes.get(c, ""))
        return re.sub(r"%(\.?\d*)([A-Za-z])", rep, fmt)

    if not any(k in ("-h", "--noheader") for k, _ in opts):
        print(re.sub(r"%(\.?\d*)([A-Za-z])", lambda mt: {"i": "JOBID", "T": "STATE", "t": "ST", "j": "NAME"}
                     .get(mt.group(2), mt.group(2).upper()), fmt))
    for k, m in matching(names, ids):
        if state_of(k)[0] in FINAL and states not in ("ALL",) and not set(states.split(",")) & {state_of(k)[0]}:
            continue  # like real squeue: finished jobs only with --states=all
        print(render(k, m))
    return 0


def scontrol(args):
    log_call("scontrol", args)
    if args[:2] == ["show", "config"]:
        print("Configuration data as of " + datetime.now().isoformat(timespec="seconds"))
        print(f"ClusterName             = {CLUSTER}")
        print("MaxArraySize            = 1001")
        print("MinJobAge               = 300 sec")
        print("SLURM_VERSION           = 23.11.0-fake")
        return 0
    if args[:2] == ["show", "job"]:
        for k, m in matching(None, args[2:3] or None):
            print(f"JobId={k} JobName={m['name']} JobState={state_of(k)[0]} Partition={m['partition']} "
                  f"Account={m['account']} Command={m['workdir']} StdOut={m['output']}")
        return 0
    if args[:1] == ["version"] or args[:1] == ["--version"]:
        print("slurm 23.11.0-fake")
        return 0
    return 0


def sinfo(args):
    log_call("sinfo", args)
    opts, _ = split_opts(args, {"-o", "--format", "-p", "--partition", "-O"}, stop_at_positional=False)
    fmt = opt(opts, "-o", "--format")
    if fmt == "%P":
        print("PARTITION")
        for p in PARTITIONS:
            print(p)
        return 0
    if opt(opts, "--version", "-V"):
        print("slurm 23.11.0-fake")
        return 0
    print("PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST")
    for p in PARTITIONS:
        print(f"{p:9} up    infinite       1   idle fakenode01")
    return 0


def sacctmgr(args):
    log_call("sacctmgr", args)
    for a in ACCOUNTS:
        print(f"{a:>20}")
    return 0


def sshare(args):
    log_call("sshare", args)
    for a in ACCOUNTS:
        print(a)
    return 0


def scancel(args):
    log_call("scancel", args)
    for jid in [a for a in args if not a.startswith("-")]:
        for k, m in matching(None, [jid]):
            base = os.path.join(JOBS, k)
            open(base + ".cancelled", "w").close()
            try:
                os.killpg(int(open(base + ".pgid").read()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
    return 0


SRUN_VAL = {"-n", "--ntasks", "-c", "--cpus-per-task", "-N", "--nodes", "--jobid", "-J",
            "--job-name", "--mem", "--mem-per-cpu", "-G", "--gpus", "--gres", "-p", "--partition",
            "-A", "--account", "-t", "--time", "--cpu-bind", "-o", "--output", "-e", "--error"}


def srun(args):
    log_call("srun", args)
    opts, cmd = split_opts(args, SRUN_VAL)
    if not cmd:
        print("srun: fatal: No command given to execute.", file=sys.stderr)
        return 1
    # like real srun: export step-level vars (the slurm-jobstep plugin strips
    # inherited SLURM_* except job id/array vars before calling srun)
    os.environ["SLURM_STEP_ID"] = os.environ.get("SLURM_STEP_ID", "0")
    for names, var in ((("-c", "--cpus-per-task"), "SLURM_CPUS_PER_TASK"),
                       (("-n", "--ntasks"), "SLURM_NTASKS"),
                       (("-N", "--nodes"), "SLURM_NNODES"),
                       (("--gpus", "-G"), "SLURM_GPUS")):
        v = opt(opts, *names)
        if v is not None and v is not True:
            os.environ[var] = str(v)
    if opt(opts, "--gpus", "-G"):
        os.environ["SLURM_GPUS_ON_NODE"] = str(opt(opts, "--gpus", "-G"))
    os.execvp(cmd[0], cmd)


COMMANDS = {f.__name__: f for f in (sbatch, sacct, squeue, scontrol, sinfo, sacctmgr, sshare, scancel, srun)}

if __name__ == "__main__":
    name = os.path.basename(sys.argv[0])
    if name not in COMMANDS:
        name, sys.argv = sys.argv[1], sys.argv[1:]
    sys.exit(COMMANDS[name](sys.argv[1:]) or 0)
