# The re-parameterized ResNet-18-0.25x student distilled from the ResNet-18 teacher: logit KD (KL
# divergence, tau 4) added to the student's own loss. Set model.teacher_checkpoint to the teacher's
# checkpoint (the studies pass it; configs/fashion_mnist/metafile.yml lists the committed one).
_base_ = ['../_base_/datasets/fashion_mnist.py', '../_base_/schedules/fashion_mnist_adamw_cosine.py']
model = dict(
    type='mmcompact.Distiller',
    student='{{fileDirname}}/resnet18-0.25x-reparam_1xb128_fashion-mnist.py',
    teacher='{{fileDirname}}/resnet18_1xb128_fashion-mnist.py',
    teacher_checkpoint=None,
    student_recorders=dict(logits='head.fc'),
    teacher_recorders=dict(logits='head.fc'),
    distill_losses=dict(
        loss_kd=dict(type='KLDivergence', tau=4.0, loss_weight=1.0, student='logits', teacher='logits')))
