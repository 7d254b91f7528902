"""`/v1/adapters`: upload, list, show, delete and activate the caller's AdaLink adapters.

Every operation is scoped to the caller's tenant; another tenant's adapter is indistinguishable from a missing one
(404). An upload or activation is used by every gateway replica within a second (see `service.adapters`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.datastructures import UploadFile

from service.adapters.store import AdapterManifest, StoredVersion
from service.api.deps import StateDep, TenantDep
from service.core.errors import ErrorKind, GatewayError, invalid
from service.schemas.adapters import (
    ActivateRequest,
    Adapter,
    AdapterDeleted,
    AdapterList,
    AdapterUploaded,
    AdapterVersionInfo,
)
from service.schemas.common import ADAPTER_NAME_PATTERN, ERROR_RESPONSES

router = APIRouter(prefix="/v1/adapters", tags=["adapters"])
NameParam = Annotated[str, Path(pattern=ADAPTER_NAME_PATTERN, description="Adapter name")]

UPLOAD_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "AdaLink .safetensors file"},
                        "name": {"type": "string", "pattern": ADAPTER_NAME_PATTERN},
                        "activate": {"type": "boolean", "default": True},
                    },
                }
            },
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary", "description": "The file; `name` in the query"}
            },
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=AdapterUploaded,
    responses=ERROR_RESPONSES,
    openapi_extra=UPLOAD_OPENAPI,
)
async def upload_adapter(
    request: Request,
    state: StateDep,
    tenant: TenantDep,
    name: Annotated[str | None, Query(pattern=ADAPTER_NAME_PATTERN, description="Adapter name")] = None,
    activate: Annotated[bool, Query(description="Make the new version active (the first one always is)")] = True,
) -> AdapterUploaded:
    """Uploads a new version of an adapter (a multipart `file`, or the raw file as application/octet-stream).

    The file is validated (format, base model, width, values) before it is stored; versions count up from 1 per
    name and are never reused.
    """
    data, form_name, form_activate = await _read_upload(request, state.settings.adapters.max_bytes)
    name = form_name or name
    if not name:
        raise invalid("name the adapter (`name` form field or query parameter)", code="missing_name", param="name")
    served = await state.backend.served_model()
    manifest, stored = await state.adapters.upload(
        tenant, name, data, served, activate if form_activate is None else form_activate
    )
    return AdapterUploaded(**_adapter(manifest).model_dump(), uploaded_version=stored.version)


@router.get("", response_model=AdapterList, responses=ERROR_RESPONSES)
async def list_adapters(state: StateDep, tenant: TenantDep) -> AdapterList:
    """Your adapters, by name, with their versions."""
    return AdapterList(data=[_adapter(m) for m in await state.adapters.list_adapters(tenant)])


@router.get("/{name}", response_model=Adapter, responses=ERROR_RESPONSES)
async def show_adapter(name: NameParam, state: StateDep, tenant: TenantDep) -> Adapter:
    """One adapter: its versions and which one is active."""
    return _adapter(await state.adapters.show(tenant, name))


@router.delete("/{name}", response_model=AdapterDeleted, responses=ERROR_RESPONSES)
async def delete_adapter(
    name: NameParam,
    state: StateDep,
    tenant: TenantDep,
    version: Annotated[int | None, Query(ge=1, description="Delete only this (inactive) version")] = None,
) -> AdapterDeleted:
    """Deletes the adapter, or one version of it (409 for the active version: activate another one first)."""
    removed = await state.adapters.delete(tenant, name, version)
    return AdapterDeleted(name=name, deleted_versions=[v.version for v in removed], adapter_deleted=version is None)


@router.post("/{name}/activate", response_model=Adapter, responses=ERROR_RESPONSES)
async def activate_adapter(name: NameParam, body: ActivateRequest, state: StateDep, tenant: TenantDep) -> Adapter:
    """Makes a version the one `name` resolves to (roll back or forward); every replica follows within a second."""
    return _adapter(await state.adapters.activate(tenant, name, body.version))


async def _read_upload(request: Request, max_bytes: int) -> tuple[bytes, str | None, bool | None]:
    """(file bytes, name from the form, activate from the form) of a multipart or raw upload."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/octet-stream":
        return await request.body(), None, None
    if content_type != "multipart/form-data":
        raise GatewayError(
            ErrorKind.UNSUPPORTED_MEDIA,
            f"upload the file as multipart/form-data (field `file`) or application/octet-stream (got "
            f"{content_type or 'no content type'})",
            code="unsupported_content_type",
        )
    async with request.form(max_files=1, max_fields=8) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise invalid("the form has no `file` part", code="missing_file", param="file")
        data = await upload.read(max_bytes + 1)
        name, activate = form.get("name"), form.get("activate")
    if activate is not None and (not isinstance(activate, str) or activate.lower() not in ("true", "false")):
        raise invalid("activate must be true or false", code="validation_error", param="activate")
    return data, name if isinstance(name, str) else None, None if activate is None else activate.lower() == "true"


def _adapter(manifest: AdapterManifest) -> Adapter:
    return Adapter(
        name=manifest.name,
        active_version=manifest.active,
        versions=[_version(v, v.version == manifest.active) for v in manifest.versions],
        updated_at=manifest.updated_at,
    )


def _version(stored: StoredVersion, active: bool) -> AdapterVersionInfo:
    meta = stored.metadata
    return AdapterVersionInfo(
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
