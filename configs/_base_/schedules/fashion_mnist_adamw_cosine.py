# Schedule and runtime of the Fashion-MNIST configs: AdamW (lr 2e-3, weight decay 0.05, none on norms),
# one warm-up epoch then cosine decay, one checkpoint kept, validation at the end and every 5 epochs.
max_epochs = 12
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=5)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05),
                     paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, T_max=max_epochs - 1, eta_min=1e-5,
         convert_to_iter_based=True),
]
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmcompact'], allow_failed_imports=False)
default_hooks = dict(timer=dict(type='IterTimerHook'), logger=dict(type='LoggerHook', interval=100),
                     param_scheduler=dict(type='ParamSchedulerHook'),
                     checkpoint=dict(type='mmcompact.CheckpointHook', interval=1, max_keep_ckpts=1),
                     sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='nccl'))
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
