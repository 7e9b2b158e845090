"""The classification metrics of mini_dl/train.py beyond accuracy: f1_score, against
scikit-learn's f1_score and against hand-counted cases."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mini_dl as dl

OUTPUT = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
LABELS = torch.tensor([0, 1, 0, 1, 1])  # predicted 0, 1, 1, 0, 1: TP 2, FP 1, FN 1 for class 1


@pytest.mark.parametrize("target", [LABELS, dl.one_hot(LABELS, 2), 2 * dl.one_hot(LABELS, 2) - 1],
                         ids=["labels", "one-hot", "plus-minus-one"])
def test_f1_score_counts_true_positives_false_positives_and_false_negatives(target):
    result = dl.f1_score(OUTPUT, target)
    assert isinstance(result, float) and result == 2 * 2 / (2 * 2 + 1 + 1)


def test_f1_score_of_the_other_class_uses_the_positive_argument():
    # class 0: predicted rows 0, 3; true rows 0, 2 -> TP 1, FP 1, FN 1
    assert dl.f1_score(OUTPUT, LABELS, positive=0) == 0.5


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 40), classes=st.integers(2, 5), positive=st.integers(0, 4),
       seed=st.integers(0, 2 ** 31 - 1))
def test_f1_score_equals_scikit_learn(n, classes, positive, seed):
    metrics = pytest.importorskip("sklearn.metrics")
    positive = positive % classes
    generator = torch.Generator().manual_seed(seed)
    output = torch.randn(n, classes, generator=generator)
    labels = torch.randint(classes, (n,), generator=generator)
    expected = metrics.f1_score(labels.numpy(), output.argmax(1).numpy(), labels=[positive],
                                average="macro", zero_division=0.0)
    # both divide the same two integers: the results agree to the last bit but for rounding
    assert dl.f1_score(output, labels, positive) == pytest.approx(expected, abs=1e-12)


def test_f1_score_is_zero_for_a_classifier_that_never_predicts_the_class():
    # 1 positive in 10 rows, always predicted negative: accuracy 0.9, F1 0
    labels = torch.tensor([1] + [0] * 9)
    output = dl.one_hot(torch.zeros(10, dtype=torch.int64), 2)
    assert dl.accuracy(output, labels) == 0.9
    assert dl.f1_score(output, labels) == 0.0


def test_f1_score_is_one_for_a_perfect_prediction_and_zero_without_any_positive():
    assert dl.f1_score(dl.one_hot(LABELS, 2), LABELS) == 1.0
    zeros = torch.zeros(4, dtype=torch.int64)
    assert dl.f1_score(dl.one_hot(zeros, 2), zeros) == 0.0  # scikit-learn's zero_division=0


@pytest.mark.parametrize("positive", [2, -1, 1.0, True, "1"])
def test_f1_score_rejects_a_positive_class_that_is_not_an_index(positive):
    with pytest.raises(ValueError, match=r"f1_score: positive must be a class index in \[0, 2\)"):
        dl.f1_score(OUTPUT, LABELS, positive)


def test_f1_score_rejects_bad_shapes_naming_itself():
    with pytest.raises(ValueError, match=r"f1_score: output must have shape \(N, C\), got"):
        dl.f1_score(torch.zeros(5), LABELS)
    with pytest.raises(ValueError, match=r"f1_score: target must have shape \(5,\) or \(5, C\)"):
        dl.f1_score(OUTPUT, LABELS[:3])
