# The GhostNetV3 recipe at Fashion-MNIST scale: re-param + logit KD + EMA of the student's weights
# (validated with the EMA weights) + RandomErasing (../_base_/pipelines/fashion_mnist_erasing.py).
# EMA momentum 0.001: an averaging horizon of about 1,000 iterations (2 epochs of 469 iterations).
_base_ = ['./resnet18-0.25x-reparam_resnet18_1xb128_fashion-mnist_kd.py',
          '../_base_/pipelines/fashion_mnist_erasing.py']
train_dataloader = dict(dataset=dict(pipeline={{_base_.fashion_mnist_erasing_pipeline}}))
custom_hooks = [dict(type='EMAHook', momentum=0.001, priority='ABOVE_NORMAL')]
