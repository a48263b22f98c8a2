# The width search space of the structure study's ResNetV1c-18 teacher at 32x32 (synthetic or Fashion-MNIST):
# the stem and every stage are blocks, and the channel count between them (and of the backbone output) is a
# choice, so every uniform width multiplier of the teacher (ratios below) is one of the selectable
# structures. The *_width_search.py configs add the teacher (model, data, checkpoint).
_base_ = ['../../../../configs/_base_/schedules/width_search.py']
structure_search = dict(
    input_shape=(3, 32, 32),  # deploy costs are counted at this size
    blocks=['stem', 'layer1', 'layer2', 'layer3', 'layer4'],
    widths=dict(ratios=[0.25, 0.5, 0.75], divisor=8),  # plus the teacher's own width at every boundary
    candidates=dict(
        stem=[dict(type='Keep'),
              dict(type='ConvStack', num_convs=3, hidden_ratio=0.5),  # the deep stem at any width
              dict(type='ConvStack', num_convs=1)],
        **{layer: [dict(type='Keep'),
                   dict(type='BasicResidual', width_ratio=1.0, num_blocks=2),  # the ResNet stage at any width
                   dict(type='BasicResidual', width_ratio=1.0, num_blocks=1)]  # one block: fewer repeats
           for layer in ('layer1', 'layer2', 'layer3', 'layer4')}))
