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
