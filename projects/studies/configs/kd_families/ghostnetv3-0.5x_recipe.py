# KD study on class families: the full recipe at this scale: re-param + logit KD + EMA of the student's
# weights (validated with the EMA weights). Momentum 0.005: an averaging horizon of about 200 iterations,
# a quarter of the study's 4-epoch schedule (the ImageNet config's 1e-4 suits 300 epochs).
_base_ = ['./ghostnetv3-0.5x_kd.py']
custom_hooks = [dict(type='EMAHook', momentum=0.005, priority='ABOVE_NORMAL')]
