"""The answer-only LM head (studio.tuning.loss): on a real 4-bit QLoRA batch its loss and LoRA
gradients equal the model's own full-logits computation to 1e-5 while the head sees only the
trained positions; split into checkpointed chunks it still equals a plain cross-entropy, values
and gradients; and models whose logits are rescaled after the head keep TRL's."""

from __future__ import annotations

from typing import Any

import pytest

from studio.hosting import HostingPolicy
from studio.settings import Settings
from studio.tuning import loss
from studio.tuning.config import flat_config
from tests import needs


@pytest.mark.model
def test_answer_only_head_equals_the_full_logits_loss_and_sees_only_answers(
    settings: Settings,
) -> None:
    import torch

    from studio.models.loading import LoadRequest, load_model
    from studio.tuning.data import prepare_data
    from studio.tuning.trainer import build_trainer

    config = flat_config(
        name="head",
        data=str(needs.shared_data("sst2", "train.tsv")),
        template="sst2-sentiment",
        limit=6,
        eval_split=0.0,
        batch_size=6,
        max_steps=1,
    )
    loaded = load_model(LoadRequest("smollm2-135m-instruct", quantization="4bit"), settings)
    prepared = prepare_data(config.data, loaded.tokenizer, HostingPolicy.desktop(), seed=0)
    trainer = build_trainer(config, loaded, prepared, settings.home / "ckpt", [])
    model = trainer.model
    model.train()
    batch = next(iter(trainer.get_train_dataloader()))
    head = model.get_base_model().get_output_embeddings()
    seen: list[tuple[int, ...]] = []  # the positions each call of the LM head projects
    hook = head.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[:-1]))

    def loss_and_grads(**extra: Any) -> tuple[float, dict[str, Any]]:
        model.zero_grad(set_to_none=True)
        torch.manual_seed(0)  # the same LoRA dropout masks for both
        value = model(**batch, **extra).loss
        value.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return float(value.detach()), grads

    full, full_grads = loss_and_grads()  # transformers' own: logits everywhere, then the loss
    [every_position] = seen
    seen.clear()
    answer, answer_grads = loss_and_grads(fused_lm_head=True)  # what SFTTrainer calls
    hook.remove()
    trained = int((batch["labels"][:, 1:] != loss.IGNORE).sum())
    assert answer == pytest.approx(full, abs=1e-5)
    assert answer_grads.keys() == full_grads.keys() and answer_grads
    for name, grad in full_grads.items():
        torch.testing.assert_close(answer_grads[name], grad, rtol=1e-5, atol=1e-7, msg=name)
    assert every_position == batch["input_ids"].shape
    assert seen == [(trained,)]  # one call, on the trained positions only
    assert trained < int(batch["attention_mask"].sum()) / 3  # most positions: the masked prompt


def test_checkpointed_chunks_equal_one_cross_entropy(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(loss, "CHUNK", 8)  # 18 trained positions: two full chunks and a rest
    generator = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(16, 50, bias=False)
    hidden = torch.randn(3, 9, 16, generator=generator, requires_grad=True)
    labels = torch.randint(0, 50, (3, 9), generator=generator)
    labels[0, :3] = labels[2, 5:] = loss.IGNORE  # a masked prompt, and a padded tail
    out = loss.answer_log_probs(hidden, labels, head)
    out.loss.backward()
    got = hidden.grad.clone()
    hidden.grad = None
    reference = torch.nn.functional.cross_entropy(
        head(hidden[:, :-1]).reshape(-1, 50), labels[:, 1:].reshape(-1), ignore_index=-100
    )
    reference.backward()
    assert float(out.loss) == pytest.approx(float(reference), abs=1e-6)
    torch.testing.assert_close(got, hidden.grad)
    mask = labels[:, 1:] != loss.IGNORE
    assert int(mask.sum()) == 18 and bool(torch.all(out.log_probs[~mask] == 0))
    assert torch.equal(out.label_mask, mask)
    top = head(hidden[:, :-1]).argmax(-1) == labels[:, 1:]
    assert torch.equal(out.is_top1, top & mask)


def test_models_with_rescaled_logits_keep_trls_head() -> None:
    from transformers import AutoModelForCausalLM, Gemma2Config, LlamaConfig

    tiny = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1}
    tiny |= {"num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 64}
    plain = AutoModelForCausalLM.from_config(LlamaConfig(**tiny))
    capped = AutoModelForCausalLM.from_config(
        Gemma2Config(**tiny, head_dim=8, final_logit_softcapping=30.0)
    )
    assert loss.use_answer_only_head(plain)
    assert not loss.use_answer_only_head(capped)
