"""Distillation losses against hand-computed references (values and gradients)."""
import math

import pytest
import torch

from mmcompact.distill import (ChannelWiseDivergence, DenseHeadKDLoss, DKDLoss, FeatureMSELoss, KLDivergence, PKDLoss,
                               SoftTargetCrossEntropy)


def softmax(row, tau=1.0):
    e = [math.exp(v / tau) for v in row]
    return [v / sum(e) for v in e]


S = [[1.0, 2.0, 0.5], [0.2, -1.0, 3.0]]
T = [[2.0, 1.0, 0.0], [0.0, 0.5, 2.5]]


def kl_reference(s, t, tau):
    total = 0.0
    for rs, rt in zip(s, t):
        ps, pt = softmax(rs, tau), softmax(rt, tau)
        total += sum(b * math.log(b / a) for a, b in zip(ps, pt))
    return tau ** 2 * total / len(s)


@pytest.mark.parametrize('tau', [1.0, 4.0])
def test_kl_divergence_and_its_gradient(tau):
    s = torch.tensor(S, requires_grad=True)
    loss = KLDivergence(tau=tau, loss_weight=2.0)(s, torch.tensor(T))
    assert loss.item() == pytest.approx(2.0 * kl_reference(S, T, tau), rel=1e-5)
    loss.backward()
    # d/ds of tau^2 * KL = tau * (softmax(s/tau) - softmax(t/tau)) / N, times the weight
    expected = [[2.0 * tau * (a - b) / 2 for a, b in zip(softmax(rs, tau), softmax(rt, tau))]
                for rs, rt in zip(S, T)]
    assert torch.allclose(s.grad, torch.tensor(expected), atol=1e-6)


def test_soft_target_cross_entropy_is_kl_plus_teacher_entropy():
    tau = 2.0
    entropy = sum(-sum(p * math.log(p) for p in softmax(rt, tau)) for rt in T) / len(T)
    loss = SoftTargetCrossEntropy(tau=tau)(torch.tensor(S), torch.tensor(T))
    assert loss.item() == pytest.approx(kl_reference(S, T, tau) + tau ** 2 * entropy, rel=1e-5)


def test_dkd_against_its_definition():
    tau, alpha, beta = 2.0, 1.0, 8.0
    labels = [1, 2]
    tckd = nckd = 0.0
    for rs, rt, y in zip(S, T, labels):
        ps, pt = softmax(rs, tau), softmax(rt, tau)
        bs, bt = [ps[y], 1 - ps[y]], [pt[y], 1 - pt[y]]
        tckd += sum(b * math.log(b / a) for a, b in zip(bs, bt))
        qs = softmax([v for i, v in enumerate(rs) if i != y], tau)
        qt = softmax([v for i, v in enumerate(rt) if i != y], tau)
        nckd += sum(b * math.log(b / a) for a, b in zip(qs, qt))
    expected = tau ** 2 * (alpha * tckd + beta * nckd) / len(S)
    s = torch.tensor(S, requires_grad=True)
    loss = DKDLoss(tau=tau, alpha=alpha, beta=beta)(s, torch.tensor(T), labels=torch.tensor(labels))
    assert loss.item() == pytest.approx(expected, rel=1e-4)
    loss.backward()
    assert s.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='labels'):
        DKDLoss()(s, torch.tensor(T))


def _log_softmax64(row, tau):
    """Python-float log-softmax with the max subtracted: exact for any logit gap."""
    z = [v / tau for v in row]
    top = max(z)
    log_norm = top + math.log(sum(math.exp(v - top) for v in z))
    return [v - log_norm for v in z]


def _log_sum_exp(values):
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def dkd_reference(s, t, labels, tau, alpha, beta):
    """DKD in Python floats (float64), written independently of the module: log-probabilities only."""
    tckd = nckd = 0.0
    for rs, rt, y in zip(s, t, labels):
        ls, lt = _log_softmax64(rs, tau), _log_softmax64(rt, tau)
        bs = [ls[y], _log_sum_exp([v for i, v in enumerate(ls) if i != y])]
        bt = [lt[y], _log_sum_exp([v for i, v in enumerate(lt) if i != y])]
        tckd += sum(math.exp(b) * (b - a) for a, b in zip(bs, bt))
        qs = _log_softmax64([v for i, v in enumerate(rs) if i != y], tau)
        qt = _log_softmax64([v for i, v in enumerate(rt) if i != y], tau)
        nckd += sum(math.exp(b) * (b - a) for a, b in zip(qs, qt))
    return tau ** 2 * (alpha * tckd + beta * nckd) / len(s)


def test_dkd_confidently_wrong_student_example_of_the_issue():
    s = torch.zeros(1, 5, requires_grad=True)
    with torch.no_grad():
        s[0, 1] = 40
    t = torch.tensor([[3., 1, 0, 0, 0]])
    loss = DKDLoss(tau=1, alpha=1, beta=1)(s, t, labels=torch.tensor([0]))
    loss.backward()
    assert loss.item() == pytest.approx(50.32, abs=0.01)
    assert s.grad[0, 0].item() == pytest.approx(-0.778, abs=1e-3)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('tau', [1.0, 4.0, 8.0])
@pytest.mark.parametrize('gap,label', [(60.0, 0), (200.0, 0), (60.0, 2), (200.0, 2)])
def test_dkd_exact_for_confident_students(dtype, tau, gap, label):
    """Confidently wrong (label 0, the student's top logit at class 2) and confidently right (label 2)
    students: value and gradient match the float64 reference (gradient by central differences)."""
    student = [[1.0, -2.0, gap, 0.5, -1.0], [gap, 0.0, 1.0, -0.5, 2.0]]
    teacher = [[4.0, 1.0, 2.0, 0.0, -1.0], [0.5, 3.0, 1.0, 0.0, -2.0]]
    labels = [label, 1]
    args = (tau, 1.0, 8.0)
    s = torch.tensor(student, dtype=dtype, requires_grad=True)
    loss = DKDLoss(*args)(s, torch.tensor(teacher, dtype=dtype), labels=torch.tensor(labels))
    loss.backward()
    expected = dkd_reference(student, teacher, labels, *args)
    rel = 1e-5 if dtype == torch.float32 else 1e-10
    assert loss.item() == pytest.approx(expected, rel=rel)
    h = 1e-4 * tau
    for i in range(2):
        for j in range(5):
            up = [row[:] for row in student]
            down = [row[:] for row in student]
            up[i][j] += h
            down[i][j] -= h
            numeric = (dkd_reference(up, teacher, labels, *args) - dkd_reference(down, teacher, labels,
                                                                                 *args)) / (2 * h)
            assert s.grad[i, j].item() == pytest.approx(numeric, rel=1e-3, abs=1e-5 if dtype == torch.float32 else 1e-7)
    if label == 0:  # confidently wrong: a real push towards the true class
        assert s.grad[0, 0].item() < -0.1


def test_user_loss_declares_extra_inputs_generically():
    from mmcompact.distill.losses import _DistillLoss

    class LabelWeightedMSE(_DistillLoss):
        extra_inputs = ('labels', 'data_samples')

        def compute(self, student, teacher, labels=None, data_samples=None):
            assert len(data_samples) == len(labels)
            return ((student - teacher) ** 2).mean() * (1 + labels.float().mean())

    s, t = torch.ones(2, 3), torch.zeros(2, 3)
    assert LabelWeightedMSE()(s, t, labels=torch.tensor([1, 1]), data_samples=[0, 0]).item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match=r"needs \['data_samples'\]"):
        LabelWeightedMSE()(s, t, labels=torch.tensor([1, 1]))


def test_pkd_normalises_each_channel_over_batch_and_positions():
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    # invariant to per-channel affine changes of either side
    scaled = t * torch.tensor([10., 0.1, 3.])[None, :, None, None] + 7
    assert PKDLoss()(s, t).item() == pytest.approx(PKDLoss()(s, scaled).item(), rel=1e-4)

    def norm(x):
        out = torch.empty_like(x)
        for c in range(x.shape[1]):
            v = x[:, c]
            out[:, c] = (v - v.mean()) / (v.std() + 1e-6)
        return out
    expected = ((norm(s) - norm(t)) ** 2).mean() / 2
    assert PKDLoss()(s, t).item() == pytest.approx(expected.item(), rel=1e-5)
    assert PKDLoss()(t, t).item() == pytest.approx(0.0, abs=1e-9)


def test_channel_wise_divergence_against_a_loop():
    torch.manual_seed(1)
    tau = 3.0
    s, t = torch.randn(2, 3, 2, 2), torch.randn(2, 3, 2, 2)
    total = 0.0
    for n in range(2):
        for c in range(3):
            ps = softmax(s[n, c].flatten().tolist(), tau)
            pt = softmax(t[n, c].flatten().tolist(), tau)
            total += sum(b * math.log(b / a) for a, b in zip(ps, pt))
    expected = tau ** 2 * total / 6
    assert ChannelWiseDivergence(tau=tau)(s, t).item() == pytest.approx(expected, rel=1e-5)


def test_feature_mse_and_dense_head_kd():
    s, t = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 4.0]])
    assert FeatureMSELoss()(s, t).item() == pytest.approx((1 + 4) / 2)
    p = [1 / (1 + math.exp(-v)) for v in (0.0, 4.0)]
    bce = sum(-(pi * math.log(1 / (1 + math.exp(-x))) + (1 - pi) * math.log(1 - 1 / (1 + math.exp(-x))))
              for pi, x in zip(p, (1.0, 2.0))) / 2
    assert DenseHeadKDLoss()(s, t).item() == pytest.approx(bce, rel=1e-5)


def test_teacher_side_gets_no_gradient_and_shapes_are_checked():
    s = torch.randn(2, 4, requires_grad=True)
    t = torch.randn(2, 4, requires_grad=True)
    KLDivergence()(s, t).backward()
    assert t.grad is None and s.grad is not None
    with pytest.raises(ValueError, match=r'student shape \(2, 4\) != teacher shape \(2, 5\).*connector'):
        KLDivergence()(s, torch.randn(2, 5))
