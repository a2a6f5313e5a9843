"""The estimate-vs-measured table printed after the report by `estimate --verify`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_mem.units import GB, GIB

if TYPE_CHECKING:
    from llm_mem.report import Report


def _gb(n: int | None) -> str:
    return "-" if n is None else f"{n / GB:,.3f}"


def render_verify(report: Report, out: Any) -> None:
    """One row per component: estimate, measurement (scaled to the whole model) and the error."""
    from rich.table import Table

    v = report.verify
    if not v:
        return
    ctx = f"context {v['measured_context']:,}"
    if v["measured_context"] != v["requested_context"]:
        ctx += f" (extrapolated to {v['requested_context']:,})"
    t = Table(title=f"--verify: {v['measured_layers']} layer(s) measured on {v['device']}, {v['dtype']}, "
                    f"{v['attention']}, batch {v['batch']}, {ctx}",
              caption=f"{v['method']}; torch {v['torch_version']}, transformers {v['transformers_version']}; "
                      "error = (estimate - measured) / measured",
              title_justify="left", caption_justify="left")
    t.add_column("component")
    t.add_column("estimate GB (10^9 B)", justify="right")
    t.add_column("measured GB (10^9 B)", justify="right")
    t.add_column("error", justify="right")
    for c in v["components"]:
        err = c["error_pct"]
        t.add_row(c["name"], _gb(c["estimate_bytes"]), _gb(c["measured_bytes"]),
                  "not measured" if c["measured_bytes"] is None else ("-" if err is None else f"{err:+.1f}%"))
    t.add_section()
    t.add_row("[bold]total[/bold]", _gb(v["estimate_total_bytes"]), f"[bold]{_gb(v['calibrated_total_bytes'])}[/bold]",
              "calibrated")
    out.print(t)
    total = v["calibrated_total_bytes"]
    out.print(f"calibrated total: {total / GB:,.2f} GB = {total / GIB:,.2f} GiB "
              f"(estimate {v['estimate_total_bytes'] / GB:,.2f} GB); peak of the reduced model "
              f"{v['peak_bytes'] / GB:,.3f} GB (weights included), measured in {v['seconds']:.1f} s")
    for n in v["notes"]:
        out.print(f"[dim]verify:[/dim] {n}")
