"""The int8 variant: an fp32 export's MatMul weights quantized to 8 bits in blocks (``INT8_SCHEME``)."""

from __future__ import annotations

import os
from pathlib import Path

from tuningtax.generate.engine import check_external_data
from tuningtax.jsonl import default_file_mode

# int8 = MatMulNBits with 8-bit weights, one scale and zero point per block of 128 input channels, and
# accuracy_level 4: activations are quantized to int8 dynamically at run time, per block, and multiplied with
# integer kernels. Per-tensor ``quantize_dynamic`` was tried first: one activation scale per tensor cannot
# hold Qwen2.5's outlier channels, and greedy tokens left fp32's within the first few positions (0/3 probes
# identical, 24 % token agreement; docs/speed.md). accuracy_level 0/1 (fp32 compute) decoded at 1 tok/s.
INT8_SCHEME = {"op": "MatMulNBits", "bits": 8, "block_size": 128, "is_symmetric": False, "accuracy_level": 4,
               "op_types": ["MatMul"]}


def quantize_int8(source: Path, target: Path) -> None:
    """Write ``target`` (graph + one external data file) with ``source``'s MatMul weights as ``INT8_SCHEME``."""
    import onnx
    from onnxruntime.quantization import QuantFormat
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    check_external_data(source.parent, hard_links_allowed=False)
    config = DefaultWeightOnlyQuantConfig(
        block_size=INT8_SCHEME["block_size"], is_symmetric=INT8_SCHEME["is_symmetric"],
        accuracy_level=INT8_SCHEME["accuracy_level"], bits=INT8_SCHEME["bits"], quant_format=QuantFormat.QOperator,
        op_types_to_quantize=tuple(INT8_SCHEME["op_types"]))
    quantizer = MatMulNBitsQuantizer(onnx.load(os.fspath(source)), algo_config=config)
    quantizer.process()
    quantizer.model.save_model_to_file(os.fspath(target), use_external_data_format=True)
    for item in target.parent.iterdir():  # onnx writes the data file 0600, like mkstemp
        item.chmod(default_file_mode())

