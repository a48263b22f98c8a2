# KD study on class families: re-param student + logit KD (KL divergence, tau 4) from the ResNet-18 teacher:
# the earlier study's KD config with this study's 18-class student, teacher and teacher checkpoint.
_base_ = ['../ghostnetv3-0.5x_kd_synthetic_cls.py']
num_classes = 18
data_preprocessor = dict(num_classes=num_classes)
model = dict(
    student='{{fileDirname}}/ghostnetv3-0.5x.py',
    teacher='{{fileDirname}}/resnet18.py',
    teacher_checkpoint='work_dirs/recipe_study/teacher/epoch_20.pth')
