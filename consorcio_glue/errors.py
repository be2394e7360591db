"""The job's one error type, and the rule that keeps data values out of its messages."""

from __future__ import annotations

import logging
import re

#: every module logs here; Pipes forwards it to Dagster (`consorcio_glue.pipes`)
LOG = logging.getLogger("consorcio_glue")


class JobError(Exception):
    """A failure whose message names table, column, file and key — and never a data value of a PII column."""


def no_values(message: str) -> str:
    """Arrow's messages may quote a data value or a CSV row: keep only the part before it."""
    return re.split(r"[:]\s*['\"]|\n", message, maxsplit=1)[0].strip()[:300]
