# mmpretrain's ShuffleNetV2 1.0x classifier (ImageNet, data/imagenet) trained re-parameterized; folds back
# into the plain mmpretrain ShuffleNetV2 (tools/deployment/fold.py).
_base_ = 'mmpretrain::shufflenet_v2/shufflenet-v2-1x_16xb64_in1k.py'
custom_imports = dict(imports=['mmcompact'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='mmcompact.Reparameterized',
                  backbone=dict(type='ShuffleNetV2', widen_factor=1.0), deploy=False))
optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0.0))
