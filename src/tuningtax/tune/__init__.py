"""The tuning lab: supervised fine-tuning of one configured checkpoint into a trajectory of checkpoints.

plan.py names the checkpoints a params.yaml yields (no heavy imports: Snakemake and the params schema read
it); data.py builds the training examples and refuses any that overlap an evaluation task; train.py is the
training loop (LoRA through peft or full fine-tuning, deterministic on the CPU, resumable); cli.py is
``python -m tuningtax tune``.
"""
