"""The trained module: the TIPSv2 towers plus what only training needs (heads, learned temperature, projector).

This is what DDP wraps. One `forward` runs every student computation of a step, so DDP sees each trainable
parameter used once per step and all-reduces the gradients of all of them together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from training.data.pretrain import Batch
from training.tipsv2.model import TIPSv2
from training.train.heads import DINOHead


@dataclass(frozen=True)
class StudentSpec:
    dino: bool = True
    ibot: bool = True
    contrastive: bool = True
    head_hidden_dim: int = 256
    head_bottleneck_dim: int = 64
    num_prototypes: int = 1024
    shared_head: bool = False  # one head for DINO and iBOT (DINOv2's default) instead of two
    dino_token: str = "cls1"  # which CLS token DINO and KoLeo see
    temperature_init: float = 0.07
    temperature_min: float = 0.002
    learn_temperature: bool = True
    freeze_text: bool = False
    distill_dim: int | None = None  # the frozen teacher's width; a linear projector is added when it differs


@dataclass
class StudentOutputs:
    cls1: torch.Tensor  # (G, B, D) backbone CLS1 of the global views
    cls2: torch.Tensor  # (G, B, D)
    patches: torch.Tensor  # (G, B, N, D) patch tokens after the final norm
    dino_logits: torch.Tensor | None  # (G + L, B, K): global views, then local crops
    ibot_logits: torch.Tensor | None  # (M, K) at the iBOT-selected tokens
    text_cls1: torch.Tensor | None  # (B, D) embeddings of the texts paired with CLS1
    text_cls2: torch.Tensor | None  # (B, D) ... with CLS2
    temperature: torch.Tensor  # scalar
    distill_patches: torch.Tensor | None  # (G, B, N, D_teacher)

    def dino_tokens(self, token: str) -> torch.Tensor:
        return self.cls1 if token == "cls1" else self.cls2


def pad_to(ids: torch.Tensor, length: int) -> torch.Tensor:
    return F.pad(ids, (0, length - ids.shape[1]))


class Student(nn.Module):
    def __init__(self, model: TIPSv2, spec: StudentSpec) -> None:
        super().__init__()
        if spec.dino_token not in ("cls1", "cls2"):
            raise ValueError(f"dino_token must be cls1 or cls2, not {spec.dino_token!r}")
        self.model, self.spec = model, spec
        D = model.cfg.embed_dim
        self.dino_head = self.make_head(D) if spec.dino else None
        self.ibot_head = (
            (self.dino_head if spec.shared_head and spec.dino else self.make_head(D)) if spec.ibot else None
        )
        self.log_temperature = nn.Parameter(
            torch.tensor(math.log(spec.temperature_init)), requires_grad=spec.learn_temperature and spec.contrastive
        )
        needs_projector = spec.distill_dim is not None and spec.distill_dim != D
        self.distill_projector = nn.Linear(D, spec.distill_dim) if needs_projector else None  # type: ignore[arg-type]
        if spec.freeze_text:
            model.text.requires_grad_(False)
        # The exported temperature is `log_temperature` (see `export_temperature`), never trained directly.
        model.temperature.requires_grad_(False)

    def make_head(self, width: int) -> DINOHead:
        return DINOHead(width, self.spec.num_prototypes, self.spec.head_hidden_dim, self.spec.head_bottleneck_dim)

    def init_heads(self, generator: torch.Generator) -> Student:
        for head in (self.dino_head, self.ibot_head):
            if head is not None:
                head.init_weights(generator)
        return self

    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp().clamp(min=self.spec.temperature_min)

    @torch.no_grad()
    def export_temperature(self) -> TIPSv2:
        """Copies the learned temperature into the model's official `temperature`; returns the model."""
        self.model.temperature.fill_(float(self.temperature()))
        return self.model

    def forward(self, batch: Batch, ibot_index: torch.Tensor | None = None) -> StudentOutputs:
        visual = self.model.visual
        G, B = batch.global_views.shape[:2]
        feats = visual(batch.global_views.flatten(0, 1), batch.masks.flatten(0, 1))
        D = feats.cls1.shape[-1]
        out = StudentOutputs(
            cls1=feats.cls1.reshape(G, B, D),
            cls2=feats.cls2.reshape(G, B, D),
            patches=feats.patch_tokens.reshape(G, B, -1, D),
            dino_logits=None,
            ibot_logits=None,
            text_cls1=None,
            text_cls2=None,
            temperature=self.temperature(),
            distill_patches=None,
        )
        if self.dino_head is not None:
            tokens = out.dino_tokens(self.spec.dino_token)
            if batch.local_views is not None:
                L = batch.local_views.shape[0]
                local = visual(batch.local_views.flatten(0, 1))
                local_tokens = (local.cls1 if self.spec.dino_token == "cls1" else local.cls2).reshape(L, B, D)
                tokens = torch.cat((tokens, local_tokens))
            out.dino_logits = self.dino_head(tokens)
        if self.ibot_head is not None and ibot_index is not None:
            out.ibot_logits = self.ibot_head(feats.patch_tokens.reshape(-1, D)[ibot_index])
        if self.spec.contrastive:
            out.text_cls1, out.text_cls2 = self.encode_texts(batch.cls1_ids, batch.cls2_ids)
        if self.spec.distill_dim is not None:
            projector = self.distill_projector or nn.Identity()
            out.distill_patches = projector(out.patches)
        return out

    def encode_texts(self, first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both text batches in one pass of the text tower (padding does not change the pooled embedding)."""
        length = max(first.shape[1], second.shape[1])
        ids = torch.cat((pad_to(first, length), pad_to(second, length)))
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.spec.freeze_text):
            embeddings = self.model.text(ids)
        return embeddings[: first.shape[0]], embeddings[first.shape[0] :]
