"""The datasets FCN-8s learns, behind one interface: KITTI Road (road or not) and Cityscapes (19 classes).

Training, validation, the exported model and the commands ask a dataset object (DATASETS[name]) for what
differs between datasets: where its files are and how they pair up, how a label becomes a one-hot target
with ignored pixels all zero, how predictions are scored, pictured and written. A road dataset's
predictions are road probabilities [h, w] (its predictor output 'road_prob'); a class dataset's are class
ids [h, w] ('class_id').
"""
import abc
import glob
import os

from PIL import Image

from fcn8s import (cityscapes, cityscapes_check, cityscapes_results, classmetric, datacheck, downloads, files, kitti,
                   metric, plots, submission, synthetic, synthetic_cityscapes)
from fcn8s.batches import split_training_pairs
from fcn8s.images import load_image, paint_road, pair_images_with_labels, save_road_images
from fcn8s.predict import CLASS_ID_OUTPUT, SERVING_OUTPUT

KITTI_LABEL_MODES = ('RGB', 'RGBA', 'P')  # PIL modes of KITTI label files whose colours load_image reads as they are


class Dataset(abc.ABC):
    """The contract between a dataset and the rest: training, validation, the exported model and the commands call
    only these attributes and methods. Each subclass sets the attributes and implements every abstract method."""
    name = ''  # what --dataset and config.json call it
    folder_name = ''  # its folder in a data folder
    split_marker = ''  # the folder that one of its split folders (gen_batch_function's data_folder) holds
    num_classes = 0
    prediction_output = ''  # what its predictors give: SERVING_OUTPUT (road probabilities) or CLASS_ID_OUTPUT
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

        Raises FileNotFoundError naming every one of them that is missing: a score of the others would not be
        the run's.
        """
        pairs = self.named_validation_pairs(path, image_names)
        missing = sorted(set(image_names) - {os.path.basename(image_path) for image_path, _ in pairs})
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} of the {len(image_names)} validation images of the run are missing from {path}: '
                f"{', '.join(missing)}. The run's score is of all of them, so the others are not scored alone: put "
                'them back, or score the images you have with --images and --labels.')
        return pairs

    def holds(self, folder):
        """Whether folder is a data folder with this dataset (folder_name/ in it) or one of its split folders."""
        return any(os.path.isdir(os.path.join(folder, name)) for name in (self.folder_name, self.split_marker))

    def check_demo_settings(self, path, config):
        """Raise ValueError when the demo data is still to be made in path (demo_data_to_make) and config cannot run
        on it: a network input larger than its smallest image (demo_image_shape). Before anything is made."""
        if not self.demo_data_to_make(path):
            return
        too_large = [f'--image-{side} {asked}' for side, asked, available in
                     zip(('height', 'width'), config.image_shape, self.demo_image_shape) if asked > available]
        if too_large:
            height, width = self.demo_image_shape
            raise ValueError(f"{' and '.join(too_large)} exceed{'s' if len(too_large) == 1 else ''} the demo's images, "
                             f'{width}x{height} pixels at the smallest: give a network input that fits in them, a '
                             f'multiple of 32 of at most {height // 32 * 32}x{width // 32 * 32} (height x width).')

    def demo_data_to_make(self, path):
        """Whether make_demo_data would make the demo data in path (it is missing or incomplete)."""
        return bool(files.missing_parts(path))

    @abc.abstractmethod
    def make_demo_data(self, path, config):
        """Write the synthetic stand-in of the dataset that --demo trains on into path, unless it is there."""

    @abc.abstractmethod
    def fetch(self, data_dir):
        """Make the dataset available in data_dir (download it, or say how); returns its folder."""

    @abc.abstractmethod
    def check(self, path, image_shape, require_testing=True, require_calib=False):
        """A datacheck.DataCheck of the dataset folder path: the check training runs first."""

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


class KittiRoad(Dataset):
    """KITTI Road: data_dir/data_road, two classes (background, road), the devkit's MaxF in perspective and BEV."""
    name = 'kitti_road'
    folder_name = kitti.ROAD_FOLDER
    split_marker = 'image_2'
    num_classes = 2
    prediction_output = SERVING_OUTPUT
    road_output = True  # the exported model keeps the classic road_prob output
    submission_flag = '--kitti-submission'
    default_settings = {}  # TrainConfig's defaults are the classic KITTI ones
    demo_image_shape = tuple(min(size[axis] for size, _ in kitti.KITTI_SIZES) for axis in (1, 0))  # KITTI's sizes

    def check_demo_settings(self, path, config):
        """Dataset.check_demo_settings, and a config.val_count that would leave no training image of the demo's."""
        super().check_demo_settings(path, config)
        made_count = len(kitti.KITTI_CATEGORIES) * config.demo_train_per_category
        if self.demo_data_to_make(path) and config.val_count >= made_count:
            raise ValueError(f'--val-count {config.val_count} must lie in 0..{made_count - 1}: the demo makes '
                             f'{made_count} training images ({config.demo_train_per_category} per category, '
                             '--demo-train-per-category)')

    def demo_data_to_make(self, path):
        """Whether the synthetic KITTI is still to be made in path (synthetic.synthetic_kitti_to_make)."""
        return synthetic.synthetic_kitti_to_make(path)

    def make_demo_data(self, path, config):
        """The synthetic KITTI of the demo in path (fcn8s.synthetic), made once and reused."""
        synthetic.ensure_synthetic_kitti(path, config.demo_train_per_category, config.demo_test_per_category,
                                         config.seed)

    def fetch(self, data_dir):
        """Download and unpack data_road.zip into data_dir when training/ or testing/ is missing."""
        path = self.path(data_dir)
        if not all(os.path.isdir(os.path.join(path, folder)) for folder in kitti.KITTI_FOLDERS):
            downloads.fetch_zip_folder(
                downloads.KITTI_URLS, data_dir, kitti.ROAD_FOLDER, downloads.KITTI_ZIP_BYTES,
                manual_hint=', '.join(os.path.join(path, folder) + '/' for folder in kitti.KITTI_FOLDERS))
        return path

    def check(self, path, image_shape, require_testing=True, require_calib=False):
        """datacheck.check_kitti_folder of path."""
        return datacheck.check_kitti_folder(path, image_shape, require_testing, require_calib)

    def training_folder(self, path):
        """data_road/training: the folder gen_batch_function lists."""
        return os.path.join(path, 'training')

    def training_pairs(self, training_folder, image_names=None):
        """[(image path, label path)] of training_folder, only of image_names if given."""
        return kitti.list_training_pairs(training_folder, image_names)

    def split(self, path, config):
        """(train_pairs, val_pairs): config.val_count pairs held out of training/, stratified and seeded."""
        return split_training_pairs(self.training_pairs(self.training_folder(path)), config.val_count, config.seed)

    def named_validation_pairs(self, path, image_names):
        """The pairs of training/ of the images named image_names (those of them that are there)."""
        return self.training_pairs(self.training_folder(path), image_names)

    def labelled_pairs(self, image_dir, label_dir):
        """[(image path, label path)]: each <cat>_NNNNNN.png under image_dir with its <cat>_road_NNNNNN.png under
        label_dir (images.pair_images_with_labels: subfolders too)."""
        return pair_images_with_labels(image_dir, label_dir, kitti.IMAGE_NAME, kitti.LABEL_NAME, kitti.IMAGE_NAME_FORM,
                                       'a KITTI Road model is scored on images such as those of data_road/training/'
                                       "image_2, with gt_image_2's labels.")

    def check_labels(self, pairs):
        """[error] of the labels of (image, label) pairs that evaluate cannot score: unreadable, not a colour image
        or of another size than their image (datacheck.label_file_errors)."""
        return datacheck.label_file_errors(pairs, KITTI_LABEL_MODES, 'a colour image (RGB) like the '
                                           f'{kitti.LABEL_NAME_FORM} of data_road.zip: road magenta, background red')

    def testing_folder(self, path):
        """data_road/testing: the folder gen_test_output paints."""
        return os.path.join(path, 'testing')

    def testing_images(self, testing_folder):
        """[path] of testing_folder/image_2/*.png, which training paints at its end."""
        return sorted(glob.glob(os.path.join(testing_folder, 'image_2', '*.png')))

    def load_label(self, label_path, image_shape):
        """The label's class ids [h, w] uint8 at image_shape (nearest): 0 background, 1 road, 255 outside the
        evaluated area (kitti.label_ids)."""
        return kitti.label_ids(load_image(label_path, image_shape, Image.NEAREST))

    def evaluate(self, predict, pairs, batch_size=8):
        """metric.evaluate_road: perspective and BEV counts per category."""
        return metric.evaluate_road(predict, pairs, batch_size)

    def score(self, evaluation):
        """metric.score_evaluation: the measures per category, the BEV ones under 'bev'."""
        return metric.score_evaluation(evaluation)

    def ranking_score(self, scores):
        """The number that ranks epochs (the best one's checkpoint is kept): the overall MaxF."""
        return scores['overall']['MaxF']

    def history_entry(self, scores):
        """{name: value} that a run's metrics.json keeps of every evaluated epoch."""
        return {'MaxF': scores['overall']['MaxF'], 'IoU': scores['overall']['IoU'],
                'bev_MaxF': scores['bev'] and scores['bev']['overall']['MaxF']}

    def format_scores(self, scores, evaluation):
        """Both tables, perspective and BEV."""
        return 'KITTI road measures in %\n' + metric.format_evaluation(scores, evaluation.without_calibration)

    def save_pictures(self, evaluation, folder):
        """folder/pr_curve.png and folder/bev_<category>.png."""
        plots.save_pr_curve(evaluation, os.path.join(folder, 'pr_curve.png'))
        plots.save_bev_pictures(evaluation.bev_examples, folder)

    def paint(self, image, road_prob):
        """The image with its road tinted green."""
        return paint_road(image, road_prob)

    def summary_images(self, path, image_shape):
        """[(name, image at image_shape)]: the first testing image of each category."""
        first_of_category = {}
        for image_path in self.testing_images(self.testing_folder(path)):
            first_of_category.setdefault(kitti.parse_image_name(image_path)[0], image_path)
        return [(os.path.basename(image_path), load_image(image_path, image_shape))
                for image_path in first_of_category.values()]

    def write_results(self, predict, image_paths, output_dir, masks=False, batch_size=8):
        """images.save_road_images: overlays, and with masks road masks."""
        return save_road_images(predict, image_paths, output_dir, masks=masks, batch_size=batch_size)

    def submission_inputs(self, path):
        """What a submission scores: data_road/testing/image_2."""
        return [os.path.join(path, 'testing', 'image_2')]

    def check_submission_inputs(self, image_paths, output_dir):
        """submission.check_submission_inputs: names, calibrations and the zip's path, before predicting."""
        submission.check_submission_inputs(image_paths, output_dir)

    def write_submission(self, predict, image_paths, output_dir, batch_size=8):
        """submission.write_kitti_submission, then what to upload where; returns the zip's path."""
        zip_path = submission.write_kitti_submission(predict, image_paths, output_dir, batch_size)
        print(submission.upload_instructions(zip_path, len(image_paths)))
        return zip_path


class Cityscapes(Dataset):
    """Cityscapes: data_dir/cityscapes, the 19 classes of its train ids, the official val split and its IoU."""
    name = 'cityscapes'
    folder_name = cityscapes.CITYSCAPES_FOLDER
    split_marker = cityscapes.LEFT_IMG
    num_classes = cityscapes.NUM_CLASSES
    prediction_output = CLASS_ID_OUTPUT
    road_output = False
    submission_flag = '--cityscapes-submission'
    default_settings = {'image_height': 512, 'image_width': 1024, 'val_count': 500}
    demo_image_shape = cityscapes.CITYSCAPES_SHAPE
    # Its demo learns 7 classes from scratch-like random features: at the KITTI demo's 5e-4 the loss diverged
    # after about 9 epochs; 2e-4 learns within 15.
    demo_settings = {'image_height': 256, 'image_width': 512, 'val_count': 6, 'epochs': 15, 'learning_rate': 2e-4,
                     'demo_train_per_category': 24, 'demo_test_per_category': 3}

    def make_demo_data(self, path, config):
        """The synthetic Cityscapes of the demo: demo_train_per_category train images (in all), val_count val
        images (at least one, as the layout has a val split), demo_test_per_category test images, at 1024x2048
        (fcn8s.synthetic_cityscapes)."""
        synthetic_cityscapes.ensure_synthetic_cityscapes(path, {
            'train': config.demo_train_per_category, 'val': max(config.val_count, 1),
            'test': config.demo_test_per_category}, config.seed)

    def fetch(self, data_dir):
        """Cityscapes needs an account: say how to get it (DataUnavailableError) unless it is there."""
        cityscapes.require_cityscapes(self.path(data_dir))
        return self.path(data_dir)

    def check(self, path, image_shape, require_testing=True, require_calib=False):
        """cityscapes_check.check_cityscapes_folder of path; the requirements are KITTI's (a missing test split is
        a warning, and Cityscapes has no calibration files)."""
        return cityscapes_check.check_cityscapes_folder(path, image_shape)

    def training_folder(self, path):
        """The Cityscapes folder itself: its train split is listed from there."""
        return path

    def training_pairs(self, training_folder, image_names=None):
        """[(image path, label path)] of the train split, only of image_names if given."""
        pairs = cityscapes.list_cityscapes_pairs(training_folder, 'train')
        return [pair for pair in pairs if image_names is None or os.path.basename(pair[0]) in set(image_names)]

    def split(self, path, config):
        """(the train split, the first config.val_count images of the official val split)."""
        val_pairs = cityscapes.list_cityscapes_pairs(path, 'val')[:config.val_count] if config.val_count else []
        return self.training_pairs(path), val_pairs

    def named_validation_pairs(self, path, image_names):
        """The pairs of the val split of the images named image_names (those of them that are there)."""
        return [pair for pair in cityscapes.list_cityscapes_pairs(path, 'val')
                if os.path.basename(pair[0]) in image_names]

    def labelled_pairs(self, image_dir, label_dir):
        """[(image path, label path)]: each *_leftImg8bit.png under image_dir with the *_gtFine_labelIds.png of its
        frame under label_dir (images.pair_images_with_labels: city folders or not)."""
        return pair_images_with_labels(image_dir, label_dir, cityscapes.IMAGE_NAME, cityscapes.LABEL_NAME,
                                       cityscapes.IMAGE_NAME_FORM, 'a Cityscapes model is scored on the images of '
                                       "leftImg8bit/val (or a folder of them) with gtFine/val's labels.")

    def check_labels(self, pairs):
        """[error] of the labels of (image, label) pairs that evaluate cannot score: unreadable, not of label ids or
        of another size than their image (datacheck.label_file_errors)."""
        return datacheck.label_file_errors(pairs, cityscapes.LABEL_ID_MODES, 'an 8-bit image of label ids (mode L, '
                                           f'or P read as its indices) like the {cityscapes.LABEL_NAME_FORM} files '
                                           f'of {cityscapes.PACKAGES[0]}')

    def testing_folder(self, path):
        """The Cityscapes folder itself: its test split is listed from there."""
        return path

    def testing_images(self, testing_folder):
        """[path] of leftImg8bit/test/<city>/*_leftImg8bit.png ([] without a test split)."""
        try:
            return cityscapes.list_cityscapes_images(testing_folder, 'test')
        except FileNotFoundError:
            return []

    def load_label(self, label_path, image_shape):
        """The label's train ids [h, w] uint8 at image_shape (nearest), 255 where ignored."""
        return cityscapes.train_ids_of(cityscapes.load_label_ids(label_path, image_shape))

    def evaluate(self, predict, pairs, batch_size=8):
        """cityscapes_results.evaluate_classes: one confusion matrix over the pairs, and the unknown ids' pixels."""
        return cityscapes_results.evaluate_classes(predict, pairs, batch_size)

    def score(self, evaluation):
        """classmetric.class_scores: IoU per class and category, mIoU, pixel accuracy."""
        return classmetric.class_scores(evaluation.counts, cityscapes.CLASS_NAMES, cityscapes.CLASS_CATEGORY,
                                        cityscapes.CATEGORY_NAMES)

    def ranking_score(self, scores):
        """The number that ranks epochs: mIoU."""
        return scores['mIoU']

    def history_entry(self, scores):
        """{name: value} that a run's metrics.json keeps of every evaluated epoch."""
        return {'mIoU': scores['mIoU'], 'pixel_accuracy': scores['pixel_accuracy']}

    def format_scores(self, scores, evaluation):
        """The table per class and category (IoU in %), then the pixels ignored for ids outside the table, if any."""
        note = cityscapes_results.unknown_ids_note(evaluation)
        return 'Cityscapes IoU in %\n' + classmetric.format_class_scores(scores) + (f'\n{note}' if note else '')

    def save_pictures(self, evaluation, folder):
        """folder/confusion_matrix.png."""
        plots.save_confusion_matrix(evaluation.counts.confusion, cityscapes.CLASS_NAMES,
                                          os.path.join(folder, 'confusion_matrix.png'))

    def paint(self, image, class_ids):
        """The image blended with its classes' official colours."""
        return cityscapes_results.paint_classes(image, class_ids)

    def summary_images(self, path, image_shape):
        """[(name, image at image_shape)]: the first three test images."""
        return [(os.path.basename(image_path), load_image(image_path, image_shape))
                for image_path in self.testing_images(self.testing_folder(path))[:3]]

    def write_results(self, predict, image_paths, output_dir, masks=False, batch_size=8):
        """cityscapes_results.save_class_images: overlays, and with masks train-id and colour masks."""
        return cityscapes_results.save_class_images(predict, image_paths, output_dir, masks, batch_size)

    def submission_inputs(self, path):
        """What a submission predicts: leftImg8bit/test, every city."""
        return [cityscapes.split_folder(path, cityscapes.LEFT_IMG, 'test')]

    def check_submission_inputs(self, image_paths, output_dir):
        """cityscapes_results.check_submission_inputs: names, each its own, and the folder, before predicting."""
        cityscapes_results.check_submission_inputs(image_paths, output_dir)

    def write_submission(self, predict, image_paths, output_dir, batch_size=8):
        """cityscapes_results.write_cityscapes_submission; returns the folder."""
        folder = cityscapes_results.write_cityscapes_submission(predict, image_paths, output_dir, batch_size)
        print(cityscapes_results.submission_report(folder, image_paths))
        return folder


DATASETS = {dataset.name: dataset for dataset in (KittiRoad(), Cityscapes())}
DATASET_NAMES = tuple(DATASETS)


def dataset_of_folder(folder):
    """The dataset of DATASETS that folder holds (Dataset.holds): for the classic helpers, which are given folders.

    Raises ValueError naming what was looked for when no dataset, or more than one, is there.
    """
    found = [dataset for dataset in DATASETS.values() if dataset.holds(folder)]
    if len(found) != 1:
        looked_for = '; '.join(f'{dataset.name}: {dataset.folder_name}/ or {dataset.split_marker}/'
                               for dataset in DATASETS.values())
        raise ValueError(f'{folder} holds {"no dataset" if not found else "more than one dataset"} ({looked_for}): '
                         'give the dataset too, as dataset=DATASETS[name].')
    return found[0]
