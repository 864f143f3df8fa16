provider "aws" {
  region  = var.region
  profile = var.profile

  default_tags {
    tags = {
      Project   = "fcn-8s-road-segmentation"
      ManagedBy = "terraform"
    }
  }
}

data "aws_ami" "dlami" {
  most_recent = true
  owners      = ["amazon"]

  filter {
    name   = "name"
    values = [var.ami_name_pattern]
  }
}

# The zones that offer instance_type: a cluster placement group lives in one
# zone, so several nodes are all launched in the same one.
data "aws_ec2_instance_type_offerings" "zones" {
  count = local.multi_node && var.availability_zone == null ? 1 : 0

  location_type = "availability-zone"

  filter {
    name   = "instance-type"
    values = [var.instance_type]
  }
}

locals {
  multi_node = var.instance_count > 1
  # One node: EC2 picks the zone unless availability_zone is set. Several
  # nodes: availability_zone, else the first zone (by name) offering the type.
  availability_zone = (
    var.availability_zone != null ? var.availability_zone :
    local.multi_node ? try(sort(data.aws_ec2_instance_type_offerings.zones[0].locations)[0], null) : null
  )

  # Amazon Linux DLAMIs log in as ec2-user, Ubuntu ones as ubuntu.
  ssh_user = strcontains(data.aws_ami.dlami.name, "Ubuntu") ? "ubuntu" : "ec2-user"
  # Where setup.sh clones the project and makes its venv (.venv inside it).
  project_dir = "/home/${local.ssh_user}/fcn-8s"
  # Where the ssh outputs expect the key pair's private key.
  ssh_key_file = pathexpand("~/.ssh/${var.key_name}.pem")

  # Each node's TF_CONFIG: every node's private address in node order; node 0
  # is the chief (TensorFlow's rule when the cluster names no "chief" task).
  worker_addresses = [for node in aws_instance.trainer : "${node.private_ip}:${var.worker_port}"]
  tf_configs = [
    for index in range(var.instance_count) : jsonencode({
      cluster = { worker = local.worker_addresses }
      task    = { type = "worker", index = index }
    })
  ]
  # These JSON strings (addresses, numbers, "worker") hold no single quote, so '...' passes TF_CONFIG to the shell unchanged.
  start_commands = [
    for index in range(var.instance_count) : trimspace(join(" ", compact([
      "cd ${local.project_dir} &&",
      local.multi_node ? "TF_CONFIG='${local.tf_configs[index]}'" : "",
      ".venv/bin/python main.py",
      var.train_args,
    ])))
  ]

  # cloud-init installs setup.sh and runs it once as the login user; the same
  # script can be re-run by hand over ssh.
  user_data = join("\n", ["#cloud-config", yamlencode({
    write_files = [{
      path        = "/usr/local/bin/fcn-setup.sh"
      permissions = "0755"
      encoding    = "b64"
      content     = filebase64("${path.module}/setup.sh")
    }]
    runcmd = [[
      "sudo", "-u", local.ssh_user, "-H",
      "env", "REPO_URL=${var.repo_url}", "PROJECT_DIR=${local.project_dir}", "START_JUPYTER=1",
      "/usr/local/bin/fcn-setup.sh",
    ]]
  })])
}

resource "aws_security_group" "trainer" {
  name_prefix = "fcn-trainer-"
  description = "FCN-8s trainer: reachable from allowed_cidr only"
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  security_group_id = aws_security_group.trainer.id
  description       = "ssh from allowed_cidr"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = var.allowed_cidr
}

resource "aws_vpc_security_group_ingress_rule" "jupyter" {
  count = var.open_jupyter ? 1 : 0

  security_group_id = aws_security_group.trainer.id
  description       = "Jupyter from allowed_cidr (opt-in)"
  ip_protocol       = "tcp"
  from_port         = 8888
  to_port           = 8888
  cidr_ipv4         = var.allowed_cidr
}

# Several nodes: the tf.distribute servers reach each other on worker_port,
# and only from inside this security group.
resource "aws_vpc_security_group_ingress_rule" "workers" {
  count = local.multi_node ? 1 : 0

  security_group_id            = aws_security_group.trainer.id
  description                  = "tf.distribute workers from the job's own nodes"
  ip_protocol                  = "tcp"
  from_port                    = var.worker_port
  to_port                      = var.worker_port
  referenced_security_group_id = aws_security_group.trainer.id
}

resource "aws_vpc_security_group_egress_rule" "workers" {
  count = local.multi_node ? 1 : 0

  security_group_id            = aws_security_group.trainer.id
  description                  = "tf.distribute workers to the job's own nodes"
  ip_protocol                  = "tcp"
  from_port                    = var.worker_port
  to_port                      = var.worker_port
  referenced_security_group_id = aws_security_group.trainer.id
}

# Several nodes share one cluster placement group (one zone, low latency). Its
# name must be unique in the region; the security group's id is.
resource "aws_placement_group" "trainer" {
  count = local.multi_node ? 1 : 0

  name     = "fcn-trainer-${aws_security_group.trainer.id}"
  strategy = "cluster"

  lifecycle {
    precondition {
      condition     = local.availability_zone != null
      error_message = "No availability zone of ${var.region} offers ${var.instance_type}: choose another instance_type or region, or set availability_zone."
    }
  }
}

# Outbound web only: GitHub, PyPI, NVIDIA wheels, the VGG/KITTI downloads and
# OS packages. DNS and NTP go to the VPC's link-local resolvers, which
# security groups do not filter.
resource "aws_vpc_security_group_egress_rule" "web" {
  for_each = toset(["80", "443"])

  security_group_id = aws_security_group.trainer.id
  description       = "outbound tcp/${each.key} for package and dataset downloads"
  ip_protocol       = "tcp"
  from_port         = tonumber(each.key)
  to_port           = tonumber(each.key)
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_instance" "trainer" {
  count = var.instance_count

  #checkov:skip=CKV_AWS_88:Public IP is needed to ssh in; ingress is limited to allowed_cidr.
  #checkov:skip=CKV2_AWS_41:The trainer calls no AWS APIs, so it gets no IAM role.
  #checkov:skip=CKV_AWS_126:Short-lived training box; basic monitoring is enough.
  ami                         = data.aws_ami.dlami.id
  instance_type               = var.instance_type
  key_name                    = var.key_name
  vpc_security_group_ids      = [aws_security_group.trainer.id]
  associate_public_ip_address = true
  ebs_optimized               = true
  availability_zone           = local.availability_zone
  placement_group             = local.multi_node ? aws_placement_group.trainer[0].name : null
  user_data                   = local.user_data
  user_data_replace_on_change = true

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size
    encrypted             = true
    delete_on_termination = true
  }

  dynamic "instance_market_options" {
    for_each = var.use_spot ? [1] : []
    content {
      market_type = "spot"
      spot_options {
        spot_instance_type             = "one-time"
        instance_interruption_behavior = "terminate"
      }
    }
  }

  tags = {
    Name = "fcn-8s-trainer-${count.index}"
  }
}

# The single trainer of earlier versions is node 0.
moved {
  from = aws_instance.trainer
  to   = aws_instance.trainer[0]
}
