"""The TIPSv2 training harness: config, loop, schedules, EMA teachers, checkpoints, distributed (torchrun).

Reusable pieces for other trainers (e.g. AdaLink adapters): `config` (YAML defaults + overrides), `distributed`
(torchrun set-up, gather-with-grad), `schedules`, `optim`, `checkpointing` (RNG capture, atomic folders),
`metrics` (JSONL + progress bar).
"""
