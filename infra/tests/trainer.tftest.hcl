# Offline plan-time checks with a mocked AWS provider. Run from infra/ with
#   terraform test -var-file=config.tfvars
# so that the defaults under test are the ones config.tfvars ships.

mock_provider "aws" {
  mock_data "aws_ami" {
    defaults = {
      id   = "ami-0123456789abcdef0"
      name = "Deep Learning Base Proprietary Nvidia Driver AMI (Amazon Linux 2) Version 71.6"
    }
  }
}

variables {
  key_name     = "test-key"
  allowed_cidr = "203.0.113.7/32"
  repo_url     = "https://github.com/example/fcn-8s.git"
}

run "config_defaults_to_p3_2xlarge" {
  command = plan

  assert {
    condition     = aws_instance.trainer[0].instance_type == "p3.2xlarge"
    error_message = "config.tfvars must launch a p3.2xlarge."
  }

  assert {
    condition     = aws_instance.trainer[0].ami == "ami-0123456789abcdef0"
    error_message = "The instance must boot the AMI found by the aws_ami lookup."
  }
}

run "ssh_open_to_allowed_cidr_only" {
  command = plan

  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.ssh.cidr_ipv4 == "203.0.113.7/32" &&
      aws_vpc_security_group_ingress_rule.ssh.from_port == 22 &&
      aws_vpc_security_group_ingress_rule.ssh.to_port == 22
    )
    error_message = "ssh must be open to allowed_cidr only."
  }
}

run "jupyter_closed_by_default" {
  command = plan

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.jupyter) == 0
    error_message = "Port 8888 must stay closed unless open_jupyter = true."
  }
}

run "jupyter_opt_in_opens_8888_to_allowed_cidr_only" {
  command = plan

  variables {
    open_jupyter = true
  }

  assert {
    condition = (
      length(aws_vpc_security_group_ingress_rule.jupyter) == 1 &&
      aws_vpc_security_group_ingress_rule.jupyter[0].from_port == 8888 &&
      aws_vpc_security_group_ingress_rule.jupyter[0].to_port == 8888 &&
      aws_vpc_security_group_ingress_rule.jupyter[0].cidr_ipv4 == "203.0.113.7/32"
    )
    error_message = "open_jupyter = true must open 8888 to allowed_cidr and nothing else."
  }

  assert {
    condition = alltrue([
      for rule in concat([aws_vpc_security_group_ingress_rule.ssh], aws_vpc_security_group_ingress_rule.jupyter) :
      rule.cidr_ipv4 != "0.0.0.0/0" && rule.cidr_ipv6 == null
    ])
    error_message = "No ingress rule may be open to the whole internet."
  }
}

run "imdsv2_required" {
  command = plan

  assert {
    condition     = aws_instance.trainer[0].metadata_options[0].http_tokens == "required"
    error_message = "The instance must require IMDSv2 session tokens."
  }
}

run "root_volume_encrypted_gp3" {
  command = plan

  assert {
    condition = (
      aws_instance.trainer[0].root_block_device[0].encrypted == true &&
      aws_instance.trainer[0].root_block_device[0].volume_type == "gp3"
    )
    error_message = "The root volume must be encrypted gp3."
  }
}

run "on_demand_by_default" {
  command = plan

  assert {
    condition     = length(aws_instance.trainer[0].instance_market_options) == 0
    error_message = "Without use_spot the instance must be on-demand."
  }
}

run "spot_is_one_time" {
  command = plan

  variables {
    use_spot = true
  }

  assert {
    condition = (
      aws_instance.trainer[0].instance_market_options[0].market_type == "spot" &&
      aws_instance.trainer[0].instance_market_options[0].spot_options[0].spot_instance_type == "one-time"
    )
    error_message = "use_spot = true must request a one-time spot instance."
  }
}

run "rejects_ipv4_anywhere" {
  command = plan

  variables {
    allowed_cidr = "0.0.0.0/0"
  }

  expect_failures = [var.allowed_cidr]
}

run "rejects_ipv6_anywhere" {
  command = plan

  variables {
    allowed_cidr = "::/0"
  }

  expect_failures = [var.allowed_cidr]
}

run "rejects_placeholder_repo_url" {
  command = plan

  variables {
    repo_url = "https://github.com/YOUR_GITHUB_USER/YOUR_REPO.git"
  }

  expect_failures = [var.repo_url]
}
