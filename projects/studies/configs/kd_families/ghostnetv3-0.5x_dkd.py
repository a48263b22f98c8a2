# KD study on class families: re-param student + decoupled KD (DKD; tau 4, alpha 1, beta 8 as in
# Zhao et al. 2022's CIFAR-100 setting) from the ResNet-18 teacher.
_base_ = ['./ghostnetv3-0.5x_kd.py']
model = dict(distill_losses=dict(
    _delete_=True,
    loss_dkd=dict(type='DKDLoss', tau=4.0, alpha=1.0, beta=8.0, student='logits', teacher='logits')))
