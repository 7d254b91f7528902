"""End-to-end builds: the tiny local model (weights + tokenizer), and weights -> export artifacts (trunks checked
against PyTorch, embedding-stage weights, a manifest; `training.export.artifacts`).

Export ends at the artifacts folder: turning it into a Triton model repository is the serving side's business
(`service.triton.repository`, `service.triton.build`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from training.contracts.served import ServedModel
from training.data.vocabulary import caption_corpus
from training.export.artifacts import TRUNK_FORMATS, Artifacts, TrunkFormat, write_manifest
from training.export.embed_stage import image_embed_arrays, save_arrays, text_embed_arrays
from training.export.torch_trunk import save_torch_trunk
from training.tipsv2.checkpoint import load_pretrained, save_official, weights_digest
from training.tipsv2.configs import get_model_config
from training.tipsv2.model import TIPSv2, create_model
from training.tipsv2.pretrained import TOKENIZER_FILE, find_checkpoint_files
from training.tipsv2.tokenizer import Tokenizer, train_tokenizer

log = logging.getLogger(__name__)


def build_local_weights(out_dir: str | Path, variant: str = "tipsv2-tiny", seed: int = 0) -> Path:
    """Writes a seeded random model in the official layout plus a locally trained tokenizer into `out_dir`."""
    out_dir = Path(out_dir)
    cfg = get_model_config(variant)
    tokenizer = train_tokenizer(caption_corpus(seed=seed), out_dir / TOKENIZER_FILE, cfg.text_cfg.vocab_size)
    if Tokenizer(tokenizer).vocab_size > cfg.text_cfg.vocab_size:
        raise ValueError(f"tokenizer has more ids than {variant}'s token table")
    model = create_model(variant, seed=seed)
    save_official(model, out_dir)
    return out_dir


def export_artifacts(
    weights_dir: str | Path,
    variant: str,
    out: str | Path,
    trunk: TrunkFormat,
    resolutions: tuple[int, ...] = (),
    tolerance: float = 1e-4,
) -> Path:
    """Official-layout weights -> an artifacts folder at `out` (see `training.export.artifacts`)."""
    weights_dir = Path(weights_dir)
    cfg = get_model_config(variant)
    model = load_pretrained(weights_dir, variant)
    vision_file, text_file = find_checkpoint_files(weights_dir, (cfg.checkpoint_tag, *cfg.checkpoint_tag_aliases))
    return export_model_artifacts(model, weights_digest(vision_file, text_file), out, trunk, resolutions, tolerance)


def export_model_artifacts(
    model: TIPSv2,
    model_id: str,
    out: str | Path,
    trunk: TrunkFormat,
    resolutions: tuple[int, ...] = (),
    tolerance: float = 1e-4,
) -> Path:
    """An in-memory model -> an artifacts folder at `out` (the GPU benchmark exports random B/14 weights this way)."""
    if trunk not in TRUNK_FORMATS:
        raise ValueError(f"unknown trunk format {trunk!r}; choose one of {', '.join(TRUNK_FORMATS)}")
    cfg = model.cfg
    resolutions = resolutions or (cfg.vision_cfg.img_size,)
    patch = cfg.vision_cfg.patch_size
    if any(r % patch for r in resolutions):
        raise ValueError(f"served resolutions {resolutions} must be multiples of the patch size {patch}")
    served = ServedModel(
        model_name=cfg.name,
        model_id=model_id,
        embed_dim=cfg.embed_dim,
        text_len=cfg.text_cfg.max_len,
        patch_size=patch,
        resolutions=tuple(resolutions),
        temperature=float(model.temperature),
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        grids = [r // patch for r in resolutions]
        text_embed = save_arrays(text_embed_arrays(model), out / "text_embed.safetensors")
        image_embed = save_arrays(image_embed_arrays(model, grids), out / "image_embed.safetensors")
        if trunk == "torch":
            artifacts = Artifacts(
                text_embed,
                image_embed,
                text_trunk_torch=save_torch_trunk(model, "text", out / "text_trunk"),
                image_trunk_torch=save_torch_trunk(model, "image", out / "image_trunk"),
            )
        else:
            text_onnx, image_onnx = export_checked_onnx(model, out, resolutions, tolerance)
            artifacts = Artifacts(text_embed, image_embed, text_trunk_onnx=text_onnx, image_trunk_onnx=image_onnx)
    write_manifest(out, served, artifacts)
    return out


def export_checked_onnx(model: TIPSv2, work: Path, resolutions: tuple[int, ...], tolerance: float) -> tuple[Path, Path]:
    """Both trunks to ONNX, each checked against PyTorch through onnxruntime (every served resolution, and batch
    sizes other than the traced one); raises ParityError beyond `tolerance`."""
    from training.export.onnx_export import (
        check_image_parity,
        check_text_parity,
        export_image_trunk,
        export_text_trunk,
    )

    patch = model.cfg.vision_cfg.patch_size
    text_onnx = export_text_trunk(model, work / "text_trunk.onnx")
    image_onnx = export_image_trunk(model, work / "image_trunk.onnx")
    for batch in (1, 3):
        log.info("%s", check_text_parity(model, text_onnx, tolerance, batch=batch))
    for resolution in resolutions:
        log.info("%s", check_image_parity(model, image_onnx, tolerance, batch=3, grid=resolution // patch))
    return text_onnx, image_onnx
