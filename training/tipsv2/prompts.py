"""Prompt templates of the official zero-shot protocols (no torch: the gateway imports them too).

Source: `pytorch/TIPS_zeroshot_segmentation.ipynb` and `pytorch/TIPSv2_Segmentation.ipynb` of google-deepmind/tips,
which take them from TCL (https://github.com/khanrc/tcl/blob/main/datasets/templates.py): the 7 "sub-ImageNet"
templates plus two plural ones. A class embedding is the average of its L2-normalised template embeddings.
"""

from __future__ import annotations

SUB_IMAGENET_TEMPLATES: tuple[str, ...] = (
    "itap of a {}.",
    "a bad photo of a {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)

# The 9 templates the official zero-shot segmentation notebooks average per class, in their order.
TCL_TEMPLATES: tuple[str, ...] = (*SUB_IMAGENET_TEMPLATES, "a photo of many {}.", "a photo of {}s.")
