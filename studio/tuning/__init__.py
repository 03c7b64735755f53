"""LoRA / QLoRA instruction tuning: config, data formatting, the training worker, jobs, adapters."""
