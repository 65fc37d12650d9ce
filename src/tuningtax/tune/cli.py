"""``python -m tuningtax tune``: one arm of the tuning lab, from the start checkpoint to its last save step.

Writes OUT/step-N/ (a merged Hugging Face checkpoint with its tokenizer and a tuning.json card) for every
save step, OUT/train_log.jsonl (loss per step) and OUT/examples.jsonl (each training example, then every
problem refused for overlapping an evaluation task or for its length). Throughput goes to the log only, so
the tracked files are the same on every run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from tuningtax.errors import UserError
from tuningtax.jsonl import write_jsonl


def log(msg: str) -> None:
    print(f"[tune] {msg}", file=sys.stderr, flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tuningtax.models.cli import add_spec_arguments, default_threads

    add_spec_arguments(parser)
    parser.add_argument("--arm", required=True, help="arm name (a key of tuning.arms)")
    parser.add_argument("--tuning-json", required=True, help="params.yaml's tuning section as JSON")
    parser.add_argument("--source-file", required=True, type=Path,
                        help="fetch-model's record of the start's HF folder (data/03_models/NAME.source.txt)")
    parser.add_argument("--train-tasks", required=True, type=Path, help="the training problems (a task JSONL)")
    parser.add_argument("--eval-tasks", nargs="*", type=Path, default=[],
                        help="every task the tuned checkpoints are evaluated on: overlapping problems are refused")
    parser.add_argument("--out-dir", required=True, type=Path)
    parser.add_argument("--state-dir", type=Path,
                        help="resume state (default: the cache, keyed by everything that decides the weights)")
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where training runs (the rule passes generation.provider)")


def _files_digest(folder: Path) -> str:
    """sha256 over the start checkpoint's config and weight files (names and contents)."""
    from tuningtax.models.sources import sha256_file

    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file() and (path.suffix in (".safetensors", ".bin") or path.name == "config.json"):
            digest.update(f"{path.name}\0{sha256_file(path)}\0".encode())
    return digest.hexdigest()


def run(args: argparse.Namespace) -> int:
    from tuningtax.models.cli import load_spec
    from tuningtax.models.families import get_family
    from tuningtax.models.sources import cache_root
    from tuningtax.tasks.schema import read_tasks
    from tuningtax.tune.data import build_examples, refuse_overlaps
    from tuningtax.tune.train import TrainSettings, save_checkpoint, train

    try:
        tuning = json.loads(args.tuning_json)
    except json.JSONDecodeError as err:
        raise UserError(f"--tuning-json is not valid JSON: {err}") from None
    if args.arm not in tuning.get("arms", {}):
        raise UserError(f"--arm {args.arm!r} is not a key of tuning.arms ({', '.join(tuning.get('arms', {}))})")
    spec = load_spec(args.model, args.params, args.spec_json)
    model_dir = Path(args.source_file.read_text().strip())
    if not (model_dir / "config.json").is_file():
        raise UserError(f"{args.source_file}: names {model_dir}, which holds no HF checkpoint (config.json); "
                        "rerun fetch-model for the start model")
    fim_share = tuning["arms"][args.arm]["fim_share"]
    settings = TrainSettings.from_tuning(tuning)

    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, fix_mistral_regex=False)  # see generate.engine.load_tokenizer
    family = get_family(spec.family)
    evaluation = [t for path in args.eval_tasks for t in read_tasks(path).values()]
    train_tasks, refused = refuse_overlaps(list(read_tasks(args.train_tasks).values()), evaluation)
    log(f"{len(train_tasks)} training problems; {len(refused)} refused for overlapping the {len(evaluation)} "
        "evaluation tasks")
    examples, too_long = build_examples(train_tasks, tokenizer, family, fim_share=fim_share, seed=settings.seed,
                                        max_seq_len=tuning["max_seq_len"], n_examples=tuning["n_examples"])
    log(f"{len(examples)} examples ({sum(e.kind == 'fim' for e in examples)} FIM), {len(too_long)} problems "
        f"longer than max_seq_len {tuning['max_seq_len']} left out")
    manifest = [{"arm": args.arm, **e.record()} for e in examples]
    manifest += [{"arm": args.arm, "source_id": s, "refused": why} for s, why in {**refused, **too_long}.items()]

    from tuningtax.codeversion import code_version

    # Everything that decides the weights keys the resume state, the training code included: a finished state
    # is reused only by the same code on the same inputs.
    key_material = json.dumps({"settings": settings.__dict__, "fim_share": fim_share, "start": _files_digest(model_dir),
                               "examples": [e.record() for e in examples], "code": code_version("tune"),
                               "device": args.device}, sort_keys=True, default=list)
    state_dir = args.state_dir or cache_root() / "tune" / hashlib.sha256(key_material.encode()).hexdigest()[:16]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model, records, speed = train(model_dir, examples, settings, state_dir, pad_id, log=log, device=args.device)
    log(f"throughput: {json.dumps(speed)}")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    for step in settings.save_steps:
        card = {"arm": args.arm, "step": step, "start": spec.name, "fim_share": fim_share,
                "settings": settings.__dict__, "n_examples": len(examples),
                "loss": next(r["loss"] for r in records if r["step"] == step)}
        save_checkpoint(model, state_dir / f"step-{step}.safetensors", model_dir, args.out_dir / f"step-{step}",
                        json.loads(json.dumps(card, default=list)))
        log(f"saved step {step} to {args.out_dir / f'step-{step}'}")
    write_jsonl(args.out_dir / "train_log.jsonl", [{"arm": args.arm, **r} for r in records])
    write_jsonl(args.out_dir / "examples.jsonl", manifest)
    return 0
