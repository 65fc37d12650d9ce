import hashlib
import shlex
import sys
from pathlib import Path

from tuningtax.config import validate_params
from tuningtax.errors import UserError
from tuningtax.tasks.registry import BENCHMARKS

try:
    validate_params(config, "params.yaml (or --config overrides)")
except UserError as err:
    raise WorkflowError(str(err))

# The interpreter Snakemake runs under is the project's venv; rules call the same one.
PYTHON = shlex.quote(sys.executable)
SRC = Path(workflow.basedir) / "src" / "tuningtax"


def code_version(*parts):
    """Fingerprint of the source a rule runs (Snakemake cannot see code behind a shell string)."""
    digest = hashlib.sha256()
    for part in parts:
        for path in sorted((SRC / part).rglob("*.py")) if (SRC / part).is_dir() else [SRC / part]:
            digest.update(path.relative_to(SRC).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def sandbox_args(threads):
    sb = config["sandbox"]
    return (f"--workers {threads} --timeout {sb['timeout_s']} --memory-mb {sb['memory_mb']} "
            f"--backend {sb['backend']}")


wildcard_constraints:
    benchmark="|".join(BENCHMARKS),
