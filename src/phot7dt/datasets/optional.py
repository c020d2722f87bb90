"""``OptionalDataset``: any dataset whose absence is not an error.

It loads ``None`` when the wrapped data does not exist (the truth of a real
tile, the plots of a stage that did not run), so QA pipelines run on whatever a
run produced.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from kedro.io import AbstractDataset

__all__ = ["OptionalDataset"]


class OptionalDataset(AbstractDataset[Any, Any]):
    """Any dataset whose absence is not an error: ``load`` gives None when it does not exist.

    Example (catalog YAML)::

        validation_truth:
          type: phot7dt.datasets.OptionalDataset
          dataset:
            type: pandas.CSVDataset
            filepath: data/01_raw/sample/truth.csv

    Parameters
    ----------
    dataset : dict or AbstractDataset
        The wrapped dataset (catalog configuration or instance); saves go to it.
    metadata : dict, optional
        Free metadata, ignored by Kedro.
    """

    def __init__(
        self, *, dataset: dict[str, Any] | AbstractDataset, metadata: dict[str, Any] | None = None
    ) -> None:
        if isinstance(dataset, AbstractDataset):
            self._dataset = dataset
        else:
            self._dataset = AbstractDataset.from_config("optional_inner", deepcopy(dataset))
        self.metadata = metadata

    def load(self) -> Any:
        """The wrapped dataset's data, or None when it does not exist."""
        if not self._dataset.exists():
            return None
        return self._dataset.load()

    def save(self, data: Any) -> None:
        """Save through the wrapped dataset."""
        self._dataset.save(data)

    def _exists(self) -> bool:
        return self._dataset.exists()

    def _describe(self) -> dict[str, Any]:
        return {"dataset": type(self._dataset).__name__, **self._dataset._describe()}
