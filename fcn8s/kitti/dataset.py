"""KITTI Road as a dataset of the contract (fcn8s.dataset_contract): two classes, the devkit's MaxF, BEV, submission."""
import glob
import os

from PIL import Image

from fcn8s import datacheck, downloads, kitti
from fcn8s.dataset_contract import Dataset
from fcn8s.errors import SettingError
from fcn8s.images import load_image, pair_images_with_labels
from fcn8s.kitti import check, metric, pictures, submission, synthetic
from fcn8s.kitti.results import paint_road, save_road_images
from fcn8s.model_io import ROAD_PROB_OUTPUT
from fcn8s.split import split_training_pairs

KITTI_LABEL_MODES = ('RGB', 'RGBA', 'P')  # PIL modes of KITTI label files whose colours load_image reads as they are


class KittiRoad(Dataset):
    """KITTI Road: data_dir/data_road, two classes (background, road), the devkit's MaxF in perspective and BEV."""
    name = 'kitti_road'
    folder_name = kitti.ROAD_FOLDER
    split_marker = 'image_2'
    num_classes = 2
    prediction_output = ROAD_PROB_OUTPUT
    road_output = True  # the exported model keeps the classic road_prob output
    submission_flag = '--kitti-submission'
    default_settings = {}  # TrainConfig's defaults are the classic KITTI ones
    demo_image_shape = tuple(min(size[axis] for size, _ in kitti.KITTI_SIZES) for axis in (1, 0))  # KITTI's sizes

    def check_demo_settings(self, path, config):
        """Dataset.check_demo_settings, and a config.val_count that would leave no training image of the demo's."""
        super().check_demo_settings(path, config)
        made_count = len(kitti.KITTI_CATEGORIES) * config.demo_train_per_category
        if self.demo_data_to_make(path) and config.val_count >= made_count:
            raise SettingError(f'--val-count {config.val_count} must lie in 0..{made_count - 1}: the demo makes '
                               f'{made_count} training images ({config.demo_train_per_category} per category, '
                               '--demo-train-per-category)')

    def demo_data_to_make(self, path):
        """Whether the synthetic KITTI is still to be made in path (synthetic.synthetic_kitti_to_make)."""
        return synthetic.synthetic_kitti_to_make(path)

    def make_demo_data(self, path, config):
        """The synthetic KITTI of the demo in path (fcn8s.kitti.synthetic), made once and reused."""
        synthetic.ensure_synthetic_kitti(path, config.demo_train_per_category, config.demo_test_per_category,
                                         config.seed)

    def make_synthetic_pairs(self, folder, count):
        """The pairs of the synthetic KITTI of training/ in folder: count rounded up to a whole number per category."""
        synthetic.make_synthetic_kitti(folder, train_per_category=-(-count // len(kitti.KITTI_CATEGORIES)),
                                       test_per_category=0)
        return self.training_pairs(self.training_folder(folder))

    def fetch(self, data_dir):
        """Download and unpack data_road.zip into data_dir when training/ or testing/ is missing."""
        path = self.path(data_dir)
        if not all(os.path.isdir(os.path.join(path, folder)) for folder in kitti.KITTI_FOLDERS):
            downloads.fetch_zip_folder(
                downloads.KITTI_URLS, data_dir, kitti.ROAD_FOLDER, downloads.KITTI_ZIP_BYTES,
                manual_hint=', '.join(os.path.join(path, folder) + '/' for folder in kitti.KITTI_FOLDERS))
        return path

    def check(self, path, image_shape, require_testing=True, require_calib=False):
        """check.check_kitti_folder of path."""
        return check.check_kitti_folder(path, image_shape, require_testing, require_calib)

    def training_folder(self, path):
        """data_road/training: the folder gen_batch_function lists."""
        return os.path.join(path, 'training')

    def training_pairs(self, training_folder, image_names=None):
        """[(image path, label path)] of training_folder, only of image_names if given."""
        return kitti.list_training_pairs(training_folder, image_names)

    def split(self, path, config):
        """(train_pairs, val_pairs): config.val_count pairs held out of training/, stratified and seeded."""
        return split_training_pairs(self.training_pairs(self.training_folder(path)), config.val_count, config.seed,
                                    kitti.KITTI_CATEGORIES, self.category)

    def category(self, image_path):
        """The category of an image, um, umm or uu: what the validation split is stratified over."""
        return kitti.parse_image_name(image_path)[0]

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
        pictures.save_pr_curve(evaluation, os.path.join(folder, 'pr_curve.png'))
        pictures.save_bev_pictures(evaluation.bev_examples, folder)

    def paint(self, image, road_prob):
        """The image with its road tinted green."""
        return paint_road(image, road_prob)

    def summary_images(self, path, image_shape):
        """[(name, image at image_shape)]: the first testing image of each category."""
        first_of_category = {}
        for image_path in self.testing_images(self.testing_folder(path)):
            first_of_category.setdefault(self.category(image_path), image_path)
        return [(os.path.basename(image_path), load_image(image_path, image_shape))
                for image_path in first_of_category.values()]

    def write_results(self, predict, image_paths, output_dir, masks=False, batch_size=8):
        """results.save_road_images: overlays, and with masks road masks."""
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
