# GhostNetV3 0.5x student with the ResNet-50 KD recipe of ghostnetv3-1.0x_resnet50_8xb128_in1k_kd.py.
_base_ = './ghostnetv3-1.0x_resnet50_8xb128_in1k_kd.py'
model = dict(student='{{fileDirname}}/../ghostnetv3/ghostnetv3-0.5x_8xb128_in1k.py')
