"""The TIPSv2 text tower (official `pytorch/text_encoder.py`), batch-first.

ids -> token embedding x sqrt(D) + fixed sinusoidal positions -> pre-LN blocks (ReLU MLP, padded keys masked) ->
`ln_final` -> mean over non-pad tokens. No projection: the output width equals the image tower's.
Split into `embed` (what the AdaLink adapter stage owns) and `trunk` (what is compiled once).
"""

from __future__ import annotations

import torch
from torch import nn

from training.tipsv2.configs import TextCfg
from training.tipsv2.layers import ResidualAttentionBlock, sinusoidal_positions
from training.tipsv2.layers.sinusoidal import embedding_scale
from training.tipsv2.layers.text_block import key_padding_bias
from training.tipsv2.tokenizer import PAD_ID


class TextTransformer(nn.Module):
    def __init__(self, cfg: TextCfg) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(
            ResidualAttentionBlock(cfg.embed_dim, cfg.num_heads, cfg.mlp_dim, cfg.layer_norm_eps)
            for _ in range(cfg.depth)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        key_bias = key_padding_bias(mask, x.dtype)
        for block in self.resblocks:
            x = block(x, mask, key_bias)
        return x


class TextEncoder(nn.Module):
    positions: torch.Tensor  # (max_len, D) buffer

    def __init__(self, cfg: TextCfg) -> None:
        super().__init__()
        self.cfg = cfg
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.transformer = TextTransformer(cfg)
        self.ln_final = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
        self.reset_buffers()

    def reset_buffers(self) -> None:
        """(Re)computes the fixed position table; needed after building on the meta device."""
        self.register_buffer("positions", sinusoidal_positions(self.cfg.max_len, self.cfg.embed_dim), persistent=False)

    def init_weights(self, generator: torch.Generator | None = None) -> None:
        for name, param in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(param)
            elif ".ln_" in name or name.startswith("ln_final"):
                nn.init.ones_(param)
            elif name == "token_embedding.weight":
                nn.init.normal_(param, std=self.cfg.embed_dim**-0.5, generator=generator)
            else:
                nn.init.trunc_normal_(param, std=0.02, a=-0.04, b=0.04, generator=generator)

    @staticmethod
    def token_mask(ids: torch.Tensor) -> torch.Tensor:
        """1.0 for tokens, 0.0 for padding (id 0), as the official `paddings == 0`."""
        return (ids != PAD_ID).float()

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) int ids -> (B, L, D), the sequence the first block sees."""
        L = ids.shape[1]
        if L > self.cfg.max_len:
            raise ValueError(f"text of {L} tokens is longer than the tower's {self.cfg.max_len}")
        x = self.token_embedding(ids) * embedding_scale(self.cfg.embed_dim)
        out: torch.Tensor = x + self.positions[:L].to(x.dtype)
        return out

    def trunk(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L, D) embedded tokens and (B, L) mask -> (B, D) pooled embedding."""
        x = self.ln_final(self.transformer(x, mask))
        mask = mask.to(x.dtype)
        summed = (x * mask[..., None]).sum(dim=1)
        return summed / (mask.sum(dim=1, keepdim=True) + self.cfg.pooling_eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.trunk(self.embed(ids), self.token_mask(ids))
