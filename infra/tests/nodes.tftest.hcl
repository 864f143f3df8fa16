# One node against several: placement group, the workers' port, TF_CONFIG and
# the start commands. Offline, with a mocked AWS provider; run from infra/ with
#   terraform test -var-file=config.tfvars

mock_provider "aws" {
  mock_data "aws_ami" {
    defaults = {
      id   = "ami-0123456789abcdef0"
      name = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20261120"
    }
  }

  mock_data "aws_ec2_instance_type_offerings" {
    defaults = {
      locations = ["us-west-2c", "us-west-2a", "us-west-2b"]
    }
  }

  mock_resource "aws_security_group" {
    defaults = {
      id = "sg-0fcn8s"
    }
  }
}

override_resource {
  target = aws_instance.trainer[0]
  values = { private_ip = "10.0.1.5" }
}

override_resource {
  target = aws_instance.trainer[1]
  values = { private_ip = "10.0.1.6" }
}

override_resource {
  target = aws_instance.trainer[2]
  values = { private_ip = "10.0.1.7" }
}

variables {
  key_name     = "test-key"
  allowed_cidr = "203.0.113.7/32"
  repo_url     = "https://github.com/example/fcn-8s.git"
}

run "one_node_has_no_cluster" {
  command = apply

  variables {
    train_args = "--dataset cityscapes --runs-dir /mnt/efs/runs"
  }

  assert {
    condition     = length(aws_instance.trainer) == 1
    error_message = "instance_count = 1 must launch one instance."
  }

  assert {
    condition     = length(aws_placement_group.trainer) == 0 && output.placement_group == null
    error_message = "One node must create no placement group."
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.workers) == 0 && length(aws_vpc_security_group_egress_rule.workers) == 0
    error_message = "One node must not open the workers' port."
  }

  assert {
    condition     = output.tf_configs == null
    error_message = "One node needs no TF_CONFIG."
  }

  assert {
    condition     = output.start_commands == ["cd /home/ubuntu/fcn-8s && .venv/bin/python main.py --dataset cityscapes --runs-dir /mnt/efs/runs"]
    error_message = "One node's start command must cd to the project and run the venv's python main.py train_args, without TF_CONFIG; got ${jsonencode(output.start_commands)}."
  }

  assert {
    condition     = strcontains(aws_instance.trainer[0].user_data, "PROJECT_DIR=/home/ubuntu/fcn-8s")
    error_message = "setup.sh must clone the project where the start command cds to."
  }
}

run "three_nodes_form_one_cluster" {
  command = apply

  variables {
    instance_count = 3
    train_args     = "--dataset cityscapes --runs-dir /mnt/efs/runs"
  }

  assert {
    condition     = length(aws_instance.trainer) == 3
    error_message = "instance_count = 3 must launch three instances."
  }

  assert {
    condition = (
      length(aws_placement_group.trainer) == 1 &&
      aws_placement_group.trainer[0].strategy == "cluster" &&
      alltrue([for node in aws_instance.trainer : node.placement_group == aws_placement_group.trainer[0].name])
    )
    error_message = "All three nodes must be in one placement group with strategy cluster."
  }

  assert {
    condition     = alltrue([for node in aws_instance.trainer : node.availability_zone == "us-west-2a"])
    error_message = "All nodes must be pinned to the first zone (by name) offering the instance type; got ${jsonencode(aws_instance.trainer[*].availability_zone)}."
  }

  assert {
    condition = (
      length(aws_vpc_security_group_ingress_rule.workers) == 1 &&
      aws_vpc_security_group_ingress_rule.workers[0].from_port == 2222 &&
      aws_vpc_security_group_ingress_rule.workers[0].to_port == 2222 &&
      aws_vpc_security_group_ingress_rule.workers[0].ip_protocol == "tcp" &&
      aws_vpc_security_group_ingress_rule.workers[0].referenced_security_group_id == aws_security_group.trainer.id &&
      aws_vpc_security_group_ingress_rule.workers[0].security_group_id == aws_security_group.trainer.id &&
      aws_vpc_security_group_ingress_rule.workers[0].cidr_ipv4 == null &&
      aws_vpc_security_group_ingress_rule.workers[0].cidr_ipv6 == null &&
      aws_vpc_security_group_ingress_rule.workers[0].prefix_list_id == null
    )
    error_message = "The workers' port 2222 must open to the nodes' own security group only, with no cidr."
  }

  assert {
    condition = (
      length(aws_vpc_security_group_egress_rule.workers) == 1 &&
      aws_vpc_security_group_egress_rule.workers[0].from_port == 2222 &&
      aws_vpc_security_group_egress_rule.workers[0].referenced_security_group_id == aws_security_group.trainer.id &&
      aws_vpc_security_group_egress_rule.workers[0].cidr_ipv4 == null
    )
    error_message = "The nodes must be allowed to reach each other's port 2222, and only inside their security group."
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.ssh.cidr_ipv4 == "203.0.113.7/32" && length(aws_vpc_security_group_ingress_rule.jupyter) == 0
    error_message = "Several nodes must keep ssh open to allowed_cidr only and Jupyter closed."
  }

  assert {
    condition = jsondecode(output.tf_configs[2]) == {
      cluster = { worker = ["10.0.1.5:2222", "10.0.1.6:2222", "10.0.1.7:2222"] }
      task    = { type = "worker", index = 2 }
    }
    error_message = "Node 2's TF_CONFIG must list every node's private_ip:2222 in node order and have task worker index 2; got ${output.tf_configs[2]}."
  }

  assert {
    condition     = [for config in output.tf_configs : jsondecode(config).task.index] == [0, 1, 2]
    error_message = "Node i's TF_CONFIG must have task index i."
  }

  assert {
    condition     = output.start_commands[0] == "cd /home/ubuntu/fcn-8s && TF_CONFIG='{\"cluster\":{\"worker\":[\"10.0.1.5:2222\",\"10.0.1.6:2222\",\"10.0.1.7:2222\"]},\"task\":{\"index\":0,\"type\":\"worker\"}}' .venv/bin/python main.py --dataset cityscapes --runs-dir /mnt/efs/runs"
    error_message = "Node 0's start command must cd to the project, set its TF_CONFIG and run the venv's python main.py train_args; got ${output.start_commands[0]}."
  }
}

run "worker_port_is_a_variable" {
  command = apply

  variables {
    instance_count = 2
    worker_port    = 12345
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.workers[0].from_port == 12345 && aws_vpc_security_group_ingress_rule.workers[0].to_port == 12345
    error_message = "worker_port must set the port opened between the nodes."
  }

  assert {
    condition     = jsondecode(output.tf_configs[1]).cluster.worker == ["10.0.1.5:12345", "10.0.1.6:12345"]
    error_message = "TF_CONFIG must use worker_port; got ${output.tf_configs[1]}."
  }
}

run "availability_zone_overrides_the_first_offering" {
  command = plan

  variables {
    instance_count    = 2
    availability_zone = "us-west-2b"
  }

  assert {
    condition     = aws_instance.trainer[*].availability_zone == ["us-west-2b", "us-west-2b"]
    error_message = "availability_zone must place every node in that zone."
  }
}

run "type_offered_nowhere_is_refused_for_several_nodes" {
  command = plan

  variables {
    instance_count = 2
  }

  override_data {
    target = data.aws_ec2_instance_type_offerings.zones[0]
    values = { locations = [] }
  }

  expect_failures = [aws_placement_group.trainer]
}

run "multi_gpu_types_accepted" {
  command = plan

  variables {
    instance_type = "p4d.24xlarge"
  }

  assert {
    condition     = aws_instance.trainer[0].instance_type == "p4d.24xlarge"
    error_message = "p4d.24xlarge (8 A100) must be accepted."
  }
}

run "rejects_non_gpu_instance_type" {
  command = plan

  variables {
    instance_type = "t3.micro"
  }

  expect_failures = [var.instance_type]
}

run "rejects_zero_instances" {
  command = plan

  variables {
    instance_count = 0
  }

  expect_failures = [var.instance_count]
}

run "rejects_fractional_instance_count" {
  command = plan

  variables {
    instance_count = 1.5
  }

  expect_failures = [var.instance_count]
}

run "rejects_seventeen_instances" {
  command = plan

  variables {
    instance_count = 17
  }

  expect_failures = [var.instance_count]
}

run "rejects_privileged_worker_port" {
  command = plan

  variables {
    worker_port = 80
  }

  expect_failures = [var.worker_port]
}

run "rejects_multiline_train_args" {
  command = plan

  variables {
    train_args = "--epochs 1\nrm -rf ~"
  }

  expect_failures = [var.train_args]
}
