import torch

from arlib.model import MODEL_KINDS, ModelConfig, build_model


def small(kind, **kw):
    return build_model(ModelConfig(kind=kind, feature_dim=32, num_classes=5, latent_dim=16, hidden_dim=24,
                                   head_dim=16, **kw))


def test_thesis_sizes_are_the_defaults():
    cfg = ModelConfig()
    assert (cfg.latent_dim, cfg.hidden_dim, cfg.num_layers, cfg.bidirectional, cfg.head_dim) == (512, 1024, 1, True, 1024)
    model = build_model(ModelConfig(feature_dim=2048, num_classes=9))
    assert model.lstm.hidden_size == 1024 and model.lstm.bidirectional
    assert model.attention.score.in_features == 2048  # Linear(2048, 1) over BiLSTM outputs, as in the thesis


def test_shapes_attention_rows_and_logits_for_every_kind():
    torch.manual_seed(0)
    x = torch.randn(4, 12, 32)
    for kind in MODEL_KINDS:
        model = small(kind).eval()
        logits, attention = model(x)
        assert logits.shape == (4, 5) and attention.shape == (4, 12)
        assert torch.allclose(attention.sum(1), torch.ones(4), atol=1e-5)
        assert (attention >= 0).all()
        # raw logits, not probabilities: rows do not sum to one and values leave [0, 1]
        assert not torch.allclose(logits.sum(1), torch.ones(4), atol=1e-3)
        assert logits.min() < 0 or logits.max() > 1


def test_attention_is_not_uniform_and_depends_on_the_input():
    torch.manual_seed(0)
    model = small("attention").eval()
    _, a1 = model(torch.randn(2, 10, 32))
    assert a1.std(dim=1).min() > 0


def test_frame_avg_ignores_frame_order_but_attention_model_does_not():
    torch.manual_seed(0)
    x = torch.randn(3, 8, 32)
    reversed_x = x.flip(1)
    fa = small("frame_avg").eval()
    assert torch.allclose(fa(x)[0], fa(reversed_x)[0], atol=1e-5)
    att = small("attention").eval()
    assert not torch.allclose(att(x)[0], att(reversed_x)[0], atol=1e-4)


def test_training_a_step_reduces_the_loss_on_logits():
    torch.manual_seed(0)
    model = small("attention", dropout=0.0)
    x, y = torch.randn(8, 6, 32), torch.randint(0, 5, (8,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(model(x)[0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 < losses[0]  # no double softmax: the loss can approach zero


def test_padded_steps_are_masked_everywhere_for_every_kind():
    """Padded steps get attention exactly 0, and their content changes no output (eval and train mode)."""
    torch.manual_seed(0)
    x = torch.randn(3, 10, 32)
    lengths = torch.tensor([10, 6, 3])
    other = x.clone()
    for i, n in enumerate(lengths.tolist()):
        other[i, n:] = torch.randn(10 - n, 32) * 5  # different padding content
    for kind in MODEL_KINDS:
        model = small(kind)
        for train_mode in (False, True):
            model.train(train_mode)
            torch.manual_seed(1)  # same dropout masks for both inputs
            logits_a, attn_a = model(x, lengths)
            torch.manual_seed(1)
            logits_b, attn_b = model(other, lengths)
            assert torch.allclose(logits_a, logits_b, atol=1e-5), (kind, train_mode)
            assert torch.allclose(attn_a, attn_b, atol=1e-6)
            for i, n in enumerate(lengths.tolist()):
                assert (attn_a[i, n:] == 0).all(), kind
                assert torch.allclose(attn_a[i, :n].sum(), torch.tensor(1.0), atol=1e-5)


def test_a_padded_sequence_equals_its_unpadded_self():
    """Packing makes the BiLSTM read each clip's real frames only: padded == truncated, in eval mode."""
    torch.manual_seed(0)
    model = small("attention").eval()
    x = torch.randn(1, 10, 32)
    padded_logits, _ = model(x, torch.tensor([6]))
    short_logits, _ = model(x[:, :6], None)
    assert torch.allclose(padded_logits, short_logits, atol=1e-5)


def test_a_batch_of_one_trains():
    torch.manual_seed(0)
    model = small("attention").train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    logits, _ = model(torch.randn(1, 8, 32))
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([2]))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
