"""Distillation losses. Each takes (student, teacher) tensors of the same shape and returns a scalar,
already multiplied by ``loss_weight``; the teacher side never receives gradient (it is detached).

Logit losses take (N, C) logits; feature losses take (N, C, H, W) maps. References: Hinton et al. 2015
(KD), Zhao et al. 2022 (DKD), Cao et al. 2022 (PKD), Shu et al. 2021 (CWD); the loss forms follow
mmrazor's implementations of the same papers.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import MODELS


class _DistillLoss(nn.Module):
    """Base: ``loss_weight`` and the check that both sides have the same shape.

    ``extra_inputs`` names what a loss needs besides the two records; the distiller passes each as a keyword
    argument of ``forward``. Available: ``'labels'`` (N,) ground-truth class indices of a classification
    batch, ``'data_samples'`` the batch's data samples as given to the student.
    """
    extra_inputs: Tuple[str, ...] = ()

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, student: torch.Tensor, teacher: torch.Tensor, **extra) -> torch.Tensor:
        if student.shape != teacher.shape:
            raise ValueError(f'{type(self).__name__}: student shape {tuple(student.shape)} != teacher '
                             f'shape {tuple(teacher.shape)}; add a connector (channels, spatial size) '
                             'to the student side')
        missing = [name for name in self.extra_inputs if extra.get(name) is None]
        if missing:
            raise ValueError(f'{type(self).__name__} needs {missing} besides the student and teacher records')
        return self.loss_weight * self.compute(student, teacher.detach(), **extra)

    def compute(self, student: torch.Tensor, teacher: torch.Tensor, **extra) -> torch.Tensor:
        raise NotImplementedError


@MODELS.register_module()
class KLDivergence(_DistillLoss):
    """``tau^2 * KL(softmax(t / tau) || softmax(s / tau))``, averaged over the batch (Hinton KD)."""

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0):
        super().__init__(loss_weight)
        self.tau = tau

    def compute(self, student, teacher, **_):
        log_p_s = F.log_softmax(student / self.tau, dim=1)
        log_p_t = F.log_softmax(teacher / self.tau, dim=1)
        return (self.tau ** 2) * F.kl_div(log_p_s, log_p_t, reduction='batchmean', log_target=True)


@MODELS.register_module()
class SoftTargetCrossEntropy(_DistillLoss):
    """``-sum(softmax(t / tau) * log_softmax(s / tau))`` averaged over the batch, times tau^2: the KD
    variant of GhostNetV3's training code (KL plus the teacher's entropy, which has no gradient)."""

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0):
        super().__init__(loss_weight)
        self.tau = tau

    def compute(self, student, teacher, **_):
        p_t = F.softmax(teacher / self.tau, dim=1)
        return (self.tau ** 2) * -(p_t * F.log_softmax(student / self.tau, dim=1)).sum(1).mean()


@MODELS.register_module()
class DKDLoss(_DistillLoss):
    """Decoupled KD: ``alpha * TCKD + beta * NCKD`` (target-class and non-target-class KL, tau^2 scaled).

    Needs the ground-truth labels (``extra_inputs``): (N,) class indices. Computed in log space (log-softmax
    and log-sum-exp, no clamping), so value and gradient stay exact for any logit gap: a confidently wrong
    student is still pushed towards the true class.
    """
    extra_inputs = ('labels', )

    def __init__(self, tau: float = 4.0, alpha: float = 1.0, beta: float = 8.0, loss_weight: float = 1.0):
        super().__init__(loss_weight)
        self.tau, self.alpha, self.beta = tau, alpha, beta

    @staticmethod
    def _binary_and_rest(logits: torch.Tensor, gt: torch.Tensor):
        """(N, C) logits, (N, C) bool one-hot -> log of the (target, rest) probabilities (N, 2) and the
        log-probabilities over the non-target classes (N, C), 0 at the target (which has probability 0)."""
        log_p = F.log_softmax(logits, dim=1)
        log_rest = torch.logsumexp(log_p.masked_fill(gt, float('-inf')), dim=1)
        log_binary = torch.stack([log_p[gt], log_rest], dim=1)
        log_q = F.log_softmax(logits.masked_fill(gt, float('-inf')), dim=1).masked_fill(gt, 0.0)
        return log_binary, log_q

    def compute(self, student, teacher, labels=None, **_):
        gt = F.one_hot(labels.long(), student.shape[1]).bool()
        log_b_s, log_q_s = self._binary_and_rest(student / self.tau, gt)
        log_b_t, log_q_t = self._binary_and_rest(teacher / self.tau, gt)
        tckd = (log_b_t.exp() * (log_b_t - log_b_s)).sum(1).mean()
        q_t = log_q_t.exp().masked_fill(gt, 0.0)
        nckd = (q_t * (log_q_t - log_q_s)).sum(1).mean()
        return (self.tau ** 2) * (self.alpha * tckd + self.beta * nckd)


@MODELS.register_module()
class FeatureMSELoss(_DistillLoss):
    """Mean squared error between feature maps."""

    def compute(self, student, teacher, **_):
        return F.mse_loss(student, teacher)


def _normalize_per_channel(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (C, N*H*W), each channel scaled to zero mean and unit (unbiased) std over the batch
    and positions, as in PKD."""
    flat = x.transpose(0, 1).reshape(x.shape[1], -1)
    mean, std = flat.mean(-1, keepdim=True), flat.std(-1, keepdim=True)
    return (flat - mean) / (std + 1e-6)


@MODELS.register_module()
class PKDLoss(_DistillLoss):
    """PKD: MSE of per-channel normalised features, / 2 (Pearson-correlation distillation); robust to the
    different feature magnitudes of heterogeneous detectors."""

    def compute(self, student, teacher, **_):
        return F.mse_loss(_normalize_per_channel(student), _normalize_per_channel(teacher)) / 2


@MODELS.register_module()
class ChannelWiseDivergence(_DistillLoss):
    """CWD: per channel, softmax over the H*W positions (temperature tau), KL(teacher || student),
    times tau^2, summed over positions and averaged over N*C."""

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0):
        super().__init__(loss_weight)
        self.tau = tau

    def compute(self, student, teacher, **_):
        n, c = student.shape[:2]
        log_s = F.log_softmax(student.reshape(n * c, -1) / self.tau, dim=1)
        log_t = F.log_softmax(teacher.reshape(n * c, -1) / self.tau, dim=1)
        kl = (log_t.exp() * (log_t - log_s)).sum()
        return (self.tau ** 2) * kl / (n * c)


@MODELS.register_module()
class DenseHeadKDLoss(_DistillLoss):
    """Logit KD for one-stage detector heads that share the anchor/point layout (RetinaNet, FCOS, GFL).

    Input: classification maps (N, A*K, H, W) of one level, sigmoid-activated (one binary distribution
    per anchor and class): ``tau^2 * BCE(sigmoid(s / tau), sigmoid(t / tau))`` averaged over elements.
    """

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0):
        super().__init__(loss_weight)
        self.tau = tau

    def compute(self, student, teacher, **_):
        target = torch.sigmoid(teacher / self.tau)
        return (self.tau ** 2) * F.binary_cross_entropy_with_logits(student / self.tau, target)
