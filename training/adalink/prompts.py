"""Label embeddings from prompts, differentiable: the zero-shot head whose text side a text adapter trains.

Same arithmetic as the model library's `zeroshot.label_text_embeddings` (the official protocol: every template
filled with every label, each embedding L2-normalised, averaged per label, normalised again), but with gradients,
and with the padding columns that no prompt reaches cut off (padded keys are masked and left out of the pooled
mean, so the embeddings do not depend on them; the tests hold the two functions equal).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from training.tipsv2.model import ZeroShotModel
from training.tipsv2.tokenizer import Tokenizer


class PromptBank:
    """The tokenised prompts of a label set: (C * T, L) ids, label-major."""

    def __init__(self, tokenizer: Tokenizer, labels: Sequence[str], templates: Sequence[str]) -> None:
        if not labels or not templates:
            raise ValueError("need at least one label and one template")
        self.num_labels, self.num_templates = len(labels), len(templates)
        ids, lengths = tokenizer([template.format(label) for label in labels for template in templates])
        self.ids = torch.from_numpy(ids[:, : max(int(lengths.max()), 1)].astype(np.int64))

    def embeddings(self, model: ZeroShotModel) -> torch.Tensor:
        """(C, D) unit label embeddings through `model.encode_text` (with gradients where it has trainables)."""
        device = next(model.parameters()).device
        per_prompt = F.normalize(model.encode_text(self.ids.to(device)), dim=-1)
        per_label = per_prompt.reshape(self.num_labels, self.num_templates, -1).mean(dim=1)
        return F.normalize(per_label, dim=-1)
