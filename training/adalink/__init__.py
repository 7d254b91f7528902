"""AdaLink adapters: per-task, per-modality input-side adapters on a frozen TIPSv2.

- `format`: the adapter file (safetensors + metadata) and its validator; torch-free, shared with the gateway.
- `module`: the adapter, x + up(act(down(x))), `up` zero at initialisation; `adapted`: a frozen base with adapters
  where serving applies them; `checksum`: the proof that training leaves the base untouched.
- `tasks` (task files), `task_data`, `prompts`, `classification_loss`, `train`, `evaluate`: training on a task.
- `lora`, `tuners`, `compare`: the LoRA and full fine-tuning baselines and the comparison of
  docs/experiments/adalink.md; `adapt`: `tipsv2 adapt`.
"""
