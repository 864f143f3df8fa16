"""The datasets FCN-8s learns, by name: KITTI Road (road or not) and Cityscapes (19 classes).

Each keeps the contract of fcn8s.dataset_contract.Dataset; the rest of the project asks DATASETS[name]. Their
names, in this order, are model_io.DATASET_NAMES, which the car's predictor and the settings read without importing
the datasets. Importing this module loads neither TensorFlow nor matplotlib (fcn8s/tests/test_config.py checks it).
"""
from fcn8s.cityscapes.dataset import Cityscapes
from fcn8s.errors import SettingError
from fcn8s.kitti.dataset import KittiRoad

DATASETS = {dataset.name: dataset for dataset in (KittiRoad(), Cityscapes())}


def dataset_of_folder(folder):
    """The dataset of DATASETS that folder holds (Dataset.holds): for the classic helpers, which are given folders.

    Raises SettingError naming what was looked for when no dataset, or more than one, is there.
    """
    found = [dataset for dataset in DATASETS.values() if dataset.holds(folder)]
    if len(found) != 1:
        looked_for = '; '.join(f'{dataset.name}: {dataset.folder_name}/ or {dataset.split_marker}/'
                               for dataset in DATASETS.values())
        raise SettingError(f'{folder} holds {"no dataset" if not found else "more than one dataset"} ({looked_for}): '
                           'give the dataset too, as dataset=DATASETS[name].')
    return found[0]
