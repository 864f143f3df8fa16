# Pass with: terraform plan -var-file=config.tfvars -var key_name=... -var allowed_cidr=...
region           = "us-west-2"
instance_type    = "p3.2xlarge"
use_spot         = false
root_volume_size = 100
open_jupyter     = false

# Set this to the public https URL of your copy of the project before applying.
repo_url = "https://github.com/YOUR_GITHUB_USER/YOUR_REPO.git"

# Current AWS Deep Learning Base AMIs (OSS driver, Ubuntu / Amazon Linux 2023)
# no longer support P3 (Volta). The Amazon Linux 2 proprietary-driver base AMI
# lists P3 up to its 71.x releases; 73.x dropped it.
ami_name_pattern = "Deep Learning Base Proprietary Nvidia Driver AMI (Amazon Linux 2) Version 71.*"

# Recommended instead: a G5 (A10G) or G6 (L4) instance on a current base AMI.
# instance_type    = "g5.xlarge" # or "g6.xlarge"
# ami_name_pattern = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"

# Several GPUs in one box: e.g. p3.8xlarge (4 V100) or p3.16xlarge (8 V100).
# Several boxes for one job: instance_count = 2 .. 16, then run each node's
# start_commands output (see README.md, "Several GPUs, several nodes").
# instance_count = 1
# train_args     = "--dataset cityscapes --runs-dir /mnt/efs/runs"
