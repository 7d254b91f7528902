"""`/v1/adapters`: a tenant's AdaLink adapters, their versions and the active one."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.gateway.adapters.store import AdapterManifest, StoredVersion


class AdapterVersionInfo(BaseModel):
    version: int
    digest: str = Field(description="First 16 hex characters of the file's sha256")
    sha256: str
    size_bytes: int
    created_at: str = Field(description="Upload time, ISO 8601 UTC")
    active: bool
    base_model: str
    modalities: list[str] = Field(description="Towers the adapter adapts: image, text or both")
    rank: int
    task: str
    description: str = ""

    @classmethod
    def from_stored(cls, stored: StoredVersion, active: bool) -> AdapterVersionInfo:
        meta = stored.metadata
        return cls(
            version=stored.version,
            digest=stored.digest,
            sha256=stored.sha256,
            size_bytes=stored.size,
            created_at=stored.created_at,
            active=active,
            base_model=meta.get("base_model", ""),
            modalities=list(stored.modalities),
            rank=int(meta.get("rank", "0")),
            task=meta.get("task", ""),
            description=meta.get("description", ""),
        )


class Adapter(BaseModel):
    object: Literal["adapter"] = "adapter"
    name: str
    active_version: int | None
    versions: list[AdapterVersionInfo]
    updated_at: str

    @classmethod
    def from_manifest(cls, manifest: AdapterManifest) -> Adapter:
        return cls(
            name=manifest.name,
            active_version=manifest.active,
            versions=[AdapterVersionInfo.from_stored(v, v.version == manifest.active) for v in manifest.versions],
            updated_at=manifest.updated_at,
        )


class AdapterUploaded(Adapter):
    uploaded_version: int = Field(description="The version this upload created")


class AdapterList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Adapter]
    has_more: bool = Field(False, description="More adapters follow: ask again with `after` = the last name here")


class ActivateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, description="The version to make active (roll forward or back)")


class AdapterDeleted(BaseModel):
    object: Literal["adapter.deleted"] = "adapter.deleted"
    name: str
    deleted_versions: list[int]
    adapter_deleted: bool = Field(description="True when the whole adapter is gone")
