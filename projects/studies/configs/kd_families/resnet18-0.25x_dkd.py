# KD study on class families: the re-param ResNet-18-0.25x student + decoupled KD (as ghostnetv3-0.5x_dkd.py).
_base_ = ['./ghostnetv3-0.5x_dkd.py']
model = dict(student='{{fileDirname}}/resnet18-0.25x.py')
