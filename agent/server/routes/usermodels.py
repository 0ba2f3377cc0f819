"""Routes of ``/v1/models``: upload a model (ONNX, or the engine's ``.npz``), list,
show and download it."""

from typing import Annotated, Any, Dict, List, Optional

from fastapi import APIRouter, File, Form, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict

from agent.server.deps import SettingsDep
from agent.server.routes.datasets import ITEM_ID, refused
from agent.server.routes.jobs import ERRORS

router = APIRouter(prefix="/v1/models", tags=["models"])


class ModelOut(BaseModel):
    """A stored model: ``id`` (sha256 of the file), ``format`` (``onnx`` or ``npz``),
    ``input_shape`` (NHWC or ``(features,)``), ``num_classes``, ``n_layers``
    (trainable layers: the length of a sparsity list), ``n_params``, ``bytes``."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    format: str
    input_shape: List[int]
    num_classes: int
    n_layers: int
    bytes: int
    created_at: str


class ModelList(BaseModel):
    items: List[ModelOut]


@router.post("", status_code=201, response_model=ModelOut, responses={**ERRORS, 200: {
    "model": ModelOut, "description": "the same file was already stored"}},
    summary="Upload a model (.onnx, or the engine's .npz); kept only if it loads")
def upload(settings: SettingsDep, response: Response,
           file: Annotated[UploadFile, File(description=".onnx or the engine's .npz")],
           name: Annotated[Optional[str], Form(max_length=64)] = None) -> ModelOut:
    from models.user_models import UserModelError, store_model

    try:
        manifest, created = store_model(settings.data_dir, file.file.read(),
                                        file.filename or "upload", name or "")
    except UserModelError as e:
        raise refused(e) from None
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/v1/models/{manifest['id']}"
    return ModelOut(**manifest)


@router.get("", response_model=ModelList, responses=ERRORS, summary="Stored models, newest first")
def list_all(settings: SettingsDep) -> ModelList:
    from models.user_models import list_models

    return ModelList(items=[ModelOut(**m) for m in list_models(settings.data_dir)])


def _manifest(settings: Any, model_id: str) -> Dict[str, Any]:
    from models.user_models import UserModelError, read_manifest

    try:
        return read_manifest(settings.data_dir, model_id)
    except UserModelError as e:
        raise refused(e) from None


@router.get("/{model_id}", response_model=ModelOut, responses=ERRORS,
            summary="One stored model's manifest")
def show(model_id: ITEM_ID, settings: SettingsDep) -> ModelOut:
    return ModelOut(**_manifest(settings, model_id))


@router.get("/{model_id}/file", summary="Download the stored model file as uploaded",
            responses={**ERRORS, 200: {"content": {"application/octet-stream": {}}}})
def download(model_id: ITEM_ID, settings: SettingsDep) -> FileResponse:
    from models.user_models import model_path

    m = _manifest(settings, model_id)
    return FileResponse(str(model_path(settings.data_dir, model_id)),
                        media_type="application/octet-stream",
                        filename=f"{m['name']}-{model_id[:12]}.{m['format']}")
