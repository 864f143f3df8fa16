"""The KITTI Road benchmark's submission: results in perspective and in BEV, and the zip of the BEV ones to upload."""
import os
import zipfile

from tqdm import tqdm

from fcn8s import images, kitti
from fcn8s.errors import DataError
from fcn8s.files import check_output_path, written_whole
from fcn8s.kitti import bev

SUBMISSION_ZIP = 'kitti_road_submission.zip'
KITTI_TESTING_IMAGES = 290  # um 96, umm 94, uu 100: the server scores all of them
UPLOAD_PAGE = 'https://www.cvlibs.net/datasets/kitti/user_login.php'


def require_calibrations(image_paths):
    """Make every image's BEV lookup (bev.calibration_lookup, at its size); raises DataError naming every calibration
    that is missing or unusable, or through which the BEV grid sees nothing of its image, and any unreadable image."""
    problems = []
    for image_path in image_paths:
        try:
            bev.calibration_lookup(bev.calibration_path(image_path), images.image_shape_of(image_path))
        except DataError as error:
            problems.append(str(error))
    if problems:
        raise DataError(f'{len(problems)} of {len(image_paths)} images have no usable calibration, which the '
                        "bird's-eye view of the submission needs; nothing was predicted or written:\n"
                        + '\n'.join(f'  - {problem}' for problem in problems))


def check_submission_inputs(image_paths, output_dir):
    """The results' names, once everything a submission can check before predicting is checked: raises
    DataError, ValueError or UnwritableOutput.

    Each image needs a benchmark name of its own (images.benchmark_output_names) and a
    usable calibration (require_calibrations); output_dir/kitti_road_submission.zip must be free for a file,
    output_dir/perspective and output_dir/bev for folders.
    """
    result_names = images.benchmark_output_names(image_paths, kitti.result_name, kitti.IMAGE_NAME_FORM,
                                                 'give the images of data_road/testing/image_2.')
    require_calibrations(image_paths)
    check_output_path(os.path.join(output_dir, SUBMISSION_ZIP))
    for space in ('perspective', 'bev'):
        check_output_path(os.path.join(output_dir, space), folder=True)
    return result_names


def write_kitti_submission(predict, image_paths, output_dir, batch_size=8):
    """Write the benchmark's results of KITTI images; returns the zip's path.

    Everything is checked first (check_submission_inputs), so that a missing calibration, two images of
    one name or a folder where the zip goes stops the command before anything is predicted or written.
    For each <cat>_NNNNNN.png: output_dir/perspective/<cat>_road_NNNNNN.png, the road
    probability as 8-bit grayscale (probability * 255, rounded) at the image's size, and
    output_dir/bev/<cat>_road_NNNNNN.png, the same through the image's calibration on the
    800x400 BEV grid, what the server scores. output_dir/kitti_road_submission.zip holds the BEV
    files at its root, written whole or not at all.
    """
    result_names = check_submission_inputs(image_paths, output_dir)
    for space in ('perspective', 'bev'):
        os.makedirs(os.path.join(output_dir, space), exist_ok=True)
    predictions = images.predict_image_files(predict, image_paths, batch_size)
    for result_name, (image_path, _, road_prob) in tqdm(zip(result_names, predictions), total=len(image_paths),
                                                        desc='Predicting road', unit='image'):
        result = kitti.result_image(road_prob)
        images.save_png(result, os.path.join(output_dir, 'perspective', result_name))
        images.save_png(bev.image_to_bev(result, image_path), os.path.join(output_dir, 'bev', result_name))
    zip_path = os.path.join(output_dir, SUBMISSION_ZIP)
    with written_whole(zip_path) as partial_path, zipfile.ZipFile(partial_path, 'w', zipfile.ZIP_DEFLATED) as archive:
        for result_name in sorted(result_names):
            archive.write(os.path.join(output_dir, 'bev', result_name), arcname=result_name)
    return zip_path


def upload_instructions(zip_path, image_count):
    """What to do with the zip: where to upload it, and whether it holds the whole testing set."""
    text = (f'Upload {zip_path} ({image_count} BEV results at its root) to the KITTI Road benchmark: log in at '
            f'{UPLOAD_PAGE} (a KITTI account), choose to submit results for the road benchmark, and give the zip. '
            'The server scores the BEV images; the perspective/ ones are for looking at.')
    if image_count != KITTI_TESTING_IMAGES:
        text += (f' The server expects all {KITTI_TESTING_IMAGES} images of data_road/testing/image_2; this zip '
                 f'holds {image_count}.')
    return text
