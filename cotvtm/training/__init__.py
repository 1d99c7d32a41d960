"""Distillation of the CoT teacher into the two-stage prior, on Ray Train."""
