# The GhostNetV3 recipe applied to ShuffleNetV2: re-parameterized student, logit KD from ResNet-50, EMA,
# RandAugment + RandomErasing.
_base_ = './ghostnetv3-1.0x_resnet50_8xb128_in1k_kd.py'
model = dict(student='{{fileDirname}}/../reparam/shufflenet-v2-reparam_8xb64_in1k.py')
