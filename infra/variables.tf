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
  description = "EC2 GPU instance type. Must be supported by the AMI that ami_name_pattern selects."
  type        = string
  default     = "p3.2xlarge"
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
