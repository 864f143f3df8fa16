variable "region" {
  description = "AWS region to launch the trainer in."
  type        = string
  default     = "us-west-2"
}

variable "profile" {
  description = "Named AWS CLI profile to authenticate with; null uses the default credential chain (environment, SSO, instance role)."
  type        = string
  default     = null
}

variable "instance_type" {
  description = "EC2 GPU instance type (GPUs per type: infra/README.md). Must be supported by the AMI that ami_name_pattern selects."
  type        = string
  default     = "p3.2xlarge"

  validation {
    condition = contains([
      "p3.2xlarge", "p3.8xlarge", "p3.16xlarge",
      "p4d.24xlarge",
      "g5.xlarge", "g5.2xlarge", "g5.4xlarge", "g5.8xlarge", "g5.16xlarge", "g5.12xlarge",
      "g6.xlarge", "g6.2xlarge", "g6.4xlarge", "g6.8xlarge", "g6.16xlarge",
    ], var.instance_type)
    error_message = "instance_type must be one of the GPU types this project is documented for: p3.2xlarge (1 V100), p3.8xlarge (4 V100), p3.16xlarge (8 V100), p4d.24xlarge (8 A100), g5.12xlarge (4 A10G), or one A10G/L4: g5.xlarge, g5.2xlarge, g5.4xlarge, g5.8xlarge, g5.16xlarge, g6.xlarge, g6.2xlarge, g6.4xlarge, g6.8xlarge, g6.16xlarge."
  }
}

variable "instance_count" {
  description = "Number of GPU nodes. More than 1 puts them in one cluster placement group and opens worker_port between them for tf.distribute's MultiWorkerMirroredStrategy."
  type        = number
  default     = 1

  validation {
    condition     = var.instance_count == floor(var.instance_count) && var.instance_count >= 1 && var.instance_count <= 16
    error_message = "instance_count must be a whole number of nodes from 1 to 16."
  }
}

variable "worker_port" {
  description = "TCP port each node's tf.distribute server listens on (TF_CONFIG); opened only between the nodes' own security group when instance_count > 1."
  type        = number
  default     = 2222

  validation {
    condition     = var.worker_port == floor(var.worker_port) && var.worker_port >= 1024 && var.worker_port <= 65535
    error_message = "worker_port must be a whole number from 1024 to 65535 (an unprivileged TCP port)."
  }
}

variable "train_args" {
  description = "Arguments appended to `python main.py` in the start_commands output, e.g. \"--dataset cityscapes --runs-dir /mnt/efs/runs\"."
  type        = string
  default     = ""

  validation {
    condition     = !can(regex("[\\n\\r]", var.train_args))
    error_message = "train_args must fit on one line (no newline): it is appended to a one-line shell command."
  }
}

variable "key_name" {
  description = "Name of an existing EC2 key pair in the region, used for ssh."
  type        = string

  validation {
    condition     = length(trimspace(var.key_name)) > 0
    error_message = "key_name must name an existing EC2 key pair."
  }
}

variable "allowed_cidr" {
  description = "IPv4 network allowed to reach ssh (and Jupyter when open_jupyter = true), normally your own address as a.b.c.d/32. The whole internet is refused."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.allowed_cidr)) && try(cidrsubnet(var.allowed_cidr, 0, 0) == var.allowed_cidr, false)
    error_message = "allowed_cidr must be an IPv4 network in CIDR form without host bits, e.g. 203.0.113.7/32."
  }

  validation {
    condition     = !endswith(var.allowed_cidr, "/0")
    error_message = "allowed_cidr must not open the instance to the whole internet (0.0.0.0/0 or ::/0)."
  }
}

variable "use_spot" {
  description = "Launch as a one-time spot instance (much cheaper, but AWS may terminate it at any time)."
  type        = bool
  default     = false
}

variable "root_volume_size" {
  description = "Root volume size in GiB; must be at least the AMI's snapshot size (Deep Learning AMIs need roughly 75 GiB or more)."
  type        = number
  default     = 100

  validation {
    condition     = var.root_volume_size == floor(var.root_volume_size) && var.root_volume_size >= 50 && var.root_volume_size <= 2048
    error_message = "root_volume_size must be a whole number of GiB between 50 and 2048."
  }
}

variable "ami_name_pattern" {
  description = "Name filter (wildcards allowed) for an Amazon-owned Deep Learning AMI that supports instance_type; the most recent match is used."
  type        = string
  default     = "Deep Learning Base Proprietary Nvidia Driver AMI (Amazon Linux 2) Version 71.*"
}

variable "open_jupyter" {
  description = "Also open Jupyter's port 8888 to allowed_cidr. Off by default: reach Jupyter through an ssh tunnel instead."
  type        = bool
  default     = false
}

variable "repo_url" {
  description = "Public https URL of the project's git repository that setup.sh clones on first boot (never put credentials in it)."
  type        = string

  validation {
    condition     = can(regex("^https://[^\\s'\"@$`]+$", var.repo_url)) && !strcontains(var.repo_url, "YOUR_GITHUB_USER")
    error_message = "repo_url must be a public https git URL without credentials; replace the YOUR_GITHUB_USER placeholder in config.tfvars."
  }
}

variable "availability_zone" {
  description = "Availability zone for every node, e.g. us-west-2b. null: EC2 picks one for a single node; several nodes go to the first zone (by name) that offers instance_type."
  type        = string
  default     = null
}
