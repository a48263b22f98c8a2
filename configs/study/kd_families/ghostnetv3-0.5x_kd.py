# KD study on class families: re-param student + logit KD (KL divergence, tau 4) from the ResNet-18 teacher.
_base_ = ['./ghostnetv3-0.5x.py']
model = dict(
    _delete_=True,
    type='mmcompact.Distiller',
    student='{{fileDirname}}/ghostnetv3-0.5x.py',
    teacher='{{fileDirname}}/resnet18.py',
    teacher_checkpoint='work_dirs/recipe_study/teacher/epoch_20.pth',
    student_recorders=dict(logits='head.fc'),
    teacher_recorders=dict(logits='head.fc'),
    distill_losses=dict(
        loss_kd=dict(type='KLDivergence', tau=4.0, loss_weight=1.0, student='logits', teacher='logits')))
