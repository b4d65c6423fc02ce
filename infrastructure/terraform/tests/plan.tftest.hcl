# Offline plan test: `terraform init -backend=false && terraform test`.
# The AWS provider is mocked, so no credentials or network are needed
# beyond installing the provider itself.

mock_provider "aws" {
  override_data {
    target = data.aws_availability_zones.available
    values = {
      names = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"]
    }
  }

  override_data {
    target = data.aws_caller_identity.current
    values = {
      account_id = "123456789012"
    }
  }

  override_data {
    target = data.aws_ami.ubuntu
    values = {
      id               = "ami-0123456789abcdef0"
      root_device_name = "/dev/sda1"
    }
  }

  override_data {
    target = data.aws_iam_policy_document.ec2_assume
    values = {
      json = "{}"
    }
  }

  override_data {
    target = data.aws_iam_policy_document.worker_storage
    values = {
      json = "{}"
    }
  }

  override_data {
    target = data.aws_iam_policy_document.worker_images
    values = {
      json = "{}"
    }
  }
}

variables {
  admin_cidr_blocks = ["203.0.113.7/32"]
  ssh_key_name      = "test-key"
  db_password       = "correct-horse-battery-staple"
}

run "default_cluster" {
  command = plan

  assert {
    condition     = length(aws_instance.nomad_server) == 3
    error_message = "There must be exactly three Nomad servers."
  }

  assert {
    condition     = length(distinct(local.server_ips)) == 3
    error_message = "The Nomad servers need three distinct addresses."
  }

  assert {
    condition     = local.server_ips == ["10.42.0.20", "10.42.16.20", "10.42.32.20"]
    error_message = "Each server sits in the reserved /28 of its own subnet."
  }

  assert {
    condition     = length(aws_autoscaling_group.nomad_client_gpu) == 0 && length(aws_launch_template.nomad_client_gpu) == 0
    error_message = "No GPU clients by default."
  }

  assert {
    condition     = strcontains(aws_instance.nomad_server[0].user_data, "bootstrap_expect = 3")
    error_message = "The servers' user data must carry server.hcl."
  }

  assert {
    condition     = strcontains(aws_instance.nomad_server[0].user_data, "\"10.42.0.20:4648\"")
    error_message = "The servers must join each other on the Serf port."
  }

  assert {
    condition     = strcontains(base64decode(aws_launch_template.nomad_client.user_data), "host_volume \"refinery-data\"")
    error_message = "The clients' user data must carry client.hcl."
  }

  assert {
    condition     = !strcontains(base64decode(aws_launch_template.nomad_client.user_data), "nomad-device-nvidia\" {")
    error_message = "CPU clients must not load the NVIDIA plugin."
  }

  assert {
    condition     = one([for r in aws_s3_bucket_lifecycle_configuration.temp.rule : one(r.expiration).days]) == 7
    error_message = "Temporary objects expire after 7 days by default."
  }

  assert {
    condition     = one(aws_s3_bucket_versioning.permanent.versioning_configuration).status == "Enabled"
    error_message = "The permanent bucket is versioned."
  }

  assert {
    condition     = aws_db_instance.main.password == null && aws_db_instance.main.engine == "postgres" && aws_db_instance.main.engine_version == "15"
    error_message = "PostgreSQL 15, password only through the write-only argument."
  }

  assert {
    condition     = !aws_db_instance.main.publicly_accessible
    error_message = "The database must not be public."
  }

  assert {
    condition     = length(aws_ecr_repository.refinery) == 4
    error_message = "One ECR repository per image."
  }
}

run "gpu_clients" {
  command = plan

  variables {
    gpu_client_count            = 2
    temp_object_expiration_days = 3
  }

  override_data {
    target = data.aws_ami.gpu[0]
    values = {
      id               = "ami-0fedcba9876543210"
      root_device_name = "/dev/sda1"
    }
  }

  assert {
    condition     = aws_autoscaling_group.nomad_client_gpu[0].desired_capacity == 2
    error_message = "gpu_client_count GPU clients."
  }

  assert {
    condition     = strcontains(base64decode(aws_launch_template.nomad_client_gpu[0].user_data), "plugin \"nomad-device-nvidia\"")
    error_message = "GPU clients load the NVIDIA device plugin."
  }

  assert {
    condition     = one([for r in aws_s3_bucket_lifecycle_configuration.temp.rule : one(r.expiration).days]) == 3
    error_message = "temp_object_expiration_days is honoured."
  }
}

run "rejects_unsafe_password" {
  command = plan

  variables {
    db_password = "has@and/slash-chars"
  }

  expect_failures = [var.db_password]
}
