"""The adapter store: a directory tree that is the source of truth for every tenant's adapters (its layout and the
adapter id are the contract `training.contracts.adapter_store`).

    {root}/{tenant}/{name}/manifest.json                     versions, the active one, the next version number
    {root}/{tenant}/{name}/v{version}-{digest}.safetensors   immutable files; digest = sha256(file)[:16]

Triton's embedding stages read the files by the immutable id `tenant/name/version/digest`, so a new version never
changes a file anyone may be reading, and Triton never has to reload anything.

Durability: every file (adapter and manifest) is written to a temporary name in the same directory, fsynced,
renamed into place and the directory fsynced; an upload is acknowledged only after that. Readers therefore see
either the old or the new manifest, never a torn one. Writers of one adapter name are serialised by a lock file
(`fcntl.flock`, which holds between processes sharing the volume) plus a per-process lock (flock alone does not
serialise threads of one process that share the open file), so concurrent uploads get distinct versions.
Version numbers are never reused: deleting an adapter leaves a tombstone manifest that keeps `next_version`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.gateway.core.errors import ErrorKind, GatewayError
from training.contracts.adapter_store import DIGEST_CHARS, MANIFEST, NAME_RE, TENANT_RE, AdapterId, version_file

LOCK = ".lock"


@dataclass(frozen=True)
class StoredVersion:
    version: int
    digest: str  # first DIGEST_CHARS hex chars of sha256(file): part of the file name and of the adapter id
    sha256: str
    size: int
    created_at: str  # upload time, ISO 8601 UTC
    metadata: dict[str, str] = field(default_factory=dict)  # the adapter file's metadata (base model, rank, ...)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in self.metadata.get("modalities", "").split(",") if m)


@dataclass(frozen=True)
class AdapterManifest:
    tenant: str
    name: str
    next_version: int = 1
    active: int | None = None
    versions: tuple[StoredVersion, ...] = ()
    deleted: bool = False  # a tombstone: no versions left, but `next_version` survives for a re-created name
    updated_at: str = ""

    @property
    def exists(self) -> bool:
        return not self.deleted and bool(self.versions)

    def version(self, number: int) -> StoredVersion | None:
        return next((v for v in self.versions if v.version == number), None)

    @property
    def active_version(self) -> StoredVersion | None:
        return self.version(self.active) if self.active is not None else None

    def adapter_id(self, version: StoredVersion) -> str:
        """The immutable id Triton's adapter banks resolve to a file (`AdapterId.path`)."""
        return str(AdapterId(self.tenant, self.name, version.version, version.digest))

    def to_json(self) -> str:
        body = asdict(self)
        body["versions"] = [asdict(v) for v in self.versions]
        return json.dumps(body, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AdapterManifest:
        body: dict[str, Any] = json.loads(text)
        versions = tuple(StoredVersion(**v) for v in body.pop("versions", []))
        return cls(**body, versions=versions)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def not_found(name: str, version: int | None = None) -> GatewayError:
    if version is None:
        return GatewayError(ErrorKind.NOT_FOUND, f"unknown adapter {name!r}", code="adapter_not_found", param="adapter")
    return GatewayError(
        ErrorKind.NOT_FOUND,
        f"adapter {name!r} has no version {version}",
        code="adapter_version_not_found",
        param="version",
    )


class AdapterStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # -- paths ---------------------------------------------------------------------------------------------------

    def adapter_dir(self, tenant: str, name: str) -> Path:
        if not TENANT_RE.match(tenant):
            raise ValueError(f"invalid tenant id {tenant!r}")
        if not NAME_RE.match(name):
            raise GatewayError(
                ErrorKind.INVALID_REQUEST,
                f"adapter name {name!r} must match {NAME_RE.pattern}",
                code="invalid_adapter_name",
                param="name",
            )
        return self.root / tenant / name

    def manifest_path(self, tenant: str, name: str) -> Path:
        return self.adapter_dir(tenant, name) / MANIFEST

    def file_path(self, tenant: str, name: str, version: StoredVersion) -> Path:
        return self.adapter_dir(tenant, name) / version_file(version.version, version.digest)

    # -- reads (lock-free: files are only ever replaced by rename) -------------------------------------------------

    def read(self, tenant: str, name: str) -> AdapterManifest | None:
        """The manifest, tombstones included; None when the name was never used."""
        path = self.manifest_path(tenant, name)
        with _storage_errors("read"):
            try:
                return AdapterManifest.from_json(path.read_text())
            except FileNotFoundError:
                self._require_root()
                return None

    def signature(self, tenant: str, name: str) -> tuple[int, int, int] | None:
        """(inode, mtime_ns, size) of the manifest: changes with every write, as writes replace it by rename."""
        with _storage_errors("stat"):
            try:
                stat = os.stat(self.manifest_path(tenant, name))
            except FileNotFoundError:
                self._require_root()
                return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def get(self, tenant: str, name: str) -> AdapterManifest:
        manifest = self.read(tenant, name)
        if manifest is None or not manifest.exists:
            raise not_found(name)
        return manifest

    def list_adapters(self, tenant: str, after: str | None = None, limit: int | None = None) -> list[AdapterManifest]:
        """The tenant's adapters by name; with `after` and `limit`, one page of them: only that page's manifests are
        read (listing 10,000 adapters whole reads 10,000 manifests, 0.8 s here; bench/adapters.py)."""
        tenant_dir = self.root / tenant
        self._require_root()
        if not TENANT_RE.match(tenant) or not tenant_dir.is_dir():
            return []
        with _storage_errors("list"):
            names = sorted(p.name for p in tenant_dir.iterdir() if NAME_RE.match(p.name))
        out = []
        for name in names:
            if after is not None and name <= after:
                continue
            manifest = self.read(tenant, name)
            if manifest is not None and manifest.exists:  # tombstones of deleted names are skipped
                out.append(manifest)
                if limit is not None and len(out) >= limit:
                    break
        return out

    # -- writes ----------------------------------------------------------------------------------------------------

    def add_version(
        self, tenant: str, name: str, data: bytes, metadata: dict[str, str], activate: bool = True
    ) -> tuple[AdapterManifest, StoredVersion]:
        """Stores `data` (already validated) as the next version; durable when this returns.

        The new version becomes the active one unless `activate` is false and the adapter has an active version.
        """
        sha = hashlib.sha256(data).hexdigest()
        with self._locked(tenant, name) as directory:
            current = self.read(tenant, name) or AdapterManifest(tenant, name)
            stored = StoredVersion(current.next_version, sha[:DIGEST_CHARS], sha, len(data), _now(), dict(metadata))
            path = self.file_path(tenant, name, stored)
            _write_atomically(path, data)
            previous = current.versions if current.exists else ()
            keep_active = not activate and current.exists and current.active is not None
            manifest = replace(
                current,
                next_version=stored.version + 1,
                active=current.active if keep_active else stored.version,
                versions=(*previous, stored),
                deleted=False,
                updated_at=stored.created_at,
            )
            try:
                self._write_manifest(directory, manifest)
            except GatewayError:
                # Unlisted, the file could never be served; left behind, every retry on a full disk would add one.
                with contextlib.suppress(OSError):
                    path.unlink()
                raise
        return manifest, stored

    def activate(self, tenant: str, name: str, version: int) -> AdapterManifest:
        with self._locked(tenant, name) as directory:
            current = self.read(tenant, name)
            if current is None or not current.exists:
                raise not_found(name)
            if current.version(version) is None:
                raise not_found(name, version)
            manifest = replace(current, active=version, updated_at=_now())
            self._write_manifest(directory, manifest)
        return manifest

    def delete(self, tenant: str, name: str, version: int | None = None) -> list[StoredVersion]:
        """Deletes one version (not the active one: 409) or, with `version=None`, the whole adapter."""
        with self._locked(tenant, name) as directory:
            current = self.read(tenant, name)
            if current is None or not current.exists:
                raise not_found(name)
            if version is None:
                removed = list(current.versions)
                manifest = replace(current, active=None, versions=(), deleted=True, updated_at=_now())
            else:
                target = current.version(version)
                if target is None:
                    raise not_found(name, version)
                if version == current.active:
                    raise GatewayError(
                        ErrorKind.CONFLICT,
                        f"version {version} of {name!r} is active; activate another version or delete the adapter",
                        code="adapter_version_active",
                        param="version",
                    )
                removed = [target]
                remaining = tuple(v for v in current.versions if v.version != version)
                manifest = replace(current, versions=remaining, deleted=not remaining, updated_at=_now())
            # Manifest first: from here no gateway resolves the removed versions; then the files go.
            self._write_manifest(directory, manifest)
            with _storage_errors("delete"):
                for stored in removed:
                    self.file_path(tenant, name, stored).unlink(missing_ok=True)
        return removed

    def _require_root(self) -> None:
        """A missing root is a missing volume, not an empty store: 503, and never recreated on the local disk."""
        if not self.root.is_dir():
            raise GatewayError(
                ErrorKind.STORAGE_UNAVAILABLE,
                "adapter store unavailable: its volume is not mounted",
                code="adapter_store_unavailable",
                retry_after=1,
            )

    def _write_manifest(self, directory: Path, manifest: AdapterManifest) -> None:
        _write_atomically(directory / MANIFEST, manifest.to_json().encode())

    @contextlib.contextmanager
    def _locked(self, tenant: str, name: str) -> Iterator[Path]:
        directory = self.adapter_dir(tenant, name)
        with self._locks_guard:
            local = self._locks.setdefault((tenant, name), threading.Lock())
        self._require_root()
        with local, _storage_errors("lock"):
            directory.parent.mkdir(exist_ok=True)  # the tenant's folder; never the root (see `_require_root`)
            directory.mkdir(exist_ok=True)
            with open(directory / LOCK, "a+b") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                try:
                    yield directory
                finally:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_atomically(path: Path, data: bytes) -> None:
    """Temp file in the same directory, fsync, rename over `path`, fsync the directory."""
    with _storage_errors("write"):
        fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            # mkstemp makes the file 0600, but Triton reads the store as another user (uid 1000 beside the gateway's
            # 10001 in the images, compose and the chart): readable by all who mount the volume, writable by us.
            os.fchmod(fd, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


@contextlib.contextmanager
def _storage_errors(operation: str) -> Iterator[None]:
    """Disk full, permissions, a lost volume: the client sees 503 (retry later), never a 500."""
    try:
        yield
    except (OSError, ValueError, TypeError) as exc:  # ValueError/TypeError: a manifest that does not parse
        raise GatewayError(
            ErrorKind.STORAGE_UNAVAILABLE,
            f"adapter store {operation} failed: {type(exc).__name__}",
            code="adapter_store_unavailable",
            retry_after=1,
        ) from exc
