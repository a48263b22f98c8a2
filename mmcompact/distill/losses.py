"""Distillation losses. Each takes (student, teacher) tensors of the same shape and returns a scalar,
already multiplied by ``loss_weight``; the teacher side never receives gradient (it is detached).

Logit losses take (N, C) logits; feature losses take (N, C, H, W) maps. References: Hinton et al. 2015
(KD), Zhao et al. 2022 (DKD), Cao et al. 2022 (PKD), Shu et al. 2021 (CWD); the loss forms follow
mmrazor's implementations of the same papers.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ..registry import MODELS


class _DistillLoss(nn.Module):
    """Base: ``loss_weight`` and the check that both sides have the same shape."""

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        if student.shape != teacher.shape:
            raise ValueError(f'{type(self).__name__}: student shape {tuple(student.shape)} != teacher '
                             f'shape {tuple(teacher.shape)}; add a connector (channels, spatial size) '
                             'to the student side')
        return self.loss_weight * self.compute(student, teacher.detach())

    def compute(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@MODELS.register_module()
class KLDivergence(_DistillLoss):
    """``tau^2 * KL(softmax(t / tau) || softmax(s / tau))``, averaged over the batch (Hinton KD)."""

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0):
        super().__init__(loss_weight)
        self.tau = tau

    def compute(self, student, teacher):
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

    def compute(self, student, teacher):
        p_t = F.softmax(teacher / self.tau, dim=1)
        return (self.tau ** 2) * -(p_t * F.log_softmax(student / self.tau, dim=1)).sum(1).mean()


@MODELS.register_module()
class DKDLoss(_DistillLoss):
    """Decoupled KD: ``alpha * TCKD + beta * NCKD`` (target-class and non-target-class KL, tau^2 scaled).

    Needs the ground-truth labels: the distiller passes them as ``labels`` (N,).
    """

    def __init__(self, tau: float = 4.0, alpha: float = 1.0, beta: float = 8.0, loss_weight: float = 1.0):
        super().__init__(loss_weight)
        self.tau, self.alpha, self.beta = tau, alpha, beta

    def forward(self, student, teacher, labels: torch.Tensor = None):
        if labels is None:
            raise ValueError('DKDLoss needs the ground-truth labels of the batch')
        self._labels = labels
        return super().forward(student, teacher)

    def compute(self, student, teacher):
        gt = F.one_hot(self._labels, student.shape[1]).bool()
        p_s = F.softmax(student / self.tau, dim=1)
        p_t = F.softmax(teacher / self.tau, dim=1)
        # binary (target vs rest) distributions
        b_s = torch.stack([(p_s * gt).sum(1), (p_s * ~gt).sum(1)], dim=1).clamp_min(1e-12)
        b_t = torch.stack([(p_t * gt).sum(1), (p_t * ~gt).sum(1)], dim=1).clamp_min(1e-12)
        tckd = (b_t * (b_t.log() - b_s.log())).sum(1).mean()
        # distributions over the non-target classes only (target logit pushed to -inf)
        mask = gt.float() * 1000.0
        log_q_s = F.log_softmax(student / self.tau - mask, dim=1)
        q_t = F.softmax(teacher / self.tau - mask, dim=1)
        nckd = (q_t * (q_t.clamp_min(1e-12).log() - log_q_s)).sum(1).mean()
        return (self.tau ** 2) * (self.alpha * tckd + self.beta * nckd)


@MODELS.register_module()
class FeatureMSELoss(_DistillLoss):
    """Mean squared error between feature maps."""

    def compute(self, student, teacher):
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

    def compute(self, student, teacher):
        return F.mse_loss(_normalize_per_channel(student), _normalize_per_channel(teacher)) / 2


@MODELS.register_module()
class ChannelWiseDivergence(_DistillLoss):
    """CWD: per channel, softmax over the H*W positions (temperature tau), KL(teacher || student),
    times tau^2, summed over positions and averaged over N*C."""

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0):
        super().__init__(loss_weight)
        self.tau = tau

    def compute(self, student, teacher):
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

    def compute(self, student, teacher):
        target = torch.sigmoid(teacher / self.tau)
        return (self.tau ** 2) * F.binary_cross_entropy_with_logits(student / self.tau, target)
