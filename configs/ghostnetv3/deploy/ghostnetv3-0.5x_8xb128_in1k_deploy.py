# Deploy form of ghostnetv3-0.5x: every re-parameterized conv is one conv with bias.
# Loads (strictly) the checkpoints written by tools/deployment/fold.py from the training-form config.
_base_ = '../ghostnetv3-0.5x_8xb128_in1k.py'
model = dict(backbone=dict(deploy=True))
