# Detection transfer of a learned structure: the structured RetinaNet student distilled from the
# RetinaNet-R18-FPN teacher with the detection KD recipe of the recipe study (PKD on the FPN levels + logit KD
# on the classification maps, no EMA: projects/studies/configs/kd_det/). tools/structure_transfer_study.py sets the
# student (one config per structure and seed) and the teacher checkpoint.
_base_ = ['../kd_det/retinanet_ghostnetv3-0.5x_kd.py']
model = dict(student='{{fileDirname}}/retinanet_resnet18c_structured.py')
custom_hooks = [dict(type='mmcompact.TeacherValHook'),
                dict(type='mmcompact.StudentExportHook', check_shape=(1, 3, 160, 160))]
