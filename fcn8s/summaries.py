"""TensorBoard event files of a run: the loss, the learning rate, validation measures and painted testing images."""
import io
import os

import numpy as np
from PIL import Image

from fcn8s import kitti
from fcn8s.images import load_image, paint_road
from fcn8s.tf1 import tf

OVERLAY_JPEG_QUALITY = 90
LOSS_TAGS = ('loss/step', 'loss/cross_entropy', 'loss/l2')  # of a loss row's values after epoch and step


class RunSummaries:
    """TensorBoard event files in a run's tensorboard/ folder, written at the end of every epoch.

    Scalars: loss/step, loss/cross_entropy and loss/l2 (every step; the loss is their sum),
    loss/epoch_mean, learning_rate and, for epochs that were
    scored, validation/<category or overall>/<measure>. Images: overlays/<name>, a few testing
    images at the network's input size with their predicted road painted green. Steps count
    training steps from the run's start, so a resumed run continues the curves; the session-start
    marker at its first step makes TensorBoard drop what an interrupted session wrote after it.
    """

    def __init__(self, log_dir, graph, steps_per_epoch, start_epoch, predict, overlay_images):
        self.writer = tf.summary.FileWriter(log_dir, graph)
        self.steps_per_epoch, self.predict, self.overlay_images = steps_per_epoch, predict, overlay_images
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
        scalars.update({f'validation/{group}/{name}': value for group, measures in (scores or {}).items()
                        for name, value in measures.items() if name != 'images'})
        values = [tf.Summary.Value(tag=tag, simple_value=value) for tag, value in scalars.items()]
        self.writer.add_summary(tf.Summary(value=values + self.overlay_values()),
                                self.global_step(epoch, epoch_loss_rows[-1][1]))
        self.writer.flush()

    def overlay_values(self):
        """tf.Summary.Values of the overlay images as predicted now, JPEG-encoded."""
        values = []
        road_probs = self.predict([image for _, image in self.overlay_images]) if self.overlay_images else []
        for (name, image), road_prob in zip(self.overlay_images, road_probs):
            jpeg = io.BytesIO()
            Image.fromarray(paint_road(image, road_prob)).save(jpeg, 'JPEG', quality=OVERLAY_JPEG_QUALITY)
            values.append(tf.Summary.Value(tag=f'overlays/{name}', image=tf.Summary.Image(
                height=image.shape[0], width=image.shape[1], colorspace=3, encoded_image_string=jpeg.getvalue())))
        return values


def summary_overlay_images(road_path, image_shape):
    """[(file name, [height, width, 3] uint8 image)]: the first testing image of each category, at image_shape."""
    test_dir = os.path.join(road_path, 'testing', 'image_2')
    first_of_category = {}
    for name in sorted(os.listdir(test_dir)):
        parsed = kitti.parse_image_name(name)
        if parsed:
            first_of_category.setdefault(parsed[0], name)
    return [(name, load_image(os.path.join(test_dir, name), image_shape)) for name in first_of_category.values()]
