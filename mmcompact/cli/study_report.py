"""The study drivers' shared reporting: deploy MACs of each variant's network, the published Fashion-MNIST
figures, and the top-1-against-MACs plot (projects/studies/recipe_study.py and fashion_mnist_summary.py)."""

# Published Fashion-MNIST test top-1 (%), from the dataset's own benchmark list (its README, Debian package
# dataset-fashion-mnist); their MACs are not given there, so plots mark them as levels.
FMNIST_PUBLISHED = {'ResNet18': 94.9, 'MobileNet': 95.0, 'DenseNet-BC (768K params)': 95.4,
                    'WRN-28-10 + random erasing': 96.3, '2 Conv, < 100K params': 92.5}


def deploy_macs(students: dict, variants: dict, size: int) -> dict:
    """Deploy-form MACs of each variant's student network and of its backbone alone: {name: (whole,
    backbone)}. ``students``: the deploy network's config of each variant (recipe_study.py's ``cls_plan``)."""
    from mmcompact.structure import count_deployed
    from mmcompact.utils import build_model, load_config
    macs = {}
    for name, (_, options) in variants.items():
        backbone = {k: v for k, v in options.items() if k.startswith('model.backbone.')}
        model = build_model(load_config(students[name], backbone))
        macs[name] = (count_deployed(model, (3, size, size))['macs'],
                      count_deployed(model.backbone, (3, size, size))['macs'])
    return macs


def plot_vs_macs(path: str, results: dict, teacher_score, macs: dict, teacher_macs: float, title: str) -> None:
    """top-1 against deploy MACs (log scale): each variant's mean with its 95% CI (the variants of one deploy
    network side by side around its MACs), the teacher, and the published figures as dotted levels. ``results``:
    {name: {seed: top-1}}; ``macs``: {name: (deploy MACs, backbone MACs)}."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mmcompact.analysis import mean_ci
    names = [n for n in results if results[n]]
    same_macs = [[m for m in names if macs[m][0] == macs[n][0]] for n in names]
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, group in zip(names, same_macs):
        mean, half = mean_ci(list(results[name].values()))
        x = macs[name][0] * 1.06 ** (group.index(name) - (len(group) - 1) / 2)
        ax.errorbar([x], [mean], yerr=[0 if half != half else half], fmt='o', capsize=4, label=name)
    if teacher_score is not None:
        ax.scatter([teacher_macs], [teacher_score], marker='*', s=120, color='black', label='teacher', zorder=3)
    for i, (name, score) in enumerate(FMNIST_PUBLISHED.items()):
        ax.axhline(score, linestyle=':', color='gray', linewidth=0.8)
        ax.annotate(f'published: {name} {score}', (0.01 + 0.3 * (i % 2), score), xycoords=('axes fraction', 'data'),
                    fontsize=7, va='bottom', color='dimgray')
    ax.set_xscale('log')
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f'{v / 1e6:g}M'))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel('deploy MACs at 32x32 (log scale)')
    ax.set_ylabel('test top-1 (%): mean, 95% CI')
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc='lower right')
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
