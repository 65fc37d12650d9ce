"""The training loop: supervised fine-tuning with the loss on response tokens only, LoRA (peft) or full.

Deterministic on the CPU for a fixed seed and thread count: the LoRA initialisation is drawn after
``torch.manual_seed(seed)``, batches come from seeded permutations, dropout is off and PyTorch runs in
deterministic-algorithms mode. At every save step the trainable weights of that step and the optimiser and
scheduler state are written to a state folder outside the outputs (atomically), so a killed run resumes from
its last save step and ends with the same weights as an uninterrupted one. The merged Hugging Face
checkpoints are written from those saved weights once the last step is done.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from tuningtax.errors import UserError
from tuningtax.tune.data import Example

IGNORE = -100  # label of positions that carry no loss (prompt, padding)
LATEST = "latest.pt"


@dataclass(frozen=True)
class TrainSettings:
    method: str  # lora | full
    lora_rank: int
    lora_alpha: float
    lora_targets: tuple[str, ...]
    learning_rate: float
    warmup_steps: int
    batch_size: int
    save_steps: tuple[int, ...]
    seed: int

    @classmethod
    def from_tuning(cls, tuning: dict) -> "TrainSettings":
        lora = tuning["lora"]
        return cls(tuning["method"], lora["rank"], float(lora["alpha"]), tuple(lora["target_modules"]),
                   float(tuning["learning_rate"]), tuning["warmup_steps"], tuning["batch_size"],
                   tuple(sorted(tuning["save_steps"])), tuning["seed"])

    @property
    def total_steps(self) -> int:
        return self.save_steps[-1]


def batch_indices(step: int, n_examples: int, batch_size: int, seed: int) -> list[int]:
    """Example indices of 1-based `step`: a stream of seeded per-epoch permutations, cut into batches."""
    start = (step - 1) * batch_size
    out = []
    for position in range(start, start + batch_size):
        epoch, offset = divmod(position, n_examples)
        out.append(int(np.random.default_rng([seed, epoch]).permutation(n_examples)[offset]))
    return out


def collate(batch: Sequence[Example], pad_id: int):
    """Right-padded input ids, attention mask and labels (IGNORE on prompt and padding positions)."""
    import torch

    width = max(len(e.prompt_ids) + len(e.response_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    for row, e in enumerate(batch):
        seq = list(e.prompt_ids) + list(e.response_ids)
        ids[row, :len(seq)] = torch.tensor(seq)
        mask[row, :len(seq)] = 1
        labels[row, len(e.prompt_ids):len(seq)] = torch.tensor(e.response_ids)
    return ids, mask, labels


def load_model(model_dir: Path, settings: TrainSettings, device: str = "cpu"):
    """The start checkpoint in float32, with LoRA adapters (seeded initialisation) unless method is full."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(settings.seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device)
    model.config.use_cache = False
    if settings.method == "lora":
        from peft import LoraConfig, get_peft_model

        names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
        missing = [t for t in settings.lora_targets if t not in names]
        if missing:
            raise UserError(f"tuning.lora.target_modules: {', '.join(missing)} name no module of {model_dir}; "
                            f"linear layers there include {', '.join(sorted(n for n in names if 'proj' in n)[:12])}")
        config = LoraConfig(r=settings.lora_rank, lora_alpha=settings.lora_alpha, lora_dropout=0.0, bias="none",
                            target_modules=list(settings.lora_targets), task_type="CAUSAL_LM")
        model = get_peft_model(model, config)
    model.train()
    return model


def trainable_state(model) -> dict:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _save_atomic(obj: Any, path: Path) -> None:
    import torch

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _lr_factor(warmup: int) -> Callable[[int], float]:
    return lambda s: min(1.0, (s + 1) / (warmup + 1)) if warmup else 1.0


def select_device(name: str) -> str:
    """cpu, or cuda where PyTorch really sees a CUDA device (never a silent fall-back to the CPU)."""
    if name == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError("training on cuda was asked for (generation.provider: cuda), but PyTorch sees no CUDA "
                            "device; install a CUDA build of torch or set generation.provider: cpu")
        # cuBLAS is deterministic only with a fixed workspace (PyTorch's reproducibility notes)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return name


def train(model_dir: Path, examples: list[Example], settings: TrainSettings, state_dir: Path, pad_id: int,
          log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True), device: str = "cpu"):
    """Train to the last save step, resuming from state_dir when it holds a saved step. Returns the model
    (at the last step), the per-step loss records and the throughput figures of the steps run here."""
    import torch

    device = select_device(device)
    torch.use_deterministic_algorithms(True)
    model = load_model(model_dir, settings, device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(settings.warmup_steps))
    state_dir.mkdir(parents=True, exist_ok=True)
    done, records = 0, []
    if (state_dir / LATEST).exists():
        state = torch.load(state_dir / LATEST, weights_only=True, map_location=device)
        load_trainable(model, state["trainable"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        done, records = state["step"], state["records"]
        log(f"resuming from step {done} (state in {state_dir})")
    n_params = sum(p.numel() for p in params)
    log(f"training {settings.method}: {n_params:,} trainable parameters, {len(examples)} examples, "
        f"steps {done + 1}..{settings.total_steps}, saves at {list(settings.save_steps)}")
    seen_tokens, trained_tokens, started = 0, 0, time.perf_counter()
    for step in range(done + 1, settings.total_steps + 1):
        batch = [examples[i] for i in batch_indices(step, len(examples), settings.batch_size, settings.seed)]
        ids, mask, labels = (t.to(device) for t in collate(batch, pad_id))
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        n_response = int((labels != IGNORE).sum())
        value = loss.item()
        records.append({"step": step, "loss": round(value, 6), "response_tokens": n_response,
                        "tokens": int(mask.sum()), "fim_examples": sum(e.kind == "fim" for e in batch),
                        "learning_rate": float(optimizer.param_groups[0]["lr"])})
        seen_tokens += int(mask.sum())
        trained_tokens += n_response
        elapsed = time.perf_counter() - started
        log(f"step {step}/{settings.total_steps} loss {value:.4f} ({seen_tokens / elapsed:.1f} tokens/s)")
        if step in settings.save_steps:
            from safetensors.torch import save_file

            save_file(trainable_state(model), state_dir / f"step-{step}.safetensors")
            _save_atomic({"step": step, "trainable": trainable_state(model), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict(), "records": records}, state_dir / LATEST)
    elapsed = time.perf_counter() - started
    speed = {"steps_run": settings.total_steps - done, "seconds": round(elapsed, 2), "tokens": seen_tokens,
             "tokens_per_s": round(seen_tokens / elapsed, 2) if elapsed and seen_tokens else None,
             "response_tokens_per_s": round(trained_tokens / elapsed, 2) if elapsed and trained_tokens else None}
    return model, records, speed


def load_trainable(model, weights: dict) -> None:
    import torch

    named = dict(model.named_parameters())
    unknown = sorted(set(weights) - set(named))
    if unknown:
        raise UserError(f"saved training state holds parameters this model lacks ({unknown[0]} ...); "
                        "delete the state folder to start over")
    with torch.no_grad():
        for name, value in weights.items():
            named[name].copy_(value)


def save_checkpoint(model, step_weights: Path, tokenizer_dir: Path, out: Path, card: dict) -> None:
    """The merged Hugging Face checkpoint of one save step, written to a temporary folder then renamed."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    load_trainable(model, load_file(step_weights))
    merged = copy.deepcopy(model).to("cpu")
    if hasattr(merged, "merge_and_unload"):
        merged = merged.merge_and_unload()
    merged.config.use_cache = True
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        # one weights file whatever the size (tuningtax.bundle: a checkpoint is a fixed set of named files)
        merged.save_pretrained(tmp, safe_serialization=True, max_shard_size="1000GB")
        AutoTokenizer.from_pretrained(tokenizer_dir, fix_mistral_regex=False).save_pretrained(tmp)
        (tmp / "tuning.json").write_text(json.dumps(card, indent=1, sort_keys=True) + "\n")
        from tuningtax.bundle import CHECKPOINT_FILES, pack_assets
        from tuningtax.models.sources import publish_dir

        pack_assets(tmp, keep=CHECKPOINT_FILES)

        if out.exists():
            shutil.rmtree(out)
        publish_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    del merged
