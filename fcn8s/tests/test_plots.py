"""Tests of fcn8s/plots.py and fcn8s/cityscapes/pictures.py: the loss curve shows the loss and its parts; the confusion matrix is drawn."""
import math

import numpy as np
from matplotlib.axes import Axes
from PIL import Image

from fcn8s.cityscapes.pictures import save_confusion_matrix
from fcn8s.plots import save_loss_curve


def test_the_loss_curve_plots_the_loss_and_its_parts(tmp_path, monkeypatch):
    plotted = []
    monkeypatch.setattr(Axes, 'plot', lambda axes, *args, **kwargs: plotted.append(kwargs['label']))
    save_loss_curve([(1, 1, 0.5, 0.375, 0.125), (2, 1, 0.25, 0.125, 0.125)], str(tmp_path / 'loss.png'))
    assert plotted == ['loss per step', 'loss, epoch mean', 'cross-entropy, epoch mean', 'L2, epoch mean']
    assert (tmp_path / 'loss.png').stat().st_size > 0
    plotted.clear()
    save_loss_curve([(1, 1, 0.5, math.nan, math.nan)], str(tmp_path / 'old.png'))
    assert plotted == ['loss per step', 'loss, epoch mean']


def test_save_confusion_matrix_writes_a_picture(tmp_path):
    confusion = np.array([[5, 1, 0], [0, 0, 0], [2, 0, 9]])
    save_confusion_matrix(confusion, ('a', 'b', 'c'), str(tmp_path / 'confusion.png'))
    with Image.open(tmp_path / 'confusion.png') as picture:
        assert picture.format == 'PNG' and picture.size[0] > 200
