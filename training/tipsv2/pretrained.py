"""Where the official TIPSv2 weights live, as data (no torch).

Source: google-deepmind/tips README and the PyTorch notebooks (`V2_CHECKPOINT_MAP`: `tips_v2_oss_so14_*`), and
`scenic/checkpoints/download_checkpoints.sh` (which spells So400m `so400m14`). The PyTorch `.npz` files hold flat
arrays keyed exactly by the PyTorch `state_dict` names; the text file also holds the scalar `temperature`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PYTORCH_BASE_URL = "https://storage.googleapis.com/tips_data/v2_0/checkpoints/pytorch/"
TOKENIZER_URL = "https://storage.googleapis.com/tips_data/v1_0/checkpoints/tokenizer.model"
TOKENIZER_FILE = "tokenizer.model"
OFFICIAL_TAGS = ("b14", "l14", "so14", "g14")


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
