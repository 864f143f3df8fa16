"""The contract between a dataset and the rest of the project: the abstract base class Dataset.

Training, validation, the exported model and the commands ask a dataset object for what differs between
datasets: where its files are and how they pair up, how a label becomes class ids (255 where a pixel is not
evaluated), how predictions are scored, pictured and written. A road dataset's predictions are road
probabilities [h, w] (its predictor output 'road_prob'); a class dataset's are class ids [h, w] ('class_id').
"""
import abc
import os

from fcn8s import files
from fcn8s.errors import DataError, SettingError

IGNORE_ID = 255  # the class id, in every dataset's labels, of pixels that are neither trained nor scored


class Dataset(abc.ABC):
    """The contract between a dataset and the rest: training, validation, the exported model and the commands call
    only these attributes and methods. Each subclass sets the attributes and implements every abstract method."""
    name = ''  # what --dataset and config.json call it
    folder_name = ''  # its folder in a data folder
    split_marker = ''  # the folder that one of its split folders (gen_batch_function's data_folder) holds
    num_classes = 0
    prediction_output = ''  # what its predictors give: ROAD_PROB_OUTPUT (road probabilities) or CLASS_ID_OUTPUT
    road_output = False  # whether its exported model keeps the classic road_prob output
    submission_flag = ''  # infer's flag that writes its benchmark's files
    default_settings = {}  # TrainConfig fields it sets otherwise
    demo_settings = {}  # and with --demo
    demo_image_shape = (0, 0)  # (height, width) of the smallest image of its demo data

    def path(self, data_dir):
        """The dataset's folder in a data folder: data_dir/folder_name."""
        return os.path.join(data_dir, self.folder_name)

    def validation_pairs(self, path, image_names):
        """The pairs of a run's validation images, image_names (its split.json), in the dataset folder path.

        Raises DataError naming every one of them that is missing: a score of the others would not be
        the run's.
        """
        pairs = self.named_validation_pairs(path, image_names)
        missing = sorted(set(image_names) - {os.path.basename(image_path) for image_path, _ in pairs})
        if missing:
            raise DataError(
                f'{len(missing)} of the {len(image_names)} validation images of the run are missing from {path}: '
                f"{', '.join(missing)}. The run's score is of all of them, so the others are not scored alone: put "
                'them back, or score the images you have with --images and --labels.')
        return pairs

    def holds(self, folder):
        """Whether folder is a data folder with this dataset (folder_name/ in it) or one of its split folders."""
        return any(os.path.isdir(os.path.join(folder, name)) for name in (self.folder_name, self.split_marker))

    def check_demo_settings(self, path, config):
        """Raise SettingError when the demo data is still to be made in path (demo_data_to_make) and config cannot run
        on it: a network input larger than its smallest image (demo_image_shape). Before anything is made."""
        if not self.demo_data_to_make(path):
            return
        too_large = [f'--image-{side} {asked}' for side, asked, available in
                     zip(('height', 'width'), config.image_shape, self.demo_image_shape) if asked > available]
        if too_large:
            height, width = self.demo_image_shape
            raise SettingError(f"{' and '.join(too_large)} exceed{'s' if len(too_large) == 1 else ''} the demo's "
                               f'images, {width}x{height} pixels at the smallest: give a network input that fits in '
                               f'them, a multiple of 32 of at most {height // 32 * 32}x{width // 32 * 32} (height x '
                               'width).')

    def demo_data_to_make(self, path):
        """Whether make_demo_data would make the demo data in path (it is missing or incomplete)."""
        return bool(files.missing_parts(path))

    @abc.abstractmethod
    def make_demo_data(self, path, config):
        """Write the synthetic stand-in of the dataset that --demo trains on into path, unless it is there."""

    @abc.abstractmethod
    def make_synthetic_pairs(self, folder, count):
        """[(image path, label path)] of at least count synthetic training pairs, written into folder (bench's)."""

    @abc.abstractmethod
    def fetch(self, data_dir):
        """Make the dataset available in data_dir (download it, or say how); returns its folder."""

    @abc.abstractmethod
    def check(self, path, image_shape, require_testing=True, require_calib=False):
        """A datacheck.DataCheck (a subclass) of the dataset folder path: the check training runs first."""

    @abc.abstractmethod
    def training_folder(self, path):
        """The folder of path that holds the training split (gen_batch_function's data_folder)."""

    @abc.abstractmethod
    def training_pairs(self, training_folder, image_names=None):
        """[(image path, label path)] of the training split, only of the image file names image_names if given."""

    @abc.abstractmethod
    def split(self, path, config):
        """(train_pairs, val_pairs) of a run with config."""

    @abc.abstractmethod
    def named_validation_pairs(self, path, image_names):
        """The pairs of the validation images named image_names (those of them that are there)."""

    @abc.abstractmethod
    def labelled_pairs(self, image_dir, label_dir):
        """[(image path, label path)] of the images of image_dir with their labels in label_dir (evaluate)."""

    @abc.abstractmethod
    def check_labels(self, pairs):
        """[error] of the labels of (image, label) pairs that evaluate cannot score."""

    @abc.abstractmethod
    def testing_folder(self, path):
        """The folder of path that holds the testing split (gen_test_output's data_folder)."""

    @abc.abstractmethod
    def testing_images(self, testing_folder):
        """[path] of the testing images, which training paints at its end."""

    @abc.abstractmethod
    def load_label(self, label_path, image_shape):
        """The label as [h, w] uint8 class ids at image_shape (nearest), 255 where not evaluated."""

    @abc.abstractmethod
    def evaluate(self, predict, pairs, batch_size=8):
        """The counts of predict's predictions on the (image, label) pairs that score() turns into measures."""

    @abc.abstractmethod
    def score(self, evaluation):
        """{measure: value} of an evaluation."""

    @abc.abstractmethod
    def ranking_score(self, scores):
        """The number that ranks epochs: the best one's checkpoint is kept."""

    @abc.abstractmethod
    def history_entry(self, scores):
        """{name: value} that a run's metrics.json keeps of every evaluated epoch."""

    @abc.abstractmethod
    def format_scores(self, scores, evaluation):
        """The measures as a text table."""

    @abc.abstractmethod
    def save_pictures(self, evaluation, folder):
        """Write the evaluation's pictures into folder."""

    @abc.abstractmethod
    def paint(self, image, prediction):
        """image [h, w, 3] uint8 with its prediction [h, w] painted on it."""

    @abc.abstractmethod
    def summary_images(self, path, image_shape):
        """[(name, image at image_shape)] that TensorBoard shows painted after every epoch."""

    @abc.abstractmethod
    def write_results(self, predict, image_paths, output_dir, masks=False, batch_size=8):
        """Write the painted images (and with masks the masks) of image_paths into output_dir."""

    @abc.abstractmethod
    def submission_inputs(self, path):
        """What a submission predicts: folders or image paths."""

    @abc.abstractmethod
    def check_submission_inputs(self, image_paths, output_dir):
        """Raise before predicting when an image cannot be part of a submission, or output_dir cannot take it."""

    @abc.abstractmethod
    def write_submission(self, predict, image_paths, output_dir, batch_size=8):
        """Write the benchmark's files of image_paths into output_dir; returns what to upload."""
