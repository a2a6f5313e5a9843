"""Check results: one verdict per entry, the report `llm-mem check --json` prints, and JUnit XML."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = "1"
Status = Literal["pass", "fail", "error"]
CheckStrategy = Literal["single", "tensor_parallel", "pipeline", "data_parallel", "offload", "streaming"]
# XML 1.0 allows tab, newline, carriage return and characters from U+0020 up (minus surrogates and
# U+FFFE/U+FFFF); anything else in a name or reason would make the JUnit file unparseable.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class CheckResult(BaseModel):
    """The verdict on one entry. Sizes are bytes per GPU; ``headroom_bytes`` is the free memory the
    entry asked for (``min_headroom``), ``budget_bytes`` what the runtime lets the model use."""

    model_config = ConfigDict(frozen=True)

    name: str
    model: str
    gpu: str
    count: int
    status: Status
    strategy: Optional[CheckStrategy] = None
    per_gpu_bytes: Optional[int] = None
    budget_bytes: Optional[int] = None
    headroom_bytes: Optional[int] = None
    reason: str
    line: Optional[int] = None


class CheckReport(BaseModel):
    """What `llm-mem check --json` prints (schema: docs/schemas/check.schema.json)."""

    model_config = ConfigDict(frozen=True)

    schema_version: str = SCHEMA_VERSION
    file: Optional[str] = None
    results: list[CheckResult]
    passed: int
    failed: int
    errors: int

    @property
    def exit_code(self) -> int:
        """0 when every entry passes, 1 when one fails, 2 when one could not be evaluated."""
        return 2 if self.errors else 1 if self.failed else 0

    def stderr_lines(self, as_json: bool) -> list[str]:
        """Entries that could not be evaluated, in both modes (emit writes them to stderr)."""
        return [f"error: {r.name}: {r.reason}" for r in self.results if r.status == "error"]


def _xml_text(text: str) -> str:
    """Text XML 1.0 can hold: characters it forbids become U+FFFD."""
    return _XML_ILLEGAL.sub("\ufffd", text)


def junit_xml(report: CheckReport) -> str:
    """The report as JUnit XML: testsuite ``llm-mem``, one testcase per entry, ``<failure>`` for a
    fail and ``<error>`` for an entry that could not be evaluated, each with the reason."""
    import xml.etree.ElementTree as ET

    suite = ET.Element("testsuite", name="llm-mem", tests=str(len(report.results)), failures=str(report.failed),
                       errors=str(report.errors), skipped="0")
    if report.file:
        suite.set("file", _xml_text(report.file))
    classname = "llm-mem.check" + (f".{Path(report.file).stem}" if report.file else "")
    for r in report.results:
        case = ET.SubElement(suite, "testcase", name=_xml_text(r.name), classname=_xml_text(classname))
        if report.file and r.line:
            case.set("file", _xml_text(report.file))
            case.set("line", str(r.line))
        reason = _xml_text(r.reason)
        if r.status == "fail":
            ET.SubElement(case, "failure", message=reason, type="does-not-fit").text = reason
        elif r.status == "error":
            ET.SubElement(case, "error", message=reason, type="check-error").text = reason
        else:
            ET.SubElement(case, "system-out").text = reason
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
