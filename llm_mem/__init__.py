"""llm-mem: how much memory an LLM needs, and on what hardware it fits."""

__version__ = "0.1.0"
