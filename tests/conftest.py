"""Shared fixtures: the repository root, the shared reference folders, and a tiny random Qwen2 model
built on the fly from the real Qwen2.5-Coder tokenizer (real FIM tokens and chat template, few MB)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TUNINGTAX_SHARED", REPO.parent / "shared"))
QWEN_TOKENIZER = SHARED / "fixtures" / "qwen2.5-coder-0.5b-instruct-tokenizer"
BENCHMARK_MIRROR = SHARED / "benchmarks"
INFILLING_MIRROR = BENCHMARK_MIRROR / "humaneval-infilling"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def qwen_tokenizer_dir() -> Path:
    if not (QWEN_TOKENIZER / "tokenizer.json").exists():
        pytest.skip(f"Qwen tokenizer fixture absent at {QWEN_TOKENIZER} (set TUNINGTAX_SHARED)")
    return QWEN_TOKENIZER


def build_tiny_qwen(out_dir: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """A 2-layer Qwen2 with random weights and the real tokenizer, saved as an HF folder."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        rope_theta=1_000_000.0, tie_word_embeddings=False,
        bos_token_id=151643, eos_token_id=151645, pad_token_id=151643,
    )
    model = Qwen2ForCausalLM(config).eval()
    model.generation_config = GenerationConfig(eos_token_id=151645, pad_token_id=151643, do_sample=False)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    for extra in ("chat_template.jinja",):
        if (tokenizer_dir / extra).exists() and not (out_dir / extra).exists():
            shutil.copy(tokenizer_dir / extra, out_dir / extra)
    return out_dir


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory, qwen_tokenizer_dir) -> Path:
    return build_tiny_qwen(tmp_path_factory.mktemp("tiny-qwen"), qwen_tokenizer_dir)


@pytest.fixture(scope="session")
def tiny_qwen_onnx(tmp_path_factory, tiny_qwen_dir) -> Path:
    """The tiny model exported to ONNX fp32 through the project's own export path (parity-checked)."""
    from tuningtax.export import export
    from tuningtax.models.spec import ModelSpec

    spec = ModelSpec(name="tiny-qwen", family="qwen2.5-coder", role="instruct", source=str(tiny_qwen_dir))
    out = tmp_path_factory.mktemp("tiny-onnx") / "fp32"
    export(spec, "fp32", out)
    return out


S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                  "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def s3_endpoint():
    """A local S3 server (moto) for the storage-plugin and DVC-remote tests: its URL; buckets are made by the
    tests. Any credentials are accepted, but some must be set (S3_CREDENTIALS)."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] is a test dependency")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def make_bucket(endpoint: str, bucket: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket=bucket)


def list_bucket(endpoint: str, bucket: str) -> list[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    return sorted(o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                  for o in page.get("Contents", []))
