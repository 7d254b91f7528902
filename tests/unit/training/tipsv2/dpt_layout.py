"""The official DPT decoder checkpoint layout, written from the official sources, not from `training.tipsv2`.

`pytorch/decoders.py` (`_convert_scenic_checkpoint`, HEAD 4db271d) reads Flax paths such as
`decoder/dpt/reassemble_blocks/out_projection_0/kernel`, and `TIPS_decoder_inference.ipynb` builds every decoder with
`post_process_channels = (D/8, D/4, D/2, D)`, 256 fusion channels, "project" readout. Flax kernels are
(H, W, Cin, Cout) for convs and transposed convs, (in, out) for Dense layers. The files are zips of `.npy` members
named by those paths ("Flax .npy arrays in a zip", the notebook), which `np.load` opens as an `.npz`.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

Layout = dict[str, tuple[int, ...]]

HEAD_NAME = {"segmentation": "pixel_segmentation", "depth": "pixel_depth_classif", "normals": "pixel_normals"}
OUTPUTS = {"segmentation": 150, "depth": 256, "normals": 3}
WIDTHS = {"b14": 768, "l14": 1024, "so400m14": 1152, "g14": 1536, "tiny": 64}
FUSION = 256


def dpt_layout(width: int, task: str) -> Layout:
    """Every key of `tips_v2_{tag}_{task}_dpt.zip` for an encoder of width D, with its Flax shape."""
    D = width
    levels = (D // 8, D // 4, D // 2, D)
    rb = "decoder/dpt/reassemble_blocks"
    keys: Layout = {}
    for i, c in enumerate(levels):
        keys |= {f"{rb}/out_projection_{i}/kernel": (1, 1, D, c), f"{rb}/out_projection_{i}/bias": (c,)}
        keys |= {f"{rb}/readout_projects_{i}/kernel": (2 * D, D), f"{rb}/readout_projects_{i}/bias": (D,)}
    keys |= {f"{rb}/resize_layers_0/kernel": (4, 4, levels[0], levels[0]), f"{rb}/resize_layers_0/bias": (levels[0],)}
    keys |= {f"{rb}/resize_layers_1/kernel": (2, 2, levels[1], levels[1]), f"{rb}/resize_layers_1/bias": (levels[1],)}
    keys |= {f"{rb}/resize_layers_3/kernel": (3, 3, D, D), f"{rb}/resize_layers_3/bias": (D,)}
    for i, c in enumerate(levels):
        keys[f"decoder/dpt/convs_{i}/kernel"] = (3, 3, c, FUSION)
    for i in range(4):
        block = f"decoder/dpt/fusion_blocks_{i}"
        for unit in range(1 if i == 0 else 2):
            for conv in ("conv1", "conv2"):
                keys[f"{block}/PreActResidualConvUnit_{unit}/{conv}/kernel"] = (3, 3, FUSION, FUSION)
        keys |= {f"{block}/Conv_0/kernel": (1, 1, FUSION, FUSION), f"{block}/Conv_0/bias": (FUSION,)}
    keys |= {"decoder/dpt/project/kernel": (3, 3, FUSION, FUSION), "decoder/dpt/project/bias": (FUSION,)}
    head = f"decoder/{HEAD_NAME[task]}"
    return keys | {f"{head}/kernel": (FUSION, OUTPUTS[task]), f"{head}/bias": (OUTPUTS[task],)}


def random_dpt_arrays(layout: Layout, seed: int) -> dict[str, np.ndarray]:
    """float32 weights that keep activations near unit scale through the fusion stack (kernels ~ 1/sqrt(fan-in),
    biases 0.1), with no two taps of a kernel alike, so a transposed or unflipped kernel changes the output."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for key, shape in layout.items():
        if key.endswith("/bias"):
            value = 0.1 * rng.standard_normal(shape)
        elif "resize_layers_0" in key or "resize_layers_1" in key:  # each output pixel sees one tap: fan-in Cin
            value = rng.standard_normal(shape) / np.sqrt(shape[2])
        else:
            value = rng.standard_normal(shape) / np.sqrt(np.prod(shape[:-1]))
        arrays[key] = value.astype(np.float32)
    return arrays


def write_dpt_zip(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """A zip of `.npy` members named by the Flax paths, as the release ships them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in arrays.items():
            with archive.open(key + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(value), allow_pickle=False)
    return path


def write_header_only_dpt_zip(path: Path, layout: Layout) -> Path:
    """Members with `.npy` headers only: the names and shapes of a release file, no data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for key, shape in layout.items():
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
            archive.writestr(key + ".npy", header.getvalue())
    return path
