"""The DMS settings the project runs with: the S3 target endpoint's `S3Settings` and the task settings.

Both live in JSON files next to this module. The AWS resource sends them to DMS unchanged; the local engine
obeys the very same values, so switching `DataFormat` to csv or lowering `MaxFileSize` changes the local
output as it would change DMS's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consorcio_core.dms_endpoint import (  # noqa: F401 - re-exported
    ENDPOINT_DEFAULTS,
    REPLACING_PREP_MODES,
    EndpointSettings,
    SettingsError,
    TaskSettings,
)

HERE = Path(__file__).parent
ENDPOINT_FILE = HERE / "s3_endpoint_settings.json"
TASK_FILE = HERE / "task_settings.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SettingsError(f"cannot read DMS settings {path}: {err}") from None


def endpoint_settings(path: Path | None = None) -> EndpointSettings:
    """The S3 target endpoint's S3Settings, validated: the one reader of `s3_endpoint_settings.json`. `.raw`
    is the file as written (what the AWS resource sends to modify-endpoint); unset keys read as DMS's defaults."""
    return EndpointSettings(_read(path or ENDPOINT_FILE))


def load_task_settings(path: Path | None = None) -> dict[str, Any]:
    """The ReplicationTaskSettings as written in the file (what the resource sends to modify-replication-task)."""
    return _read(path or TASK_FILE)


@dataclass(frozen=True)
class DmsSettings:
    endpoint: EndpointSettings = field(default_factory=endpoint_settings)
    task: TaskSettings = field(default_factory=lambda: TaskSettings(load_task_settings()))

    def with_endpoint(self, **overrides: Any) -> DmsSettings:
        """A copy with some S3Settings changed (e.g. DataFormat="csv", MaxFileSize=64)."""
        return DmsSettings(EndpointSettings({**self.endpoint.raw, **overrides}), self.task)

    def with_target_metadata(self, **overrides: Any) -> DmsSettings:
        raw = dict(self.task.raw)
        raw["TargetMetadata"] = {**raw.get("TargetMetadata", {}), **overrides}
        return DmsSettings(self.endpoint, TaskSettings(raw))


def load_settings() -> DmsSettings:
    """Both files, validated."""
    return DmsSettings()
