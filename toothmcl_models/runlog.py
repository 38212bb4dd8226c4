"""Training metrics: one CSV row per logged step (always) and TensorBoard scalars (when installed), rank 0 only."""

from __future__ import annotations

import csv
from pathlib import Path
from types import TracebackType
from typing import Any

METRICS_CSV = "metrics.csv"


class RunLog:
    """Append metrics to ``folder/metrics.csv`` (a column per metric ever logged; blank where a row lacks it) and to
    TensorBoard."""

    def __init__(
        self,
        folder: Path,
        *,
        enabled: bool = True,
        resume_step: int | None = None,
        filename: str = METRICS_CSV,
        tensorboard: bool = True,
    ) -> None:
        """``resume_step``: when resuming from a checkpoint taken after that step, rows logged after it by the
        interrupted run are dropped, so the file reads as one uninterrupted run."""
        self.enabled = enabled
        self.path = folder / filename
        self._columns: list[str] | None = None
        self._tb: Any = None
        if not enabled:
            return
        folder.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and resume_step is not None:
            with self.path.open(newline="") as fh:
                reader = csv.DictReader(fh)
                self._columns = list(reader.fieldnames or [])
                kept = [row for row in reader if int(row["step"]) <= resume_step]
            with self.path.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=self._columns)
                writer.writeheader()
                writer.writerows(kept)
        elif self.path.exists():
            self.path.unlink()  # a fresh run in an old folder starts a fresh file
        if not tensorboard:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # handled: TensorBoard is optional; metrics.csv is always written
            self._tb = None
        else:
            self._tb = SummaryWriter(log_dir=str(folder / "tensorboard"))

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        row = {"step": step, **metrics}
        if self._columns is None:
            self._columns = list(row)
            with self.path.open("w", newline="") as fh:
                csv.DictWriter(fh, fieldnames=self._columns).writeheader()
        added = [k for k in row if k not in self._columns]
        if added:  # a metric logged for the first time (e.g. an evaluation): widen the file, rows kept
            with self.path.open(newline="") as fh:
                kept = list(csv.DictReader(fh))
            self._columns += added
            with self.path.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=self._columns)
                writer.writeheader()
                writer.writerows(kept)
        with self.path.open("a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=self._columns).writerow(row)
        if self._tb is not None:
            for key, value in metrics.items():
                if isinstance(value, int | float):
                    self._tb.add_scalar(key, value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
