"""Artifacts of feed versions on disk: ``<data_dir>/feeds/<version>/``.

Each version directory holds ``original.zip`` (the upload, byte for byte), ``report.json``
(the validation report), ``compiled.npz`` (the compiled timetable, so a restart never
recompiles) and ``realtime_keys.npz`` (stop_sequence / direction_id for GTFS-RT matching). A network of several feeds caches its merged timetable under
``<data_dir>/feeds/networks/<v1-v2-...>/compiled.npz``. Files are written to a temporary name
and renamed, so a crash never leaves a half-written artifact under its final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gtfs.compiled import CompiledTimetable
from gtfs.realtime.keys import RealtimeKeys


class ArtifactStore:
    """Where versions' files live."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def version_dir(self, version_id: int) -> Path:
        return self.root / str(int(version_id))

    def original(self, version_id: int) -> Path:
        return self.version_dir(version_id) / "original.zip"

    def report_path(self, version_id: int) -> Path:
        return self.version_dir(version_id) / "report.json"

    def compiled_path(self, version_id: int) -> Path:
        return self.version_dir(version_id) / "compiled.npz"

    def network_path(self, version_ids: Iterable[int]) -> Path:
        key = "-".join(str(v) for v in sorted(version_ids))
        return self.root / "networks" / key / "compiled.npz"

    def incoming(self) -> Path:
        d = self.root / ".incoming"
        d.mkdir(parents=True, exist_ok=True)
        return d

    # --- writes ------------------------------------------------------------------------
    def adopt_original(self, version_id: int, tmp: Path) -> Path:
        dest = self.original(version_id)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(tmp), dest)
        return dest

    def write_report(self, version_id: int, report: dict[str, Any]) -> None:
        dest = self.report_path(version_id)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report, ensure_ascii=False, default=str), encoding="utf-8")
        os.replace(tmp, dest)

    def load_keys(self, compiled: Path) -> RealtimeKeys | None:
        p = compiled.parent / "realtime_keys.npz"
        if not p.is_file():
            return None
        return RealtimeKeys.load(p)

    def read_report(self, version_id: int) -> dict[str, Any] | None:
        p = self.report_path(version_id)
        if not p.is_file():
            return None
        data: dict[str, Any] = json.loads(p.read_text(encoding="utf-8"))
        return data

    def save_compiled(
        self, dest: Path, tt: CompiledTimetable, keys: RealtimeKeys | None = None
    ) -> None:
        """Write ``compiled.npz`` (and the GTFS-RT matching keys beside it)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        if keys is not None:
            tmp_keys = dest.parent / "realtime_keys.tmp.npz"
            keys.save(tmp_keys)
            os.replace(tmp_keys, dest.parent / "realtime_keys.npz")
        # np.savez appends ".npz" to names without it, so the temp name keeps the suffix.
        fd, tmp_name = tempfile.mkstemp(suffix=".npz", dir=dest.parent)
        os.close(fd)
        try:
            tt.save(tmp_name)
            os.replace(tmp_name, dest)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
