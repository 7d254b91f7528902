"""The adapter store's layout and the immutable adapter id, shared by its writer (the gateway) and its readers (the
Triton models' adapter banks):

    {store}/{tenant}/{name}/manifest.json                     versions, the active one (written by the gateway)
    {store}/{tenant}/{name}/v{version}-{digest}.safetensors   immutable files; digest = sha256(file)[:16]

A request names its adapter by the id `tenant/name/version/digest`: the file it resolves to never changes, and a
file changed after upload no longer matches the digest in its id.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

TENANT_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
REF_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}(@[1-9][0-9]{0,8})?$"  # what a request names: `name` or `name@version`
TENANT_RE = re.compile(TENANT_PATTERN)
NAME_RE = re.compile(NAME_PATTERN)
MANIFEST = "manifest.json"
DIGEST_CHARS = 16  # an adapter id's digest: the first 16 hex characters of the file's sha256
SUFFIX = ".safetensors"


def file_digest(data: bytes) -> str:
    """The digest an adapter file is stored and named under."""
    return hashlib.sha256(data).hexdigest()[:DIGEST_CHARS]


def version_file(version: int, digest: str) -> str:
    """The file name of one stored version."""
    return f"v{version}-{digest}{SUFFIX}"


@dataclass(frozen=True)
class AdapterId:
    """`tenant/name/version/digest`: one stored version of one adapter, immutable."""

    tenant: str
    name: str
    version: int
    digest: str

    def __str__(self) -> str:
        return f"{self.tenant}/{self.name}/{self.version}/{self.digest}"

    @classmethod
    def parse(cls, text: str) -> AdapterId:
        """The id in `text`; ValueError for anything that could escape the store or is not four parts."""
        parts = text.split("/")
        if len(parts) != 4 or any(not p or p in (".", "..") or os.sep in p or "\0" in p for p in parts):
            raise ValueError(f"malformed adapter id {text!r}: expected tenant/name/version/digest")
        tenant, name, version, digest = parts
        if not version.isdigit():
            raise ValueError(f"malformed adapter id {text!r}: the version is not a number")
        return cls(tenant, name, int(version), digest)

    def path(self, store: str | Path) -> Path:
        """Where the store keeps this version's file (no escaping: the parts were checked when parsed)."""
        return Path(store) / self.tenant / self.name / version_file(self.version, self.digest)


def write_version(store: str | Path, tenant: str, name: str, version: int, data: bytes) -> AdapterId:
    """Writes one version's file into the store layout, without a manifest and without the gateway's fsyncs: for
    tests and benchmarks that fill a store directly (Triton's banks read files by id and need no manifest)."""
    adapter_id = AdapterId(tenant, name, version, file_digest(data))
    path = adapter_id.path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return adapter_id
