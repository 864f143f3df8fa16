"""FCN-8s road segmentation: everything around the classic main.py and helper.py, one module per job."""
