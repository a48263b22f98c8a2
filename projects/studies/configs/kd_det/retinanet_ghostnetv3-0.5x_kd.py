# Detection KD study (projects/studies/recipe_study.py --task det): the re-param RetinaNet-GhostNetV3-0.5x student with
# PKD on the FPN levels + logit KD on the classification maps from the RetinaNet-R18 teacher, without EMA
# (the quick-start distillation config with EMA is the study's "full recipe"). The studies' teacher is the
# full-width RetinaNet-R18-FPN (the quick start's own teacher is a quarter-width one).
_base_ = ['../../../../configs/demo/student_retinanet_ghostnetv3-0.5x_kd_synthetic.py']
model = dict(teacher='{{fileDirname}}/../../../../configs/demo/teacher_retinanet_r18_fpn_synthetic.py')
custom_hooks = [dict(type='mmcompact.TeacherValHook'),
                dict(type='mmcompact.StudentExportHook', check_shape=(1, 3, 160, 160))]
