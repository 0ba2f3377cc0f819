"""Routes of ``/v1/datasets``: upload (multipart), list, show and delete a user's datasets."""

from typing import Annotated, Any, Dict, List, Literal, Optional

from fastapi import APIRouter, File, Form, Path, Response, UploadFile
from pydantic import BaseModel, ConfigDict

from agent.server.deps import SettingsDep, StoreDep
from agent.server.errors import ApiError, InUse, ItemNotFound, UploadRefused
from agent.server.jobcheck import USE_LOCK
from agent.server.routes.jobs import ERRORS
from agent.server.store import JobStore

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

ITEM_ID = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", min_length=64, max_length=64,
                              description="id (sha256, 64 hex digits)")]


class DatasetOut(BaseModel):
    """A stored dataset's manifest: ``input_shape`` (NHWC or ``(features,)``),
    ``num_classes``, ``class_names``, ``n_train`` / ``n_test`` examples and per class,
    ``split`` (``stratified`` with seed and test fraction, or ``user``),
    ``normalisation`` (mean and std of the training part), ``bytes`` stored, and
    the rest of the manifest."""

    id: str
    name: str
    format: str
    input_shape: List[int]
    num_classes: int
    class_names: List[str]
    n_train: int
    n_test: int
    split: Dict[str, Any]
    created_at: str

    model_config = ConfigDict(extra="allow")


class DatasetList(BaseModel):
    items: List[DatasetOut]


def jobs_using(store: JobStore, field: str, item_id: str) -> List[str]:
    """Ids of queued or running jobs whose request names ``field == item_id``."""
    out = []
    for status in ("queued", "running"):
        offset = 0
        while True:
            recs, total = store.list(500, offset, status)
            out += [r.id for r in recs if r.request.get(field) == item_id]
            offset += 500
            if offset >= total:
                break
    return out


def refused(e: Exception) -> ApiError:
    """A reader's error as a 4xx naming its field (the message already does)."""
    from models.data.user import UnknownUserDataset
    from models.user_models import UnknownUserModel

    if isinstance(e, (UnknownUserDataset, UnknownUserModel)):
        return ItemNotFound(str(e))
    return UploadRefused(str(e))


@router.post("", status_code=201, response_model=DatasetOut, responses={**ERRORS, 200: {
    "model": DatasetOut, "description": "the same content was already stored"}},
    summary="Upload a dataset: .npz, .csv or a .zip of images (one folder per class)")
def upload(settings: SettingsDep, response: Response,
           file: Annotated[UploadFile, File(description=".npz (x, y), .csv or .zip of images")],
           name: Annotated[str, Form(min_length=1, max_length=64)],
           label_column: Annotated[str, Form(max_length=128, description="CSV")] = "label",
           missing: Annotated[Literal["refuse", "mean"], Form(description="CSV")] = "refuse",
           split_column: Annotated[Optional[str], Form(max_length=128,
                                                       description="CSV: train/test")] = None,
           image_size: Annotated[Optional[str], Form(max_length=16,
                                                     description="images: HxW")] = None,
           channels: Annotated[int, Form(ge=1, le=3, description="images: 1 or 3")] = 3,
           test_fraction: Annotated[float, Form(ge=0.05, le=0.5)] = 0.25,
           seed: Annotated[int, Form(ge=0, le=2**31 - 1)] = 0) -> DatasetOut:
    from models.data.user import ImportOptions, import_dataset, read_upload
    from models.data.user_read import UserDataError

    opts = ImportOptions(name=name, label_column=label_column, missing=missing,
                         split_column=split_column or None, image_size=image_size,
                         channels=channels, test_fraction=test_fraction, seed=seed)
    filename = file.filename or "upload"
    try:
        opts.check()
        data = file.file.read()
        fmt, raw = read_upload(data, filename, opts, settings.max_unpacked_bytes)
        manifest, created = import_dataset(settings.data_dir, fmt, raw, opts, filename)
    except UserDataError as e:
        raise refused(e) from None
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/v1/datasets/{manifest['id']}"
    return DatasetOut(**manifest)


@router.get("", response_model=DatasetList, responses=ERRORS, summary="Stored datasets, newest first")
def list_all(settings: SettingsDep) -> DatasetList:
    from models.data.user import list_datasets

    return DatasetList(items=[DatasetOut(**m) for m in list_datasets(settings.data_dir)])


@router.get("/{dataset_id}", response_model=DatasetOut, responses=ERRORS,
            summary="One stored dataset's manifest")
def show(dataset_id: ITEM_ID, settings: SettingsDep) -> DatasetOut:
    from models.data.user import read_manifest
    from models.data.user_read import UserDataError

    try:
        return DatasetOut(**read_manifest(settings.data_dir, dataset_id))
    except UserDataError as e:
        raise refused(e) from None


@router.delete("/{dataset_id}", status_code=204, responses=ERRORS,
               summary="Delete a stored dataset (409 while a queued or running job uses it)")
def delete(dataset_id: ITEM_ID, settings: SettingsDep, store: StoreDep) -> Response:
    from models.data.user import delete_dataset
    from models.data.user_read import UserDataError

    with USE_LOCK:
        users = jobs_using(store, "dataset_id", dataset_id)
        if users:
            raise InUse(f"dataset_id: {dataset_id!r} is used by job {users[0]} "
                        f"({len(users)} queued or running); cancel or wait for it")
        try:
            delete_dataset(settings.data_dir, dataset_id)
        except UserDataError as e:
            raise refused(e) from None
    return Response(status_code=204)
