"""Building blocks of the TIPSv2 towers, one per file; parameter names follow the official PyTorch release."""

from training.tipsv2.layers.attention import Attention
from training.tipsv2.layers.layer_scale import LayerScale
from training.tipsv2.layers.mlp import Mlp, SwiGLUFFNFused
from training.tipsv2.layers.patch_embed import PatchEmbed
from training.tipsv2.layers.sinusoidal import sinusoidal_positions
from training.tipsv2.layers.text_block import ResidualAttentionBlock, TextAttention
from training.tipsv2.layers.vit_block import Block

__all__ = [
    "Attention",
    "Block",
    "LayerScale",
    "Mlp",
    "PatchEmbed",
    "ResidualAttentionBlock",
    "SwiGLUFFNFused",
    "TextAttention",
    "sinusoidal_positions",
]
