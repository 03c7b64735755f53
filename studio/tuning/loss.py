"""Logits only where the loss is taken: the LM head runs on the answer positions alone.

TRL's trainers ask the model for per-token log-probabilities with `fused_lm_head=True` (SFT for
its loss, DPO, KTO and the RL trainers for their log-ratios). TRL's own fused head keeps memory
bounded by projecting in tiles, but off CUDA it projects *every* position through the
vocabulary-wide head (49,152 columns for SmolLM2) and zeroes the masked ones afterwards. With the
prompt masked most of that is waste: this head gathers the hidden states whose next-token label
is trained, projects only those (in checkpointed chunks, so a run with loss on every token stays
bounded too) and returns TRL's own `FusedCausalLMOutput`, so every trainer that calls the fused
head gets it unchanged.

Models whose logits are rescaled or soft-capped before the softmax (Gemma 2, Cohere, Granite, ...)
and mixture-of-experts models (router losses) keep TRL's head: `use_answer_only_head` says no.
"""

from __future__ import annotations

import types
from typing import Any

IGNORE = -100
# Answer positions projected at once: a chunk's fp32 logits are CHUNK x vocabulary floats (50 MB
# for SmolLM2), and only the last, partial chunk keeps them for backward.
CHUNK = 256
# Config fields that change the logits after the head; a model with any of them set keeps TRL's.
RESCALED = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier")


def use_answer_only_head(model: Any) -> bool:
    """Whether the answer-only head computes this model's logits exactly (plain linear head)."""
    text = model.config.get_text_config()
    rescaled = any(getattr(text, name, None) is not None for name in RESCALED)
    rescaled = rescaled or getattr(text, "logits_scaling", None) not in (None, 1, 1.0)
    moe = bool(getattr(text, "output_router_logits", False))
    return not rescaled and not moe and model.get_output_embeddings() is not None


def add_answer_only_head(model: Any) -> None:
    """Make `model(..., labels=..., fused_lm_head=True)` project only the trained positions.

    `model` is the transformers model (under PEFT, `get_base_model()`), after TRL added its fused
    head; calls without `fused_lm_head` (generation, plain forwards) go to that forward as before.
    """
    previous = model.forward

    def forward(self: Any, *args: Any, fused_lm_head: bool = False, **kwargs: Any) -> Any:
        if not fused_lm_head or kwargs.get("shift_labels") is not None:
            # Pre-shifted labels (context parallelism) stay with TRL's head.
            return previous(*args, fused_lm_head=fused_lm_head, **kwargs)
        labels = kwargs.pop("labels")
        num_items = kwargs.pop("num_items_in_batch", None)
        kwargs["use_cache"] = False
        hidden = self.base_model(*args, **kwargs).last_hidden_state
        return answer_log_probs(hidden, labels, self.get_output_embeddings(), num_items)

    model.forward = types.MethodType(forward, model)


def answer_log_probs(hidden: Any, labels: Any, head: Any, num_items: Any = None) -> Any:
    """TRL's FusedCausalLMOutput from the last hidden states, projecting only trained positions.

    Position t predicts token t + 1, so the hidden states lose their last position and the labels
    their first; per-token fields are zero where the label is IGNORE, as in TRL's head.
    """
    import torch  # lazy: torch is slow to import; only training needs it
    from trl.trainer.utils import FusedCausalLMOutput  # lazy: trl pulls in transformers

    labels = labels[:, 1:].to(head.weight.device)
    mask = labels != IGNORE
    picked = hidden[:, :-1].to(head.weight.device)[mask]
    targets = labels[mask]
    pieces = [
        _chunk(picked[start : start + CHUNK], targets[start : start + CHUNK], head)
        for start in range(0, max(len(targets), 1), CHUNK)
    ]
    log_probs, entropy, top1 = (torch.cat(part) for part in zip(*pieces, strict=True))
    shaped = [
        torch.zeros(mask.shape, dtype=part.dtype, device=mask.device).masked_scatter(mask, part)
        for part in (log_probs, entropy, top1)
    ]
    count = mask.sum().clamp(min=1) if num_items is None else num_items
    return FusedCausalLMOutput(
        loss=-shaped[0].sum() / count,
        log_probs=shaped[0],
        entropy=shaped[1],
        is_top1=shaped[2],
        label_mask=mask,
    )


def _chunk(hidden: Any, targets: Any, head: Any) -> tuple[Any, Any, Any]:
    """(log-probability of each target, entropy, whether it is the top token) for one chunk."""
    from torch.utils.checkpoint import checkpoint  # lazy: torch is slow to import

    if hidden.requires_grad and len(targets) == CHUNK:
        # A full chunk: recompute its logits in backward rather than keep them (bounded memory).
        return tuple(checkpoint(_stats, hidden, targets, head, use_reentrant=False))
    return _stats(hidden, targets, head)


def _stats(hidden: Any, targets: Any, head: Any) -> tuple[Any, Any, Any]:
    import torch  # lazy: torch is slow to import; only training needs it

    logits = head(hidden).float()
    normalised = torch.log_softmax(logits, dim=-1)
    log_probs = normalised.gather(-1, targets[:, None])[:, 0]
    with torch.no_grad():  # TRL's metrics (entropy, token accuracy): no gradient
        entropy = -(normalised.exp() * normalised).sum(-1)
        top1 = logits.argmax(-1) == targets
    return log_probs, entropy, top1
