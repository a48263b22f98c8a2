# mmpretrain's MobileNetV2 classifier (ImageNet, data/imagenet) trained with GhostNetV3-style
# re-parameterization: every conv-BN pair gets 3 kxk branches + a 1x1 scale branch (+ a BN identity where
# shapes allow). tools/deployment/fold.py turns a checkpoint into one that loads into the plain mmpretrain config
# (mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py) or into this config's _deploy variant.
_base_ = 'mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py'
custom_imports = dict(imports=['mmcompact'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmcompact.Reparameterized',
        backbone=dict(type='MobileNetV2', widen_factor=1.0),
        num_branches=3, scale_branch=True, identity_branch=True,
        deploy=False))
# No weight decay on the branch BNs (their scales decide how much each branch contributes).
optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0.0))
