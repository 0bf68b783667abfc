"""Each loss against a plain loop over the published formula (float64, ignore pixels, an absent class);
gradients by gradcheck; the --loss spec and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segtool.core.errors import SegtoolError
from segtool.ops.losses import SegmentationLoss, is_binary_loss, loss_options, parse_loss_spec
from segtool.ops.losses import functional as L

C = 4  # class 3 never occurs in the labels


def _inputs(seed=0, n=2, h=5, w=6):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, C, h, w, generator=gen, dtype=torch.float64)
    target = torch.randint(0, C - 1, (n, h, w), generator=gen)
    target[0, 0, :3] = 255
    target[-1, 2:4, 1] = 255
    return logits, target


def _pixels(logits, target):
    """Labelled pixels as (probabilities P x C, labels P) in numpy."""
    x = logits.detach().numpy().transpose(0, 2, 3, 1).reshape(-1, logits.shape[1])
    t = target.numpy().reshape(-1)
    x, t = x[t != 255], t[t != 255]
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True), t


WEIGHTS = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=torch.float64)


@pytest.mark.parametrize("weight", [None, WEIGHTS])
def test_focal_matches_formula_and_gamma_zero_is_cross_entropy(weight):
    logits, target = _inputs()
    p, t = _pixels(logits, target)
    w = np.ones(C) if weight is None else weight.numpy()
    gamma, alpha = 1.5, 0.25
    num = den = 0.0
    for probs, label in zip(p, t, strict=True):
        a = (1 - alpha) if label == 0 else alpha
        num += w[label] * a * -((1 - probs[label]) ** gamma) * np.log(probs[label])
        den += w[label]
    got = L.focal_loss(logits, target, weight, gamma=gamma, alpha=alpha)
    assert got.item() == pytest.approx(num / den, rel=1e-10)
    ce = torch.nn.functional.cross_entropy(logits, target, weight=weight, ignore_index=255)
    assert L.focal_loss(logits, target, weight, gamma=0.0).item() == pytest.approx(ce.item(), rel=1e-10)


@pytest.mark.parametrize("weight", [None, WEIGHTS])
def test_dice_matches_formula_over_present_classes(weight):
    logits, target = _inputs(1)
    p, t = _pixels(logits, target)
    w = np.ones(C) if weight is None else weight.numpy()
    num = den = 0.0
    for c in range(C):
        if not (t == c).any():
            continue  # absent class: left out
        inter = sum(p[i, c] for i in range(len(t)) if t[i] == c)
        dice = 2 * inter / (p[:, c].sum() + (t == c).sum())
        num += w[c] * (1 - dice)
        den += w[c]
    assert L.dice_loss(logits, target, weight).item() == pytest.approx(num / den, rel=1e-10)


def _jaccard_set_loss(mispredicted: set, foreground: set) -> float:
    """Delta_J(M) = |M| / |F u M| (Berman et al. 2018, eq. 4)."""
    union = foreground | mispredicted
    return len(mispredicted) / len(union) if union else 0.0


@pytest.mark.parametrize("weight", [None, WEIGHTS])
def test_lovasz_softmax_matches_the_lovasz_extension_of_the_jaccard_loss(weight):
    logits, target = _inputs(2)
    p, t = _pixels(logits, target)
    w = np.ones(C) if weight is None else weight.numpy()
    num = den = 0.0
    for c in range(C):
        fg = {i for i in range(len(t)) if t[i] == c}
        if not fg:
            continue
        errors = [abs((1.0 if i in fg else 0.0) - p[i, c]) for i in range(len(t))]
        order = sorted(range(len(t)), key=lambda i: -errors[i])
        value, previous = 0.0, 0.0
        for k in range(1, len(order) + 1):
            current = _jaccard_set_loss(set(order[:k]), fg)
            value += errors[order[k - 1]] * (current - previous)
            previous = current
        num += w[c] * value
        den += w[c]
    assert L.lovasz_softmax(logits, target, weight).item() == pytest.approx(num / den, rel=1e-10)


@pytest.mark.parametrize(("thresh", "min_kept"), [(0.7, 3), (0.2, 2), (None, 5)])
def test_ohem_keeps_the_pixels_mmsegmentation_keeps(thresh, min_kept):
    logits, target = _inputs(3)
    p, t = _pixels(logits, target)
    prob_t = p[np.arange(len(t)), t]
    loss = -np.log(prob_t)
    batch_kept = min_kept * target.shape[0]
    if thresh is not None:
        floor = np.sort(prob_t)[min(batch_kept, len(t) - 1)]
        kept = prob_t < max(floor, thresh)
    else:
        kept = np.zeros(len(t), bool)
        kept[np.argsort(-loss)[:batch_kept]] = True
    w = WEIGHTS.numpy()[t] * kept
    expected = (loss * w).sum() / w.sum()
    got = L.ohem_cross_entropy(logits, target, WEIGHTS, thresh=thresh, min_kept=min_kept)
    assert kept.sum() >= batch_kept if thresh is not None else kept.sum() == batch_kept
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_one_channel_models_use_the_sigmoid_as_class_one():
    logits = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    target = torch.randint(0, 2, (2, 4, 4))
    target[0, 0] = 255
    assert torch.allclose(L.cross_entropy(logits, target), L.binary_cross_entropy(logits, target))
    assert torch.allclose(L.dice_loss(logits, target),
                          L.dice_loss(torch.cat([torch.zeros_like(logits), logits], 1), target))


@pytest.mark.parametrize("name", ["ce", "dice", "focal", "lovasz", "ohem"])
def test_gradients_match_finite_differences(name):
    logits, target = _inputs(4, n=1, h=3, w=4)
    logits.requires_grad_(True)
    function = SegmentationLoss(name, WEIGHTS, options={"min_kept": 2} if name == "ohem" else None).single
    assert torch.autograd.gradcheck(lambda x: function(x, target), (logits,))


def test_weighted_sums_aux_heads_and_ignored_pixels():
    logits, target = _inputs(5)
    aux = torch.randn_like(logits)
    loss = SegmentationLoss("ce:1,dice:0.5", WEIGHTS, aux_weight=0.4)
    single = (torch.nn.functional.cross_entropy(logits, target, weight=WEIGHTS, ignore_index=255)
              + 0.5 * L.dice_loss(logits, target, WEIGHTS))
    assert loss.single(logits, target).item() == pytest.approx(single.item(), rel=1e-6)
    total = loss((logits, [aux]), target)
    assert total.item() == pytest.approx((single + 0.4 * loss.single(aux, target)).item(), rel=1e-6)
    # Ignored pixels do not matter, whatever the logits there.
    changed = logits.clone()
    changed[0, :, 0, :3] = 100.0
    for name in ("dice", "focal", "lovasz", "ohem", "ce+dice"):
        a, b = SegmentationLoss(name).single(logits, target), SegmentationLoss(name).single(changed, target)
        assert a.item() == pytest.approx(b.item(), rel=1e-6), name


def test_loss_spec_parsing_and_errors():
    assert parse_loss_spec("ce+dice") == [("ce", 1.0), ("dice", 1.0)]
    assert parse_loss_spec(" CE:1, dice:0.5 ") == [("ce", 1.0), ("dice", 0.5)]
    assert is_binary_loss("bce+dice") and not is_binary_loss("ce")
    assert loss_options("focal+ohem", {"gamma": 1, "min_kept": 10}) == {
        "focal": {"gamma": 1, "alpha": None}, "ohem": {"thresh": 0.7, "min_kept": 10}}
    for spec, message in [("nosuch", "unknown loss 'nosuch'"), ("ce:x", "weight 'x' of ce is not a number"),
                          ("ce+ce", "appears twice"), ("ce:0", "at least one weight"), ("dice:-1", ">= 0")]:
        with pytest.raises(SegtoolError, match=message):
            parse_loss_spec(spec)
    with pytest.raises(SegtoolError, match="gamma: not an option of --loss ce"):
        loss_options("ce", {"gamma": 2})
