# As the KD config with decoupled KD (DKD; tau 4, alpha 1, beta 8: Zhao et al. 2022's CIFAR-100 setting).
_base_ = ['./resnet18-0.25x-reparam_resnet18_1xb128_fashion-mnist_kd.py']
model = dict(distill_losses=dict(
    _delete_=True,
    loss_dkd=dict(type='DKDLoss', tau=4.0, alpha=1.0, beta=8.0, student='logits', teacher='logits')))
