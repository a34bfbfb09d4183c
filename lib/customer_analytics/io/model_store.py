"""
Saved segmentation models: a fitted :class:`~pyspark.ml.PipelineModel` and its metadata, in
``<warehouse>/_models/segmentation/<run_id>/`` (``model/`` and ``metadata.json``). The folder
starts with ``_`` so it is never taken for a table; it lives wherever the warehouse does
(``s3a://``, ``dbfs:/``, a local folder), reached through the session's Hadoop file system.

The metadata is written last, so a folder without it (or with it cut short) is an incomplete
save that :meth:`ModelStore.latest` ignores. A model is only ever loaded from a folder under
the configured warehouse's ``_models/segmentation``: the folder's name is its run id.

Examples
--------
>>> store = ModelStore(warehouse)
>>> folder = store.save(SavedModel(model, {"run_id": "r1", "k": 6, "as_of": "2011-06-30", ...}))
>>> store.latest().as_of
datetime.date(2011, 6, 30)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from pyspark.ml import PipelineModel

from customer_analytics.core import catalog
from customer_analytics.core.errors import InputError
from customer_analytics.core.paths import join
from customer_analytics.io import filesystem
from customer_analytics.io.tables import Warehouse

MODEL_SUBFOLDER = "model"
METADATA_FILE = "metadata.json"


@dataclass(frozen=True)
class SavedModel:
    """
    A fitted segmentation pipeline and what it was fitted on.

    ``metadata`` keys: ``run_id``, ``k``, ``features``, ``feature_weights`` (those not 1.0),
    ``names`` (segment id -> [name, action]), ``cluster_ids`` (KMeans cluster index -> the
    segment id it is published as), ``as_of`` (ISO date of the features it was fitted on),
    ``trained_at``.
    """

    model: PipelineModel
    metadata: dict

    @property
    def run_id(self) -> str:
        return self.metadata["run_id"]

    @property
    def k(self) -> int:
        return int(self.metadata["k"])

    @property
    def as_of(self) -> date | None:
        value = self.metadata.get("as_of")
        return date.fromisoformat(value) if value else None

    @property
    def names(self) -> dict[int, tuple[str, str]]:
        """Segment id -> (name, action)."""
        return {int(c): (n, a) for c, (n, a) in self.metadata.get("names", {}).items()}

    @property
    def cluster_ids(self) -> dict[int, int]:
        """KMeans cluster index -> segment id (the index itself when not recorded)."""
        saved = self.metadata.get("cluster_ids") or {}
        return {i: int(saved.get(str(i), i)) for i in range(self.k)}


class ModelStore:
    """The saved segmentation models of one warehouse."""

    def __init__(self, warehouse: Warehouse) -> None:
        self._fs = filesystem.for_session(warehouse.spark)
        self.root = join(warehouse.path, catalog.MODELS_FOLDER)

    def save(self, saved: SavedModel) -> str:
        """Save under the metadata's ``run_id``; return the folder's qualified path."""
        folder = join(self.root, saved.run_id)
        saved.model.write().overwrite().save(join(folder, MODEL_SUBFOLDER))
        self._fs.write_text(join(folder, METADATA_FILE), json.dumps(saved.metadata, indent=2))
        return self._fs.qualified(folder)

    def latest(self) -> SavedModel:
        """
        The most recently trained model (by ``trained_at``, then ``run_id``).

        Raises
        ------
        InputError
            When the warehouse holds no saved segmentation model.
        """
        found = self.latest_metadata()
        if found is None:
            raise InputError(
                f"no saved segmentation model under {self.root}: run the segment job with "
                "--mode fit first"
            )
        model = PipelineModel.load(join(self.root, found["run_id"], MODEL_SUBFOLDER))
        return SavedModel(model, found)

    def remove_incomplete(self, older_than_seconds: float) -> list[str]:
        """
        Delete the folders of saves that never finished (no readable metadata: a killed run's)
        and that nothing has written to for ``older_than_seconds``, so a save under way stays.
        Returns their run ids.
        """
        complete = {run_id for run_id, _ in self._saves()}
        idle = self._fs.idle_folders(self.root, older_than_seconds)
        removed = [run_id for run_id in idle if run_id not in complete]
        for run_id in removed:
            self._fs.delete(join(self.root, run_id))
        return removed

    def latest_metadata(self) -> dict | None:
        """The metadata of :meth:`latest` without loading the model; None when there is none."""
        found = [
            (str(metadata.get("trained_at", "")), run_id, metadata)
            for run_id, metadata in self._saves()
        ]
        if not found:
            return None
        return max(found, key=lambda item: (item[0], item[1]))[2]

    def _saves(self) -> Iterator[tuple[str, dict]]:
        """(run id, metadata) of every complete save."""
        for run_id in self._fs.list_dirs(self.root):
            path = join(self.root, run_id, METADATA_FILE)
            if not self._fs.is_file(path):
                continue
            try:
                metadata = json.loads(self._fs.read_text(path))
            except ValueError:  # cut short by a killed writer: an incomplete save
                continue
            # The folder is the model: a run id in the file never points elsewhere.
            metadata["run_id"] = run_id
            yield run_id, metadata
