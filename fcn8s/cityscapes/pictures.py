"""Cityscapes' picture of an evaluation: the confusion matrix of its classes."""
import numpy as np

from fcn8s.plots import pyplot


def save_confusion_matrix(confusion, class_names, png_path):
    """Write a [C, C] confusion matrix as a heat map PNG, each row normalised to the share of its true class.

    Rows without truth stay white; each cell of 1% or more is labelled with its percentage.
    """
    row_totals = confusion.sum(axis=1, keepdims=True)
    with np.errstate(invalid='ignore', divide='ignore'):
        row_shares = np.where(row_totals > 0, confusion / row_totals, np.nan)
    size = 2.5 + 0.45 * len(class_names)
    figure, axes = pyplot().subplots(figsize=(size + 1.5, size), dpi=100)
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
    pyplot().close(figure)
