# The re-parameterized student distilled from the ResNet-18 teacher (logit KD, tau 4).
_base_ = './synthetic_cls_runtime.py'
custom_imports = dict(imports=['mmcompact'], allow_failed_imports=False)
model = dict(
    type='mmcompact.Distiller',
    student='{{fileDirname}}/ghostnetv3-0.5x_synthetic_cls.py',
    teacher='{{fileDirname}}/resnet18_synthetic_cls.py',
    teacher_checkpoint='work_dirs/recipe_study/teacher/epoch_12.pth',
    student_recorders=dict(logits='head.fc'),
    teacher_recorders=dict(logits='head.fc'),
    distill_losses=dict(
        loss_kd=dict(type='KLDivergence', tau=4.0, loss_weight=1.0, student='logits', teacher='logits')))
