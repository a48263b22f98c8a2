"""The study drivers' helpers: which trained student (config, checkpoint, options) projects/studies/int8_study.py
quantizes for each variant of the recipe study's run folders, per task; the recipe study's accuracy-vs-MACs plot."""
import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_study():
    spec = importlib.util.spec_from_file_location('int8_study', os.path.join(ROOT, 'projects', 'studies',
                                                                             'int8_study.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def finished_run(run_dir, checkpoint='iter_600.pth'):
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, 'train_finished.json'), 'w') as f:
        f.write('{}')
    with open(os.path.join(run_dir, 'last_checkpoint'), 'w') as f:
        f.write(os.path.join(run_dir, checkpoint))


def test_det_students_and_data(tmp_path):
    study = load_study()
    recipe = tmp_path / 'recipe'
    for variant in ('plain', 're_param', 're_param_kd'):
        finished_run(str(recipe / variant / 'seed0'))
    (recipe / 're_param_kd' / 'seed0' / 'student.pth').write_bytes(b'')  # the StudentExportHook's file
    args = study.parse_args(['--task', 'det', '--recipe-dir', str(recipe), '--work-dir', str(tmp_path / 'out')])
    log = str(tmp_path / 'study.log')
    config, checkpoint, options = study.student_checkpoint(args, 'plain', 0, log)
    assert config.endswith('configs/demo/student_retinanet_ghostnetv3-0.5x_synthetic.py')
    assert checkpoint == str(recipe / 'plain' / 'seed0' / 'iter_600.pth')
    assert options == {'model.backbone.num_branches': 1, 'model.backbone.extra_branches': False}
    assert study.student_checkpoint(args, 're-param', 0, log)[1:] == (
        str(recipe / 're_param' / 'seed0' / 'iter_600.pth'), {})
    # the distilled run's exported student, loaded into the (training-form) student config
    assert study.student_checkpoint(args, 're-param + KD', 0, log) == (
        config, str(recipe / 're_param_kd' / 'seed0' / 'student.pth'), {})
    data = study.data_options(args)
    assert data['train_dataloader.dataset.data_root'] == str(recipe / 'data') + '/'
    assert args.spec['shape'] == (160, 160) and args.spec['metric'] == 'coco/bbox_mAP'


def test_fmnist_defaults_and_unfinished_run(tmp_path):
    study = load_study()
    args = study.parse_args(['--recipe-dir', str(tmp_path)])
    assert args.work_dir == 'work_dirs/fashion_mnist_int8' and study.data_options(args) == {}
    finished_run(str(tmp_path / 'plain' / 'seed0'), 'epoch_6.pth')
    config, _, options = study.student_checkpoint(args, 'plain', 0, str(tmp_path / 'log'))
    assert config.endswith('resnet18-0.25x-reparam_1xb128_fashion-mnist.py')
    assert options == {'model.backbone.deploy': True}
    os.makedirs(tmp_path / 're_param' / 'seed1')  # started, never finished
    with pytest.raises(FileNotFoundError, match='re_param/seed1 holds no finished run'):
        study.student_checkpoint(args, 're-param', 1, str(tmp_path / 'log'))


def test_recipe_study_plots_top1_against_deploy_macs(tmp_path):
    """The Fashion-MNIST study's accuracy-vs-MACs plot, one seed (no CI) and five seeds alike."""
    from mmcompact.cli import plot_vs_macs
    results = {'plain': {0: 89.9}, 're-param': {s: 90.0 + s / 10 for s in range(5)}, 're-param + KD': {}}
    path = tmp_path / 'macs.png'
    plot_vs_macs(str(path), results, 93.3, {'plain': (2.77e6, 2.76e6), 're-param': (2.77e6, 2.76e6)},
                       37.0e6, 'toy')
    assert path.stat().st_size > 10_000


def test_structure_study_fashion_mnist_family_schedules_its_configs(tmp_path):
    """--family resnet18c-fmnist: its defaults, the prepared data folder, and epoch options that fit its configs'
    warm-up + cosine schedule (the synthetic families' options would set a T_max on the LinearLR warm-up)."""
    from mmcompact.utils import load_config
    spec = importlib.util.spec_from_file_location('structure_study', os.path.join(ROOT, 'projects', 'studies',
                                                                                  'structure_study.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = module.parse_args(['--family', 'resnet18c-fmnist', '--work-dir', str(tmp_path), '--data-root', 'fm'])
    assert (args.epochs, args.teacher_epochs) == (6, 20)
    study = module.Study(args, [])
    assert study.data == os.path.abspath('fm') and study.teacher_ckpt.endswith('teacher/epoch_20.pth')
    cfg = load_config(study.family['teacher'], dict(study.data_options, **study.schedule(6)))
    assert cfg.train_cfg.max_epochs == 6 and cfg.train_cfg.val_interval == 6
    warmup, cosine = cfg.param_scheduler
    assert warmup['type'] == 'LinearLR' and 'T_max' not in warmup
    assert cosine['type'] == 'CosineAnnealingLR' and cosine['T_max'] == 5
    assert cfg.train_dataloader.dataset.type == 'FashionMNIST' and cfg.model.backbone.type == 'ResNetV1c'
    assert cfg.train_dataloader.dataset.data_root == os.path.abspath('fm')
    synthetic = module.Study(module.parse_args(['--work-dir', str(tmp_path / 'synthetic')]), [])
    assert synthetic.schedule(12)['param_scheduler.0.T_max'] == 12
    assert synthetic.data == str(tmp_path / 'synthetic' / 'data')


def write_qdq(path, scales):
    """A QDQ graph with one QuantizeLinear / DequantizeLinear pair per {tensor: scale} (inputs as graph inputs)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    nodes, inputs, outputs, inits = [], [], [], []
    for name, scale in scales.items():
        inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1]))
        outputs.append(helper.make_tensor_value_info(f'{name}_dq', TensorProto.FLOAT, [1]))
        inits += [numpy_helper.from_array(np.array(scale, np.float32), f'{name}_scale'),
                  numpy_helper.from_array(np.array(0, np.int8), f'{name}_zero')]
        nodes += [helper.make_node('QuantizeLinear', [name, f'{name}_scale', f'{name}_zero'], [f'{name}_q']),
                  helper.make_node('DequantizeLinear', [f'{name}_q', f'{name}_scale', f'{name}_zero'], [f'{name}_dq'])]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.save(helper.make_model(helper.make_graph(nodes, 'qdq', inputs, outputs, inits)), path)


def test_int8_study_counts_the_ranges_a_calibration_cuts_to_under_a_tenth_of_minmax(tmp_path):
    study = load_study()
    args = study.parse_args(['--task', 'det', '--work-dir', str(tmp_path)])
    folder = tmp_path / 're_param' / 'seed0'
    write_qdq(str(folder / 'minmax' / 'int8.onnx'), {'a': 1.0, 'b': 1.0, 'c': 2.0})
    write_qdq(str(folder / 'entropy' / 'int8.onnx'), {'a': 0.0625, 'b': 0.5, 'c': 0.1})
    assert study.narrowed_activations(args, 're-param', 0, 'entropy') == 2  # a (1/16) and c (1/20), not b (1/2)
    assert study.narrowed_activations(args, 're-param', 0, 'minmax') is None
    assert study.narrowed_activations(args, 're-param', 0, 'percentile') is None  # no such model


def test_int8_study_merge_stands_in_for_the_quantizations_of_a_lost_work_dir(tmp_path):
    """results.json written by one invocation is read back by --merge of the next, seed by seed, and its records
    take the place of the quantizations the new work dir lacks (nothing is quantized for them)."""
    study = load_study()
    earlier = tmp_path / 'earlier'
    args = study.parse_args(['--task', 'det', '--work-dir', str(earlier), '--variants', 'plain', 're-param',
                             '--methods', 'minmax', 'entropy'])
    os.makedirs(earlier)
    metric = 'coco/bbox_mAP'

    def record(fp32, int8):
        return {'metrics': {'FP32': {metric: fp32}, 'INT8': {metric: int8}}}
    runs = {('plain', 0, 'minmax'): record(0.25, 0.24), ('plain', 1, 'minmax'): record(0.26, 0.26),
            ('re-param', 0, 'minmax'): record(0.28, 0.27), ('re-param', 1, 'minmax'): record(0.29, 0.28)}
    study.report(args, runs)
    merged = study.merged_runs(str(earlier / 'results.json'), metric)
    assert merged['re-param', 1, 'minmax']['metrics'] == runs['re-param', 1, 'minmax']['metrics']
    assert merged['plain', 0, 'minmax']['narrowed'] is None  # MinMax counts no clipped range

    later = study.parse_args(['--task', 'det', '--recipe-dir', str(tmp_path / 'gone'), '--work-dir',
                              str(tmp_path / 'later'), '--merge', str(earlier / 'results.json'),
                              '--variants', 'plain', 're-param', '--methods', 'minmax'])
    os.makedirs(tmp_path / 'later')
    # no student checkpoint exists: a stand-in must not try to quantize
    stand_in = study.quantized(later, 're-param', 1, 'minmax', str(tmp_path / 'log'))
    assert stand_in['metrics']['INT8'][metric] == 0.28
    table = study.report(later, {job: study.quantized(later, *job, str(tmp_path / 'log')) for job in runs})
    assert '| re-param | minmax | 2 | 0.285 +- ' in table and '4 students from `--merge' in table
    with pytest.raises(FileNotFoundError, match='holds no finished run'):  # neither here nor in --merge
        study.quantized(later, 're-param', 2, 'minmax', str(tmp_path / 'log'))


def test_int8_study_merge_of_another_task_is_refused(tmp_path, capsys):
    study = load_study()
    path = tmp_path / 'fmnist.json'
    path.write_text('{"metric": "accuracy/top1", "results": {}}')
    with pytest.raises(SystemExit):
        study.parse_args(['--task', 'det', '--merge', str(path)])
    assert "holds 'accuracy/top1' scores, this study 'coco/bbox_mAP'" in capsys.readouterr().err


def test_recipe_study_without_distilled_variants_trains_no_teacher(tmp_path):
    spec = importlib.util.spec_from_file_location('recipe_study', os.path.join(ROOT, 'projects', 'studies',
                                                                               'recipe_study.py'))
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    args = recipe.parse_args(['--task', 'fmnist', '--seeds', '0', '1'])
    variants = {'plain': ('plain.py', {}), 're-param + KD': ('kd.py', {'model.teacher_checkpoint': 't.pth'})}
    study = dict(work_dir=str(tmp_path), teacher=('teacher.py', {}), metric='accuracy/top1', variants=variants)
    assert [(j[0], j[1]) for j in recipe.make_jobs(args, study)] == [
        ('teacher', None), ('plain', 0), ('plain', 1), ('re-param + KD', 0), ('re-param + KD', 1)]
    study['variants'] = {'plain': variants['plain']}
    assert [(j[0], j[1]) for j in recipe.make_jobs(args, study)] == [('plain', 0), ('plain', 1)]


def load_summary():
    spec = importlib.util.spec_from_file_location('fashion_mnist_summary', os.path.join(
        ROOT, 'projects', 'studies', 'fashion_mnist_summary.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_fashion_mnist_table_is_what_the_committed_results_hold(tmp_path):
    """The README's results table is generated from results/fashion_mnist_recipe*.json: rewriting it from them
    changes nothing, and the plot is drawn."""
    summary = load_summary()
    readme = tmp_path / 'README.md'
    with open(os.path.join(ROOT, 'README.md')) as f:
        readme.write_text(f.read())
    assert summary.main(['--plot', str(tmp_path / 'summary.png'), '--readme', str(readme)]) == 0
    with open(os.path.join(ROOT, 'README.md')) as f:
        assert readme.read_text() == f.read(), 'README table is stale: run projects/studies/fashion_mnist_summary.py ' \
                                               '--readme README.md'
    assert (tmp_path / 'summary.png').stat().st_size > 10_000


def test_fashion_mnist_summary_refuses_mixed_teachers_and_a_readme_without_its_table(tmp_path, capsys):
    summary = load_summary()
    for name, teacher in (('a', 93.33), ('b', 94.1)):
        (tmp_path / f'{name}.json').write_text(json.dumps({'metric': 'top-1 (%)', 'teacher': teacher, 'variants': {
            'plain': {'seeds': {'0': 90.0}, 'deploy_macs': 2e6, 'backbone_macs': 1e6}}}))
    assert summary.main(['--studies', f'A={tmp_path / "a.json"}', f'B={tmp_path / "b.json"}']) == 1
    assert 'different teachers (top-1 [93.33, 94.1])' in capsys.readouterr().err
    assert summary.main(['--studies', f'A={tmp_path / "missing.json"}']) == 1
    assert 'no such file' in capsys.readouterr().err
    readme = tmp_path / 'README.md'
    readme.write_text('# no table here\n')
    with pytest.raises(ValueError, match='has no "<!-- fashion-mnist table'):
        summary.rewrite_readme(str(readme), 'x')
    assert readme.read_text() == '# no table here\n'
