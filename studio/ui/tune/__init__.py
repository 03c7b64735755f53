"""Tune tab: check and launch a LoRA / QLoRA run, follow it, stop or resume it, find its adapter."""
