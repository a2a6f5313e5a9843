"""`plan --sweep` (chart data, ASCII and SVG) and mixed-GPU pools (`--gpu 4090,3060`), through the typed
results: the sweep's last fitting point agrees with the independent binary search of --max-context, and
a pool's llama.cpp split is the largest -ngl the cards hold, -ts by each card's free memory."""

from __future__ import annotations

import itertools
import shlex
import xml.etree.ElementTree as ET

import pytest

from llm_mem.api import run_plan
from llm_mem.planner.sweep import ascii_chart, svg_chart
from llm_mem.requests import ModelRef, PlanRequest
from llm_mem.workload import Workload


def _plan(model: str, gpu: str, **kw):
    extra = {k: kw.pop(k) for k in ("sweep", "plot", "max_context", "host_ram") if k in kw}
    return run_plan(PlanRequest(model=ModelRef(name=model), gpu=gpu, workload=Workload(**kw), **extra))


def test_context_sweep_stops_where_max_context_search_stops(tmp_path):
    s = _plan("meta-llama/Llama-3.1-8B", "L4", runtime="vllm", sweep="context", plot=tmp_path / "m.svg",
              max_num_seqs=1)
    values = [p.value for p in s.points]
    assert values[0] == 512 and values[-1] == 131072 and all(b == 2 * a for a, b in itertools.pairwise(values))
    kv = [p.components["kv_cache"] for p in s.points]
    assert kv == sorted(kv) and kv[2] - kv[1] == 2 * (kv[1] - kv[0])  # linear in context (+1 null block)
    assert all(p.total_bytes == sum(p.components.values()) for p in s.points)
    largest = _plan("meta-llama/Llama-3.1-8B", "L4", runtime="vllm", max_context=True, max_num_seqs=1)
    stop = s.stops["single"]
    assert stop is not None and stop <= largest.largest < 2 * stop  # the binary search lies in the last bin
    # the chart: one stacked bar per point, the budget line, every component in the legend
    svg = ET.parse(tmp_path / "m.svg").getroot()
    assert svg.tag.endswith("svg") and s.plot == str(tmp_path / "m.svg")
    rects = [r for r in svg.iter() if r.tag.endswith("rect")]
    legend = {c for p in s.points for c in p.components}
    assert len(rects) == sum(len(p.components) for p in s.points) + len(legend)
    assert any(t.text and t.text.startswith("budget ") for t in svg.iter() if t.tag.endswith("text"))
    lines = ascii_chart(s)
    assert len(lines) == len(s.points) + 1 and "budget" in lines[-1]


def test_batch_sweep_and_escaped_svg_text(tmp_path):
    s = _plan("meta-llama/Llama-3.1-8B", "L4", runtime="vllm", sweep="batch", context=4096)
    assert [p.value for p in s.points] == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    hostile = s.model_copy(update={"model": "<script>alert(1)</script>&"})
    ET.fromstring(svg_chart(hostile))  # parses: the name is escaped, not markup


def test_plot_to_an_unwritable_path_is_one_usage_error(tmp_path):
    from llm_mem.errors import UsageError

    with pytest.raises(UsageError, match="cannot write --plot"):
        _plan("meta-llama/Llama-3.1-8B", "L4", runtime="vllm", sweep="context", plot=tmp_path / "no" / "x.svg")


def _words(line: str) -> dict[str, str]:
    w = shlex.split(line)
    return {w[i]: w[i + 1] for i in range(len(w) - 1) if w[i].startswith("-")}


def test_mixed_pool_offloads_the_layers_it_cannot_hold():
    """70B Q4_K_M (38.9 GB of weights) on a 24 GB 4090 plus a 12 GB 3060: the split alone does not fit,
    so llama.cpp keeps as many layers as the two cards hold and the rest in host RAM."""
    p = _plan("meta-llama/Llama-2-70b-hf", "4090,3060", quant="Q4_K_M", host_ram=256 * 10**9)
    split = next(o for o in p.options if o.strategy == "pipeline")
    off = next(o for o in p.options if o.strategy == "offload")
    assert not split.fits and off.fits and off.gpus == 2
    args = _words(next(x for x in off.launch if x.startswith("llama-server")))
    ngl = int(args["-ngl"])
    assert ngl == off.gpu_layers and 1 < ngl < 81 and args["-sm"] == "layer"
    ts = [float(x) for x in args["-ts"].split(",")]
    assert len(ts) == 2 and ts[0] > ts[1] * 1.8  # the 4090 takes about twice the 3060's share
    assert off.host_bytes > 0
    # maximal: one more layer on the GPUs no longer fits
    more = _plan("meta-llama/Llama-2-70b-hf", "4090,3060", quant="Q4_K_M", n_gpu_layers=ngl + 1)
    again = next(o for o in more.options if o.strategy == "pipeline")  # a given -ngl: the split it asks for
    assert again.gpu == off.gpu and again.per_gpu_bytes > off.budget_bytes >= off.per_gpu_bytes


def test_vllm_pool_counts_every_card_as_the_smallest():
    p = _plan("meta-llama/Llama-3.1-8B", "4090,3060", runtime="vllm")
    assert p.options and all("every card counts as RTX-3060-12GB" in o.reason for o in p.options)
