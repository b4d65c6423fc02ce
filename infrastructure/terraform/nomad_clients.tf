locals {
  docker_auth_json = jsonencode({
    credHelpers = var.create_ecr_repositories ? { (local.ecr_registry) = "ecr-login" } : {}
  })

  client_user_data_vars = {
    install_nomad         = local.install_nomad
    client_hcl            = file("${path.module}/../nomad/client.hcl")
    client_gpu_hcl        = file("${path.module}/../nomad/client-gpu.hcl")
    datacenter            = var.nomad_datacenter
    region                = var.nomad_region
    server_ips            = local.server_ips
    docker_auth_json      = local.docker_auth_json
    refinery_uid          = local.refinery_uid
    nvidia_plugin_version = var.nvidia_plugin_version
  }
}

# --- CPU clients ------------------------------------------------------------

resource "aws_launch_template" "nomad_client" {
  name_prefix   = "${var.name}-nomad-client-"
  image_id      = data.aws_ami.ubuntu.id
  instance_type = var.client_instance_type
  key_name      = var.ssh_key_name

  user_data = base64encode(templatefile("${path.module}/templates/client-user-data.sh.tftpl",
  merge(local.client_user_data_vars, { gpu = false })))

  iam_instance_profile {
    arn = aws_iam_instance_profile.worker.arn
  }

  network_interfaces {
    associate_public_ip_address = true
    security_groups             = [aws_security_group.nomad_client.id]
    delete_on_termination       = true
  }

  block_device_mappings {
    device_name = data.aws_ami.ubuntu.root_device_name

    ebs {
      volume_type           = "gp3"
      volume_size           = var.client_root_volume_gb
      encrypted             = true
      delete_on_termination = true
    }
  }

  # IMDSv2 only; a hop limit of 2 lets the containers (one network hop
  # further) fetch the instance role's credentials for S3.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
  }

  tag_specifications {
    resource_type = "instance"
    tags = {
      Name = "${var.name}-nomad-client"
      Role = "nomad-client"
    }
  }

  tag_specifications {
    resource_type = "volume"
    tags = {
      Name = "${var.name}-nomad-client"
    }
  }
}

resource "aws_autoscaling_group" "nomad_client" {
  name                = "${var.name}-nomad-client"
  min_size            = var.client_min_size
  max_size            = var.client_max_size
  desired_capacity    = var.client_desired_capacity
  vpc_zone_identifier = aws_subnet.public[*].id
  health_check_type   = "EC2"

  launch_template {
    id      = aws_launch_template.nomad_client.id
    version = aws_launch_template.nomad_client.latest_version
  }

  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 50
    }
  }

  tag {
    key                 = "Cluster"
    value               = var.name
    propagate_at_launch = true
  }

  # Clients join the servers by address; start them once the servers exist.
  depends_on = [aws_instance.nomad_server]
}

# --- GPU clients (none unless gpu_client_count > 0) -------------------------

data "aws_ami" "gpu" {
  count = var.gpu_client_count > 0 ? 1 : 0

  most_recent = true
  owners      = ["amazon"]

  filter {
    name   = "name"
    values = [var.gpu_ami_name_filter]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

resource "aws_launch_template" "nomad_client_gpu" {
  count = var.gpu_client_count > 0 ? 1 : 0

  name_prefix   = "${var.name}-nomad-client-gpu-"
  image_id      = data.aws_ami.gpu[0].id
  instance_type = var.gpu_client_instance_type
  key_name      = var.ssh_key_name

  user_data = base64encode(templatefile("${path.module}/templates/client-user-data.sh.tftpl",
  merge(local.client_user_data_vars, { gpu = true })))

  iam_instance_profile {
    arn = aws_iam_instance_profile.worker.arn
  }

  network_interfaces {
    associate_public_ip_address = true
    security_groups             = [aws_security_group.nomad_client.id]
    delete_on_termination       = true
  }

  block_device_mappings {
    device_name = data.aws_ami.gpu[0].root_device_name

    ebs {
      volume_type           = "gp3"
      volume_size           = var.client_root_volume_gb
      encrypted             = true
      delete_on_termination = true
    }
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
  }

  tag_specifications {
    resource_type = "instance"
    tags = {
      Name = "${var.name}-nomad-client-gpu"
      Role = "nomad-client-gpu"
    }
  }

  tag_specifications {
    resource_type = "volume"
    tags = {
      Name = "${var.name}-nomad-client-gpu"
    }
  }
}

resource "aws_autoscaling_group" "nomad_client_gpu" {
  count = var.gpu_client_count > 0 ? 1 : 0

  name                = "${var.name}-nomad-client-gpu"
  min_size            = 0
  max_size            = var.gpu_client_count
  desired_capacity    = var.gpu_client_count
  vpc_zone_identifier = aws_subnet.public[*].id
  health_check_type   = "EC2"

  launch_template {
    id      = aws_launch_template.nomad_client_gpu[0].id
    version = aws_launch_template.nomad_client_gpu[0].latest_version
  }

  tag {
    key                 = "Cluster"
    value               = var.name
    propagate_at_launch = true
  }

  depends_on = [aws_instance.nomad_server]
}
