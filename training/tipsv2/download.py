"""Download the official TIPSv2 PyTorch checkpoints, DPT decoders and tokenizer from their official URLs (no torch).

Files land under their official names (`tips_v2_oss_{tag}_{vision,text}.npz`, `tokenizer.model`,
`tips_v2_{tag}_{task}_dpt.zip`), written to a
`.part` file first and renamed when complete, so an interrupted download never leaves a file that looks finished.
Without network access every failure becomes one `DownloadError` naming the URL, the reason and the manual way out.
"""

from __future__ import annotations

import http.client
import logging
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from training.tipsv2.configs import ModelCfg, get_model_config
from training.tipsv2.heads import TASKS, check_task
from training.tipsv2.pretrained import (
    DPT_BASE_URL,
    OFFICIAL_TAGS,
    PYTORCH_BASE_URL,
    TOKENIZER_FILE,
    TOKENIZER_URL,
    checkpoint_files,
    decoder_file,
    decoder_tags,
)

log = logging.getLogger(__name__)
CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A file could not be fetched (no network, HTTP error, timeout)."""


def fetch(url: str, dest: Path, timeout: float) -> Path:
    """Streams `url` to `dest` (via `dest.part`); raises DownloadError with the reason on any failure."""
    partial = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out, CHUNK)
    except urllib.error.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from exc
    except (OSError, http.client.HTTPException) as exc:  # URLError, refused, DNS failure, timeout, reset
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc or type(exc).__name__
        raise DownloadError(
            f"could not download {url}: {reason}. Is there network access? Without it, fetch the file on another "
            f"machine and copy it to {dest}"
        ) from exc
    partial.replace(dest)
    return dest


def download_official(
    variant: str,
    directory: str | Path,
    *,
    base_url: str = PYTORCH_BASE_URL,
    tokenizer_url: str = TOKENIZER_URL,
    timeout: float = 30.0,
    force: bool = False,
) -> list[Path]:
    """Fetches the vision and text `.npz` of `variant` and `tokenizer.model` into `directory`; returns their paths.

    Files already present are kept unless `force`. If the checkpoint is not found (HTTP 404) under the variant's
    tag, its alternative spellings are tried (So400m: `so14`, then `so400m14`).
    """
    cfg = _official(variant)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = _fetch_checkpoint(
        (cfg.checkpoint_tag, *cfg.checkpoint_tag_aliases), directory, base_url.rstrip("/") + "/", timeout, force
    )
    paths.append(_fetch_missing(tokenizer_url, directory / TOKENIZER_FILE, timeout, force))
    return paths


def download_decoders(
    variant: str,
    directory: str | Path,
    tasks: tuple[str, ...] = TASKS,
    *,
    base_url: str = DPT_BASE_URL,
    timeout: float = 30.0,
    force: bool = False,
) -> list[Path]:
    """Fetches the official DPT decoders (`tips_v2_{tag}_{task}_dpt.zip`) of `variant` for `tasks` into `directory`.

    A file already present under any spelling of the tag is kept unless `force`; on HTTP 404 the next spelling is
    tried (So400m: `so400m14`, the notebook's, then `so14`).
    """
    cfg = _official(variant)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tags = decoder_tags((cfg.checkpoint_tag, *cfg.checkpoint_tag_aliases))
    base_url = base_url.rstrip("/") + "/"
    paths = []
    for task in tasks:
        names = [decoder_file(tag, check_task(task)) for tag in tags]
        present = next((directory / name for name in names if (directory / name).is_file()), None)
        if present is not None and not force:
            log.info("keeping %s (already there)", present)
            paths.append(present)
        else:
            paths.append(_fetch_first_found(names, directory, base_url, timeout))
    return paths


def _official(variant: str) -> ModelCfg:
    cfg = get_model_config(variant)
    if cfg.checkpoint_tag not in OFFICIAL_TAGS:
        raise ValueError(f"{cfg.name} has no official release; official tags: {', '.join(OFFICIAL_TAGS)}")
    return cfg


def _fetch_first_found(names: list[str], directory: Path, base_url: str, timeout: float) -> Path:
    """The first of `names` the server has (HTTP 404 moves on to the next spelling; any other failure raises)."""
    for i, name in enumerate(names):
        try:
            log.info("downloading %s -> %s", base_url + name, directory / name)
            return fetch(base_url + name, directory / name, timeout)
        except DownloadError as exc:
            if i == len(names) - 1 or not _is_404(exc):
                raise
            log.info("%s; trying the spelling %r", exc, names[i + 1])
    raise AssertionError("unreachable: names is never empty")


def _is_404(exc: DownloadError) -> bool:
    return isinstance(exc.__cause__, urllib.error.HTTPError) and exc.__cause__.code == 404


def _fetch_checkpoint(tags: tuple[str, ...], directory: Path, base_url: str, timeout: float, force: bool) -> list[Path]:
    for i, tag in enumerate(tags):
        files = checkpoint_files(tag)
        try:
            return [_fetch_missing(base_url + name, directory / name, timeout, force) for name in files.names()]
        except DownloadError as exc:
            if i == len(tags) - 1 or not _is_404(exc):
                raise
            log.info("%s; trying the spelling %r", exc, tags[i + 1])
    raise AssertionError("unreachable: tags is never empty")


def _fetch_missing(url: str, dest: Path, timeout: float, force: bool) -> Path:
    if dest.is_file() and not force:
        log.info("keeping %s (already there)", dest)
        return dest
    log.info("downloading %s -> %s", url, dest)
    return fetch(url, dest, timeout)
