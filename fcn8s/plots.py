"""Pictures of a run's numbers: the loss curve, precision-recall curves, BEV views and the confusion matrix."""
import os

import matplotlib
import numpy as np

from fcn8s.bev import BEV_X_RANGE, BEV_Z_RANGE
from fcn8s.metric import BEV_ROW_NAMES, RoadCounts, precision_recall, road_metrics

matplotlib.use('Agg')
from matplotlib import pyplot  # noqa: E402  (the Agg backend must be chosen first)


def save_pr_curve(evaluation, png_path):
    """Plot the precision-recall curves of an evaluate_road RoadEvaluation: perspective and BEV side by side.

    One curve per category with images, and overall (URBAN_ROAD in BEV); writes a PNG.
    """
    figure, panels = pyplot.subplots(1, 2, figsize=(11, 5), dpi=100)
    spaces = (('perspective', evaluation.perspective, {}), ("bird's-eye view", evaluation.bev, BEV_ROW_NAMES))
    for axes, (space, counts_by_category, row_names) in zip(panels, spaces):
        overall = sum(counts_by_category.values(), RoadCounts())
        for name, counts in [*counts_by_category.items(), ('overall', overall)]:
            if counts.images and counts.positives:
                precision, recall, kept = precision_recall(counts)
                axes.plot(recall[kept], precision[kept], linewidth=2 if name == 'overall' else 1.2,
                          label=f"{row_names.get(name, name)} (MaxF {road_metrics(counts)['MaxF']:.3f}, "
                                f'{counts.images} images)')
        axes.set_title(space)
        axes.set_xlabel('recall')
        axes.set_ylabel('precision')
        axes.set_xlim(0, 1.01)
        axes.set_ylim(0, 1.01)
        axes.grid(True, alpha=0.3)
        if overall.images:
            axes.legend(loc='lower left')
    figure.tight_layout()
    figure.savefig(png_path)
    pyplot.close(figure)


def save_bev_pictures(bev_examples, folder):
    """Write folder/bev_<category>.png for each of RoadEvaluation.bev_examples: the road seen from above.

    Three panels on the BEV grid: the camera image, the predicted road probability (what the benchmark's
    server scores) and the ground truth in KITTI's colours. Rows run from 46 m ahead (top) to 6 m
    (bottom), columns from 10 m left to 10 m right. Returns the paths written.
    """
    paths = []
    for category, (bev_image, bev_road_prob, bev_label) in sorted(bev_examples.items()):
        figure, panels = pyplot.subplots(1, 3, figsize=(8.4, 6.4), dpi=100)
        extent = (*BEV_X_RANGE, *BEV_Z_RANGE)
        for axes, (title, picture, options) in zip(panels, (
                (f'{category}: image from above', bev_image, {}),
                ('road probability', bev_road_prob, {'cmap': 'gray', 'vmin': 0, 'vmax': 1}),
                ('ground truth', bev_label, {}))):
            axes.imshow(picture, extent=extent, **options)
            axes.set_title(title)
            axes.set_xlabel('X (m)')
        panels[0].set_ylabel('Z ahead (m)')
        figure.tight_layout()
        paths.append(os.path.join(folder, f'bev_{category}.png'))
        figure.savefig(paths[-1])
        pyplot.close(figure)
    return paths


def save_loss_curve(loss_rows, png_path):
    """Plot [(epoch, step, loss, cross_entropy, l2)]: the per-step loss, and the per-epoch means of it and its parts.

    Parts that are NaN (a loss.csv of an earlier version) are left out. Writes a PNG.
    """
    epochs, _, *columns = (np.array(column, dtype=float) for column in zip(*loss_rows))
    global_steps = np.arange(1, len(epochs) + 1)
    epoch_numbers = np.unique(epochs)
    epoch_ends = [global_steps[epochs == epoch][-1] for epoch in epoch_numbers]
    figure, axes = pyplot.subplots(figsize=(8, 4.5), dpi=100)
    axes.plot(global_steps, columns[0], color='tab:blue', alpha=0.35, linewidth=1, label='loss per step')
    for values, name, colour in zip(columns, ('loss', 'cross-entropy', 'L2'), ('tab:blue', 'tab:orange', 'tab:green')):
        if not np.isnan(values).all():
            axes.plot(epoch_ends, [values[epochs == epoch].mean() for epoch in epoch_numbers], color=colour,
                      marker='o', linewidth=2, label=f'{name}, epoch mean')
    axes.set_xlabel('training step')
    axes.set_ylabel('loss = cross-entropy + L2')
    axes.set_yscale('log')
    axes.grid(True, which='both', alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(png_path)
    pyplot.close(figure)


def save_confusion_matrix(confusion, class_names, png_path):
    """Write a [C, C] confusion matrix as a heat map PNG, each row normalised to the share of its true class.

    Rows without truth stay white; each cell of 1% or more is labelled with its percentage.
    """
    row_totals = confusion.sum(axis=1, keepdims=True)
    with np.errstate(invalid='ignore', divide='ignore'):
        row_shares = np.where(row_totals > 0, confusion / row_totals, np.nan)
    size = 2.5 + 0.45 * len(class_names)
    figure, axes = pyplot.subplots(figsize=(size + 1.5, size), dpi=100)
    image = axes.imshow(row_shares, cmap='Blues', vmin=0, vmax=1)
    for (row, column), share in np.ndenumerate(row_shares):
        if share >= 0.01:
            axes.text(column, row, f'{100 * share:.0f}', ha='center', va='center', fontsize=7,
                      color='white' if share > 0.5 else 'black')
    axes.set_xticks(range(len(class_names)), class_names, rotation=90)
    axes.set_yticks(range(len(class_names)), class_names)
    axes.set_xlabel('predicted class')
    axes.set_ylabel('true class')
    figure.colorbar(image, ax=axes, label='share of the true class', fraction=0.046)
    figure.tight_layout()
    figure.savefig(png_path)
    pyplot.close(figure)
