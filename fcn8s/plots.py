"""Pictures of a run's numbers: the loss curve; and matplotlib's pyplot, set to draw into files, for every picture."""
import functools

import numpy as np


@functools.cache
def pyplot():
    """matplotlib.pyplot with the Agg backend (drawing into files, no display), imported at the first call.

    Importing matplotlib takes about half a second, and the modules that draw pictures are imported by every
    command and by the settings (fcn8s.datasets, fcn8s.config), most of which draw nothing; the backend must
    be chosen before pyplot is first imported, which this function does once. Hence the imports here, not at the top.
    """
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as agg_pyplot
    return agg_pyplot


def save_loss_curve(loss_rows, png_path):
    """Plot [(epoch, step, loss, cross_entropy, l2)]: the per-step loss, and the per-epoch means of it and its parts.

    Parts that are NaN (a loss.csv of an earlier version) are left out. Writes a PNG.
    """
    epochs, _, *columns = (np.array(column, dtype=float) for column in zip(*loss_rows))
    global_steps = np.arange(1, len(epochs) + 1)
    epoch_numbers = np.unique(epochs)
    epoch_ends = [global_steps[epochs == epoch][-1] for epoch in epoch_numbers]
    figure, axes = pyplot().subplots(figsize=(8, 4.5), dpi=100)
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
    pyplot().close(figure)
