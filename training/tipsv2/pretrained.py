"""Where the official TIPSv2 weights live, as data (no torch).

Source: google-deepmind/tips README and the PyTorch notebooks (`V2_CHECKPOINT_MAP`: `tips_v2_oss_so14_*`), and
`scenic/checkpoints/download_checkpoints.sh` (which spells So400m `so400m14`). The PyTorch `.npz` files hold flat
arrays keyed exactly by the PyTorch `state_dict` names; the text file also holds the scalar `temperature`.

The DPT decoders (segmentation, depth, normals) are released only in the Scenic/Flax format, as
`tips_v2_{tag}_{task}_dpt.zip` under `.../v2_0/checkpoints/scenic/` (`pytorch/TIPS_decoder_inference.ipynb`:
`V2_DPT_BASENAME_MAP`, which spells So400m `so400m14`): a zip of `.npy` arrays keyed by '/'-joined Flax paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PYTORCH_BASE_URL = "https://storage.googleapis.com/tips_data/v2_0/checkpoints/pytorch/"
TOKENIZER_URL = "https://storage.googleapis.com/tips_data/v1_0/checkpoints/tokenizer.model"
TOKENIZER_FILE = "tokenizer.model"
OFFICIAL_TAGS = ("b14", "l14", "so14", "g14")
DPT_BASE_URL = "https://storage.googleapis.com/tips_data/v2_0/checkpoints/scenic/"
DPT_TAG_SPELLING = {"so14": "so400m14"}  # the decoder files' spelling of a tag, where it differs


@dataclass(frozen=True)
class CheckpointFiles:
    vision: str
    text: str

    def names(self) -> tuple[str, str]:
        return self.vision, self.text

    def urls(self) -> list[str]:
        return [PYTORCH_BASE_URL + self.vision, PYTORCH_BASE_URL + self.text, TOKENIZER_URL]


def checkpoint_files(tag: str) -> CheckpointFiles:
    """File names of the PyTorch release for a tag (`b14`, `so14`, ...), e.g. `tips_v2_oss_b14_vision.npz`."""
    return CheckpointFiles(vision=f"tips_v2_oss_{tag}_vision.npz", text=f"tips_v2_oss_{tag}_text.npz")


def find_checkpoint_files(directory: str | Path, tags: tuple[str, ...]) -> tuple[Path, Path]:
    """Finds the vision and text `.npz` of any of `tags` in `directory` (the release spells So400m two ways)."""
    directory = Path(directory)
    tried: list[str] = []
    for tag in tags:
        files = checkpoint_files(tag)
        vision, text = directory / files.vision, directory / files.text
        if vision.is_file() and text.is_file():
            return vision, text
        tried += [files.vision, files.text]
    raise FileNotFoundError(f"no TIPSv2 checkpoint in {directory}: looked for {', '.join(tried)}")


def find_vision_file(directory: str | Path, tags: tuple[str, ...]) -> Path:
    """The vision `.npz` of any of `tags` in `directory` (dense prediction needs no text tower)."""
    directory = Path(directory)
    names = [checkpoint_files(tag).vision for tag in tags]
    for name in names:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"no TIPSv2 vision checkpoint in {directory}: looked for {', '.join(names)}")


def decoder_file(tag: str, task: str) -> str:
    """File name of an official DPT decoder for a tag as spelled, e.g. `tips_v2_b14_depth_dpt.zip`."""
    return f"tips_v2_{tag}_{task}_dpt.zip"


def decoder_tags(tags: tuple[str, ...]) -> tuple[str, ...]:
    """A variant's tags with the decoder files' own spelling first (So400m: `so400m14`, then `so14`)."""
    preferred = [DPT_TAG_SPELLING.get(tag, tag) for tag in tags]
    return tuple(dict.fromkeys([*preferred, *tags]))


def find_decoder_file(directory: str | Path, tags: tuple[str, ...], task: str) -> Path:
    """The DPT decoder `.zip` of `task` for any spelling of the variant's tags in `directory`."""
    directory = Path(directory)
    names = [decoder_file(tag, task) for tag in decoder_tags(tags)]
    for name in names:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"no {task} decoder in {directory}: looked for {', '.join(names)}")
