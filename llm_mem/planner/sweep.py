"""`plan MODEL --gpu X --sweep context|batch`: memory against context (or batch) on one GPU layout,
stacked by component, with the budget line and where each strategy stops fitting; ``--plot FILE.svg``
writes the same chart as SVG (hand-written: no plotting dependency)."""

from __future__ import annotations

from html import escape as xml_escape

from pydantic import BaseModel, ConfigDict, Field

from llm_mem.catalog import Gpu
from llm_mem.spec import ResolvedModel
from llm_mem.units import GB
from llm_mem.workload import Workload

# Points of a sweep: contexts double from 512 tokens to the model's maximum, batches from 1 to 256
# (past vLLM's small-GPU max_num_seqs default of 256 the engines queue rather than batch).
CONTEXT_START = 512
BATCH_POINTS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_COLOURS = {"weights": "#4C72B0", "kv_cache": "#DD8452", "activations": "#55A868", "logits": "#C44E52",
            "cuda_graphs": "#8172B3", "runtime_overhead": "#937860"}
_RICH = {"weights": "blue", "kv_cache": "dark_orange", "activations": "green", "logits": "red",
         "cuda_graphs": "magenta", "runtime_overhead": "yellow"}


class SweepPoint(BaseModel):
    """Memory at one context (or batch) on the busiest GPU of the layout."""

    model_config = ConfigDict(frozen=True)

    value: int
    components: dict[str, int]
    total_bytes: int
    fits: dict[str, bool]  # per strategy: whether it fits at this value


class Sweep(BaseModel):
    """The chart's data (`plan --sweep ... --json`)."""

    model_config = ConfigDict(frozen=True)

    schema_version: str = "1"
    model: str
    gpu: str
    gpus: int
    runtime: str
    field: str  # "context" or "batch"
    budget_bytes: int
    points: list[SweepPoint]
    stops: dict[str, int | None] = Field(default_factory=dict)  # per strategy: the largest value that fits
    plot: str | None = None  # the SVG file written, if any


def sweep(model: ResolvedModel, workload: Workload, gpu: Gpu, count: int | None, field: str,
          host_ram: int | None = None) -> Sweep:
    """Memory and each strategy's verdict at every point of the sweep."""
    from llm_mem.planner import plan

    if field == "context":
        top = model.spec.max_position_embeddings or 131072
        values = []
        v = CONTEXT_START
        while v < top:
            values.append(v)
            v *= 2
        values.append(top)
    else:
        values = list(BATCH_POINTS)
    points: list[SweepPoint] = []
    budget = 0
    n = count or 1
    for v in values:
        p = plan(model, workload.replace(**{field: v}), [(gpu, count or 1)], host_ram=host_ram, hint=False)
        resident = next((o for o in p.options if o.strategy in ("single", "tensor_parallel", "pipeline")), None)
        ref = resident or p.options[0]
        budget, n = ref.budget_bytes, ref.gpus
        from llm_mem.estimate import estimate

        w = workload.replace(**{field: v})
        if w.runtime == "vllm" and ref.layout.tensor_parallel_size * ref.layout.pipeline_parallel_size > 1:
            w = w.replace(tensor_parallel_size=ref.layout.tensor_parallel_size,
                          pipeline_parallel_size=ref.layout.pipeline_parallel_size,
                          enable_expert_parallel=ref.layout.enable_expert_parallel)
        r = estimate(model, w, gpu)
        comps = {c.name: c.bytes for c in r.components if c.bytes}
        if n > 1 and w.runtime != "vllm":  # a layer split: each GPU holds its share of weights and KV
            for k in ("weights", "kv_cache"):
                if k in comps:
                    comps[k] //= n
        fits: dict[str, bool] = {}
        for o in p.options:
            fits[o.strategy] = fits.get(o.strategy, False) or o.fits
        points.append(SweepPoint(value=v, components=comps, total_bytes=sum(comps.values()), fits=fits))
    strategies = sorted({s for pt in points for s in pt.fits})
    stops = {s: max((pt.value for pt in points if pt.fits.get(s)), default=None) for s in strategies}
    return Sweep(model=model.name, gpu=gpu.id, gpus=n, runtime=str(workload.runtime), field=field,
                 budget_bytes=budget, points=points, stops=stops)


def ascii_chart(s: Sweep, width: int = 60) -> list[str]:
    """Rich-markup lines: one stacked bar per point, the budget as a '|' mark."""
    top = max([p.total_bytes for p in s.points] + [s.budget_bytes]) or 1
    scale = width / top
    mark = int(s.budget_bytes * scale)
    lines = []
    for p in s.points:
        bar = ""
        used = 0
        for name, b in p.components.items():
            cells = round(b * scale)
            if cells:
                bar += f"[{_RICH.get(name, 'white')}]{'█' * cells}[/]"
                used += cells
        pad = max(mark - used, 0)
        over = "[red]▶[/]" if used > mark else ""
        bar += " " * pad + ("[bold]|[/]" if used <= mark else "") + over
        label = f"{p.value:>8,}"
        fit = ", ".join(k for k, ok in p.fits.items() if ok) or "nothing fits"
        lines.append(f"{label} {bar} {p.total_bytes / GB:6.1f} GB  [dim]{fit}[/dim]")
    legend = "  ".join(f"[{_RICH.get(k, 'white')}]█[/] {k}" for k in _components(s))
    return [*lines, f"{'':>8} {legend}   [bold]|[/] budget {s.budget_bytes / GB:.1f} GB per GPU"]


def _components(s: Sweep) -> list[str]:
    names: list[str] = []
    for p in s.points:
        names += [k for k in p.components if k not in names]
    return names


def svg_chart(s: Sweep) -> str:
    """The sweep as a stacked bar chart in SVG, with the budget line and each strategy's last fit."""
    w, h, left, bottom, top_pad = 760, 420, 70, 60, 40
    plot_w, plot_h = w - left - 180, h - bottom - top_pad
    top = max([p.total_bytes for p in s.points] + [s.budget_bytes]) * 1.05 or 1
    bar_w = plot_w / max(len(s.points), 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="20" font-size="14">{xml_escape(s.model)} on {s.gpus} x {xml_escape(s.gpu)} '
           f'({xml_escape(s.runtime)}): memory per GPU by {s.field}</text>']

    def y(v: float) -> float:
        return top_pad + plot_h - v / top * plot_h

    for i, p in enumerate(s.points):
        x = left + i * bar_w + bar_w * 0.1
        base = 0.0
        for name, b in p.components.items():
            out.append(f'<rect x="{x:.1f}" y="{y(base + b):.1f}" width="{bar_w * 0.8:.1f}" '
                       f'height="{y(base) - y(base + b):.1f}" fill="{_COLOURS.get(name, "#999")}"/>')
            base += b
        out.append(f'<text x="{x + bar_w * 0.4:.1f}" y="{top_pad + plot_h + 15}" text-anchor="middle">'
                   f'{p.value:,}</text>')
    by = y(s.budget_bytes)
    out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{by:.1f}" y2="{by:.1f}" stroke="black" '
               f'stroke-dasharray="6 3"/>')
    out.append(f'<text x="{left + plot_w + 5}" y="{by + 4:.1f}">budget {s.budget_bytes / GB:.1f} GB</text>')
    for k in range(5):
        v = top * k / 4
        out.append(f'<text x="{left - 5}" y="{y(v) + 4:.1f}" text-anchor="end">{v / GB:.0f} GB</text>')
    ly = top_pad
    for name in _components(s):
        colour = _COLOURS.get(name, "#999")
        out.append(f'<rect x="{left + plot_w + 5}" y="{ly}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{left + plot_w + 20}" y="{ly + 9}">{xml_escape(name)}</text>')
        ly += 16
    ly += 10
    for strategy, stop in s.stops.items():
        text = f"{strategy}: fits up to {stop:,}" if stop else f"{strategy}: never fits"
        out.append(f'<text x="{left + plot_w + 5}" y="{ly}">{xml_escape(text)}</text>')
        ly += 14
    out.append(f'<text x="{left + plot_w / 2}" y="{h - 15}" text-anchor="middle">{s.field}</text></svg>')
    return "\n".join(out) + "\n"
