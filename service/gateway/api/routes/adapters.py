"""`/v1/adapters`: upload, list, show, delete and activate the caller's AdaLink adapters.

Every operation is scoped to the caller's tenant; another tenant's adapter is indistinguishable from a missing one
(404). An upload or activation is used by every gateway replica within a second (see `service.gateway.adapters`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from service.gateway.api.bodies import read_adapter_upload
from service.gateway.api.deps import StateDep, TenantDep
from service.gateway.core.errors import invalid
from service.gateway.schemas.adapters import (
    ActivateRequest,
    Adapter,
    AdapterDeleted,
    AdapterList,
    AdapterUploaded,
)
from service.gateway.schemas.common import ADAPTER_NAME_PATTERN, ERROR_RESPONSES

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
    data, form_name, form_activate = await read_adapter_upload(request, state.settings.adapters.max_bytes)
    name = form_name or name
    if not name:
        raise invalid("name the adapter (`name` form field or query parameter)", code="missing_name", param="name")
    served = await state.backend.served_model()
    manifest, stored = await state.adapters.upload(
        tenant, name, data, served, activate if form_activate is None else form_activate
    )
    return AdapterUploaded(**Adapter.from_manifest(manifest).model_dump(), uploaded_version=stored.version)


@router.get("", response_model=AdapterList, responses=ERROR_RESPONSES)
async def list_adapters(
    state: StateDep,
    tenant: TenantDep,
    limit: Annotated[int | None, Query(ge=1, le=1000, description="At most this many (default: all)")] = None,
    after: Annotated[str | None, Query(pattern=ADAPTER_NAME_PATTERN, description="Start after this name")] = None,
) -> AdapterList:
    """Your adapters, by name, with their versions; page through many with `limit` and `after`."""
    manifests = await state.adapters.list_adapters(tenant, after, None if limit is None else limit + 1)
    page = manifests if limit is None else manifests[:limit]
    return AdapterList(data=[Adapter.from_manifest(m) for m in page], has_more=len(page) < len(manifests))


@router.get("/{name}", response_model=Adapter, responses=ERROR_RESPONSES)
async def show_adapter(name: NameParam, state: StateDep, tenant: TenantDep) -> Adapter:
    """One adapter: its versions and which one is active."""
    return Adapter.from_manifest(await state.adapters.show(tenant, name))


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
    return Adapter.from_manifest(await state.adapters.activate(tenant, name, body.version))
