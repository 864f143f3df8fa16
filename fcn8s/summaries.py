"""TensorBoard event files of a run: the loss, the learning rate, validation measures and painted testing images."""
import io

import numpy as np
from PIL import Image

from fcn8s.tf1 import tf

OVERLAY_JPEG_QUALITY = 90
LOSS_TAGS = ('loss/step', 'loss/cross_entropy', 'loss/l2')  # of a loss row's values after epoch and step


class RunSummaries:
    """TensorBoard event files in a run's tensorboard/ folder, written at the end of every epoch.

    Scalars: loss/step, loss/cross_entropy and loss/l2 (every step; the loss is their sum),
    loss/epoch_mean, learning_rate and, for epochs that were scored, the dataset's scores under
    validation/ (validation_scalars). Images:
    overlays/<name>, overlay_images [(name, image at the network's input size)] with what predict
    predicts on them painted by dataset.paint(image, prediction) (fcn8s.datasets). Steps count
    training steps from the run's start, so a resumed run continues the curves; the session-start
    marker at its first step makes TensorBoard drop what an interrupted session wrote after it.
    """

    def __init__(self, log_dir, graph, steps_per_epoch, start_epoch, predict, overlay_images, dataset):
        self.writer = tf.summary.FileWriter(log_dir, graph)
        self.steps_per_epoch, self.predict, self.overlay_images = steps_per_epoch, predict, overlay_images
        self.paint = dataset.paint
        self.writer.add_session_log(tf.SessionLog(status=tf.SessionLog.START), self.global_step(start_epoch, 1))

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.writer.close()

    def global_step(self, epoch, step):
        """Training steps from the start of the run to `step` of `epoch`."""
        return (epoch - 1) * self.steps_per_epoch + step

    def add_epoch(self, epoch, epoch_loss_rows, learning_rate, scores=None):
        """Write a finished epoch: its [(epoch, step, loss, cross_entropy, l2)] rows, learning rate, scores or None."""
        for _, step, *losses in epoch_loss_rows:
            values = [tf.Summary.Value(tag=tag, simple_value=value) for tag, value in zip(LOSS_TAGS, losses)]
            self.writer.add_summary(tf.Summary(value=values), self.global_step(epoch, step))
        scalars = {'loss/epoch_mean': np.mean([row[2] for row in epoch_loss_rows]), 'learning_rate': learning_rate}
        scalars.update(validation_scalars(scores or {}))
        values = [tf.Summary.Value(tag=tag, simple_value=value) for tag, value in scalars.items()]
        self.writer.add_summary(tf.Summary(value=values + self.overlay_values()),
                                self.global_step(epoch, epoch_loss_rows[-1][1]))
        self.writer.flush()

    def overlay_values(self):
        """tf.Summary.Values of the overlay images as predicted now, JPEG-encoded."""
        values = []
        predictions = self.predict([image for _, image in self.overlay_images]) if self.overlay_images else []
        for (name, image), prediction in zip(self.overlay_images, predictions):
            jpeg = io.BytesIO()
            Image.fromarray(self.paint(image, prediction)).save(jpeg, 'JPEG', quality=OVERLAY_JPEG_QUALITY)
            values.append(tf.Summary.Value(tag=f'overlays/{name}', image=tf.Summary.Image(
                height=image.shape[0], width=image.shape[1], colorspace=3, encoded_image_string=jpeg.getvalue())))
        return values


def validation_scalars(scores, prefix='validation'):
    """{'validation/<key>/.../<measure>': value} of a dataset's scores, nested dicts flattened into tag paths.

    KITTI: validation/<overall|um|umm|uu>/<measure> and validation/bev/...; Cityscapes: validation/mIoU,
    validation/classes/<class>, validation/categories/<category>. Image counts and unscored (None) values
    are left out.
    """
    scalars = {}
    for name, value in scores.items():
        if isinstance(value, dict):
            scalars.update(validation_scalars(value, f'{prefix}/{name}'))
        elif value is not None and name != 'images':
            scalars[f'{prefix}/{name}'] = value
    return scalars
