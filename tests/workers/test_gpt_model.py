import math

import pytest
import torch

from workers.tasks._data import seeded_init
from workers.tasks.gpt_model import GPT, GPTConfig, count_parameters, lm_loss

SMALL = GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=16)


def test_forward_shape_and_tied_head() -> None:
    model = GPT(SMALL)
    idx = torch.randint(0, 50, (3, 10))
    assert model(idx).shape == (3, 10, 50)
    assert model.lm_head.weight is model.wte.weight


def test_attention_is_causal() -> None:
    torch.manual_seed(0)
    model = GPT(SMALL).eval()
    idx = torch.randint(0, 50, (2, 12))
    changed = idx.clone()
    changed[:, 7:] = (changed[:, 7:] + 1) % 50
    with torch.no_grad():
        a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


@pytest.mark.parametrize(
    "config",
    [
        SMALL,
        GPTConfig(vocab_size=33, block_size=8, n_layer=3, n_head=4, n_embd=32, d_ff=48),
        GPTConfig(vocab_size=33, block_size=8, n_layer=1, n_head=1, n_embd=8, bias=False),
    ],
)
def test_count_parameters_matches_the_module(config: GPTConfig) -> None:
    model = GPT(config)
    assert count_parameters(config) == sum(p.numel() for p in model.parameters())


def test_gpt2_124m_size_without_allocating() -> None:
    config = GPTConfig.gpt2_124m()
    assert (config.n_layer, config.n_head, config.n_embd, config.block_size) == (12, 12, 768, 1024)
    assert config.vocab_size == 50304 and config.ffn_width == 3072
    with torch.device("meta"):
        model = GPT(config)
    n = sum(p.numel() for p in model.parameters())
    assert n == count_parameters(config)
    assert 123.5e6 < n < 125.0e6  # 124.48M, tied head counted once


def test_gpt2_initialisation() -> None:
    config = GPTConfig(vocab_size=64, block_size=32, n_layer=4, n_head=4, n_embd=256)
    with seeded_init(0):
        model = GPT(config)
    residual_std = 0.02 / math.sqrt(2 * config.n_layer)
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            assert p.std().item() == pytest.approx(residual_std, rel=0.1)
        elif name.endswith(("c_attn.weight", "c_fc.weight", "wte.weight")):
            assert p.std().item() == pytest.approx(0.02, rel=0.1)
        elif name.endswith("bias") and "ln" not in name:
            assert torch.count_nonzero(p) == 0


def test_seeded_init_is_deterministic_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    with seeded_init(5):
        a = GPT(SMALL)
    with seeded_init(5):
        b = GPT(SMALL)
    with seeded_init(6):
        c = GPT(SMALL)
    assert torch.equal(torch.rand(1), expected_next)
    torch.testing.assert_close(a.state_dict(), b.state_dict())
    assert not torch.equal(a.wte.weight, c.wte.weight)


def test_rejects_long_sequences_and_bad_shapes() -> None:
    with pytest.raises(ValueError, match="block_size"):
        GPT(SMALL)(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=10, n_head=3)
    with pytest.raises(ValueError, match="dropout"):
        GPTConfig(dropout=1.0)


def test_lm_loss_at_uniform_logits_is_log_vocab() -> None:
    logits = torch.zeros(2, 5, 50)
    targets = torch.randint(0, 50, (2, 5))
    assert lm_loss(logits, targets).item() == pytest.approx(math.log(50))
    assert lm_loss(logits, targets, "sum").item() == pytest.approx(10 * math.log(50), rel=1e-6)


def test_dropout_only_in_training_mode() -> None:
    config = GPTConfig(vocab_size=50, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.5)
    model = GPT(config)
    idx = torch.randint(0, 50, (2, 8))
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(idx), model(idx))
        model.train()
        assert not torch.allclose(model(idx), model(idx))
