"""``python -m tuningtax bench tune``: tokens/s of the tuning lab's training loop, LoRA and full fine-tuning
side by side in one run, on the study's real inputs (params.yaml's tuning section, its MBPP+ examples and
start checkpoint). Training state goes to a temporary folder; nothing DVC tracks is written.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path


def peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuningtax bench tune", description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--steps", type=int, default=4, help="training steps timed per method (after one warm-up)")
    parser.add_argument("--methods", nargs="+", default=["lora", "full"], choices=["lora", "full"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fim-share", type=float, default=0.5)
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoTokenizer

    from tuningtax.config import load_params
    from tuningtax.models.families import get_family
    from tuningtax.tasks.evalplus import mbpp_command_tasks
    from tuningtax.tune.data import build_examples
    from tuningtax.tune.train import TrainSettings, train

    params = load_params(args.params)
    tuning = params["tuning"]
    source = Path("data/03_models") / f"{tuning['start']}.source.txt"
    if not source.exists():
        print(f"{source} is missing: run `make trajectory` (or the start model's export stage) first", file=sys.stderr)
        return 2
    model_dir = Path(source.read_text().strip())
    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, fix_mistral_regex=False)
    family = get_family(params["models"][tuning["start"]]["family"])
    examples, _ = build_examples(mbpp_command_tasks(params["benchmark_mirror"]), tokenizer, family,
                                 fim_share=args.fim_share, seed=tuning["seed"], max_seq_len=tuning["max_seq_len"],
                                 n_examples=tuning["n_examples"])
    base = TrainSettings.from_tuning(tuning)
    results = []
    for method in args.methods:
        # One warm-up step, then the timed ones: train() reports throughput over the steps it ran.
        with tempfile.TemporaryDirectory() as state:
            warm = replace(base, method=method, save_steps=(1,))
            train(model_dir, examples, warm, Path(state), tokenizer.pad_token_id, log=lambda m: None)
            timed = replace(base, method=method, save_steps=(1 + args.steps,))
            started = time.perf_counter()
            _, _, speed = train(model_dir, examples, timed, Path(state), tokenizer.pad_token_id,
                                log=lambda m: print(f"  [{method}] {m}", file=sys.stderr))
            wall = time.perf_counter() - started
        results.append({"method": method, "threads": args.threads, "steps": speed["steps_run"],
                        "tokens_per_s": speed["tokens_per_s"],
                        "response_tokens_per_s": speed["response_tokens_per_s"],
                        "s_per_step": round(speed["seconds"] / speed["steps_run"], 2),
                        "wall_s_with_load": round(wall, 1),
                        "process_peak_rss_gb_so_far": round(peak_rss_kb() / 2**20, 2)})
    for r in results:
        print(json.dumps(r))
    if len(results) == 2:
        print(json.dumps({"ratio_tokens_per_s": f"{results[0]['method']}/{results[1]['method']}",
                          "value": round(results[0]["tokens_per_s"] / results[1]["tokens_per_s"], 2)}))
    return 0
