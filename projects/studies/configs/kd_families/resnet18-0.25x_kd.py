# KD study on class families: the re-param ResNet-18-0.25x student + logit KD (KL divergence, tau 4) from
# the ResNet-18 teacher (the GhostNetV3 student's KD config with this student).
_base_ = ['./ghostnetv3-0.5x_kd.py']
model = dict(student='{{fileDirname}}/resnet18-0.25x.py')
