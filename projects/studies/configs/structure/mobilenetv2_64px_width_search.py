# Structure search with searchable widths for the MobileNetV2 structure study (64x64 synthetic classification,
# projects/studies/structure_study.py --family mobilenetv2): the stem (conv1), the seven inverted-residual stages and
# the
# last 1x1 conv (conv2) are blocks, and the channels between them (and of the backbone output) are choices, so
# MobileNetV2 at width multipliers 0.25 and 0.5 (and 1.0: Keep everywhere) are selectable structures. Per stage
# the menu holds MobileNetV2's own stage at any width, the same depth with half the expansion (narrower blocks,
# same depth), and fewer repeats. Data and teacher come from projects/studies/structure_study.py.
_base_ = ['../mobilenetv2_64px_cls.py', '../../../../configs/_base_/schedules/width_search.py']
# (expansion, repeats) of MobileNetV2's stages (mmpretrain MobileNetV2.arch_settings)
stages = dict(layer1=(1, 1), layer2=(6, 2), layer3=(6, 3), layer4=(6, 4), layer5=(6, 3), layer6=(6, 3),
              layer7=(6, 1))
structure_search = dict(
    teacher_checkpoint='work_dirs/structure_study_mobilenetv2/teacher/epoch_24.pth',
    input_shape=(3, 64, 64),  # deploy costs are counted at this size
    blocks=['conv1', *stages, 'conv2'],
    widths=dict(ratios=[0.25, 0.5], divisor=8),  # plus the teacher's own width at every boundary
    candidates=dict(
        conv1=[dict(type='Keep'), dict(type='ConvStack', num_convs=1)],
        conv2=[dict(type='Keep'), dict(type='ConvStack', num_convs=1, kernel_size=1)],
        layer1=[dict(type='Keep'), dict(type='InvertedResidual', expand_ratio=1, num_blocks=1)],
        **{layer: [dict(type='Keep'),
                   dict(type='InvertedResidual', expand_ratio=expand, num_blocks=repeats),  # the stage, any width
                   dict(type='InvertedResidual', expand_ratio=expand / 2, num_blocks=repeats),  # narrower blocks
                   dict(type='InvertedResidual', expand_ratio=expand, num_blocks=max(1, repeats - 1))]  # fewer
           for layer, (expand, repeats) in stages.items() if layer != 'layer1'}))
