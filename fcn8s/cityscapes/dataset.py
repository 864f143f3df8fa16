"""Cityscapes as a dataset of the contract (fcn8s.dataset_contract): 19 classes, the official val split and IoU."""
import os

from fcn8s import cityscapes, datacheck
from fcn8s.cityscapes import check, metric, pictures, results, synthetic
from fcn8s.dataset_contract import Dataset
from fcn8s.errors import DataError
from fcn8s.images import load_image, pair_images_with_labels
from fcn8s.model_io import CLASS_ID_OUTPUT


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
        (fcn8s.cityscapes.synthetic)."""
        synthetic.ensure_synthetic_cityscapes(path, {
            'train': config.demo_train_per_category, 'val': max(config.val_count, 1),
            'test': config.demo_test_per_category}, config.seed)

    def make_synthetic_pairs(self, folder, count):
        """The pairs of count synthetic Cityscapes training scenes in folder."""
        synthetic.make_synthetic_cityscapes(folder, {'train': count})
        return self.training_pairs(self.training_folder(folder))

    def fetch(self, data_dir):
        """Cityscapes needs an account: say how to get it (DataUnavailableError) unless it is there."""
        cityscapes.require_cityscapes(self.path(data_dir))
        return self.path(data_dir)

    def check(self, path, image_shape, require_testing=True, require_calib=False):
        """check.check_cityscapes_folder of path; the requirements are KITTI's (a missing test split is
        a warning, and Cityscapes has no calibration files)."""
        return check.check_cityscapes_folder(path, image_shape)

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
        except DataError:
            return []

    def load_label(self, label_path, image_shape):
        """The label's train ids [h, w] uint8 at image_shape (nearest), 255 where ignored."""
        return cityscapes.train_ids_of(cityscapes.load_label_ids(label_path, image_shape))

    def evaluate(self, predict, pairs, batch_size=8):
        """results.evaluate_classes: one confusion matrix over the pairs, and the unknown ids' pixels."""
        return results.evaluate_classes(predict, pairs, batch_size)

    def score(self, evaluation):
        """metric.class_scores: IoU per class and category, mIoU, pixel accuracy."""
        return metric.class_scores(evaluation.counts, cityscapes.CLASS_NAMES, cityscapes.CLASS_CATEGORY,
                                   cityscapes.CATEGORY_NAMES)

    def ranking_score(self, scores):
        """The number that ranks epochs: mIoU."""
        return scores['mIoU']

    def history_entry(self, scores):
        """{name: value} that a run's metrics.json keeps of every evaluated epoch."""
        return {'mIoU': scores['mIoU'], 'pixel_accuracy': scores['pixel_accuracy']}

    def format_scores(self, scores, evaluation):
        """The table per class and category (IoU in %), then the pixels ignored for ids outside the table, if any."""
        note = results.unknown_ids_note(evaluation)
        return 'Cityscapes IoU in %\n' + metric.format_class_scores(scores) + (f'\n{note}' if note else '')

    def save_pictures(self, evaluation, folder):
        """folder/confusion_matrix.png."""
        pictures.save_confusion_matrix(evaluation.counts.confusion, cityscapes.CLASS_NAMES,
                                       os.path.join(folder, 'confusion_matrix.png'))

    def paint(self, image, class_ids):
        """The image blended with its classes' official colours."""
        return results.paint_classes(image, class_ids)

    def summary_images(self, path, image_shape):
        """[(name, image at image_shape)]: the first three test images."""
        return [(os.path.basename(image_path), load_image(image_path, image_shape))
                for image_path in self.testing_images(self.testing_folder(path))[:3]]

    def write_results(self, predict, image_paths, output_dir, masks=False, batch_size=8):
        """results.save_class_images: overlays, and with masks train-id and colour masks."""
        return results.save_class_images(predict, image_paths, output_dir, masks, batch_size)

    def submission_inputs(self, path):
        """What a submission predicts: leftImg8bit/test, every city."""
        return [cityscapes.split_folder(path, cityscapes.LEFT_IMG, 'test')]

    def check_submission_inputs(self, image_paths, output_dir):
        """results.check_submission_inputs: names, each its own, and the folder, before predicting."""
        results.check_submission_inputs(image_paths, output_dir)

    def write_submission(self, predict, image_paths, output_dir, batch_size=8):
        """results.write_cityscapes_submission; returns the folder."""
        folder = results.write_cityscapes_submission(predict, image_paths, output_dir, batch_size)
        print(results.submission_report(folder, image_paths))
        return folder
