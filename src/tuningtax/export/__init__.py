"""ONNX export of a model spec with a greedy parity gate (parity.py), graph edits (graph_edits.py) and the
int8 variant (quantize.py).

fp32: optimum ``main_export(..., task="text-generation-with-past")`` from the resolved HF folder, then ORT
greedy tokens must equal PyTorch greedy tokens on a fixed probe set, else the export fails and leaves no
output folder. int8: the fp32 export's MatMul weights quantized to int8 in blocks (``INT8_SCHEME``), an
explicitly named variant whose agreement with the fp32 reference tokens is measured and reported, never gated
or substituted.
Both are built in a temporary sibling folder and renamed into place. ``parity.json`` is deterministic
(no times, hosts or thread counts) so it can be tracked.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from tuningtax.bundle import ASSETS, ONNX_FILES, ONNX_GRAPH, pack_assets, single_external_data, unpacked
from tuningtax.errors import UserError
from tuningtax.export.graph_edits import group_kv_attention, slice_last_position
from tuningtax.export.parity import MAX_NEW_TOKENS, onnx_tokens, parity_report, probe_ids, torch_greedy
from tuningtax.export.quantize import INT8_SCHEME, quantize_int8
from tuningtax.models.families import get_family, pad_token_id, stop_token_ids
from tuningtax.models.sources import log, publish_dir, resolve_source
from tuningtax.models.spec import ModelSpec
from tuningtax.models.variants import VARIANTS


@contextlib.contextmanager
def _without_false_mistral_warning():
    """optimum loads the checkpoint's tokenizer itself, without the fix_mistral_regex=False that
    generate.engine.load_tokenizer passes; drop that one false-positive warning (docs/design.md,
    "Tokenizer loading") while it runs, and nothing else."""
    import logging

    class DropIt(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "with an incorrect regex pattern" not in record.getMessage()

    logger, drop = logging.getLogger("transformers.tokenization_utils_base"), DropIt()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _load_tokenizer(folder: Path) -> Any:
    from tuningtax.generate.engine import load_tokenizer

    return load_tokenizer(folder)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def _header(spec: ModelSpec, variant: str, stop_ids: list[int], edits: list[str]) -> dict[str, Any]:
    return {"model": spec.to_dict(), "variant": variant, "max_new_tokens": MAX_NEW_TOKENS, "stop_ids": stop_ids,
            "graph_edits": edits}



def _build_fp32(spec: ModelSpec, tmp: Path, threads: int, last_logits: bool, grouped_kv: bool,
                source_dir: Path | None) -> dict[str, Any]:
    with unpacked(source_dir or resolve_source(spec)) as hf_dir:
        return _export_fp32(spec, hf_dir, tmp, threads, last_logits, grouped_kv)


def _export_fp32(spec: ModelSpec, hf_dir: Path, tmp: Path, threads: int, last_logits: bool,
                 grouped_kv: bool) -> dict[str, Any]:
    from optimum.exporters.onnx import main_export

    log(f"exporting {spec.name} from {hf_dir} to ONNX fp32 (about a minute for 0.5B parameters)")
    # optimum's own validation compares random inputs at 1e-5; the greedy parity below is the stronger gate.
    start = time.perf_counter()
    with warnings.catch_warnings(), _without_false_mistral_warning():
        # The tracer's "might not generalize" warnings and aten::index's "negative indices" note fire on every
        # decoder export; whether the graph is right is decided by the greedy parity gate below, not by them.
        warnings.filterwarnings("ignore", message="Converting a tensor to a Python boolean")
        warnings.filterwarnings("ignore", message="Exporting aten::index operator of advanced indexing")
        warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX export")
        main_export(os.fspath(hf_dir), output=tmp, task="text-generation-with-past", do_validation=False)
    gc.collect()
    log(f"exported in {time.perf_counter() - start:.0f} s")
    single_external_data(tmp / ONNX_GRAPH)
    edits = []
    if last_logits:
        slice_last_position(tmp / ONNX_GRAPH)
        edits.append("last_position_logits")
    if grouped_kv:
        config = json.loads((tmp / "config.json").read_text(encoding="utf-8"))
        heads = config.get("num_attention_heads", 0)
        if group_kv_attention(tmp / ONNX_GRAPH, heads, config.get("num_key_value_heads", heads)):
            edits.append("grouped_kv_attention")
    tokenizer = _load_tokenizer(tmp)
    family = get_family(spec.family)
    stop_ids = stop_token_ids(family, tokenizer)
    pad_id = pad_token_id(tokenizer, stop_ids)
    rows = probe_ids(family, tokenizer)
    log(f"parity check: PyTorch vs ONNX Runtime greedy, {len(rows)} probes x {MAX_NEW_TOKENS} tokens")
    start = time.perf_counter()
    reference = torch_greedy(hf_dir, rows, MAX_NEW_TOKENS, stop_ids, pad_id)
    log(f"PyTorch reference in {time.perf_counter() - start:.0f} s")
    start = time.perf_counter()
    single, batched = onnx_tokens(tmp, rows, stop_ids, pad_id, threads)
    log(f"ONNX Runtime tokens in {time.perf_counter() - start:.0f} s")
    report = {**_header(spec, "fp32", stop_ids, edits), "reference_engine": "transformers generate, greedy, batch 1",
              **parity_report(rows, reference, single, batched)}
    report["gated"] = True
    report["passed"] = report["prompts_identical"] == 1.0
    if not report["passed"]:
        bad = [i for i, p in enumerate(report["probes"]) if not p["identical"]]
        raise UserError(
            f"ONNX export of {spec.name} failed parity: greedy tokens differ from PyTorch on probe(s) {bad} "
            f"(token agreement {report['token_agreement']:.3f}); no output was written"
        )
    return report



def _build_int8(spec: ModelSpec, tmp: Path, fp32_dir: Path, threads: int) -> dict[str, Any]:
    fp32_parity = fp32_dir / "parity.json"
    if not (fp32_dir / ONNX_GRAPH).exists() or not fp32_parity.exists():
        raise UserError(f"int8 is built from the fp32 export, not found at {fp32_dir}; "
                        f"run `python -m tuningtax export --model {spec.name} --variant fp32` first")
    ref = json.loads(fp32_parity.read_text(encoding="utf-8"))
    if not ref.get("passed"):
        raise UserError(f"{fp32_parity}: the fp32 export did not pass parity; re-export fp32")
    log(f"quantizing {fp32_dir} to int8 ({INT8_SCHEME['op']}, blocks of {INT8_SCHEME['block_size']})")
    quantize_int8(fp32_dir / ONNX_GRAPH, tmp / ONNX_GRAPH)
    single_external_data(tmp / ONNX_GRAPH)
    shutil.copy2(fp32_dir / ASSETS, tmp / ASSETS)  # config, generation config and tokenizer travel with the graph
    tokenizer = _load_tokenizer(tmp)
    stop_ids = stop_token_ids(get_family(spec.family), tokenizer)
    rows = probe_ids(get_family(spec.family), tokenizer)
    if rows != [p["prompt_ids"] for p in ref["probes"]]:
        raise UserError(f"{fp32_parity}: its probes do not match this version's probe set; re-export fp32")
    reference = [p["reference"] for p in ref["probes"]]
    single, batched = onnx_tokens(tmp, rows, stop_ids, pad_token_id(tokenizer, stop_ids), threads)
    report = {**_header(spec, "int8", stop_ids, ref.get("graph_edits", [])), "quantization": INT8_SCHEME,
              "reference_engine": "transformers generate, greedy, batch 1 (tokens recorded in fp32 parity.json)",
              **parity_report(rows, reference, single, batched)}
    report["gated"] = False  # int8 is reported, not gated: it is its own named variant
    report["passed"] = None
    return report


def export(spec: ModelSpec, variant: str, out_dir: Path, threads: int = 1, fp32_dir: Path | None = None,
           force: bool = False, last_logits: bool = False, grouped_kv: bool = True,
           source_dir: Path | None = None) -> dict[str, Any]:
    """Export ``spec`` as ``variant`` into ``out_dir`` (created atomically); returns the parity report.

    ``last_logits`` (fp32 only; int8 inherits it from its fp32 source) applies ``slice_last_position``
    before the parity check; ``grouped_kv`` (fp32, likewise inherited) applies ``group_kv_attention`` where the
    graph repeats KV heads. Both edits are listed in parity.json's ``graph_edits``. ``source_dir``: read the
    checkpoint from there instead of the spec's source (a rule passes its declared input)."""
    if variant not in VARIANTS:
        raise UserError(f"variant {variant!r} is unknown; expected one of {', '.join(VARIANTS)}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise UserError(f"{out_dir} already exists; delete it or pass --force to rebuild it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.tmp-"))
    try:
        if variant == "fp32":
            report = _build_fp32(spec, tmp, threads, last_logits, grouped_kv, source_dir)
        else:
            if last_logits or not grouped_kv:
                raise UserError(f"{'--last-logits' if last_logits else '--no-grouped-kv'} applies to fp32 exports; "
                                "int8 inherits the graph of its fp32 source")
            report = _build_int8(spec, tmp, Path(fp32_dir) if fp32_dir else out_dir.parent / "fp32", threads)
        _write_json(tmp / "parity.json", report)
        if variant == "fp32":
            pack_assets(tmp, keep=ONNX_FILES)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        publish_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"wrote {out_dir} (prompts identical {report['prompts_identical']:.3f}, "
        f"token agreement {report['token_agreement']:.3f})")
    return report
