"""cotvtm: soundtrack video libraries with music distilled from an LLM's chain of thought."""

__version__ = "0.1.0"
