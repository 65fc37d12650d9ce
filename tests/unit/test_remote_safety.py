"""What makes the rules safe for cluster jobs and remote storage: named files instead of folders (bundle.py),
resources from one place (resources.py), and rules without folder outputs or absolute paths."""

from __future__ import annotations

import subprocess
import sys
import tarfile

import numpy as np
import pytest

from conftest import REPO
from tuningtax.bundle import ASSETS, ONNX_DATA, pack_assets, single_external_data, unpacked
from tuningtax.errors import UserError
from tuningtax.resources import model_size_b, rule_resources


@pytest.mark.parametrize("entry, size", [
    ({"name": "qwen2.5-coder-0.5b-instruct", "source": "offline-qwen2.5-coder-0.5b-instruct"}, 0.5),
    ({"name": "big", "source": "Qwen/Qwen2.5-Coder-32B-Instruct"}, 32.0),
    ({"name": "deepseek-coder-6.7b-base", "source": "./ckpt"}, 6.7),
    ({"name": "tiny-base", "source": "./checkpoints/tiny-base"}, 1.0),
    ({"name": "tiny", "source": "./x", "size_b": 13}, 13.0),
    (None, 1.0),
])
def test_model_size_comes_from_the_entry_then_the_name_then_one(entry, size):
    assert model_size_b(entry) == size


def test_resources_scale_with_the_model_and_ask_for_a_gpu_only_where_one_is_used():
    small = rule_resources("export_onnx", {"name": "m-1b", "source": "./m"})
    large = rule_resources("export_onnx", {"name": "m-34b", "source": "./m"})
    assert large["mem_mb"] > 10 * small["mem_mb"] / 2 and large["runtime"] > small["runtime"]
    assert rule_resources("generate_completions", None, "cuda")["gpu"] == 1
    assert rule_resources("generate_completions", None, "cpu")["gpu"] == 0
    assert rule_resources("export_onnx", None, "cuda")["gpu"] == 0  # traced and parity-checked on the CPU
    assert rule_resources("execute_completions", None, "cuda")["gpu"] == 0
    assert rule_resources("validate_samples", None, "cuda") == {"mem_mb": 2048, "runtime": 15, "cpus_per_task": 1,
                                                                 "gpu": 0}


def test_assets_pack_deterministically_and_unpack_beside_the_large_files(tmp_path):
    packed = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text("{}")
        (folder / "tokenizer.json").write_text('{"x": 1}')
        (folder / "model.safetensors").write_bytes(b"weights")
        assert pack_assets(folder, keep=["model.safetensors"]) == ["config.json", "tokenizer.json"]
        assert sorted(p.name for p in folder.iterdir()) == [ASSETS, "model.safetensors"]
        packed.append((folder / ASSETS).read_bytes())
    assert packed[0] == packed[1]  # no times or owners from the machine that packed it
    with unpacked(tmp_path / "a") as files:
        assert (files / "config.json").read_text() == "{}"
        assert (files / "model.safetensors").is_symlink() and (files / "model.safetensors").read_bytes() == b"weights"
    assert not files.exists()
    with unpacked(tmp_path) as same:  # no assets.tar: the folder itself
        assert same == tmp_path


def test_an_assets_tar_with_a_path_is_refused(tmp_path):
    (tmp_path / "evil").write_text("x")
    with tarfile.open(tmp_path / ASSETS, "w") as tar:
        tar.add(tmp_path / "evil", arcname="../evil")
    with pytest.raises(UserError, match="unexpected member"), unpacked(tmp_path):
        pass


def test_an_onnx_graph_ends_with_its_weights_in_one_named_file(tmp_path):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = np.ones((1, 2), dtype=np.float32)
    inline = tmp_path / "inline" / "model.onnx"
    other = tmp_path / "other" / "model.onnx"
    for path in (inline, other):
        path.parent.mkdir()
    onnx.save(model, str(inline))
    onnx.save(model, str(other), save_as_external_data=True, location="model.onnx.data", size_threshold=0)
    for path in (inline, other):
        single_external_data(path)
        assert sorted(p.name for p in path.parent.iterdir()) == ["model.onnx", ONNX_DATA]
        out = ort.InferenceSession(str(path)).run(None, {"x": x})[0]
        assert out.tolist() == [[3.0, 5.0, 7.0]]
    before = other.read_bytes()
    single_external_data(other)  # already in shape: untouched
    assert other.read_bytes() == before


def test_rules_declare_files_only_and_no_absolute_paths():
    for path in sorted((REPO / "rules").glob("*.smk")) + [REPO / "Snakefile"]:
        text = path.read_text()
        assert "directory(" not in text, f"{path.name}: a folder output breaks remote storage"
    dry = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--forceall", "--printshellcmds", "--cores", "1",
                          "all", "trajectory"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert dry.returncode == 0, dry.stderr[-3000:]
    from tuningtax.dvcstages import parse_dry_run

    jobs = parse_dry_run(dry.stdout + dry.stderr)
    assert jobs
    for job in jobs:
        for path in job.inputs + job.outputs:
            assert not path.startswith("/"), f"rule {job.rule}: absolute path {path}"


@pytest.mark.parametrize("profile", ["slurm", "kubernetes"])
def test_each_cluster_profile_groups_into_a_dag_snakemake_accepts(profile):
    """A group that holds a job and also a job depending on it through an outside job would wait on itself;
    Snakemake refuses such a DAG only when the groups are applied, so plan the study and the trajectory with
    the profile's groups (no executor plugin needed)."""
    import yaml

    config = yaml.safe_load((REPO / "profiles" / profile / "config.yaml").read_text())
    groups = ["--groups", *(f"{rule}={group}" for rule, group in config["groups"].items()),
              "--group-components", *(f"{group}={n}" for group, n in config["group-components"].items())]
    dry = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--forceall", "--cores", "1", "all", "trajectory",
                          *groups], cwd=REPO, capture_output=True, text=True, timeout=600)  # options take lists: last
    assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-3000:]
