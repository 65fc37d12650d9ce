"""Models: what a model is (spec, variants), how its family is prompted (families) and where its weights come
from (sources; offline_qwen for the default checkpoint). Export to ONNX is tuningtax.export; the decoding
engine is tuningtax.generate.engine.

Submodules are imported explicitly: torch, transformers and onnxruntime load only where needed."""
