"""Instruct Studio: prompt templates, zero/few-shot comparisons and QLoRA tuning on real models."""

__version__ = "0.1.0"
