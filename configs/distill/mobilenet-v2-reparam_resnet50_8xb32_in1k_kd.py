# The GhostNetV3 recipe applied to MobileNetV2 (paper, Sec. 5): re-parameterized mmpretrain MobileNetV2
# student, logit KD from ResNet-50, EMA, RandAugment + RandomErasing (pipeline of the GhostNetV3 KD config).
_base_ = './ghostnetv3-1.0x_resnet50_8xb128_in1k_kd.py'
model = dict(student='{{fileDirname}}/../reparam/mobilenet-v2-reparam_8xb32_in1k.py')
