"""Evaluation of trained or official TIPSv2 checkpoints on generated shards (glue over `training.tipsv2.zeroshot`)."""
