"""Confusion matrix and scores against an independent numpy computation; losses; schedules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segtool.ops.metrics import ConfusionMatrix, confusion_matrix, scores_from_confusion


def numpy_reference(pred: np.ndarray, gt: np.ndarray, n: int) -> dict:
    """Per-pixel loop counting and the mmsegmentation formulas, written without segtool."""
    matrix = np.zeros((n, n), dtype=np.int64)
    for t, p in zip(gt.ravel().tolist(), pred.ravel().tolist(), strict=True):
        if t != 255:
            matrix[t, p] += 1
    tp = np.array([matrix[i, i] for i in range(n)], dtype=np.float64)
    gt_count = matrix.sum(1).astype(np.float64)
    pred_count = matrix.sum(0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = tp / (gt_count + pred_count - tp)
        acc = tp / gt_count
        dice = 2 * tp / (gt_count + pred_count)
    total = gt_count.sum()
    freq = gt_count / total
    return {
        "matrix": matrix,
        "pixel_acc": tp.sum() / total,
        "mean_acc": np.nanmean(acc),
        "miou": np.nanmean(iou),
        "fwiou": np.nansum(freq * iou),
        "iou": iou, "acc": acc, "dice": dice, "pixels": gt_count,
    }


def _as_array(values):
    return np.array([np.nan if v is None else v for v in values])


def test_confusion_and_scores_agree_exactly_with_numpy():
    rng = np.random.default_rng(0)
    n = 6
    gt = rng.integers(0, n - 2, size=(3, 17, 23))  # classes 4 and 5 never in the ground truth
    gt[rng.random(gt.shape) < 0.1] = 255
    pred = rng.integers(0, n - 1, size=gt.shape)  # class 5 never predicted: n/a everywhere
    ref = numpy_reference(pred, gt, n)

    cm = ConfusionMatrix(n)
    for i in range(3):  # accumulated over batches
        cm.update(torch.from_numpy(pred[i]), torch.from_numpy(gt[i]))
    assert np.array_equal(cm.numpy(), ref["matrix"])
    scores = cm.compute()

    assert scores["pixel_acc"] == ref["pixel_acc"]
    assert scores["mean_acc"] == ref["mean_acc"]
    assert scores["miou"] == ref["miou"]
    assert scores["fwiou"] == ref["fwiou"]
    per = scores["per_class"]
    np.testing.assert_array_equal(_as_array([c["iou"] for c in per]), ref["iou"])
    np.testing.assert_array_equal(_as_array([c["acc"] for c in per]), ref["acc"])
    np.testing.assert_array_equal(_as_array([c["dice"] for c in per]), ref["dice"])
    assert [c["pixels"] for c in per] == ref["pixels"].astype(int).tolist()
    # Class 4: predicted but never true -> IoU 0, accuracy n/a. Class 5: absent from both -> n/a.
    assert per[4]["iou"] == 0.0 and per[4]["acc"] is None
    assert per[5]["iou"] is None and per[5]["acc"] is None and per[5]["dice"] is None


def test_ignore_label_is_skipped_and_bad_labels_rejected():
    gt = torch.tensor([[0, 255], [1, 1]])
    pred = torch.tensor([[0, 1], [1, 0]])
    matrix = confusion_matrix(pred, gt, 2)
    assert matrix.tolist() == [[1, 0], [1, 1]]
    with pytest.raises(ValueError, match="label 7"):
        confusion_matrix(pred, torch.tensor([[7, 0], [0, 0]]), 2)


def test_perfect_prediction_scores_one():
    gt = torch.tensor([0, 1, 2, 2])
    scores = scores_from_confusion(confusion_matrix(gt, gt, 3).numpy())
    assert scores["miou"] == scores["pixel_acc"] == scores["mean_acc"] == scores["fwiou"] == 1.0


def test_losses_ignore_index_bce_aux_and_weight_files(tmp_path):
    from segtool.core.errors import SegtoolError
    from segtool.ops.losses import SegmentationLoss, binary_cross_entropy, load_class_weights

    logits = torch.randn(2, 3, 4, 4)
    target = torch.randint(0, 3, (2, 4, 4))
    target[0, 0] = 255
    ce = SegmentationLoss("ce")
    ref = torch.nn.functional.cross_entropy(logits, target, ignore_index=255)
    assert torch.allclose(ce(logits, target), ref)
    # Aux outputs add aux_weight * their loss.
    aux = torch.randn(2, 3, 4, 4)
    total = SegmentationLoss("ce", aux_weight=0.2)((logits, [aux]), target)
    assert torch.allclose(total, ref + 0.2 * torch.nn.functional.cross_entropy(aux, target, ignore_index=255))

    one = torch.randn(2, 1, 4, 4)
    binary = torch.randint(0, 2, (2, 4, 4))
    binary[1, :2] = 255
    keep = binary != 255
    expected = torch.nn.functional.binary_cross_entropy_with_logits(one[:, 0][keep], binary[keep].float())
    assert torch.allclose(binary_cross_entropy(one, binary), expected)

    weights_file = tmp_path / "w.txt"
    weights_file.write_text("1, 2.5\n# comment\n3\n")
    assert load_class_weights(weights_file, 3).tolist() == [1.0, 2.5, 3.0]
    with pytest.raises(SegtoolError, match="2 class weights for 3 classes"):
        weights_file.write_text("1 2")
        load_class_weights(weights_file, 3)


def test_schedules_step_per_iteration():
    from segtool.engine.schedules import build_scheduler

    def lrs(name, options=None, total=10, base=1.0, momentum=0.0):
        param = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([param], lr=base, momentum=momentum)
        sched = build_scheduler(opt, name, total, steps_per_epoch=5, options=options)
        out = []
        for _ in range(total):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    one = lrs("onecycle", {"max_lr": 0.1}, total=20)
    assert one[0] == pytest.approx(0.1 / 25) and max(one) == pytest.approx(0.1, rel=1e-3)
    assert one[-1] < one[0]
    poly = lrs("poly", total=10)
    assert poly[0] == 1.0 and poly[-1] == pytest.approx((1 - 9 / 10) ** 0.9)
    lin = lrs("linear", {"end_lr": 0.5, "fraction": 0.5}, total=10)
    assert lin[0] == 1.0 and lin[5] == pytest.approx(0.5) and lin[-1] == pytest.approx(0.5)
    step = lrs("step", {"step_epochs": 1, "gamma": 0.1}, total=10)
    assert step[4] == 1.0 and step[5] == pytest.approx(0.1)
    assert lrs("none") == [1.0] * 10
