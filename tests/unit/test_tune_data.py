"""The tuning lab's training data: the overlap check, the chat and FIM examples, and the loss mask."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tuningtax.models.families import get_family
from tuningtax.prompts import render
from tuningtax.tasks.schema import Task
from tuningtax.tune.data import build_examples, chat_example, fim_example, normalized_code, overlaps, refuse_overlaps
from tuningtax.tune.plan import tuned_models
from tuningtax.tune.train import IGNORE, batch_indices, collate

QWEN = get_family("qwen2.5-coder")


def mbpp(n: int, code: str) -> Task:
    return Task(task_id=f"Mbpp/{n}", benchmark="mbppplus-command", mode="command",
                prompt=f'"""\nWrite function number {n}.\n"""\n', suffix="", canonical_solution=code, test="",
                entry_point=f"f{n}", instruction=f"Write function number {n}.", source_id=f"Mbpp/{n}")


EVAL = Task(task_id="HumanEval/3/L1", benchmark="humaneval-single-line", mode="flow",
            prompt="def below_zero(operations):\n    balance = 0\n", suffix="    return balance\n",
            canonical_solution="    for op in operations:\n        balance += op\n", test="", entry_point="below_zero",
            instruction="", source_id="HumanEval/3")


def test_normalised_code_ignores_names_layout_and_comments_only():
    a = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
    renamed = "def g(items):   # sum\n  acc = 0\n  for it in items:\n      acc += it\n  return acc\n"
    assert normalized_code(a) == normalized_code(renamed)
    assert normalized_code(a) != normalized_code(a.replace("+=", "-="))
    assert normalized_code(a) != normalized_code(a.replace("0", "1"))


def test_a_planted_overlap_is_refused_and_the_rest_kept():
    program = EVAL.prompt + EVAL.canonical_solution + EVAL.suffix
    same_code = mbpp(1, program.replace("balance", "b").replace("operations", "ops").replace("    ", "  "))
    same_problem = replace(mbpp(2, "def f2():\n    return 2\n"), source_id="HumanEval/3")
    clean = mbpp(3, "def f3(a, b):\n    return a * b\n")
    kept, refused = refuse_overlaps([same_code, same_problem, clean], [EVAL])
    assert [t.source_id for t in kept] == ["Mbpp/3"]
    assert refused == {"Mbpp/1": "same code (names and whitespace normalised) as evaluation task HumanEval/3/L1",
                       "HumanEval/3": "same problem as evaluation task HumanEval/3/L1"}
    assert overlaps([clean], [EVAL]) == {}


def test_chat_example_is_the_command_prompt_plus_the_closed_assistant_turn(qwen_tokenizer):
    task = mbpp(5, "def f5(x):\n    return x + 1\n")
    example = chat_example(task, qwen_tokenizer, QWEN, 512)
    command_prompt = render("command-chat", task, qwen_tokenizer, QWEN, 512, role="instruct")
    assert list(example.prompt_ids) == command_prompt.input_ids
    text = qwen_tokenizer.decode(list(example.response_ids))
    assert text == "```python\ndef f5(x):\n    return x + 1\n```<|im_end|>\n"


def test_fim_example_cuts_one_solution_line_and_ends_with_the_family_end_token(qwen_tokenizer):
    task = mbpp(6, "def f6(x):\n    y = x * 2\n    return y\n")
    example = fim_example(task, qwen_tokenizer, QWEN, 512, seed=0)
    prompt = qwen_tokenizer.decode(list(example.prompt_ids))
    middle = qwen_tokenizer.decode(list(example.response_ids))
    assert prompt.startswith("<|fim_prefix|>") and prompt.endswith("<|fim_middle|>")
    assert middle.endswith("<|endoftext|>")
    hole = middle.removesuffix("<|endoftext|>")
    assert hole in task.canonical_solution.splitlines(keepends=True)
    assert hole not in prompt.split("<|fim_suffix|>")[1] or task.canonical_solution.count(hole) > 1


def test_arms_train_on_the_same_problems_in_the_same_order(qwen_tokenizer):
    tasks = [mbpp(n, f"def f{n}(x):\n    y = x + {n}\n    return y\n") for n in range(12)]
    common = dict(seed=0, max_seq_len=512, n_examples=8)
    chat, _ = build_examples(tasks, qwen_tokenizer, QWEN, fim_share=0.0, **common)
    mixed, _ = build_examples(tasks, qwen_tokenizer, QWEN, fim_share=0.5, **common)
    assert [e.source_id for e in chat] == [e.source_id for e in mixed] and len(chat) == 8
    assert {e.kind for e in chat} == {"chat"}
    assert 0 < sum(e.kind == "fim" for e in mixed) < 8
    short, too_long = build_examples(tasks, qwen_tokenizer, QWEN, fim_share=0.0, seed=0, max_seq_len=60,
                                     n_examples=0)
    assert len(short) + len(too_long) == 12 and too_long
    assert all(len(e.prompt_ids) + len(e.response_ids) <= 60 for e in short)


def test_collate_masks_prompt_and_padding(qwen_tokenizer):
    tasks = [mbpp(1, "def f1():\n    return 1\n"), mbpp(2, "def f2(a, b, c):\n    return a + b + c\n")]
    examples, _ = build_examples(tasks, qwen_tokenizer, QWEN, fim_share=0.0, seed=0, max_seq_len=512, n_examples=0)
    ids, mask, labels = collate(examples, pad_id=151643)
    for row, e in enumerate(examples):
        n_p, n = len(e.prompt_ids), len(e.prompt_ids) + len(e.response_ids)
        assert (labels[row, :n_p] == IGNORE).all() and (labels[row, n:] == IGNORE).all()
        assert labels[row, n_p:n].tolist() == list(e.response_ids)
        assert mask[row].sum() == n


def test_batches_walk_seeded_epochs():
    first_epoch = [i for step in range(1, 4) for i in batch_indices(step, 12, 4, seed=0)]
    assert sorted(first_epoch) == list(range(12))
    assert first_epoch != [i for step in range(1, 4) for i in batch_indices(step, 12, 4, seed=1)]
    assert batch_indices(4, 12, 4, seed=0) != batch_indices(1, 12, 4, seed=0)


def test_tuned_checkpoints_are_models_with_their_step(repo_root):
    import yaml

    from tuningtax.config import validate_params

    config = validate_params(yaml.safe_load((repo_root / "params.yaml").read_text()))
    models = tuned_models(config)
    steps = sorted(config["tuning"]["save_steps"])
    assert len(models) == len(config["tuning"]["arms"]) * len(steps)
    for arm in config["tuning"]["arms"]:
        for step in steps:
            entry = models[f"{arm}-step{step}"]
            assert entry["role"] == "checkpoint" and entry["step"] == step
            assert entry["source"] == f"./data/03_checkpoints/{arm}/step-{step}"


def test_a_tuning_start_that_is_not_a_model_is_refused(repo_root):
    import yaml

    from tuningtax.config import validate_params
    from tuningtax.errors import UserError

    config = yaml.safe_load((repo_root / "params.yaml").read_text())
    config["tuning"]["start"] = "nope"
    config["tuning"]["evaluate"]["flow"]["benchmark"] = "humanevalplus-command"
    with pytest.raises(UserError) as err:
        validate_params(config)
    assert "field tuning.start: 'nope' is not a key of models" in str(err.value)
    assert "field tuning.evaluate.flow.benchmark: humanevalplus-command is a command benchmark" in str(err.value)


@pytest.fixture(scope="module")
def qwen_tokenizer(qwen_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(qwen_tokenizer_dir, fix_mistral_regex=False)


def test_prompt_tokens_carry_no_loss(qwen_tokenizer, tiny_qwen_dir):
    """The training loss is the mean cross-entropy over response tokens only: it equals that mean computed by
    hand, differs from the mean over every token, and its gradient at prompt-position logits is zero."""
    import torch
    from transformers import AutoModelForCausalLM

    tasks = [mbpp(1, "def f1():\n    return 1\n"), mbpp(2, "def f2(a, b, c):\n    return a + b + c\n")]
    examples, _ = build_examples(tasks, qwen_tokenizer, QWEN, fim_share=0.0, seed=0, max_seq_len=512, n_examples=0)
    ids, mask, labels = collate(examples, pad_id=151643)
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen_dir, dtype=torch.float32)
    out = model(input_ids=ids, attention_mask=mask)
    logits = out.logits.detach().requires_grad_(True)
    per_token = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")
    response = labels[:, 1:] != IGNORE
    by_hand = per_token[response].mean()
    loss = model.loss_function(logits, labels, vocab_size=model.config.vocab_size)
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert abs(loss.item() - per_token[mask[:, 1:].bool()].mean().item()) > 1e-3
    loss.backward()
    for row, e in enumerate(examples):
        # logits at position t predict token t+1: the prompt's predictions are positions < len(prompt) - 1
        assert logits.grad[row, :len(e.prompt_ids) - 1].abs().max() == 0
        assert logits.grad[row, len(e.prompt_ids) - 1:len(e.prompt_ids) + len(e.response_ids) - 1].abs().max() > 0


def test_cuda_training_refuses_a_machine_without_cuda(monkeypatch):
    import torch

    from tuningtax.errors import UserError
    from tuningtax.tune.train import select_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="PyTorch sees no CUDA device"):
        select_device("cuda")
    assert select_device("cpu") == "cpu"


def test_a_fim_share_for_a_family_without_fim_is_refused(qwen_tokenizer):
    from tuningtax.errors import UserError

    with pytest.raises(UserError, match="has no FIM template"):
        build_examples([mbpp(1, "def f1():\n    return 1\n")], qwen_tokenizer, get_family("generic"),
                       fim_share=0.5, seed=0, max_seq_len=512, n_examples=0)
